import CertificateAuthority
import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOConcurrencyHelpers
import TokentapCore

/// tokentap's intercepting forward proxy (design.md, "The way a request travels").
///
/// Listens on `configuration.listen`, intercepts CONNECT tunnels to hosts matching the intercept
/// patterns with certificates from `authority`, relays HTTP/1.1 to the upstream with verified TLS,
/// and hands every completed exchange (raw values) to `sink`.
public final class ProxyServer: Sendable {
    private let env: ProxyEnvironment
    private let group: EventLoopGroup
    /// Released at the end of `shutdown`: its deinit completes a promise on the group, which must
    /// still be running then (after `shutdownGracefully` NIO reports it as an error).
    private let quiesceBox: NIOLockedValueBox<ServerQuiescingHelper?>
    private let channel = NIOLockedValueBoxChannel()
    /// Open client connections, to close those still open when the shutdown grace period ends.
    private let clients = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    /// - Throws: when an `--upstream-ca` file cannot be read.
    public init(configuration: ProxyConfiguration, authority: CertificateAuthority, sink: ExchangeSink?,
                logger: Logger, group: EventLoopGroup) throws {
        let tls = try TLSProvider(authority: authority, upstreamCAs: configuration.upstreamCAs,
                                  insecureUpstream: configuration.insecureUpstream)
        var loops: [EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        env = ProxyEnvironment(configuration: configuration, tls: tls, sink: sink, logger: logger, loops: loops)
        self.group = group
        self.quiesceBox = NIOLockedValueBox(ServerQuiescingHelper(group: group))
    }

    /// Binds the listener. - Returns: the bound address (the real port when 0 was asked for).
    /// - Throws: `IOError` when the address is in use or cannot be bound.
    public func start() async throws -> SocketAddress {
        let env = self.env
        guard let quiesce = quiesceBox.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
        let clients = self.clients
        let clientTimeout = TimeAmount.nanoseconds(Int64(env.configuration.clientTimeout * 1_000_000_000))
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                let key = ObjectIdentifier(channel)
                clients.withLockedValue { $0[key] = channel }
                channel.closeFuture.whenComplete { _ in _ = clients.withLockedValue { $0.removeValue(forKey: key) } }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: clientTimeout))
                    try ConnectHandler.addFrontHandlers(to: sync, env: env)
                }
            }
        let listen = env.configuration.listen
        let server = try await bootstrap.bind(host: listen.host, port: listen.port).get()
        channel.set(server)
        let address = server.localAddress!
        env.boundAddress.withLockedValue { $0 = Self.describe(address) }
        return address
    }

    /// What the proxy answers to the identity request `GET /__tokentap/status` (origin form, sent
    /// to the proxy itself): `200` with this status as JSON. Until it is set, that request gets the
    /// `400` every origin-form request gets.
    public func setStatus(_ status: ProxyStatus) {
        env.statusDocument.withLockedValue { $0 = status.encoded() }
    }

    /// `HOST:PORT` for the `listening on` line (`[::1]:PORT` for IPv6).
    public static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "?"
        let port = address.port ?? 0
        return hostPortText(ip, port)
    }

    /// Stops accepting, lets in-flight exchanges finish for at most `grace`, then closes the rest.
    public func shutdown(grace: TimeAmount = .seconds(5)) async {
        let loop = group.next()
        let done = loop.makePromise(of: Void.self)
        guard let quiesce = quiesceBox.withLockedValue({ $0 }) else { return }  // already shut down
        quiesce.initiateShutdown(promise: done)
        let timer = loop.scheduleTask(in: grace) { done.succeed(()) }
        _ = try? await done.futureResult.get()
        timer.cancel()
        try? await channel.get()?.close()
        // Connections still busy after the grace period are cut (their exchanges are recorded as
        // failed by the relay), then the pooled upstream connections are closed.
        let open = clients.withLockedValue { Array($0.values) }
        for client in open { try? await client.close() }
        await env.closeIdleUpstreams()
        quiesceBox.withLockedValue { $0 = nil }
    }
}

/// Holds the bound server channel.
private final class NIOLockedValueBoxChannel: Sendable {
    private let box = NIOLockedValueBox<Channel?>(nil)
    func set(_ channel: Channel) { box.withLockedValue { $0 = channel } }
    func get() -> Channel? { box.withLockedValue { $0 } }
}
