import NIOCore
import NIOHTTP1

/// Sends `CONNECT target HTTP/1.1` once the channel is active and waits for the answer.
final class TunnelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let worker: Worker
    private let generation: Int
    private let target: String
    private let encoder: HTTPRequestEncoder
    private let decoder: ByteToMessageHandler<HTTPResponseDecoder>
    private var status = 0
    private var sent = false
    private var established = false

    init(worker: Worker, generation: Int, target: String, encoder: HTTPRequestEncoder,
         decoder: ByteToMessageHandler<HTTPResponseDecoder>) {
        self.worker = worker
        self.generation = generation
        self.target = target
        self.encoder = encoder
        self.decoder = decoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendConnect(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendConnect(context: context)
        context.fireChannelActive()
    }

    private func sendConnect(context: ChannelHandlerContext) {
        // Added from the connect future's callback, the handler sees an active channel in
        // handlerAdded and then channelActive as well: send once.
        guard !sent else { return }
        sent = true
        let head = HTTPRequestHead(version: .http1_1, method: .CONNECT, uri: target,
                                   headers: HTTPHeaders([("Host", target)]))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            if status != 200 {
                worker.failed(LoadGenError.connectRefused("HTTP/\(head.version.major).\(head.version.minor) \(head.status.code) \(head.status.reasonPhrase)"),
                              generation: generation)
            }
        case .body:
            break  // a refusal's body
        case .end:
            guard status == 200, !established else { return }
            established = true
            worker.tunnelEstablished(context.channel, generation: generation, tunnel: self,
                                     encoder: encoder, decoder: decoder)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        worker.failed(error, generation: generation)
        context.close(promise: nil)
    }
}

/// Writes requests and counts responses: status, body bytes (counted, never kept), end.
final class ResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let worker: Worker
    private let generation: Int
    private var context: ChannelHandlerContext?
    private var status = 0
    private var keepAlive = true

    init(worker: Worker, generation: Int) {
        self.worker = worker
        self.generation = generation
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func send(_ request: PreparedRequest, body: ByteBuffer?) {
        guard let context else { return }
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let buffer):
            worker.received(buffer)
        case .end:
            worker.responseEnded(status: status, keepAlive: keepAlive, generation: generation)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        worker.failed(error, generation: generation)
        context.close(promise: nil)
    }
}
