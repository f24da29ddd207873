import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPCompression

/// Decodes a recorded `gzip`/`deflate` body (RFC 9110 §8.4.1) on the side, never in the relay path
/// (design.md, "Library notes"): NIOHTTPCompression's `NIOHTTPResponseDecompressor` (zlib) runs in a
/// private `EmbeddedChannel`.
///
/// - Parameters:
///   - body: the body as it travelled (de-chunked), possibly cut short by `--max-body`.
///   - encoding: the `Content-Encoding` value: `gzip`, `x-gzip` or `deflate` (zlib-wrapped, as
///     RFC 9110 defines it), case-insensitive. Anything else (`br`, `gzip, br`, `identity`) gives `nil`.
///   - limit: the most decoded bytes to return (≥ 0). Decoding stops a little after it, so a
///     decompression bomb costs at most `limit` + 64 KiB of memory.
/// - Returns: the decoded bytes (at most `limit`) and `truncated` = true when the decoded body is
///   longer than `limit` or the compressed input ended early (a body cut short by `--max-body`:
///   what could be decoded is returned). `nil` when `body` is not valid data of that encoding.
/// True when `body` starts like data of `encoding`: gzip's magic `1f 8b` (RFC 1952 §2.3.1) for
/// `gzip`/`x-gzip`, a zlib header (RFC 1950 §2.2: CM = 8, header checksum a multiple of 31) for
/// `deflate`. Other encodings, and an empty body, answer true (nothing to tell).
public func contentEncodingMagicMatches(_ body: Data, encoding: String) -> Bool {
    guard body.count >= 2 else { return body.isEmpty }
    let b0 = body[body.startIndex], b1 = body[body.startIndex + 1]
    switch encoding.trimmingCharacters(in: .whitespaces).lowercased() {
    case "gzip", "x-gzip": return b0 == 0x1F && b1 == 0x8B
    case "deflate": return b0 & 0x0F == 8 && (UInt16(b0) << 8 | UInt16(b1)) % 31 == 0
    default: return true
    }
}

public func decodeContentEncoding(_ body: Data, encoding: String, limit: Int) -> (body: Data, truncated: Bool)? {
    let normalized = encoding.trimmingCharacters(in: .whitespaces).lowercased()
    let algorithm: String
    switch normalized {
    case "gzip", "x-gzip": algorithm = "gzip"
    case "deflate": algorithm = "deflate"
    default: return nil
    }
    let limit = max(0, limit)
    if body.isEmpty { return (Data(), false) }

    let slack = 64 * 1024
    let allowed = limit > Int.max - slack ? Int.max : limit + slack
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    do {
        try channel.pipeline.syncOperations.addHandler(
            NIOHTTPResponseDecompressor(limit: .size(allowed)))
    } catch {
        return nil
    }

    var output = Data()
    var truncated = false
    var failed = false
    func drain() {
        while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
            if case .body(let buffer) = part, output.count <= allowed {
                output.append(contentsOf: buffer.readableBytesView)
            }
        }
    }
    /// Classifies an error the decompressor raised: stop (bomb or end of data) or fail (garbage).
    func handle(_ error: any Error) {
        if let e = error as? NIOHTTPDecompression.DecompressionError, e == .limit {
            truncated = true
        } else if let e = error as? NIOHTTPDecompression.ExtraDecompressionError {
            if e == .truncatedData { truncated = true }
            // invalidTrailingData: the stream ended and bytes followed; keep what was decoded.
        } else {
            failed = true
        }
    }

    var headers = HTTPHeaders()
    headers.add(name: "Content-Encoding", value: algorithm)
    do {
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
    } catch {
        return nil
    }
    drain()
    // Feed in slices so that each inflate step produces a bounded amount of output.
    let chunk = 4096
    var offset = body.startIndex
    while offset < body.endIndex, !truncated, !failed {
        let end = body.index(offset, offsetBy: chunk, limitedBy: body.endIndex) ?? body.endIndex
        var buffer = channel.allocator.buffer(capacity: end - offset)
        buffer.writeBytes(body[offset..<end])
        do { try channel.writeInbound(HTTPClientResponsePart.body(buffer)) } catch { handle(error) }
        drain()
        offset = end
    }
    if !truncated, !failed {
        do { try channel.writeInbound(HTTPClientResponsePart.end(nil)) } catch { handle(error) }
        drain()
    }
    if failed { return nil }
    if output.count > limit {
        output = output.prefix(limit)
        truncated = true
    }
    if truncated && output.isEmpty && limit > 0 { return nil }
    return (output, truncated)
}
