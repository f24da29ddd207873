import Foundation
import Testing
@testable import Recording

/// Compresses `data` with Python's zlib/gzip modules (a real, independent encoder).
/// `format`: `gzip` (RFC 1952), `deflate` (zlib, RFC 1950, as HTTP's `deflate` is defined).
func compress(_ data: Data, format: String) throws -> Data {
    let script: String
    switch format {
    case "gzip": script = "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))"
    case "deflate": script = "import zlib,sys; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))"
    default: fatalError("unknown format \(format)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    // Write on another thread so a large output cannot dead-lock the pipes.
    let writer = Thread {
        input.fileHandleForWriting.write(data)
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let result = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "python3 is needed to make compressed test input")
    return result
}

let jsonBody = Data(#"{"access_token":"eyJ...","token_type":"bearer","expires_in":3599,"scope":"boards:read"}"#.utf8)

@Suite("decodeContentEncoding")
struct DecodingTests {
    @Test(arguments: ["gzip", "deflate"])
    func decodesSmallBody(format: String) throws {
        let compressed = try compress(jsonBody, format: format)
        #expect(compressed != jsonBody)
        let decoded = try #require(decodeContentEncoding(compressed, encoding: format, limit: 1 << 20))
        #expect(decoded.body == jsonBody)
        #expect(!decoded.truncated)
    }

    @Test func encodingNamesAreCaseInsensitiveAndXGzipWorks() throws {
        let compressed = try compress(jsonBody, format: "gzip")
        #expect(decodeContentEncoding(compressed, encoding: "GZIP", limit: 1000)?.body == jsonBody)
        #expect(decodeContentEncoding(compressed, encoding: "x-gzip", limit: 1000)?.body == jsonBody)
        #expect(decodeContentEncoding(compressed, encoding: "br", limit: 1000) == nil)
        #expect(decodeContentEncoding(compressed, encoding: "gzip, br", limit: 1000) == nil)
    }

    @Test(arguments: ["gzip", "deflate"])
    func decodesLargeBodyAcrossManyChunks(format: String) throws {
        // Incompressible-ish and repetitive parts, 1.5 MB.
        var original = Data()
        var x: UInt32 = 12345
        for i in 0..<1_500_000 {
            x = x &* 1_103_515_245 &+ 12345
            original.append(i % 3 == 0 ? UInt8(truncatingIfNeeded: x >> 16) : UInt8(ascii: "a"))
        }
        let compressed = try compress(original, format: format)
        let decoded = try #require(decodeContentEncoding(compressed, encoding: format, limit: 2_000_000))
        #expect(decoded.body == original)
        #expect(!decoded.truncated)
    }

    @Test(arguments: ["gzip", "deflate"])
    func stopsAtTheLimit(format: String) throws {
        // A decompression bomb: 20 MB of zeros compress to ~20 KB.
        let original = Data(count: 20_000_000)
        let compressed = try compress(original, format: format)
        #expect(compressed.count < 100_000)
        let decoded = try #require(decodeContentEncoding(compressed, encoding: format, limit: 100_000))
        #expect(decoded.body.count == 100_000)
        #expect(decoded.body == original.prefix(100_000))
        #expect(decoded.truncated)

        // Exactly at the limit: not truncated.
        let small = Data(repeating: 0x41, count: 5000)
        let exact = try #require(decodeContentEncoding(try compress(small, format: format), encoding: format, limit: 5000))
        #expect(exact.body == small && !exact.truncated)
        // One byte over: truncated.
        let over = try #require(decodeContentEncoding(try compress(small, format: format), encoding: format, limit: 4999))
        #expect(over.body == small.prefix(4999) && over.truncated)
    }

    @Test func compressedBodyCutShortGivesWhatCanBeDecoded() throws {
        var original = Data()
        for i in 0..<200_000 { original.append(contentsOf: "line \(i)\n".utf8) }
        let compressed = try compress(original, format: "gzip")
        let cut = compressed.prefix(compressed.count / 2)
        let decoded = try #require(decodeContentEncoding(cut, encoding: "gzip", limit: 10_000_000))
        #expect(decoded.truncated)
        #expect(decoded.body.count > 0 && decoded.body.count < original.count)
        #expect(original.starts(with: decoded.body))
    }

    @Test func garbageIsNil() {
        #expect(decodeContentEncoding(Data("this is not gzip at all, just text".utf8), encoding: "gzip", limit: 1000) == nil)
        #expect(decodeContentEncoding(Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }), encoding: "deflate", limit: 1000) == nil)
        #expect(decodeContentEncoding(Data([0x1F, 0x8B]), encoding: "gzip", limit: 1000) == nil)
    }

    @Test func hugeLimitDoesNotOverflow() throws {
        let decoded = try #require(decodeContentEncoding(try compress(jsonBody, format: "gzip"), encoding: "gzip", limit: Int.max))
        #expect(decoded.body == jsonBody && !decoded.truncated)
    }

    @Test func emptyBodyIsEmpty() throws {
        let decoded = try #require(decodeContentEncoding(Data(), encoding: "gzip", limit: 10))
        #expect(decoded.body.isEmpty && !decoded.truncated)
    }
}
