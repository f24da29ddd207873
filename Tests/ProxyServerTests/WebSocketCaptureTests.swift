import NIOCore
import Testing
import TokentapCore

@testable import ProxyServer

/// ``WebSocketCapture``: frames counted on copies of the relayed bytes, whatever their segmentation.
@Suite("WebSocket capture")
struct WebSocketCaptureTests {
    /// One frame as on the wire; masked (as a client sends) when `mask` is given.
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let m: UInt8 = mask == nil ? 0 : 0x80
        if payload.count < 126 {
            out.append(m | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out += [m | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            out.append(m | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        if let mask {
            out += mask
            out += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            out += payload
        }
        return out
    }

    @Test func framesSplitAcrossBuffersAreCountedAndMessagesKeptWithoutPayload() {
        let capture = WebSocketCapture(maxFrameSize: 1 << 22)
        let text = Self.frame(1, Array("hello".utf8), mask: [1, 2, 3, 4])
        let big = Self.frame(2, [UInt8](repeating: 7, count: 70_000), mask: [9, 9, 9, 9])
        let bytes = text + big
        // One byte at a time for the first frame, then the rest in two pieces.
        for b in text { capture.relayed(ByteBuffer(bytes: [b]), fromClient: true) }
        capture.relayed(ByteBuffer(bytes: big[..<1000]), fromClient: true)
        #expect(capture.midFrame(fromClient: true))
        capture.relayed(ByteBuffer(bytes: big[1000...]), fromClient: true)
        #expect(!capture.midFrame(fromClient: true))
        // The server: a fragmented text message, then a close with 1001.
        capture.relayed(ByteBuffer(bytes: Self.frame(1, Array("ab".utf8), fin: false) + Self.frame(0, Array("cd".utf8))), fromClient: false)
        capture.relayed(ByteBuffer(bytes: Self.frame(8, [0x03, 0xE9])), fromClient: false)
        let (s, error) = capture.finish(closedBy: .client, error: nil)
        #expect(error == nil)
        #expect(s.framesClient == 2)
        #expect(s.framesServer == 3)
        #expect(s.bytesClient == bytes.count)
        #expect(s.closeCode == 1001)
        #expect(s.closedBy == "server", "the sender of the first close frame")
        #expect(!s.open)
        #expect(s.messages.map(\.type) == ["send", "send", "receive", "receive"])
        #expect(s.messages.map(\.opcode) == [1, 2, 1, 8])
        #expect(s.messages.map(\.length) == [5, 70_000, 4, 2])
    }

    @Test func aFrameOverTheLimitStopsCountingNotTheRelay() {
        let capture = WebSocketCapture(maxFrameSize: 100)
        capture.relayed(ByteBuffer(bytes: Self.frame(2, [UInt8](repeating: 1, count: 200))), fromClient: false)
        capture.relayed(ByteBuffer(bytes: Self.frame(2, [1])), fromClient: false)
        let (s, _) = capture.finish(closedBy: .server, error: nil)
        #expect(s.framesServer == nil, "unknown")
        #expect(s.framesClient == 0)
        #expect(s.bytesServer == 204 + 3)
        #expect(s.countingError?.hasPrefix("server → client frames not counted") == true)
    }

    @Test func aConnectionCutMidMessageIsAnError() {
        let capture = WebSocketCapture(maxFrameSize: 1 << 20)
        capture.relayed(ByteBuffer(bytes: Array(Self.frame(2, [UInt8](repeating: 1, count: 300), mask: [1, 1, 1, 1]).prefix(50))), fromClient: true)
        let (s, error) = capture.finish(closedBy: .client, error: nil)
        #expect(error == "client closed the connection mid-message without a WebSocket close frame")
        #expect(s.closedBy == "client")
        #expect(s.closeCode == nil)
    }

    @Test func onlyTheFirstThousandMessagesAreListed() {
        let capture = WebSocketCapture(maxFrameSize: 1 << 20)
        var bytes: [UInt8] = []
        for _ in 0..<1005 { bytes += Self.frame(1, [0x61]) }
        capture.relayed(ByteBuffer(bytes: bytes), fromClient: false)
        let (s, _) = capture.finish(closedBy: .server, error: nil)
        #expect(s.framesServer == 1005)
        #expect(s.messages.count == WebSocketSummary.messageLimit)
        #expect(s.messagesDropped == 5)
    }
}
