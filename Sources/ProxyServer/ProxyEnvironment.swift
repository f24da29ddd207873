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

    /// Records a request the proxy refused (kind `client-error`) with the typed kind of what was
    /// wrong. `refused`: the request as far as the client sent it, when the parser refused it (its
    /// method, target, fields and body prefix, raw: the capture pipeline redacts them).
    func recordClientError(reason: String, kind: ErrorKind?, host: String, port: Int, scheme: String, clientAddress: String?,
                           method: String = "", target: String = "", refused: RefusedRequest? = nil) {
        logger.notice("rejected a request from \(clientAddress ?? "?"): \(reason)")
        var exchange = Exchange(session: configuration.session, kind: .clientError, started: Date(), clientAddress: clientAddress,
                                scheme: scheme, host: host, port: port, method: method, target: target, status: 400,
                                reason: "Bad Request", error: reason, errorKind: kind, keepsSecrets: true)
        if let refused, !refused.method.isEmpty {
            exchange.method = refused.method
            exchange.request = MessageRecord(httpVersion: refused.version, headers: refused.headers, body: Data(refused.body),
                                             truncated: refused.truncated, wireSize: refused.body.count)
            if let absolute = AbsoluteURI(refused.target) {
                // Absolute form to the plain proxy: the host it named.
                exchange.scheme = absolute.scheme
                exchange.host = absolute.host.lowercased()
                exchange.port = absolute.port
                exchange.target = absolute.target
            } else {
                exchange.target = refused.target
                if exchange.host.isEmpty, let hostField = refused.headers.first(named: "Host"),
                   let parsed = try? HostPort(parsing: hostField.trimmingCharacters(in: .whitespacesAndNewlines), option: "Host",
                                              defaultPort: scheme == "https" ? 443 : 80) {
                    exchange.host = parsed.host.lowercased()
                    exchange.port = parsed.port
                }
            }
        }
        sink?.capture(exchange)
    }

    /// Records and explains a client TLS handshake that failed (kind `tls-error`). The kind: `tls`
    /// when the client broke off over tokentap's certificate, `malformed` when what it sent was not
    /// TLS, `truncated` when it hung up during the handshake. NIOSSL reports BoringSSL's errors as
    /// text only (their codes are private): its words are read here, where the error happens.
    func recordClientTLSFailure(_ error: NIOSSLError, host: String, port: Int, clientAddress: String?) {
        let text = String(describing: error)
        let alerts = ["UNKNOWN_CA", "unknown ca", "CERTIFICATE_UNKNOWN", "certificate unknown", "BAD_CERTIFICATE", "bad certificate"]
        // A TLS 1.3 client that rejects the certificate sends its alert encrypted; before the
        // handshake completes the server sees it as a record it cannot decrypt.
        let encryptedAlert = ["DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "BAD_PACKET_LENGTH"]
        let notTLS = ["WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE", "UNEXPECTED_RECORD", "PARSE_TLSEXT",
                      "DECODE_ERROR", "BAD_RECORD_TYPE"]
        let reason: String, kind: ErrorKind
        if alerts.contains(where: text.contains) {
            kind = .tls
            reason = "client \(clientAddress ?? "?") rejected tokentap's certificate for \(host): it does not trust tokentap's CA; run `tokentap ca` for how to trust it"
        } else if encryptedAlert.contains(where: text.contains) {
            kind = .tls
            reason = "client \(clientAddress ?? "?") aborted the TLS handshake for \(host) after receiving tokentap's certificate: most likely it does not trust tokentap's CA; run `tokentap ca` for how to trust it"
        } else if error == .uncleanShutdown || error.endedByEOF {
            kind = .truncated
            reason = "client \(clientAddress ?? "?") closed the connection during the TLS handshake for \(host): \(text)"
        } else if notTLS.contains(where: text.contains) {
            kind = .malformed
            reason = "client \(clientAddress ?? "?") sent bytes that are not a TLS handshake after CONNECT \(host): \(text)"
        } else {
            kind = .tls
            reason = "TLS handshake with client \(clientAddress ?? "?") for \(host) failed: \(text)"
        }
        logger.warning("\(reason)")
        sink?.capture(Exchange(session: configuration.session, kind: .tlsError, started: Date(), clientAddress: clientAddress,
                               scheme: "https", host: host, port: port, method: "", target: "", error: reason, errorKind: kind,
                               keepsSecrets: true))
    }

    /// Records a finished blind tunnel (kind `tunnel`): host, port, bytes each way.
    func recordTunnel(host: String, port: Int, clientAddress: String?, started: Date, duration: Double,
                      bytesUp: Int, bytesDown: Int, error: String?, errorKind: ErrorKind? = nil) {
        sink?.capture(Exchange(session: configuration.session, kind: .tunnel, started: started,
                               timings: Timings(total: duration), clientAddress: clientAddress, scheme: "https",
                               host: host, port: port, method: "CONNECT", target: "\(HostPort(host: host, port: port))",
                               request: MessageRecord(wireSize: bytesUp), response: MessageRecord(wireSize: bytesDown),
                               error: error, errorKind: errorKind, keepsSecrets: false))
    }
}

extension NIOSSLError {
    /// The peer closed the connection during the handshake (NIOSSL's own error, typed).
    var endedByEOF: Bool {
        if case .handshakeFailed(.sslError(let stack)) = self { return stack.contains(.eofDuringHandshake) }
        return false
    }
}
