import CertificateAuthority
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A local HTTPS imitation of Miro's OAuth and REST endpoints (`tokentap sandbox`).
///
/// Serves, keyed on the Host header (port ignored):
/// - `GET https://miro.com/oauth/authorize`: auto-consent, `302` to the redirect URI with `code`,
///   `state` (when given), `client_id`, `team_id`;
/// - `POST https://api.miro.com/v1/oauth/token`: `authorization_code` and `refresh_token` grants,
///   parameters from the query string and/or a form body, client authentication by parameters or
///   HTTP Basic; refresh rotates both tokens;
/// - `GET https://api.miro.com/v1/oauth-token` (token context) and `GET https://api.miro.com/v2/boards`
///   (a fixed list) with Bearer checks and `X-RateLimit-*` headers;
/// - `POST https://api.miro.com/__sandbox/advance?seconds=N`: moves the sandbox clock forward.
///
/// Host names other than `miro.com`/`api.miro.com` (`localhost`, `127.0.0.1`) serve every route.
/// TLS leaves come from the sandbox CA (`<certs>/sandbox-ca.pem`, key `sandbox-ca-key.pem`), minted
/// per SNI name; a client that sends no SNI gets the leaf for the listen address.
/// Which behaviours are Miro's documented ones and which are assumptions: README-SANDBOX.md.
public final class SandboxServer: Sendable {
    /// The configuration it serves.
    public let configuration: SandboxConfiguration
    /// The sandbox CA.
    public let authority: CertificateAuthority
    private let certificateURL: URL
    private let group: EventLoopGroup
    private let router: SandboxRouter
    private let logger: Logger
    private let channel = Mutex<Channel?>(nil)

    /// Loads the sandbox CA from `certificatesDirectory` (creating the folder, with a `.gitignore`
    /// of `*`, and the CA when missing).
    ///
    /// - Parameters:
    ///   - configuration: listen address, apps, lifetimes (seconds), clock offset, rate budget.
    ///   - certificatesDirectory: the home's `certs/` folder.
    ///   - group: the event loops to serve on (not shut down by `shutdown()`).
    ///   - logger: one `info` line per request (method, host, path without query, status).
    /// - Throws: `CertificateAuthorityError` for an unusable CA, or a file-system error.
    public init(configuration: SandboxConfiguration, certificatesDirectory: URL, group: EventLoopGroup,
                logger: Logger = Logger(label: "tokentap.sandbox")) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: certificatesDirectory.path) {
            try fm.createDirectory(at: certificatesDirectory, withIntermediateDirectories: true)
            try Data("*\n".utf8).write(to: certificatesDirectory.appendingPathComponent(".gitignore"))
        }
        certificateURL = certificatesDirectory.appendingPathComponent("sandbox-ca.pem")
        authority = try CertificateAuthority.loadOrCreate(
            certificateURL: certificateURL,
            keyURL: certificatesDirectory.appendingPathComponent("sandbox-ca-key.pem"),
            commonName: "tokentap sandbox CA").0
        self.configuration = configuration
        self.group = group
        self.router = SandboxRouter(configuration: configuration)
        self.logger = logger
    }

    /// Absolute path of the sandbox CA certificate (PEM), for `curl --cacert`, `--upstream-ca`, etc.
    public var caCertificatePath: String { certificateURL.standardizedFileURL.path }

    /// Binds and starts serving.
    /// - Returns: the bound address (the real port when the configuration asks for 0).
    public func start() async throws -> SocketAddress {
        let context = try makeTLSContext()
        let router = self.router
        let logger = self.logger
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: context))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(SandboxHTTPHandler(router: router, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        channel.withLock { $0 = bound }
        guard let address = bound.localAddress else { throw ChannelError.unknownLocalAddress }
        return address
    }

    /// Stops listening and closes the listener. Open connections finish on their own.
    public func shutdown() async throws {
        let listener = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try await listener?.close()
    }

    /// The sandbox clock (epoch seconds): wall clock + clock offset + advances.
    public var now: Double { router.now }

    private func makeTLSContext() throws -> NIOSSLContext {
        let authority = self.authority
        let leafKey = try NIOSSLPrivateKey(bytes: Array(authority.leafPrivateKeyPEM.utf8), format: .pem)
        // Clients send no SNI for IP literals: they get the leaf for the listen address.
        let fallbackName = IPAddress(configuration.host) != nil && configuration.host != "0.0.0.0" && configuration.host != "::"
            ? configuration.host : "127.0.0.1"
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try authority.leaf(for: fallbackName).derBytes, format: .der))],
            privateKey: .privateKey(leafKey))
        config.sslContextCallback = { values, promise in
            do {
                guard let name = values.serverHostname, !name.isEmpty else {
                    promise.succeed(NIOSSLContextConfigurationOverride())
                    return
                }
                var override = NIOSSLContextConfigurationOverride()
                let leaf = try authority.leaf(for: name)
                override.certificateChain = [.certificate(try NIOSSLCertificate(bytes: leaf.derBytes, format: .der))]
                override.privateKey = .privateKey(leafKey)
                promise.succeed(override)
            } catch { promise.fail(error) }
        }
        return try NIOSSLContext(configuration: config)
    }
}

/// One connection's HTTP/1.1 handler: gathers a request, asks the router, writes the answer.
private final class SandboxHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: SandboxRouter
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(router: SandboxRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
            tooLarge = false
            if head.headers["expect"].first?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(let part):
            guard !tooLarge else { return }
            if body.count + part.readableBytes > SandboxRouter.maxBodyBytes {
                tooLarge = true
                body.removeAll()
            } else {
                body.append(contentsOf: part.readableBytesView)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let response: SandboxResponse
            if tooLarge {
                response = router.error(413, "payloadTooLarge", SandboxMessage.bodyTooLarge)
            } else {
                let request = SandboxRequest(method: head.method.rawValue, uri: head.uri,
                                             headers: head.headers.map { (name: $0.name, value: $0.value) }, body: body)
                response = router.handle(request)
            }
            let path = SandboxRouter.split(target: head.uri).path
            logger.info("\(head.method.rawValue) \(head.headers["host"].first ?? "-")\(path) -> \(response.status)")
            write(response, for: head, context: context)
        }
    }

    private func write(_ response: SandboxResponse, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        headers.add(name: "Content-Length", value: String(response.body.count))
        let keepAlive = request.isKeepAlive && !tooLarge
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD, !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // TLS failures (an untrusting client) and resets end the connection, never the server.
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }
}
