import CertificateAuthority
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTPS server on loopback with its own test CA, standing in for an upstream.
///
/// Routes: `POST /echo` (JSON echo of method, target and body), `GET /headers` (the request's
/// field names, one a line), `GET /gzip` (chunked and
/// gzip-encoded: `gzipBody`, made by the gzip tool at start), `GET /bytes?size=N&seed=S` (N deterministic
/// bytes, streamed), `GET /slow?ms=N` (answers after N ms), anything else: 200 "ok".
/// Leaves are chosen by SNI (any name gets one), so the same server poses as api.miro.com and
/// localhost.
final class TestUpstream: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let caFile: URL
    let authority: CertificateAuthority
    private(set) var port = 0
    private var channel: Channel?
    /// Requests seen (method + target), in order.
    let seen = NIOLockedValueBox<[String]>([])
    /// TCP connections accepted.
    let connections = NIOLockedValueBox(0)
    /// Canned responses served at `/fixture/NAME`.
    let fixtures = NIOLockedValueBox<[String: Fixture]>([:])

    /// A canned response; `gzipChunked` sends the body gzip-encoded (system gzip) and chunked.
    /// `raw` replaces it all: these bytes are written as they are, head included (for heads NIO's
    /// encoder would frame differently: a 204 with Content-Length, a HEAD answer with chunked
    /// framing, header bytes that are not UTF-8). Meant for connections that serve only raw
    /// fixtures and unchunked responses.
    struct Fixture: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
        var body: String = ""
        var gzipChunked = false
        var raw: [UInt8]? = nil

        init(status: Int = 200, headers: [(String, String)] = [], body: String = "", gzipChunked: Bool = false) {
            self.status = status
            self.headers = headers
            self.body = body
            self.gzipChunked = gzipChunked
        }

        init(raw: [UInt8]) { self.raw = raw }
        init(raw: String) { self.raw = Array(raw.utf8) }
    }

    /// `data` gzip-compressed by the system's gzip tool.
    static func gzip(_ data: Data) -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-c", "-n"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try! process.run()
        input.fileHandleForWriting.write(data)
        try! input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(out)
    }
    /// 20 JSON lines, gzip-compressed by the system's gzip; `/gzip` serves it chunked.
    static let jsonLines: String = (0..<20).map { "{\"chunk\":\($0),\"pad\":\"\(String(repeating: "z", count: 200))\"}\n" }.joined()
    static let gzipBody: [UInt8] = gzip(Data(jsonLines.utf8))

    /// The leaf served to clients that send no SNI (those connecting to an IP address).
    let noSNIName: String

    /// - Parameter noSNIName: the name (or IP) of the leaf for clients that send no SNI.
    init(directory: URL, noSNIName: String = "api.miro.com") throws {
        self.noSNIName = noSNIName
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "tokentap test upstream CA")
        authority = try CertificateAuthority(certificate: cert, privateKey: key)
        caFile = directory.appendingPathComponent("upstream-ca.pem")
        try authority.certificatePEM.write(to: caFile, atomically: true, encoding: .utf8)
    }

    /// Serve this chain (PEM files, leaf first) with this key (PEM file) to every client instead of
    /// leaves of the test CA. Set before `start()`.
    var fixedIdentity: (chain: [String], key: String)?

    func start() throws {
        let authority = self.authority
        let noSNIName = self.noSNIName
        let leafKey = try NIOSSLPrivateKey(bytes: Array(authority.leafPrivateKeyPEM.utf8), format: .pem)
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try authority.leaf(for: noSNIName).derBytes, format: .der))],
            privateKey: .privateKey(leafKey))
        config.sslContextCallback = { values, promise in
            do {
                var override = NIOSSLContextConfigurationOverride()
                let leaf = try authority.leaf(for: values.serverHostname ?? noSNIName)
                override.certificateChain = [.certificate(try NIOSSLCertificate(bytes: leaf.derBytes, format: .der))]
                override.privateKey = .privateKey(leafKey)
                promise.succeed(override)
            } catch { promise.fail(error) }
        }
        if let fixedIdentity {
            config = TLSConfiguration.makeServerConfiguration(
                certificateChain: try fixedIdentity.chain.flatMap { try NIOSSLCertificate.fromPEMFile($0) }.map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: fixedIdentity.key, format: .pem)))
        }
        let context = try NIOSSLContext(configuration: config)
        let seen = self.seen
        let connections = self.connections
        let fixtures = self.fixtures
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: context))
                    try sync.addHandler(RawSwap())
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(TestUpstreamHandler(seen: seen, fixtures: fixtures))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel!.localAddress!.port!
    }

    func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// The deterministic body `/bytes` serves.
    static func bytes(size: Int, seed: UInt8) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }
}

/// Between TLS and the response encoder: once armed, replaces the next encoded write (a head) with
/// raw bytes, for fixtures whose head NIO's encoder would not write as given.
private final class RawSwap: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData
    private var pending: [UInt8]?

    func arm(_ bytes: [UInt8]) { pending = bytes }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let bytes = pending {
            pending = nil
            context.write(wrapOutboundOut(.byteBuffer(ByteBuffer(bytes: bytes))), promise: promise)
        } else {
            context.write(data, promise: promise)
        }
    }
}

private final class TestUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let seen: NIOLockedValueBox<[String]>
    let fixtures: NIOLockedValueBox<[String: TestUpstream.Fixture]>
    var head: HTTPRequestHead?
    var body = ByteBuffer()

    init(seen: NIOLockedValueBox<[String]>, fixtures: NIOLockedValueBox<[String: TestUpstream.Fixture]>) {
        self.seen = seen
        self.fixtures = fixtures
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            seen.withLockedValue { $0.append("\(head.method.rawValue) \(head.uri)") }
            if head.headers["expect"].first?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            respond(head, context: context)
        }
    }

    private func query(_ uri: String) -> [String: String] {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out: [String: String] = [:]
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            out[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return out
    }

    private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = String(head.uri.prefix { $0 != "?" })
        let q = query(head.uri)
        if path.hasPrefix("/fixture/"), let fixture = fixtures.withLockedValue({ $0[String(path.dropFirst(9))] }) {
            if let raw = fixture.raw {
                // A bodiless response goes through NIO's handlers as usual; the bytes its head
                // became are swapped for the raw ones just before TLS.
                try! context.pipeline.syncOperations.handler(type: RawSwap.self).arm(raw)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "0")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            var headers = HTTPHeaders(fixture.headers)
            var bytes = Array(fixture.body.utf8)
            if fixture.gzipChunked {
                bytes = TestUpstream.gzip(Data(bytes))
                headers.add(name: "Content-Encoding", value: "gzip")
                headers.add(name: "Transfer-Encoding", value: "chunked")
            } else {
                headers.add(name: "Content-Length", value: String(bytes.count))
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: fixture.status), headers: headers))), promise: nil)
            for start in stride(from: 0, to: bytes.count, by: 50) {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes[start..<min(start + 50, bytes.count)])))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        switch path {
        case "/headers":
            // The request's field names as received, one a line.
            let names = head.headers.map { "\($0.name)\n" }.joined()
            send(status: .ok, contentType: "text/plain", body: ByteBuffer(string: names), context: context)
        case "/echo":
            let json: [String: Any] = [
                "method": head.method.rawValue, "target": head.uri,
                "body": String(buffer: body), "host": head.headers["host"].first ?? "",
            ]
            let data = try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            send(status: .ok, contentType: "application/json", body: ByteBuffer(bytes: data), context: context)
        case "/gzip":
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Encoding", value: "gzip")
            headers.add(name: "Transfer-Encoding", value: "chunked")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let body = TestUpstream.gzipBody
            for start in stride(from: 0, to: body.count, by: 64) {
                let chunk = body[start..<min(start + 64, body.count)]
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case "/bytes":
            let size = Int(q["size"] ?? "0") ?? 0
            let seed = UInt8(q["seed"] ?? "7") ?? 7
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/octet-stream")
            headers.add(name: "Content-Length", value: String(size))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let bytes = TestUpstream.bytes(size: size, seed: seed)
            var offset = 0
            while offset < size {
                let n = min(65_536, size - offset)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes[offset..<offset + n])))), promise: nil)
                offset += n
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case "/slow":
            let ms = Int64(q["ms"] ?? "2000") ?? 2000
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
                let (handler, context) = loopBound.value
                handler.send(status: .ok, contentType: "text/plain", body: ByteBuffer(string: "slow\n"), context: context)
            }
        default:
            send(status: .ok, contentType: "text/plain", body: ByteBuffer(string: "ok\n"), context: context)
        }
    }

    func send(status: HTTPResponseStatus, contentType: String, body: ByteBuffer, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
