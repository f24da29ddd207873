import NIOCore
import TokentapCore

/// Keeps a bounded copy of the bytes a client sent since its last answered request, so that a
/// request the HTTP parser (NIOHTTP1's `HTTPRequestDecoder`, llhttp in strict mode) refuses is
/// recorded with what it said (design.md: a `client-error` row keeps its raw head, redacted).
///
/// Sits in front of the request decoder and passes every byte on untouched. The relay calls
/// ``reset()`` when a response has completed and no request is in flight; the front one is removed
/// when a CONNECT turns the connection into TLS or a tunnel. Bytes past ``limit`` are counted, not kept.
final class RawHeadRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Bytes kept: a head NIO's decoder accepts is at most 80 KiB; evidence needs far less.
    static let limit = 16 * 1024

    private(set) var bytes: [UInt8] = []
    /// More bytes arrived than ``limit``.
    private(set) var overflowed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let room = Self.limit - bytes.count
        if room > 0 {
            bytes += buffer.readableBytesView.prefix(room)
        }
        if buffer.readableBytes > max(room, 0) { overflowed = true }
        context.fireChannelRead(data)
    }

    func reset() {
        bytes.removeAll(keepingCapacity: true)
        overflowed = false
    }

    /// What was kept, read as a request head (``RefusedRequest``).
    var refusedRequest: RefusedRequest { RefusedRequest(bytes, overflowed: overflowed) }
}

/// A request head the strict parser refused, read leniently for the record: the request line's
/// three words and `name: value` fields, values kept byte for byte (a stray LF, a trailing space
/// stay: they are the evidence). Not a parser for relaying: nothing read here goes upstream.
///
/// Lines end at CRLF when the client used CRLF anywhere (so a bare LF inside a field stays in its
/// value, as Python's `base64.encodebytes` puts it there), else at LF. The head ends at the first
/// empty line; what follows (at most ``RawHeadRecorder/limit`` bytes in all) is kept as the body.
struct RefusedRequest: Equatable {
    var method = ""
    var target = ""
    var version = "HTTP/1.1"
    var headers: [HeaderField] = []
    var body: [UInt8] = []
    /// The head or body went on past what was kept.
    var truncated = false

    init(_ bytes: [UInt8], overflowed: Bool) {
        let crlf = bytes.indices.dropLast().contains { bytes[$0] == 13 && bytes[$0 + 1] == 10 }
        let eol: [UInt8] = crlf ? [13, 10] : [10]
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex, i = bytes.startIndex
        var headEnded = false
        while i + eol.count <= bytes.count {
            if Array(bytes[i..<(i + eol.count)]) == eol {
                let line = bytes[start..<i]
                i += eol.count
                start = i
                if line.isEmpty && !lines.isEmpty { headEnded = true; break }
                if line.isEmpty { continue }  // blank lines before a request line (RFC 9112 §2.2)
                lines.append(line)
            } else {
                i += 1
            }
        }
        if !headEnded, start < bytes.count { lines.append(bytes[start...]) }
        body = headEnded ? Array(bytes[start...]) : []
        truncated = overflowed || !headEnded
        guard let first = lines.first else { return }
        let words = String(decoding: first, as: UTF8.self).split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        method = words.count > 0 ? String(words[0].prefix(64)) : ""
        target = words.count > 1 ? String(words[1].prefix(2048)) : ""
        if words.count > 2 { version = String(words[2].prefix(16)) }
        for line in lines.dropFirst() {
            let text = String(decoding: line, as: UTF8.self)
            if let c = text.first, c == " " || c == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += "\n" + text  // obs-fold, kept as sent
            } else if let colon = text.firstIndex(of: ":") {
                let value = text[text.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
                headers.append(HeaderField(name: String(text[..<colon]), value: String(value)))
            } else {
                headers.append(HeaderField(name: text, value: ""))
            }
        }
    }
}
