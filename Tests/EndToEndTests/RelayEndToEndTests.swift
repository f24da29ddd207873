import Foundation
import Testing

/// What a client gets through the relay, byte for byte: a raw socket client (Python, no HTTP
/// parsing) through the built proxy to the local HTTPS upstream's raw fixtures.
@Suite("Relay end to end", .serialized)
final class RelayEndToEndTests {
    let fixture: UpstreamFixture
    var upstream: TestUpstream { fixture.upstream }

    init() throws { fixture = try UpstreamFixture() }

    struct RawResult {
        var received: [UInt8]
        var closed: Bool
        var seconds: Double
        var text: String { String(decoding: received, as: UTF8.self) }
    }

    /// Sends `request` through `proxy` (CONNECT + TLS, or plain absolute-form requests) and
    /// returns what came back within `idle` seconds of silence.
    func raw(_ proxy: ServerProcess, tls: Bool, _ request: String, idle: Double = 1.5) throws -> RawResult {
        let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/raw_client.py").path
        let args = tls ? ["tls", String(proxy.port), fixture.proxyCA, "api.miro.com", String(idle)] : ["plain", String(proxy.port), String(idle)]
        let result = try runCommand(try SandboxRig.pythonInterpreter(), [script] + args, stdin: Data(request.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        return RawResult(received: Array(Data(base64Encoded: json["received"] as? String ?? "") ?? Data()),
                         closed: json["closed"] as? Bool ?? false, seconds: json["seconds"] as? Double ?? -1)
    }

    /// The request line's target: origin-form inside the tunnel, absolute-form to the plain proxy.
    func target(_ path: String, tls: Bool) -> String { tls ? path : "https://api.miro.com\(path)" }

    @Test("HEAD, 204 and 304 with Content-Length or chunked framing carry no body bytes; the kept-alive connection then serves a GET",
          arguments: [true, false])
    func bodilessResponses(tls: Bool) throws {
        let answers: [(name: String, method: String, upstream: String, client: String)] = [
            // NIO's encoder writes the framing field it keeps for a HEAD answer in lower case.
            ("head-chunked", "HEAD", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"),
            ("head-cl", "HEAD", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n",
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n"),
            // 204 and 304 may not carry framing fields towards the client (RFC 9110 §8.6, RFC 9112 §6.3): NIO drops them.
            ("204-cl", "GET", "HTTP/1.1 204 No Content\r\nX-Seq: 3\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 204 No Content\r\nX-Seq: 3\r\n\r\n"),
            ("204-chunked", "GET", "HTTP/1.1 204 No Content\r\nX-Seq: 4\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 204 No Content\r\nX-Seq: 4\r\n\r\n"),
            ("304-cl", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"v5\"\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nETag: \"v5\"\r\n\r\n"),
            ("304-chunked", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"v6\"\r\nTransfer-Encoding: chunked\r\n\r\n",
             "HTTP/1.1 304 Not Modified\r\nETag: \"v6\"\r\n\r\n"),
            ("get", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        ]
        upstream.fixtures.withLockedValue { f in
            for a in answers { f[a.name] = .init(raw: a.upstream) }
        }
        let proxy = try fixture.startProxy()
        defer { #expect(proxy.stop() == 0) }
        // Sent one after the other on one connection (pipelined): answered in order. The first is
        // a HEAD: on the plain path the front decoder, paired with the encoder, has to note it.
        let request = answers.map { "\($0.method) \(target("/fixture/\($0.name)", tls: tls)) HTTP/1.1\r\nHost: api.miro.com\r\n\r\n" }.joined()
        let result = try raw(proxy, tls: tls, request)
        #expect(result.text == answers.map(\.client).joined())
        #expect(!result.closed, "the connection stays usable")
        #expect(upstream.seen.withLockedValue { $0.filter { $0.contains("/fixture/") }.count } == answers.count)
    }

    @Test("an upgrade request the upstream refuses: the client gets the 401 and a closed connection within a second; the next connection works",
          arguments: [true, false])
    func refusedUpgrade(tls: Bool) throws {
        upstream.fixtures.withLockedValue { f in
            f["ws"] = .init(status: 401, headers: [("WWW-Authenticate", "Bearer")], body: "denied")
        }
        let proxy = try fixture.startProxy()
        defer { #expect(proxy.stop() == 0) }
        let request = "GET \(target("/fixture/ws", tls: tls)) HTTP/1.1\r\nHost: api.miro.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let result = try raw(proxy, tls: tls, request, idle: 5)
        #expect(result.text.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
        #expect(result.text.contains("Connection: close\r\n"))
        #expect(result.text.hasSuffix("\r\n\r\ndenied"))
        #expect(result.closed)
        #expect(result.seconds < 1, "closed after \(result.seconds) s")
        #expect(upstream.seen.withLockedValue { $0.contains("GET /fixture/ws") })
        let next = try raw(proxy, tls: tls, "GET \(target("/ping", tls: tls)) HTTP/1.1\r\nHost: api.miro.com\r\nConnection: close\r\n\r\n")
        #expect(next.text.hasPrefix("HTTP/1.1 200 OK\r\n") && next.text.hasSuffix("ok\n"))
    }

    @Test("UTF-8 header values and repeated Set-Cookie arrive byte for byte; a Latin-1 realm arrives as U+FFFD, and show names the header")
    func headerBytes() throws {
        let utf8 = "HTTP/1.1 200 OK\r\nX-Debug: Société\r\nset-cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\nContent-Length: 2\r\n\r\nok"
        let latin1Head = Array("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Soci".utf8) + [0xE9] + Array("t".utf8) + [0xE9]
            + Array("\"\r\nContent-Length: 6\r\n\r\ndenied".utf8)
        upstream.fixtures.withLockedValue { f in
            f["utf8"] = .init(raw: utf8)
            f["latin1"] = .init(raw: latin1Head)
        }
        let proxy = try fixture.startProxy()
        let first = try raw(proxy, tls: true, "GET /fixture/utf8 HTTP/1.1\r\nHost: api.miro.com\r\n\r\n")
        #expect(first.received == Array(utf8.utf8))
        let second = try raw(proxy, tls: true, "GET /fixture/latin1 HTTP/1.1\r\nHost: api.miro.com\r\n\r\n")
        #expect(second.text == "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Soci\u{FFFD}t\u{FFFD}\"\r\nContent-Length: 6\r\n\r\ndenied")
        #expect(proxy.stop() == 0)
        let list = try tokentap(["list", "--home", fixture.home, "--session", "e2e", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        let row = try #require(rows.first { ($0["url"] as? String)?.hasSuffix("/fixture/latin1") == true })
        #expect(row["status"] as? Int == 401)
        let show = try tokentap(["show", "--home", fixture.home, String(try #require(row["id"] as? Int))])
        #expect(show.text.contains("WWW-Authenticate"))
        #expect(show.text.contains("not valid UTF-8"))
        #expect(show.text.contains("denied"))
        let clean = try #require(rows.first { ($0["url"] as? String)?.hasSuffix("/fixture/utf8") == true })
        let showClean = try tokentap(["show", "--home", fixture.home, String(try #require(clean["id"] as? Int))])
        #expect(showClean.text.contains("Société"))
        #expect(!showClean.text.contains("not valid UTF-8"))
    }

    @Test("Proxy-* fields reach neither an intercepted host nor a plain-proxy target", arguments: [true, false])
    func proxyFieldsNotForwarded(tls: Bool) throws {
        let proxy = try fixture.startProxy()
        defer { #expect(proxy.stop() == 0) }
        let result = try raw(proxy, tls: tls, "GET \(target("/headers", tls: tls)) HTTP/1.1\r\nHost: api.miro.com\r\n"
            + "Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\nX-Kept: 1\r\nConnection: close\r\n\r\n")
        #expect(result.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(result.text.hasSuffix("\r\n\r\nHost\nX-Kept\nConnection\n"))
    }
}
