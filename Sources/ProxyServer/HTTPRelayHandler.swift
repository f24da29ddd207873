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
/// `https://` URLs). The decisions are ``RelayStateMachine``'s: this handler turns channel events
/// into its events and carries out the actions it returns. The pipeline in front comes from
/// `configureHTTPServerPipeline`, whose paired decoder tells the response encoder which responses
/// answer `HEAD`, so bodiless responses (HEAD, 1xx, 204, 304) go out without body bytes whatever
/// their framing headers say. Back-pressure: the client is not read while the upstream is
/// connecting or not writable; the upstream is not read while the client is not writable; no new
/// request is read while the sink's recording backlog is full (``ExchangeSink/whenRoom(_:)``).
///
/// Upgrades: after a `101` to an upgrade request on a recorded host (``RelayStateMachine/State/upgraded``),
/// the handler takes the HTTP codecs out of both pipelines (leftover bytes forwarded), joins the two
/// channels with a ``GlueHandler`` pair, removes itself, and from then on only watches the glue
/// (``GlueObserver``): bytes and frames are counted on copies (``WebSocketCapture``), and the
/// `websocket` row written at the `101` is written again, complete, when either side closes.
final class HTTPRelayHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate, GlueObserver {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let env: ProxyEnvironment
    private let origin: HostPort?
    private var machine: RelayStateMachine
    private var context: ChannelHandlerContext?
    private var clientAddress: String?
    /// The I/O the state machine does not hold: the flight's upstream, its timer and its capture.
    private var upstream: UpstreamConnection?
    /// A connection reported ready, until the machine says whether to use it.
    private var offered: UpstreamConnection?
    private var timeout: Scheduled<Void>?
    private var capture: ExchangeBuilder?
    /// The last write to the client, so that a close waits for it.
    private var lastWrite: EventLoopFuture<Void>?
    private var closed = false
    /// The proxy closed the connection after `--client-timeout` of silence.
    private var closedForIdleness = false
    /// Set once the client's TLS handshake completed (TLS mode); failures before it are recorded.
    private var handshakeCompleted = false
    /// An upgraded connection: its counts, the row written at the 101, and its glue.
    private var websocket: WebSocketCapture?
    private var upgradeRecord: Exchange?
    private var upgradeStart: NIODeadline?
    private var clientGlue: GlueHandler?
    /// The side that sent EOF or failed first (how the connection ended when no close frame was seen).
    private var upgradeEnd: (side: RelayStateMachine.Side, error: String?)?

    init(env: ProxyEnvironment, origin: HostPort?) {
        self.env = env
        self.origin = origin
        machine = RelayStateMachine(origin: origin, configuration: env.configuration, listenDescription: env.listenDescription)
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
            let t0 = NIODeadline.now()
            let (actions, outgoing) = machine.requestHead(head)
            if let outgoing, outgoing.capture {
                capture = ExchangeBuilder(session: env.configuration.session, clientAddress: clientAddress, key: outgoing.key,
                                          head: head, target: outgoing.target, maxBody: env.configuration.maxBody,
                                          started: Date(), t0: t0)
            }
            perform(actions)
        case .body(let buffer):
            capture?.requestBodyPart(buffer)
            perform(machine.requestBody(buffer))
        case .end(let trailers):
            perform(machine.requestEnd(trailers))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.channel.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        switch machine.readRequested() {
        case .withhold:
            break
        case .askRecorder:
            if recorderIsFull(context: context) { machine.recorderFull() } else { context.read() }
        }
    }

    /// Asks the sink whether it can take more; when it cannot, it calls back (on any thread) once it
    /// can, and reading resumes then. (Checked on every read: with auto-read, the read that lets the
    /// next request in is issued while the current one is still in flight.)
    private func recorderIsFull(context: ChannelHandlerContext) -> Bool {
        guard let sink = env.sink else { return false }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        return sink.whenRoom {
            loop.execute { handler.value.perform(handler.value.machine.recorderHasRoom()) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    var clientAcceptsMore: Bool { context?.channel.isWritable ?? false }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
            let actions = machine.clientIdle()
            if actions.contains(.closeClient) { closedForIdleness = true }
            perform(actions)
        case is ChannelShouldQuiesceEvent:
            perform(machine.closeRequested())
        case let event as TLSUserEvent:
            if case .handshakeCompleted = event { handshakeCompleted = true }
            context.fireUserInboundEventTriggered(event)
        case let event as ChannelEvent where event == .inputClosed:
            perform(machine.closeRequested())
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parse = error as? HTTPParserError {
            // A refused head (nothing of it relayed) is recorded with what the client sent, also
            // when the proxy closed for idleness (the decoder reports the head cut off at the
            // close); a request part refused mid-flight ends that flight's own row.
            if machine.state == .idle || (machine.state == .closing && closedForIdleness && capture == nil) {
                let (reason, kind) = Self.refusal(parse, closedForIdleness: closedForIdleness)
                env.recordClientError(reason: reason, kind: kind, host: origin?.host ?? "",
                                      port: origin?.port ?? 0, scheme: origin == nil ? "http" : "https", clientAddress: clientAddress,
                                      refused: rawHead(context)?.refusedRequest)
            }
            perform(machine.malformedRequest("\(parse)"))
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

    // MARK: upstream → proxy

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            perform(machine.responseHead(head))
        case .body(let buffer):
            perform(machine.responseBody(buffer))
        case .end(let trailers):
            perform(machine.responseEnd(trailers))
            // Answered, nothing in flight: what the client sends next is a new head.
            if case .idle = machine.state, let context { rawHead(context)?.reset() }
        }
    }

    /// Why a request head was refused, and its kind: cut off by a close (`truncated`), by the
    /// proxy after `--client-timeout` of silence (`timeout`), or not HTTP/1.1 (`malformed`).
    static func refusal(_ parse: HTTPParserError, closedForIdleness: Bool) -> (reason: String, kind: ErrorKind) {
        guard parse == .invalidEOFState else { return ("malformed request: \(parse)", .malformed) }
        return closedForIdleness
            ? ("client sent part of a request head, then nothing for --client-timeout: the proxy closed the connection", .timeout)
            : ("client closed the connection in the middle of a request head", .truncated)
    }

    /// The copy of the client's bytes in front of this relay's request decoder.
    private func rawHead(_ context: ChannelHandlerContext) -> RawHeadRecorder? {
        try? context.pipeline.syncOperations.handler(type: RawHeadRecorder.self)
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamClosed() {
        perform(machine.upstreamClosed())
    }

    func upstreamFailed(_ error: Error) {
        perform(machine.upstreamFailed(error))
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        perform(machine.upstreamWritabilityChanged(writable))
    }

    // MARK: carrying out the actions

    private func perform(_ actions: [RelayStateMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: RelayStateMachine.Action) {
        // The upgraded connection's row: the relay has left the pipeline by then.
        switch action {
        case .recordUpgrade:
            recordUpgrade()
            return
        case .finishUpgrade(let closedBy, let error):
            finishUpgrade(closedBy: closedBy, error: error)
            return
        default:
            break
        }
        guard let context else {
            // Removed from the pipeline: only let go of upstream resources.
            switch action {
            case .closeUpstream: dropUpstream(upstream); upstream = nil
            case .discardUpstream: dropUpstream(offered); offered = nil
            case .cancelTimeout: timeout?.cancel()
            default: break
            }
            return
        }
        switch action {
        case .checkOut(let key, let flight):
            if let conn = env.pool(for: context.eventLoop).checkout(key) {
                offered = conn
                perform(machine.upstreamReady(flight: flight, reused: true))
            } else {
                perform(machine.checkOutMissed(flight: flight))
            }
        case .connect(let key, let flight):
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            env.upstreamConnector(key, context.eventLoop).whenComplete { result in
                let relay = handler.value
                switch result {
                case .success(let conn):
                    relay.offered = conn
                    relay.perform(relay.machine.upstreamReady(flight: flight, reused: false))
                    // Not taken (stale, or the relay is gone): it must not stay open.
                    if let left = relay.offered { relay.offered = nil; relay.dropUpstream(left) }
                case .failure(let error):
                    relay.perform(relay.machine.upstreamConnectFailed(flight: flight, error))
                }
            }
        case .useUpstream:
            guard let conn = offered else { return }
            offered = nil
            conn.handler.delegate = self
            upstream = conn
            capture?.upstreamAttached(connectMs: conn.connectMs, tlsMs: conn.tlsMs)
        case .discardUpstream:
            if let conn = offered { offered = nil; dropUpstream(conn) }
        case .forward(let parts):
            guard let conn = upstream else { return }
            for part in parts {
                conn.channel.write(NIOAny(part), promise: nil)
            }
            conn.channel.flush()
        case .startTimeout(let flight):
            capture?.requestSent(at: .now())
            timeout?.cancel()
            let amount = TimeAmount.nanoseconds(Int64(env.configuration.upstreamTimeout * 1_000_000_000))
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            timeout = context.eventLoop.scheduleTask(in: amount) {
                handler.value.perform(handler.value.machine.responseTimeout(flight: flight))
            }
        case .cancelTimeout:
            timeout?.cancel()
            timeout = nil
        case .sendInterim(let head):
            lastWrite = context.writeAndFlush(wrapOutboundOut(.head(head)))
        case .sendHead(let head):
            capture?.responseHead(head, at: .now())
            lastWrite = context.write(wrapOutboundOut(.head(head)))
        case .sendBody(let buffer):
            capture?.responseBodyPart(buffer)
            lastWrite = context.write(wrapOutboundOut(.body(.byteBuffer(buffer))))
        case .sendEnd(let trailers):
            lastWrite = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
        case .answer(let answer):
            writeAnswer(answer, context: context)
        case .recordClientError(let reason, let kind, let method, let target):
            env.recordClientError(reason: reason, kind: kind, host: "", port: 0, scheme: "http", clientAddress: clientAddress,
                                  method: method, target: target)
        case .warn(let message):
            env.logger.warning("\(message)")
        case .returnUpstream:
            if let conn = upstream {
                upstream = nil
                env.pool(for: context.eventLoop).checkin(conn)
            }
        case .closeUpstream:
            if let conn = upstream { upstream = nil; dropUpstream(conn) }
        case .finishCapture(let error, let kind):
            if let builder = capture {
                capture = nil
                env.sink?.capture(builder.exchange(error: error, errorKind: kind, end: .now()))
            }
        case .closeClient:
            context.flush()
            if let lastWrite {
                lastWrite.whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .readClient:
            read(context: context)
        case .startUpgradedRelay:
            startUpgradedRelay(context: context)
        case .recordUpgrade, .finishUpgrade:
            break  // above
        }
    }

    // MARK: upgraded connections

    /// The `101` went to the client: record the handshake now as a `websocket` row (updated at close).
    private func recordUpgrade() {
        let capture = WebSocketCapture(maxFrameSize: Self.maxFrameSize(maxBody: env.configuration.maxBody))
        websocket = capture
        guard let builder = self.capture else { return }
        self.capture = nil
        var record = builder.exchange(error: nil, end: .now())
        record.kind = .websocket
        record.websocket = capture.summary
        upgradeRecord = record
        upgradeStart = builder.t0
        env.sink?.capture(record)
    }

    /// Frames up to `--max-body`, and never under 4 MiB (NIOWebSocket's default, 16 KiB, is far
    /// below what applications send). A larger frame stops the counting, not the relay.
    static func maxFrameSize(maxBody: Int) -> Int {
        min(max(maxBody, 1 << 22), Int(UInt32.max))
    }

    private func finishUpgrade(closedBy: RelayStateMachine.Side, error: String?) {
        guard let capture = websocket, var record = upgradeRecord else { return }
        upgradeRecord = nil
        let end = upgradeEnd ?? (closedBy, error)
        let (summary, reason) = capture.finish(closedBy: end.side, error: end.error ?? error)
        record.websocket = summary
        record.error = reason
        if let start = upgradeStart { record.timings.total = milliseconds(start, .now()) }
        env.sink?.capture(record)
    }

    /// Takes the HTTP codecs out of both pipelines and joins the channels with a glue pair. Both
    /// decoders forward the bytes they hold (a frame that came in the 101's segment) to the glue.
    private func startUpgradedRelay(context: ChannelHandlerContext) {
        guard let conn = upstream else {
            context.close(promise: nil)
            return
        }
        upstream = nil  // never pooled again: the glue owns it
        conn.handler.delegate = nil
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair()
        clientGlue.observer = self
        upstreamGlue.observer = self
        self.clientGlue = clientGlue
        do {
            let client = context.pipeline.syncOperations
            let requestDecoder = try client.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try client.addHandler(clientGlue, position: .after(requestDecoder))

            let up = conn.channel.pipeline.syncOperations
            let responseDecoder = try up.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try up.addHandler(upstreamGlue, position: .after(responseDecoder))
            up.removeHandler(conn.handler, promise: nil)
            if let encoder = try? up.handler(type: HTTPRequestEncoder.self) { up.removeHandler(encoder, promise: nil) }

            if let h = try? client.handler(type: HTTPServerPipelineHandler.self) { client.removeHandler(h, promise: nil) }
            if let h = try? client.handler(type: NIOHTTPResponseHeadersValidator.self) { client.removeHandler(h, promise: nil) }
            if let h = try? client.handler(type: ConnectHandler.self) { client.removeHandler(h, promise: nil) }
            if let h = try? client.handler(type: IdleStateHandler.self) { client.removeHandler(h, promise: nil) }
            if let h = try? client.handler(type: HTTPResponseEncoder.self) { client.removeHandler(h, promise: nil) }
            // Last, so that what they forward finds the glue on both sides.
            client.removeHandler(requestDecoder, promise: nil)
            up.removeHandler(responseDecoder, promise: nil)
            client.removeHandler(context: context, promise: nil)
        } catch {
            env.logger.warning("cannot relay the upgraded connection to \(conn.key.host): \(error)")
            conn.channel.close(promise: nil)
            context.close(promise: nil)
            return
        }
        // Reads the HTTP side withheld go on through the glue.
        context.channel.read()
        conn.channel.read()
    }

    func glue(_ glue: GlueHandler, read buffer: ByteBuffer) {
        websocket?.relayed(buffer, fromClient: glue === clientGlue)
    }

    func glueInputClosed(_ glue: GlueHandler) {
        if upgradeEnd == nil { upgradeEnd = (glue === clientGlue ? .client : .server, nil) }
    }

    func glue(_ glue: GlueHandler, failed error: Error) {
        if upgradeEnd == nil {
            let side: RelayStateMachine.Side = glue === clientGlue ? .client : .server
            upgradeEnd = (side, "\(side.rawValue) connection failed: \(error)")
        }
    }

    func glueShouldQuiesce(_ glue: GlueHandler) {
        if upgradeEnd == nil { upgradeEnd = (.proxy, "tokentap stopped and closed the connection") }
        glue.close()
    }

    func glueClosed(_ glue: GlueHandler) {
        perform(machine.upgradedClosed(by: glue === clientGlue ? .client : .server, error: nil))
    }

    private func dropUpstream(_ conn: UpstreamConnection?) {
        guard let conn else { return }
        conn.handler.delegate = nil
        conn.channel.close(promise: nil)
    }

    /// The one place the proxy writes a response of its own (400, 502, 504): a text line,
    /// `Connection: close`. The capture (if any) records it as the response.
    private func writeAnswer(_ answer: RelayStateMachine.Answer, context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: answer.message.utf8.count + 1)
        body.writeString(answer.message + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        if answer.upstreamError { headers.add(name: "X-Tokentap-Error", value: "upstream") }
        let head = HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers)
        capture?.answered(head, body: body)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        lastWrite = context.writeAndFlush(wrapOutboundOut(.end(nil)))
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
