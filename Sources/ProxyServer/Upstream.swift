import CertificateAuthority
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import TokentapCore

/// What an upstream connection reports to the client-side handler relaying through it.
/// Everything is called on the shared event loop.
protocol UpstreamDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamFailed(_ error: Error)
    func upstreamWritabilityChanged(_ writable: Bool)
    /// False while the client cannot take more response bytes (back-pressure).
    var clientAcceptsMore: Bool { get }
}

/// Identifies interchangeable upstream connections.
struct UpstreamKey: Hashable {
    var scheme: String
    /// The original host: SNI and certificate verification use it.
    var host: String
    var port: Int
    /// Where the socket actually goes (`--map-remote`).
    var target: HostPort
}

/// The last handler of an upstream channel: passes response parts to its current delegate and
/// withholds `read` while the client cannot take more.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: UpstreamDelegate?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    let handshake: EventLoopPromise<Void>

    init(handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        delegate?.upstreamReceived(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        delegate?.upstreamClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        handshake.fail(error)
        delegate?.upstreamFailed(error)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            handshake.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func read(context: ChannelHandlerContext) {
        if delegate?.clientAcceptsMore ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    /// Called when the client drained: re-issues a withheld read.
    func resumeReading() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}

/// An open upstream connection, fresh or from the pool.
final class UpstreamConnection {
    let key: UpstreamKey
    let channel: Channel
    let handler: UpstreamHandler
    /// Connect and TLS durations (ms) for a fresh connection; nil when reused.
    var connectMs: Double?
    var tlsMs: Double?
    var reused = false
    /// The pool watches this connection's close (once: a callback per check-in piled up on the
    /// close future of a long-lived connection, ~170 bytes per request).
    var poolWatchesClose = false

    init(key: UpstreamKey, channel: Channel, handler: UpstreamHandler) {
        self.key = key
        self.channel = channel
        self.handler = handler
    }
}

/// Idle keep-alive upstream connections of one event loop. Confined to that loop.
final class UpstreamPool {
    private var idle: [UpstreamKey: [UpstreamConnection]] = [:]
    /// Idle connections kept per key (per event loop). Sized for many concurrent clients of one host
    /// (bench/load: 200 connections over 2 loops): with 8, most requests under that load found no
    /// idle connection, opened a new TLS connection upstream and closed one, and memory grew with
    /// the churn (measured in bench/BENCHMARKS.md). Idle connections are closed by the server after
    /// its keep-alive timeout and then leave the pool.
    let perKeyLimit = 128
    /// Close callbacks registered so far (one per connection ever kept; for tests).
    private(set) var closeWatches = 0

    /// Idle connections kept for `key`.
    func idleCount(_ key: UpstreamKey) -> Int { idle[key]?.count ?? 0 }

    func checkout(_ key: UpstreamKey) -> UpstreamConnection? {
        while var list = idle[key], let conn = list.popLast() {
            idle[key] = list.isEmpty ? nil : list
            if conn.channel.isActive {
                conn.reused = true
                conn.connectMs = nil
                conn.tlsMs = nil
                return conn
            }
        }
        return nil
    }

    /// Closes every idle connection (at shutdown, while the event loop still runs).
    /// - Returns: a future that completes when they are all closed.
    func closeAll(on loop: EventLoop) -> EventLoopFuture<Void> {
        let channels = idle.values.flatMap { $0.map(\.channel) }
        idle = [:]
        return EventLoopFuture.andAllComplete(channels.map { $0.close() }, on: loop)
    }

    func checkin(_ conn: UpstreamConnection) {
        conn.handler.delegate = nil
        guard conn.channel.isActive, (idle[conn.key]?.count ?? 0) < perKeyLimit else {
            conn.channel.close(promise: nil)
            return
        }
        idle[conn.key, default: []].append(conn)
        // Drop it from the pool when the server closes it (watched once per connection).
        guard !conn.poolWatchesClose else { return }
        conn.poolWatchesClose = true
        closeWatches += 1
        conn.channel.closeFuture.whenComplete { [weak self, weak conn] _ in
            guard let self, let conn else { return }
            self.idle[conn.key]?.removeAll { $0 === conn }
        }
    }
}

/// Opens upstream connections: TCP to the (mapped) target, then TLS with SNI and verification for
/// the original host, then the HTTP/1.1 client codec forwarding 1xx responses. The response
/// decoder forwards the bytes it holds when it is removed after a `101` (a server often sends its
/// first frame in the same segment).
struct UpstreamConnector {
    let tls: TLSProvider
    let timeout: TimeAmount

    func connect(_ key: UpstreamKey, on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let start = NIODeadline.now()
        let handshake = eventLoop.makePromise(of: Void.self)
        let handler = UpstreamHandler(handshake: handshake)
        let useTLS = key.scheme == "https"
        let tlsContext = tls.upstreamContext
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if useTLS {
                        let serverName = IPAddress(key.host) == nil ? key.host : nil
                        try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try sync.addHandler(HTTPRequestEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes,
                                                                                 informationalResponseStrategy: .forward)))
                    try sync.addHandler(handler)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        // An IP literal (a --map-remote target, 127.0.0.1 in the bench) is connected to directly:
        // `connect(host:port:)` resolves even a literal through NIO's happy eyeballs, whose AAAA
        // query waits on a Dispatch queue and keeps the whole new channel (TLS buffers included)
        // alive until it runs; under load those queries queued up and the proxy's RSS kept growing.
        let connecting: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: key.target.host, port: key.target.port) {
            connecting = bootstrap.connect(to: address).flatMapErrorThrowing { error in
                if let io = error as? IOError { throw UpstreamError.connect(io) }
                throw error
            }
        } else {
            connecting = bootstrap.connect(host: key.target.host, port: key.target.port)
        }
        return connecting.flatMapErrorThrowing { error in
            handshake.fail(error)  // never leave the promise pending
            throw error
        }.flatMap { channel in
            let connected = NIODeadline.now()
            let conn = UpstreamConnection(key: key, channel: channel, handler: handler)
            conn.connectMs = milliseconds(start, connected)
            guard useTLS else {
                handshake.succeed(())
                return eventLoop.makeSucceededFuture(conn)
            }
            let timer = eventLoop.scheduleTask(deadline: start + timeout) {
                handshake.fail(UpstreamError.handshakeTimeout)
            }
            return handshake.futureResult.map {
                timer.cancel()
                conn.tlsMs = milliseconds(connected, NIODeadline.now())
                return conn
            }.flatMapErrorThrowing { error in
                timer.cancel()
                channel.close(promise: nil)
                // Whatever ended the handshake (NIOSSL's error, a close), it happened during TLS.
                if case UpstreamError.handshakeTimeout = error { throw error }
                throw UpstreamError.tlsHandshake(error)
            }
        }
    }
}

/// Failures the proxy's own upstream code raises, typed where they happen.
enum UpstreamError: Error {
    case handshakeTimeout
    case responseTimeout
    case closedEarly
    /// The TLS handshake with the upstream failed; the handshake's own error (NIOSSL's, or the
    /// connection closing during it) is kept for the message.
    case tlsHandshake(Error)
    /// Connecting to an IP-literal target failed (connected to directly, without NIO's happy
    /// eyeballs, which would have reported a `NIOConnectionError`).
    case connect(IOError)
}

/// A failure the proxy reports for an exchange: the typed kind (design.md `error_kind`), the
/// status the proxy answers when nothing was sent to the client yet (502, 504), and one line for
/// people naming the cause. Made where the failure happens, from the error's type and the relay's
/// state: never from another module's text.
struct ProxyFailure: Equatable {
    var kind: ErrorKind
    var status: Int
    var reason: String

    /// The failure of an upstream connection or response. `responseStarted`: the response head
    /// already went to the client (then the client's response is cut off, not answered).
    static func upstream(_ error: Error, host: String, port: Int, target: HostPort, responseStarted: Bool = false) -> ProxyFailure {
        let via = target.host == host && target.port == port ? "" : " (mapped to \(target))"
        let name = "\(host):\(port)\(via)"
        if responseStarted {
            switch error {
            case let parse as HTTPParserError where parse != .invalidEOFState:
                return ProxyFailure(kind: .malformed, status: 502,
                                    reason: "upstream \(name) sent an invalid response body after its head (\(parse)); the client got the response cut off")
            case NIOSSLError.uncleanShutdown:
                return ProxyFailure(kind: .truncated, status: 502,
                                    reason: "upstream \(name) closed the connection without TLS close_notify before the response was complete; the client got it cut off")
            case let io as IOError:
                return ProxyFailure(kind: .truncated, status: 502,
                                    reason: "upstream \(name) reset the connection before the response was complete (\(io.description)); the client got it cut off")
            default:
                return ProxyFailure(kind: .truncated, status: 502,
                                    reason: "upstream \(name) closed the connection before the response was complete; the client got it cut off")
            }
        }
        switch error {
        case UpstreamError.handshakeTimeout, ChannelError.connectTimeout:
            return ProxyFailure(kind: .timeout, status: 504, reason: "upstream \(name) did not answer in time (connect/TLS timeout)")
        case UpstreamError.responseTimeout:
            return ProxyFailure(kind: .timeout, status: 504, reason: "upstream \(name) sent no response head within the upstream timeout")
        case UpstreamError.tlsHandshake(let inner):
            return ProxyFailure(kind: .tls, status: 502, reason: tlsReason(inner, host: host, name: name))
        case let error as NIOConnectionError:
            if let dns = error.dnsAAAAError ?? error.dnsAError, error.connectionErrors.isEmpty {
                return ProxyFailure(kind: .connect, status: 502, reason: "cannot resolve upstream host \(target.host): \(dns)")
            }
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            let reasons = error.connectionErrors.map { "\($0.error)" }.joined(separator: "; ")
            return ProxyFailure(kind: .connect, status: 502, reason: "cannot connect to upstream \(name): \(refused ? "connection refused" : reasons)")
        case UpstreamError.connect(let io):
            return ProxyFailure(kind: .connect, status: 502,
                                reason: "cannot connect to upstream \(name): \(io.errnoCode == ECONNREFUSED ? "connection refused" : "\(io)")")
        case HTTPParserError.invalidEOFState:
            return ProxyFailure(kind: .truncated, status: 502, reason: "upstream \(name) closed the connection in the middle of the response head")
        case let parse as HTTPParserError:
            return ProxyFailure(kind: .malformed, status: 502, reason: "upstream \(name) sent a response that is not valid HTTP/1.1 (\(parse))")
        case let error as IOError:
            return ProxyFailure(kind: .connect, status: 502, reason: "upstream \(name) reset the connection before responding (\(error.description))")
        case ChannelError.ioOnClosedChannel, ChannelError.eof, UpstreamError.closedEarly, NIOSSLError.uncleanShutdown:
            return ProxyFailure(kind: .connect, status: 502, reason: "upstream \(name) closed the connection before responding")
        default:
            return ProxyFailure(kind: .connect, status: 502, reason: "upstream \(name) failed: \(error)")
        }
    }

    /// The sentence for a failed upstream TLS handshake. NIOSSL reports BoringSSL's errors as text
    /// only (`BoringSSLInternalError` keeps its code private): its words refine the sentence, the
    /// kind is `tls` whatever they say.
    private static func tlsReason(_ error: Error, host: String, name: String) -> String {
        switch error {
        case let error as NIOSSLExtraError:
            return "upstream \(name) presented a certificate that does not match \(host): \(error)"
        case ChannelError.ioOnClosedChannel, ChannelError.eof, NIOSSLError.uncleanShutdown:
            return "upstream \(name) closed the connection during the TLS handshake (is it a TLS server on that port?)"
        case let error as NIOSSLError where error.endedByEOF:
            return "upstream \(name) closed the connection during the TLS handshake (is it a TLS server on that port?)"
        case let error as IOError:
            return "upstream \(name) reset the connection during the TLS handshake (\(error.description))"
        case let error as NIOSSLError:
            let text = String(describing: error)
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return "upstream \(name) presented a certificate that is not valid for \(host) (unknown CA, expired, or another name; add its CA with --upstream-ca FILE): TLS handshake failed: \(text)"
            }
            if text.contains("WRONG_VERSION_NUMBER") {
                return "upstream \(name) did not answer with TLS (is it a plain HTTP server?): TLS handshake failed: \(text)"
            }
            return "TLS handshake with upstream \(name) failed: \(text)"
        default:
            return "TLS handshake with upstream \(name) failed: \(error)"
        }
    }
}
