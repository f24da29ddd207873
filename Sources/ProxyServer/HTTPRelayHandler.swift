import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOSSL
import NIOTLS
import TokentapCore

/// Relays HTTP/1.1 requests from one client connection to upstream servers and streams the
/// responses back, capturing each exchange for the sink.
///
/// Two modes: behind a CONNECT + TLS interception (`origin` is the CONNECT authority, scheme
/// https), or as a plain forward proxy for absolute-form requests (`origin` nil; `http://` and
/// `https://` URLs). Requests on one connection are handled one at a time
/// (`HTTPServerPipelineHandler` sits in front). Back-pressure: the client is not read while the
/// upstream is connecting or not writable; the upstream is not read while the client is not
/// writable; no new request is read while the sink's recording backlog is full
/// (``ExchangeSink/whenRoom(_:)``).
final class HTTPRelayHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct InFlight {
        var key: UpstreamKey
        var head: HTTPRequestHead
        /// Origin-form target as sent upstream.
        var target: String
        var capture: Bool
        var started: Date
        var t0: NIODeadline
        var requestBody: BodyCollector
        var responseBody: BodyCollector
        var responseHead: HTTPResponseHead?
        var upstream: UpstreamConnection?
        var buffered: [HTTPClientRequestPart] = []
        var requestComplete = false
        var tRequestSent: NIODeadline?
        var tFirstByte: NIODeadline?
        var timeout: Scheduled<Void>?
        var connectMs: Double?
        var tlsMs: Double?
        /// Set once the proxy answered for the upstream (502/504) or the relay failed.
        var error: String?
    }

    private let env: ProxyEnvironment
    private let origin: HostPort?
    private var context: ChannelHandlerContext?
    private var clientAddress: String?
    private var inFlight: InFlight?
    private var pendingClientRead = false
    /// Set while the sink's backlog is full and it has promised to call back.
    private var waitingForRecorder = false
    private var closeWhenDone = false
    private var closed = false
    /// Set once the client's TLS handshake completed (TLS mode); failures before it are recorded.
    private var handshakeCompleted = false

    init(env: ProxyEnvironment, origin: HostPort?) {
        self.env = env
        self.origin = origin
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress?.ipPortText
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            guard inFlight != nil else { return }
            if inFlight!.capture { inFlight!.requestBody.append(buffer) }
            sendUpstream(.body(.byteBuffer(buffer)), flush: false)
        case .end(let trailers):
            guard inFlight != nil else { return }
            inFlight!.requestComplete = true
            sendUpstream(.end(trailers), flush: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inFlight?.upstream?.channel.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let flight = inFlight, flight.upstream == nil || !(flight.upstream!.channel.isWritable) {
            pendingClientRead = true
        } else if waitingForRecorder || recorderIsFull(context: context) {
            pendingClientRead = true
        } else {
            context.read()
        }
    }

    /// Asks the sink whether it can take more; when it cannot, it calls back (on any thread) once it
    /// can, and reading resumes then. (Checked on every read: with auto-read, the read that lets the
    /// next request in is issued while the current one is still in flight.)
    private func recorderIsFull(context: ChannelHandlerContext) -> Bool {
        guard let sink = env.sink else { return false }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let full = sink.whenRoom {
            loop.execute {
                handler.value.waitingForRecorder = false
                handler.value.resumeClientReads()
            }
        }
        if full { waitingForRecorder = true }
        return full
    }

    private func resumeClientReads() {
        if pendingClientRead, !waitingForRecorder, let context {
            pendingClientRead = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { inFlight?.upstream?.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    var clientAcceptsMore: Bool { context?.channel.isWritable ?? false }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if var flight = inFlight {
            flight.timeout?.cancel()
            flight.upstream?.handler.delegate = nil
            flight.upstream?.channel.close(promise: nil)
            flight.error = flight.error ?? "client closed the connection before the response completed"
            inFlight = flight
            finish()
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            if inFlight == nil { context.close(promise: nil) }
        case is ChannelShouldQuiesceEvent:
            if inFlight == nil { context.close(promise: nil) } else { closeWhenDone = true }
        case let event as TLSUserEvent:
            if case .handshakeCompleted = event { handshakeCompleted = true }
            context.fireUserInboundEventTriggered(event)
        case let event as ChannelEvent where event == .inputClosed:
            if inFlight == nil { context.close(promise: nil) } else { closeWhenDone = true }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parse = error as? HTTPParserError {
            env.recordClientError(reason: "malformed request: \(parse)", host: origin?.host ?? "", port: origin?.port ?? 0,
                                  scheme: origin == nil ? "http" : "https", clientAddress: clientAddress)
            if inFlight == nil || inFlight?.responseHead == nil && inFlight?.error == nil {
                inFlight?.upstream?.channel.close(promise: nil)
                inFlight = nil
                respondAndClose(status: .badRequest, reason: "tokentap: malformed HTTP request (\(parse))")
            } else {
                context.close(promise: nil)
            }
            return
        }
        if let tls = error as? NIOSSLError, origin != nil, !handshakeCompleted, !closed {
            handshakeCompleted = true  // record one failure per connection
            env.recordClientTLSFailure(tls, host: origin?.host ?? "", port: origin?.port ?? 443, clientAddress: clientAddress)
        } else {
            env.logger.debug("client connection error", metadata: ["client": "\(clientAddress ?? "?")", "error": "\(error)"])
        }
        context.close(promise: nil)
    }

    // MARK: request start

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let t0 = NIODeadline.now()
        let started = Date()
        var scheme: String
        var host: String
        var port: Int
        var target = head.uri
        var upstreamHead = head
        if let origin {
            scheme = "https"
            host = origin.host
            port = origin.port
            if !head.uri.hasPrefix("/") && head.uri != "*" {
                // An absolute-form URI inside the tunnel: use its path.
                if let parsed = AbsoluteURI(head.uri) { target = parsed.target }
            }
        } else {
            guard let parsed = AbsoluteURI(head.uri) else {
                let reason = head.uri.hasPrefix("/")
                    ? "tokentap is a proxy: send absolute-form requests (set HTTP_PROXY/HTTPS_PROXY=http://\(env.listenDescription)) or use `tokentap run -- COMMAND`"
                    : "unsupported request target '\(head.uri.prefix(200))'"
                env.recordClientError(reason: reason, host: "", port: 0, scheme: "http", clientAddress: clientAddress,
                                      method: head.method.rawValue, target: String(head.uri.prefix(2048)))
                respondAndClose(status: .badRequest, reason: "tokentap: \(reason)")
                return
            }
            scheme = parsed.scheme
            host = parsed.host
            port = parsed.port
            target = parsed.target
            upstreamHead.headers.remove(name: "Proxy-Connection")
            upstreamHead.headers.remove(name: "Proxy-Authorization")
            if !upstreamHead.headers.contains(name: "Host") {
                upstreamHead.headers.add(name: "Host", value: parsed.authority)
            }
        }
        upstreamHead.uri = target
        if !head.isKeepAlive { closeWhenDone = true }
        let key = UpstreamKey(scheme: scheme, host: host, port: port, target: env.configuration.connectTarget(host: host, port: port))
        let capture = origin != nil || env.configuration.intercepts(host)
        inFlight = InFlight(key: key, head: head, target: target, capture: capture, started: started, t0: t0,
                            requestBody: BodyCollector(limit: capture ? env.configuration.maxBody : 0),
                            responseBody: BodyCollector(limit: capture ? env.configuration.maxBody : 0))
        inFlight!.buffered.append(.head(upstreamHead))
        if let pooled = env.pool(for: context.eventLoop).checkout(key) {
            attach(pooled)
        } else {
            connect(key, eventLoop: context.eventLoop)
        }
    }

    private func connect(_ key: UpstreamKey, eventLoop: EventLoop) {
        env.connector.connect(key, on: eventLoop).whenComplete { [self] result in
            guard inFlight != nil, inFlight!.key == key, inFlight!.upstream == nil, !closed else {
                if case .success(let conn) = result { conn.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let conn):
                attach(conn)
            case .failure(let error):
                failUpstream(error)
            }
        }
    }

    private func attach(_ conn: UpstreamConnection) {
        guard inFlight != nil else { return }
        conn.handler.delegate = self
        inFlight!.upstream = conn
        inFlight!.connectMs = conn.connectMs
        inFlight!.tlsMs = conn.tlsMs
        let parts = inFlight!.buffered
        inFlight!.buffered = []
        for part in parts { write(part, to: conn) }
        conn.channel.flush()
        if inFlight?.requestComplete == true { requestSent() }
        resumeClientReads()
    }

    private func sendUpstream(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let conn = inFlight?.upstream else {
            inFlight?.buffered.append(part)
            return
        }
        write(part, to: conn)
        if flush { conn.channel.flush() }
        if case .end = part { requestSent() }
    }

    private func write(_ part: HTTPClientRequestPart, to conn: UpstreamConnection) {
        conn.channel.write(NIOAny(part), promise: nil)
    }

    private func requestSent() {
        guard let context, inFlight != nil, inFlight!.tRequestSent == nil else { return }
        inFlight!.tRequestSent = .now()
        let timeout = TimeAmount.nanoseconds(Int64(env.configuration.upstreamTimeout * 1_000_000_000))
        let key = inFlight!.key
        inFlight!.timeout = context.eventLoop.scheduleTask(in: timeout) { [self] in
            guard let flight = inFlight, flight.key == key, flight.responseHead == nil else { return }
            flight.upstream?.handler.delegate = nil
            flight.upstream?.channel.close(promise: nil)
            failUpstream(UpstreamError.responseTimeout)
        }
    }

    // MARK: upstream → client

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let context, inFlight != nil else { return }
        switch part {
        case .head(let head):
            if head.status.code / 100 == 1 && head.status != .switchingProtocols {
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
                return
            }
            inFlight!.timeout?.cancel()
            inFlight!.tFirstByte = .now()
            inFlight!.responseHead = head
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let buffer):
            inFlight!.responseBody.append(buffer)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            let conn = inFlight!.upstream
            let reusable = inFlight!.requestComplete && inFlight!.head.isKeepAlive && (inFlight!.responseHead?.isKeepAlive ?? false)
            inFlight!.upstream = nil
            if let conn {
                if reusable { env.pool(for: context.eventLoop).checkin(conn) } else {
                    conn.handler.delegate = nil
                    conn.channel.close(promise: nil)
                }
            }
            let closeAfter = closeWhenDone || !inFlight!.requestComplete
            finish()
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in
                if closeAfter { context.close(promise: nil) }
            }
            resumeClientReads()
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamClosed() {
        guard let flight = inFlight, flight.upstream != nil else { return }
        failUpstream(UpstreamError.closedEarly)
    }

    func upstreamFailed(_ error: Error) {
        guard inFlight != nil else { return }
        failUpstream(error)
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        if writable { resumeClientReads() }
    }

    /// The upstream failed: answer 502/504 when nothing was sent yet, otherwise cut the client off.
    private func failUpstream(_ error: Error) {
        guard let context, var flight = inFlight else { return }
        flight.timeout?.cancel()
        flight.upstream?.handler.delegate = nil
        flight.upstream?.channel.close(promise: nil)
        flight.upstream = nil
        let (status, reason) = describeUpstreamError(error, host: flight.key.host, port: flight.key.port, target: flight.key.target)
        let verdict = env.configuration.insecureUpstream ? "\(reason) [--insecure-upstream: upstream certificates are NOT verified]" : reason
        flight.error = verdict
        env.logger.warning("\(flight.head.method.rawValue) \(flight.key.scheme)://\(flight.key.host)\(flight.key.port == 443 || flight.key.port == 80 ? "" : ":\(flight.key.port)")\(pathOnly(flight.target)): \(verdict)")
        if flight.responseHead == nil {
            let responseStatus = HTTPResponseStatus(statusCode: status)
            flight.responseHead = HTTPResponseHead(version: .http1_1, status: responseStatus)
            var body = ByteBufferAllocator().buffer(capacity: verdict.utf8.count + 12)
            body.writeString("tokentap: \(verdict)\n")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            headers.add(name: "Connection", value: "close")
            headers.add(name: "X-Tokentap-Error", value: "upstream")
            flight.responseHead!.headers = headers
            flight.responseBody.append(body)
            inFlight = flight
            finish()
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: responseStatus, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        } else {
            inFlight = flight
            finish()
            context.close(promise: nil)
        }
    }

    /// Answers the client directly and closes (bad requests).
    private func respondAndClose(status: HTTPResponseStatus, reason: String) {
        guard let context else { return }
        var body = ByteBufferAllocator().buffer(capacity: reason.utf8.count + 1)
        body.writeString(reason + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Emits the capture of the in-flight exchange and clears it.
    private func finish() {
        guard let flight = inFlight else { return }
        inFlight = nil
        let end = NIODeadline.now()
        guard flight.capture else { return }
        var timings = Timings(total: milliseconds(flight.t0, end))
        timings.connect = flight.connectMs
        timings.tls = flight.tlsMs
        if let sent = flight.tRequestSent {
            timings.send = milliseconds(flight.t0, sent)
            if let first = flight.tFirstByte {
                timings.wait = milliseconds(sent, first)
                timings.receive = milliseconds(first, end)
            }
        }
        let response = flight.responseHead
        let exchange = Exchange(
            session: env.configuration.session, kind: .http, started: flight.started, timings: timings,
            clientAddress: clientAddress, scheme: flight.key.scheme, host: flight.key.host, port: flight.key.port,
            method: flight.head.method.rawValue, target: flight.target,
            request: MessageRecord(httpVersion: flight.head.version.text, headers: flight.head.headers.fields,
                                   body: flight.requestBody.data, truncated: flight.requestBody.truncated,
                                   wireSize: flight.requestBody.wireSize),
            status: response.map { Int($0.status.code) }, reason: response?.status.reasonPhrase,
            response: MessageRecord(httpVersion: response?.version.text ?? "HTTP/1.1", headers: response?.headers.fields ?? [],
                                    body: flight.responseBody.data, truncated: flight.responseBody.truncated,
                                    wireSize: flight.responseBody.wireSize),
            error: flight.error, keepsSecrets: true)
        env.sink?.capture(exchange)
    }
}

/// The path of an origin-form target, without its query string (which can hold secrets).
func pathOnly(_ target: String) -> String {
    String(target.prefix { $0 != "?" })
}

/// An absolute-form request target (`http://host:port/path?query`), RFC 9112 §3.2.2.
struct AbsoluteURI {
    var scheme: String
    var host: String
    var port: Int
    /// `host[:port]` as written.
    var authority: String
    /// Origin-form: path and query, at least `/`.
    var target: String

    init?(_ uri: String) {
        let lower = uri.lowercased()
        let scheme: String
        if lower.hasPrefix("http://") { scheme = "http" } else if lower.hasPrefix("https://") { scheme = "https" } else { return nil }
        let rest = uri.dropFirst(scheme.count + 3)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = String(rest[..<authorityEnd])
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        guard let hostPort = try? HostPort(parsing: authority, option: "request target", defaultPort: scheme == "https" ? 443 : 80) else { return nil }
        self.scheme = scheme
        self.host = hostPort.host
        self.port = hostPort.port
        self.authority = authority
        var target = String(rest[authorityEnd...])
        if let hash = target.firstIndex(of: "#") { target = String(target[..<hash]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        self.target = target
    }
}
