import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Who a running proxy is: the content of `recordings/proxy.json` and of the answer to the
/// identity request `GET /__tokentap/status` (design.md, "State file").
public struct ProxyStatus: Codable, Sendable, Equatable {
    /// `HOST:PORT` the proxy listens on (`[::1]:PORT` for IPv6).
    public var address: String
    public var pid: Int32
    /// The session it records into.
    public var session: String
    /// Absolute path of its home folder (its CA is `certs/tokentap-ca.pem` there).
    public var home: String
    /// tokentap's version.
    public var version: String
    public var started: Date
    /// The host patterns it intercepts (defaults included); older proxies may not say.
    public var intercept: [String]?

    public init(address: String, pid: Int32, session: String, home: String, version: String, started: Date,
                intercept: [String]?) {
        self.address = address
        self.pid = pid
        self.session = session
        self.home = home
        self.version = version
        self.started = started
        self.intercept = intercept
    }

    /// The path of the identity request, sent in origin form to the proxy itself.
    public static let identityPath = "/__tokentap/status"

    /// One-line JSON (slashes unescaped, ISO 8601 dates).
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// Parses the JSON of a state file or an identity answer; nil when it is not one.
    public static func decode(_ data: Data) -> ProxyStatus? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(ProxyStatus.self, from: data)
    }

    /// Sends the identity request to `address` and returns the status it answers, or nil when
    /// nothing answers there, or something that is not a tokentap proxy (within `timeout`).
    public static func probe(_ address: HostPort, timeout: TimeAmount = .seconds(3)) async -> ProxyStatus? {
        let group = MultiThreadedEventLoopGroup.singleton
        let collector = StatusCollector()
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: address.host, port: address.port).get()
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: identityPath)
            head.headers.add(name: "Host", value: address.description)
            head.headers.add(name: "Connection", value: "close")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
            let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            try? await channel.closeFuture.get()
            timer.cancel()
        } catch {
            return nil
        }
        guard let (status, body) = collector.result, status == 200 else { return nil }
        return decode(body)
    }
}

/// Collects the identity answer's status and body, then closes.
private final class StatusCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let state = NIOLockedValueBox<(status: Int?, body: Data, done: Bool)>((nil, Data(), false))

    var result: (Int, Data)? {
        state.withLockedValue { s in s.done ? s.status.map { ($0, s.body) } : nil }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            state.withLockedValue { $0.status = Int(head.status.code) }
        case .body(let buffer):
            state.withLockedValue { s in
                if s.body.count < 65536 { s.body.append(contentsOf: buffer.readableBytesView) }
            }
        case .end:
            state.withLockedValue { $0.done = true }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
