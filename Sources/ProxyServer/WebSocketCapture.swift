import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import TokentapCore

/// Counts one direction's WebSocket frames on a copy of the relayed bytes, with NIOWebSocket's
/// `WebSocketFrameDecoder` in a private `EmbeddedChannel` (never in the relay's path). When the
/// decoder refuses a frame (larger than `maxFrameSize`, a protocol error, an extension it cannot
/// read) counting stops and ``failure`` says why; the relay is not affected.
final class WebSocketFrameCounter {
    private var channel: EmbeddedChannel?
    private(set) var frames = 0
    private(set) var failure: String?
    /// Bytes fed and bytes of whole frames decoded: unequal while a frame is incomplete.
    private var fed = 0
    private var decoded = 0

    init(maxFrameSize: Int) {
        channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
    }

    /// Feeds a copy of `buffer`; returns the frames it completed.
    func feed(_ buffer: ByteBuffer) -> [WebSocketFrame] {
        guard let channel, failure == nil else { return [] }
        fed += buffer.readableBytes
        var out: [WebSocketFrame] = []
        do {
            try channel.writeInbound(buffer)
            while let frame = try channel.readInbound(as: WebSocketFrame.self) {
                frames += 1
                decoded += Self.wireSize(frame)
                out.append(frame)
            }
        } catch {
            failure = "frames not counted: \(error)"
            finish()
        }
        return out
    }

    /// A frame was started and not finished.
    var midFrame: Bool { failure == nil && fed > decoded }

    func finish() {
        _ = try? channel?.finish()
        channel = nil
    }

    /// Header plus payload bytes of `frame` on the wire (RFC 6455 §5.2).
    static func wireSize(_ frame: WebSocketFrame) -> Int {
        let n = frame.length
        let lengthBytes = n < 126 ? 0 : (n <= 0xFFFF ? 2 : 8)
        return 2 + lengthBytes + (frame.maskKey == nil ? 0 : 4) + n
    }
}

/// What the relay learns about one upgraded connection: bytes and frames each way, the first close
/// frame, the first messages' metadata. Confined to the connection's event loop.
final class WebSocketCapture {
    private let client: WebSocketFrameCounter
    private let server: WebSocketFrameCounter
    private(set) var summary: WebSocketSummary
    /// Opcode and length so far of the data message being received, per direction (fragmented messages).
    private var partial: [Bool: (opcode: Int, length: Int)] = [:]
    private(set) var firstCloseBy: RelayStateMachine.Side?

    init(maxFrameSize: Int) {
        client = WebSocketFrameCounter(maxFrameSize: maxFrameSize)
        server = WebSocketFrameCounter(maxFrameSize: maxFrameSize)
        summary = WebSocketSummary(key: UUID().uuidString)
    }

    /// `buffer` was relayed from the client (`fromClient`) or from the server.
    func relayed(_ buffer: ByteBuffer, fromClient: Bool) {
        if fromClient { summary.bytesClient += buffer.readableBytes } else { summary.bytesServer += buffer.readableBytes }
        let counter = fromClient ? client : server
        for frame in counter.feed(buffer) { observe(frame, fromClient: fromClient) }
        summary.framesClient = client.failure == nil ? client.frames : nil
        summary.framesServer = server.failure == nil ? server.frames : nil
        summary.countingError = client.failure.map { "client → server \($0)" } ?? server.failure.map { "server → client \($0)" }
    }

    private func observe(_ frame: WebSocketFrame, fromClient: Bool) {
        let opcode = Int(webSocketOpcode: frame.opcode)
        if opcode >= 8 {
            if frame.opcode == .connectionClose, firstCloseBy == nil {
                firstCloseBy = fromClient ? .client : .server
                var data = frame.unmaskedData
                summary.closeCode = data.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            }
            note(opcode: opcode, length: frame.length, fromClient: fromClient)
            return
        }
        var message = partial[fromClient] ?? (opcode: opcode, length: 0)
        if opcode != 0 { message.opcode = opcode }
        message.length += frame.length
        if frame.fin {
            partial[fromClient] = nil
            note(opcode: message.opcode, length: message.length, fromClient: fromClient)
        } else {
            partial[fromClient] = message
        }
    }

    private func note(opcode: Int, length: Int, fromClient: Bool) {
        if summary.messages.count < WebSocketSummary.messageLimit {
            summary.messages.append(WebSocketMessage(time: Date(), type: fromClient ? "send" : "receive", opcode: opcode, length: length))
        } else {
            summary.messagesDropped += 1
        }
    }

    /// A frame from that side was cut off by the close.
    func midFrame(fromClient: Bool) -> Bool {
        (fromClient ? client : server).midFrame || partial[fromClient] != nil
    }

    /// The connection ended: `closedBy` is the side whose connection went first (or that failed).
    func finish(closedBy: RelayStateMachine.Side, error: String?) -> (summary: WebSocketSummary, error: String?) {
        client.finish()
        server.finish()
        var s = summary
        s.open = false
        s.closedBy = (firstCloseBy ?? closedBy).rawValue
        var reason = error
        if firstCloseBy == nil {
            // No close handshake: say who cut it, whether a message was cut in two, and the cause.
            let cut = midFrame(fromClient: true) || midFrame(fromClient: false) ? " mid-message" : ""
            reason = "\(closedBy.rawValue) closed the connection\(cut) without a WebSocket close frame" + (error.map { " (\($0))" } ?? "")
        }
        summary = s
        return (s, reason)
    }
}
