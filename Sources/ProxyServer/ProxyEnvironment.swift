import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import TokentapCore

/// What every connection handler of one running proxy shares.
final class ProxyEnvironment: @unchecked Sendable {
    let configuration: ProxyConfiguration
    let tls: TLSProvider
    let connector: UpstreamConnector
    let sink: ExchangeSink?
    let logger: Logger
    /// Filled in once the listener is bound; used in messages.
    let boundAddress = NIOLockedValueBox<String>("")
    /// The identity answer (`GET /__tokentap/status`), once the owner has set it.
    let statusDocument = NIOLockedValueBox<Data?>(nil)
    /// Opens the upstream socket of a blind tunnel with `glue` as its only handler. Replaceable
    /// so the CONNECT state machine can be unit-tested on `EmbeddedChannel`s.
    var tunnelConnector: (_ target: HostPort, _ eventLoop: EventLoop, _ glue: GlueHandler) -> EventLoopFuture<Channel>
    /// Opens a new upstream connection for the relay (`connector`). Replaceable so the relay can be
    /// unit-tested on `EmbeddedChannel`s.
    var upstreamConnector: (_ key: UpstreamKey, _ eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection>
    /// One pool per event loop; each is only touched on its own loop.
    private let pools: [ObjectIdentifier: UpstreamPool]
    private let loops: [EventLoop]

    init(configuration: ProxyConfiguration, tls: TLSProvider, sink: ExchangeSink?, logger: Logger, loops: [EventLoop]) {
        self.configuration = configuration
        self.tls = tls
        self.sink = sink
        self.logger = logger
        let connector = UpstreamConnector(
            tls: tls, timeout: .nanoseconds(Int64(configuration.upstreamTimeout * 1_000_000_000)))
        self.connector = connector
        self.upstreamConnector = { key, eventLoop in connector.connect(key, on: eventLoop) }
        let connectTimeout = TimeAmount.nanoseconds(Int64(configuration.upstreamTimeout * 1_000_000_000))
        self.tunnelConnector = { target, eventLoop, glue in
            let glue = NIOLoopBound(glue, eventLoop: eventLoop)
            return ClientBootstrap(group: eventLoop)
                .connectTimeout(connectTimeout)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(glue.value) }
                }
                .connect(host: target.host, port: target.port)
        }
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in loops { pools[ObjectIdentifier(loop)] = UpstreamPool() }
        self.pools = pools
        self.loops = loops
    }

    /// Closes the idle upstream connections of every loop's pool (server shutdown), so that no
    /// channel is left for the event loop group's own shutdown to tear down.
    func closeIdleUpstreams() async {
        for loop in loops {
            let closed = loop.flatSubmit { self.pool(for: loop).closeAll(on: loop) }
            try? await closed.get()
        }
    }

    var listenDescription: String {
        let bound = boundAddress.withLockedValue { $0 }
        return bound.isEmpty ? configuration.listen.description : bound
    }

    func pool(for loop: EventLoop) -> UpstreamPool {
        loop.preconditionInEventLoop()
        return pools[ObjectIdentifier(loop)]!
    }

    /// Records a request the proxy refused (kind `client-error`).
    func recordClientError(reason: String, host: String, port: Int, scheme: String, clientAddress: String?,
                           method: String = "", target: String = "") {
        logger.notice("rejected a request from \(clientAddress ?? "?"): \(reason)")
        sink?.capture(Exchange(session: configuration.session, kind: .clientError, started: Date(), clientAddress: clientAddress,
                               scheme: scheme, host: host, port: port, method: method, target: target, status: 400,
                               reason: "Bad Request", error: reason, keepsSecrets: true))
    }

    /// Records and explains a client TLS handshake that failed (kind `tls-error`).
    func recordClientTLSFailure(_ error: NIOSSLError, host: String, port: Int, clientAddress: String?) {
        let text = String(describing: error)
        let alerts = ["UNKNOWN_CA", "unknown ca", "CERTIFICATE_UNKNOWN", "certificate unknown", "BAD_CERTIFICATE", "bad certificate"]
        // A TLS 1.3 client that rejects the certificate sends its alert encrypted; before the
        // handshake completes the server sees it as a record it cannot decrypt.
        let encryptedAlert = ["DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "BAD_PACKET_LENGTH"]
        let reason: String
        if alerts.contains(where: text.contains) {
            reason = "client \(clientAddress ?? "?") rejected tokentap's certificate for \(host): it does not trust tokentap's CA; run `tokentap ca` for how to trust it"
        } else if encryptedAlert.contains(where: text.contains) {
            reason = "client \(clientAddress ?? "?") aborted the TLS handshake for \(host) after receiving tokentap's certificate: most likely it does not trust tokentap's CA; run `tokentap ca` for how to trust it"
        } else {
            reason = "TLS handshake with client \(clientAddress ?? "?") for \(host) failed: \(text)"
        }
        logger.warning("\(reason)")
        sink?.capture(Exchange(session: configuration.session, kind: .tlsError, started: Date(), clientAddress: clientAddress,
                               scheme: "https", host: host, port: port, method: "", target: "", error: reason, keepsSecrets: true))
    }

    /// Records a finished blind tunnel (kind `tunnel`): host, port, bytes each way.
    func recordTunnel(host: String, port: Int, clientAddress: String?, started: Date, duration: Double,
                      bytesUp: Int, bytesDown: Int, error: String?) {
        sink?.capture(Exchange(session: configuration.session, kind: .tunnel, started: started,
                               timings: Timings(total: duration), clientAddress: clientAddress, scheme: "https",
                               host: host, port: port, method: "CONNECT", target: "\(HostPort(host: host, port: port))",
                               request: MessageRecord(wireSize: bytesUp), response: MessageRecord(wireSize: bytesDown),
                               error: error, keepsSecrets: false))
    }
}
