import Foundation
import NIOCore
import NIOHTTP1
import TokentapCore

/// Receives every completed capture. Called on an event loop: implementations must return at
/// once and do their work (redaction, diagnosis, storage, printing) elsewhere.
public protocol ExchangeSink: Sendable {
    /// `exchange` carries raw values (nothing is redacted yet) and has no id. Called on an event
    /// loop: must not block.
    func capture(_ exchange: Exchange)

    /// Back-pressure. When the sink cannot take more for now (its recording backlog is full), keeps
    /// `resume` to call once (on any thread) when it can, and returns true: the proxy then stops
    /// reading new requests from that client until called. Returns false, keeping nothing, when
    /// there is room. The default has room always.
    func whenRoom(_ resume: @escaping @Sendable () -> Void) -> Bool
}

extension ExchangeSink {
    public func whenRoom(_ resume: @escaping @Sendable () -> Void) -> Bool { false }
}

/// Collects one side's body up to a limit while counting every byte.
struct BodyCollector {
    let limit: Int
    private(set) var buffer: ByteBuffer?
    private(set) var wireSize = 0
    private(set) var truncated = false

    init(limit: Int) { self.limit = limit }

    mutating func append(_ part: ByteBuffer) {
        wireSize += part.readableBytes
        let room = limit - (buffer?.readableBytes ?? 0)
        if room <= 0 {
            if part.readableBytes > 0 { truncated = true }
            return
        }
        let slice = part.getSlice(at: part.readerIndex, length: min(room, part.readableBytes))!
        if slice.readableBytes < part.readableBytes { truncated = true }
        if buffer == nil {
            buffer = ByteBufferAllocator().buffer(capacity: min(limit, max(slice.readableBytes, 1024)))
        }
        var s = slice
        buffer!.writeBuffer(&s)
    }

    var data: Data { buffer.map { Data($0.readableBytesView) } ?? Data() }
}

extension HTTPHeaders {
    /// Header fields in wire order with original case.
    var fields: [HeaderField] { map { HeaderField(name: $0.name, value: $0.value) } }
}

extension HTTPVersion {
    var text: String { "HTTP/\(major).\(minor)" }
}

/// Monotonic milliseconds between two deadlines.
func milliseconds(_ from: NIODeadline, _ to: NIODeadline) -> Double {
    Double((to - from).nanoseconds) / 1_000_000
}

extension SocketAddress {
    /// `ip:port` (`[v6]:port`), for recording the client address.
    var ipPortText: String {
        guard let ip = ipAddress else { return description }
        let port = self.port ?? 0
        return hostPortText(ip, port)
    }
}
