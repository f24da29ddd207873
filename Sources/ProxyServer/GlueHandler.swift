import NIOCore

/// Joins two channels byte for byte (a blind CONNECT tunnel), with back-pressure both ways and
/// half-close: when one side finishes sending, the other side's output is shut down.
///
/// One `GlueHandler` sits at the end of each channel; `matchedPair()` makes the two. Bytes that
/// arrive before the partner is attached are held (the CONNECT leftovers).
///
/// An upgraded relay (WebSocket) joins its two channels with a pair too, and watches them through
/// an ``GlueObserver``: it sees each buffer as it passes (a copy, for counting) and each close.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Bytes this side has received (and passed to the partner).
    private(set) var bytesIn = 0
    var onClose: ((_ bytesIn: Int) -> Void)?
    /// Sees what passes through (set before the handler is added). Kept until the channel closes.
    var observer: GlueObserver?

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let a = GlueHandler()
        let b = GlueHandler()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have held a read until this side could take its bytes.
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytesIn += buffer.readableBytes
        observer?.glue(self, read: buffer)
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose?(bytesIn)
        onClose = nil
        observer?.glueClosed(self)
        observer = nil
        partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, let observer {
            observer.glueShouldQuiesce(self)
            return
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            observer?.glueInputClosed(self)
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Closes this side's channel (the partner follows).
    func close() {
        context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        observer?.glue(self, failed: error)
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Watches a ``GlueHandler`` pair (on their event loop).
protocol GlueObserver: AnyObject {
    /// `buffer` arrived on `glue`'s channel and is being passed to the partner.
    func glue(_ glue: GlueHandler, read buffer: ByteBuffer)
    /// `glue`'s channel sent EOF (half-close).
    func glueInputClosed(_ glue: GlueHandler)
    /// `glue`'s channel failed (it is closed next).
    func glue(_ glue: GlueHandler, failed error: Error)
    /// `glue`'s channel closed.
    func glueClosed(_ glue: GlueHandler)
    /// The server is shutting down (`ChannelShouldQuiesceEvent` on `glue`'s channel).
    func glueShouldQuiesce(_ glue: GlueHandler)
}
