import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
import TokentapCore
@testable import ProxyServer

/// The typed kind of a proxy-side failure is decided by the error's type and the relay's state
/// (``ProxyFailure/upstream(_:host:port:target:responseStarted:)``), and a refused head is read
/// leniently for the record (``RefusedRequest``).
@Suite struct FailureKindTests {
    let target = HostPort(host: "127.0.0.1", port: 9443)

    func failure(_ error: Error, started: Bool = false) -> ProxyFailure {
        ProxyFailure.upstream(error, host: "api.miro.com", port: 443, target: target, responseStarted: started)
    }

    @Test func beforeTheResponseHead() {
        #expect(failure(UpstreamError.handshakeTimeout).kind == .timeout)
        #expect(failure(UpstreamError.handshakeTimeout).status == 504)
        #expect(failure(ChannelError.connectTimeout(.seconds(1))).kind == .timeout)
        #expect(failure(UpstreamError.responseTimeout).kind == .timeout)
        let tls = failure(UpstreamError.tlsHandshake(NIOSSLError.handshakeFailed(.sslError([]))))
        #expect(tls.kind == .tls && tls.status == 502)
        #expect(tls.reason.contains("TLS handshake with upstream api.miro.com:443 (mapped to 127.0.0.1:9443) failed"), "\(tls.reason)")
        let hangup = failure(UpstreamError.tlsHandshake(NIOSSLError.handshakeFailed(.sslError([.eofDuringHandshake]))))
        #expect(hangup.kind == .tls && hangup.reason.contains("closed the connection during the TLS handshake"), "\(hangup.reason)")
        #expect(failure(UpstreamError.tlsHandshake(NIOSSLExtraError.failedToValidateHostname)).reason.contains("does not match api.miro.com"))
        // (A refused connection, NIOConnectionError, cannot be made outside NIO: the bad-upstream corpus covers it.)
        #expect(failure(IOError(errnoCode: ECONNRESET, reason: "read")).kind == .connect)
        #expect(failure(UpstreamError.closedEarly).kind == .connect)
        #expect(failure(HTTPParserError.invalidStatus).kind == .malformed)
        #expect(failure(HTTPParserError.invalidEOFState).kind == .truncated)
    }

    @Test func afterTheResponseHead() {
        // The case: a body cut by a TCP close without close_notify is truncated, not a handshake failure.
        let unclean = failure(NIOSSLError.uncleanShutdown, started: true)
        #expect(unclean.kind == .truncated)
        #expect(unclean.reason.contains("without TLS close_notify") && !unclean.reason.contains("handshake"), "\(unclean.reason)")
        #expect(failure(UpstreamError.closedEarly, started: true).kind == .truncated)
        #expect(failure(HTTPParserError.invalidEOFState, started: true).kind == .truncated)
        #expect(failure(IOError(errnoCode: ECONNRESET, reason: "read"), started: true).kind == .truncated)
        #expect(failure(HTTPParserError.invalidChunkSize, started: true).kind == .malformed)
    }

    @Test func refusedHeadIsReadWithItsStrayLineBreak() {
        // Python's base64.encodebytes: a bare LF at the end of the Basic credentials, then CRLF.
        let raw = "POST /v1/oauth/token HTTP/1.1\r\nHost: api.miro.com\r\nAuthorization: Basic YTpi\n\r\nContent-Length: 9\r\n\r\ncode=abc1"
        let r = RefusedRequest(Array(raw.utf8), overflowed: false)
        #expect(r.method == "POST" && r.target == "/v1/oauth/token" && r.version == "HTTP/1.1")
        #expect(r.headers == [HeaderField(name: "Host", value: "api.miro.com"), HeaderField(name: "Authorization", value: "Basic YTpi\n"),
                              HeaderField(name: "Content-Length", value: "9")])
        #expect(r.body == Array("code=abc1".utf8))
        #expect(!r.truncated)
        // A client that uses bare LF throughout; a folded line; a head cut off.
        let lf = RefusedRequest(Array("GET /x HTTP/1.0\nX-A: 1\n  more\n\n".utf8), overflowed: false)
        #expect(lf.headers == [HeaderField(name: "X-A", value: "1\n  more")])
        let cut = RefusedRequest(Array("GET /ok HTTP/1.1\r\nHos".utf8), overflowed: false)
        #expect(cut.method == "GET" && cut.target == "/ok" && cut.headers == [HeaderField(name: "Hos", value: "")] && cut.truncated)
        #expect(RefusedRequest([], overflowed: false).method.isEmpty)
    }

    @Test func rawHeadRecorderKeepsABoundedCopyAndPassesEveryByteOn() throws {
        let channel = EmbeddedChannel()
        let recorder = RawHeadRecorder()
        try channel.pipeline.syncOperations.addHandler(recorder)
        let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: RawHeadRecorder.limit + 10)
        try channel.writeInbound(big)
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == RawHeadRecorder.limit + 10)
        #expect(recorder.bytes.count == RawHeadRecorder.limit && recorder.overflowed)
        recorder.reset()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        #expect(recorder.bytes == Array("GET / HTTP/1.1\r\n".utf8) && !recorder.overflowed)
        _ = try channel.finish()
    }
}
