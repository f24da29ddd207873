import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TokentapCore

/// The first handler of every client connection: reads the first request head and decides.
///
/// - `CONNECT host:port` to an intercepted host: answers `200`, then turns the connection into a
///   TLS server (leaf minted for the host) with an HTTP/1.1 relay behind it.
/// - `CONNECT` to any other host: connects upstream, answers `200` and joins the two sockets
///   (blind tunnel, recorded as `kind: tunnel` with byte counts only).
/// - An absolute-form request (`GET http://host/path`): becomes a plain forward-proxy connection.
/// - Anything else: `400` with a reason, and close.
///
/// The request decoder in front of it uses `leftOverBytesStrategy: .forwardBytes`, so bytes that
/// follow the CONNECT request reach the TLS handler or the tunnel. In the proxy that decoder is
/// paired with a response encoder (``addFrontHandlers(to:env:)``), so a plain forward-proxy
/// connection keeps them: the encoder learns every request's method, the first one included.
final class ConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    enum State: Equatable {
        case idle
        case awaitingEnd(HostPort)
        case connecting
        case forwarding
        case done
    }

    private(set) var state: State = .idle
    private let env: ProxyEnvironment
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private var remoteAddress: String?
    /// The connection was closed after `--client-timeout` of silence.
    private var closedForIdleness = false

    init(env: ProxyEnvironment, decoder: ByteToMessageHandler<HTTPRequestDecoder>) {
        self.env = env
        self.decoder = decoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress?.ipPortText
    }

    /// The front of a client connection: a request decoder with `.forwardBytes`, paired (by
    /// `configureHTTPServerPipeline`) with the response encoder in front of it, then this handler.
    /// NIO pairs them only in `configureHTTPServerPipeline`, and gives `.forwardBytes` only with an
    /// upgrade configuration: an empty one is given and its (then idle) upgrade handler removed.
    static func addFrontHandlers(to sync: ChannelPipeline.SynchronousOperations, env: ProxyEnvironment) throws {
        // First: a copy of what the client sends, for the record of a head the parser refuses.
        try sync.addHandler(RawHeadRecorder())
        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
                                             withErrorHandling: false, withOutboundHeaderValidation: false)
        let upgrader = try sync.handler(type: HTTPServerUpgradeHandler.self)
        sync.removeHandler(upgrader, promise: nil)
        let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        try sync.addHandler(ConnectHandler(env: env, decoder: decoder))
    }

    /// The response encoder paired with the front decoder, when there is one (not in unit tests).
    private func frontEncoder(_ context: ChannelHandlerContext) -> HTTPResponseEncoder? {
        try? context.pipeline.syncOperations.handler(type: HTTPResponseEncoder.self)
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress?.ipPortText
        context.fireChannelActive()
    }

    /// `ip:port` of the client.
    private var clientAddress: String? { remoteAddress }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state == .forwarding {
            context.fireChannelRead(data)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard state == .idle else { return }
            if head.method == .CONNECT {
                guard let authority = try? HostPort(parsing: head.uri, option: "CONNECT", defaultPort: 443), authority.port > 0 else {
                    reject(context: context, reason: "CONNECT needs HOST:PORT, got '\(head.uri.prefix(200))'", uri: head.uri, kind: .malformed)
                    return
                }
                state = .awaitingEnd(authority)
            } else if AbsoluteURI(head.uri) != nil {
                startForwarding(context: context, data: data)
            } else if head.method == .GET, head.uri == ProxyStatus.identityPath,
                      let document = env.statusDocument.withLockedValue({ $0 }) {
                answerIdentity(document, context: context)
            } else {
                reject(context: context, reason: head.uri.hasPrefix("/")
                       ? "tokentap is a proxy: send requests through it (HTTPS_PROXY=http://\(env.listenDescription)) or use `tokentap run -- COMMAND`"
                       : "unsupported request target '\(head.uri.prefix(200))'", uri: head.uri,
                       kind: head.uri.hasPrefix("/") ? nil : .malformed)
            }
        case .body:
            break
        case .end:
            guard case .awaitingEnd(let authority) = state else { return }
            if env.configuration.intercepts(authority.host) {
                intercept(authority, context: context)
            } else {
                tunnel(authority, context: context)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if state == .idle || state == .done,
           event is IdleStateHandler.IdleStateEvent || event is ChannelShouldQuiesceEvent
            || (event as? ChannelEvent) == .inputClosed {
            if event is IdleStateHandler.IdleStateEvent { closedForIdleness = true }
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if state == .forwarding {
            context.fireErrorCaught(error)
            return
        }
        if let parse = error as? HTTPParserError, state == .idle {
            let (reason, kind) = HTTPRelayHandler.refusal(parse, closedForIdleness: closedForIdleness)
            reject(context: context, reason: kind == .malformed ? "malformed HTTP request (\(error))" : reason, uri: "", kind: kind,
                   refused: rawHead(context)?.refusedRequest)
        } else {
            context.close(promise: nil)
        }
    }

    /// Writes bytes as they are: from the front encoder's place in the pipeline when there is one
    /// (it takes only response parts), else from here.
    private func writeRaw(_ text: String, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        if frontEncoder(context) != nil,
           let encoderContext = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            return encoderContext.writeAndFlush(wrapOutboundOut(buffer))
        }
        return context.writeAndFlush(wrapOutboundOut(buffer))
    }

    /// Answers the identity request with the status JSON, and closes (not recorded).
    private func answerIdentity(_ document: Data, context: ChannelHandlerContext) {
        state = .done
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            + "Content-Length: \(document.count)\r\nConnection: close\r\n\r\n"
        // The document is JSON (UTF-8): written with the head, from the front encoder's place.
        writeRaw(head + String(decoding: document, as: UTF8.self), context: context).assumeIsolated()
            .whenComplete { _ in context.close(promise: nil) }
    }

    /// Takes the front encoder out before the connection stops speaking HTTP here (TLS, tunnel).
    private func removeFrontEncoder(_ context: ChannelHandlerContext) {
        if let encoder = frontEncoder(context) { context.pipeline.syncOperations.removeHandler(encoder, promise: nil) }
    }

    /// The copy of the client's bytes in front of the front decoder (none in unit tests).
    private func rawHead(_ context: ChannelHandlerContext) -> RawHeadRecorder? {
        try? context.pipeline.syncOperations.handler(type: RawHeadRecorder.self)
    }

    /// Takes the front copy out once the connection stops speaking HTTP here (TLS, tunnel).
    private func removeRawHead(_ context: ChannelHandlerContext) {
        if let recorder = rawHead(context) { context.pipeline.syncOperations.removeHandler(recorder, promise: nil) }
    }

    private func reject(context: ChannelHandlerContext, reason: String, uri: String, status: String = "400 Bad Request",
                        kind: ErrorKind? = nil, refused: RefusedRequest? = nil) {
        state = .done
        env.recordClientError(reason: reason, kind: kind, host: "", port: 0, scheme: "http", clientAddress: clientAddress,
                              target: String(uri.prefix(2048)), refused: refused)
        let body = "tokentap: \(reason)\n"
        writeRaw("HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)",
                 context: context).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Plain forward proxy: put the relay (and a response encoder, unless the paired one is in
    /// front) behind this handler and pass every request part through from now on.
    private func startForwarding(context: ChannelHandlerContext, data: NIOAny) {
        state = .forwarding
        do {
            // As configureHTTPServerPipeline would have it: pipelining, header validation, relay.
            let http: [ChannelHandler] = frontEncoder(context) == nil
                ? [HTTPResponseEncoder(), HTTPServerPipelineHandler()]
                : [HTTPServerPipelineHandler(), NIOHTTPResponseHeadersValidator()]
            try context.pipeline.syncOperations.addHandlers(http + [HTTPRelayHandler(env: env, origin: nil)], position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// Answers 200 and turns the connection into a TLS server with the HTTP relay behind it.
    private func intercept(_ authority: HostPort, context: ChannelHandlerContext) {
        state = .done
        let tlsContext: NIOSSLContext
        do {
            tlsContext = try env.tls.serverContext(for: authority.host)
        } catch {
            reject(context: context, reason: "cannot mint a certificate for \(authority.host): \(error)", uri: authority.description,
                   status: "502 Bad Gateway", kind: .tls)
            return
        }
        _ = writeRaw("HTTP/1.1 200 Connection Established\r\n\r\n", context: context)
        removeFrontEncoder(context)
        removeRawHead(context)
        do {
            let sync = context.pipeline.syncOperations
            let tlsHandler = NIOSSLServerHandler(context: tlsContext)
            try sync.addHandler(tlsHandler, position: .after(decoder))
            // Behind TLS: the relay, with a paired decoder and encoder in front of it (bodiless
            // responses to HEAD go out without body bytes). The relay answers parse errors itself.
            let relay = HTTPRelayHandler(env: env, origin: authority)
            try sync.addHandler(relay, position: .after(tlsHandler))
            // An empty upgrade configuration gives the request decoder `.forwardBytes` (bytes a
            // client sends after an upgrade request reach the glue); its idle handler is removed.
            try sync.configureHTTPServerPipeline(position: .after(tlsHandler), withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
                                                 withErrorHandling: false)
            if let upgrader = try? sync.handler(type: HTTPServerUpgradeHandler.self) { sync.removeHandler(upgrader, promise: nil) }
            // The decrypted bytes, copied for the record of a head the parser refuses.
            try sync.addHandler(RawHeadRecorder(), position: .after(tlsHandler))
            sync.removeHandler(decoder, promise: nil)
            sync.removeHandler(context: context, promise: nil)
        } catch {
            env.logger.error("cannot set up interception for \(authority): \(error)")
            context.close(promise: nil)
        }
    }

    /// Connects to the target, answers 200 and joins the sockets.
    private func tunnel(_ authority: HostPort, context: ChannelHandlerContext) {
        state = .connecting
        let started = Date()
        let t0 = NIODeadline.now()
        let target = env.configuration.connectTarget(host: authority.host, port: authority.port)
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair()
        let env = self.env
        let clientAddress = self.clientAddress
        // Both channels live on this event loop, so the callbacks run here too.
        env.tunnelConnector(target, context.eventLoop, upstreamGlue).assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success:
                    self.state = .done
                    upstreamGlue.onClose = { down in
                        // Reported once, when the upstream side closes (the client side follows it).
                        env.recordTunnel(host: authority.host, port: authority.port, clientAddress: clientAddress,
                                         started: started, duration: milliseconds(t0, .now()),
                                         bytesUp: clientGlue.bytesIn, bytesDown: down, error: nil)
                    }
                    _ = self.writeRaw("HTTP/1.1 200 Connection Established\r\n\r\n", context: context)
                    self.removeFrontEncoder(context)
                    self.removeRawHead(context)
                    do {
                        let sync = context.pipeline.syncOperations
                        if let idle = try? sync.handler(type: IdleStateHandler.self) { sync.removeHandler(idle, promise: nil) }
                        try sync.addHandler(clientGlue, position: .after(self.decoder))
                        sync.removeHandler(self.decoder, promise: nil)
                        sync.removeHandler(context: context, promise: nil)
                        // Bytes the client sent right behind the CONNECT reach the glue when the
                        // decoder leaves (ByteToMessageHandler forwards them from a task of its
                        // own), with no read-complete after them: flush them upstream after it.
                        let pipeline = context.channel.pipeline
                        context.eventLoop.execute { pipeline.fireChannelReadComplete() }
                    } catch {
                        context.close(promise: nil)
                    }
                case .failure(let error):
                    let failure = ProxyFailure.upstream(error, host: authority.host, port: authority.port, target: target)
                    let reason = failure.reason
                    env.recordTunnel(host: authority.host, port: authority.port, clientAddress: clientAddress, started: started,
                                     duration: milliseconds(t0, .now()), bytesUp: 0, bytesDown: 0, error: reason, errorKind: failure.kind)
                    env.logger.warning("CONNECT \(authority): \(reason)")
                    let body = "tokentap: \(reason)\n"
                    self.state = .done
                    self.writeRaw("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)",
                                  context: context).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                }
            }
    }
}
