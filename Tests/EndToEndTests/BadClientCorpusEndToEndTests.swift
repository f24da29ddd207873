import Foundation
import Testing

extension FailureCorpusEndToEndTests {
    /// One bad client behaviour: the bytes, how they are sent, what the client must get, and the
    /// rows (kind, error_kind) the proxy must record for it.
    struct ClientCase: CustomStringConvertible, Sendable {
        var name: String
        /// `plain` (straight to the proxy), `tls` (CONNECT api.miro.com + TLS), `connect-raw` (CONNECT, then no TLS).
        var mode: String
        var bytes: [UInt8]
        /// `send`, `close` (close right after sending), `trickle` (a byte every 0.4 s).
        var how = "send"
        /// What the client's received bytes start with ("" when it must get nothing).
        var answer: String
        var rows: [Row]
        /// Words the first row's error must contain.
        var message = ""
        var description: String { name }

        struct Row: Equatable, CustomStringConvertible, Sendable {
            var kind: String
            var errorKind: String?
            var description: String { "\(kind)/\(errorKind ?? "nil")" }
        }

        init(_ name: String, _ mode: String, _ text: String, how: String = "send", answer: String, rows: [Row], message: String = "") {
            self.init(name, mode, Array(text.utf8), how: how, answer: answer, rows: rows, message: message)
        }

        init(_ name: String, _ mode: String, _ bytes: [UInt8], how: String = "send", answer: String, rows: [Row], message: String = "") {
            self.name = name
            self.mode = mode
            self.bytes = bytes
            self.how = how
            self.answer = answer
            self.rows = rows
            self.message = message
        }
    }

    static let malformed = ClientCase.Row(kind: "client-error", errorKind: "malformed")

    static func clientCases(refusedPort: Int, proxyPort: Int) -> [ClientCase] {
        let token = "POST /v1/oauth/token HTTP/1.1\r\nHost: api.miro.com\r\n"
        let absToken = "POST https://api.miro.com/v1/oauth/token HTTP/1.1\r\nHost: api.miro.com\r\n"
        let get = "GET https://api.miro.com/ok HTTP/1.1\r\nHost: api.miro.com\r\n"
        let manyHeaders = (0..<10_000).map { "X-Header-\($0): v\r\n" }.joined()
        let longLine = "X-Long: " + String(repeating: "a", count: 1 << 20) + "\r\n"
        var cases: [ClientCase] = []
        for (mode, prefix) in [("plain", absToken), ("tls", token)] {
            let m = mode == "plain" ? "" : " (tls)"
            let idleRows: [ClientCase.Row] = [.init(kind: "client-error", errorKind: "timeout")]
            cases += [
                .init("bare LF inside a header line\(m)", mode, prefix + "Authorization: Basic YTpi\n\r\nContent-Length: 0\r\n\r\n",
                      answer: "HTTP/1.1 400", rows: [malformed], message: "malformed"),
                .init("invalid header name\(m)", mode, prefix + "Bad Header: x\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("duplicate Content-Length\(m)", mode, prefix + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                      answer: "HTTP/1.1 400", rows: [malformed]),
                .init("Transfer-Encoding and Content-Length (smuggling)\(m)", mode,
                      prefix + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
                      answer: "HTTP/1.1 400", rows: [malformed]),
                .init("Transfer-Encoding not ending in chunked\(m)", mode, prefix + "Transfer-Encoding: chunked, identity\r\n\r\n",
                      answer: "HTTP/1.1 400", rows: [malformed]),
                .init("10,000 header fields\(m)", mode, prefix + manyHeaders + "\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("a 1 MiB header line\(m)", mode, prefix + longLine + "\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("garbage request line\(m)", mode, "HELLO\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("NUL in a header value\(m)", mode, prefix + "X-A: a\u{0}b\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("space before the colon\(m)", mode, prefix + "X-A : b\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("negative Content-Length\(m)", mode, prefix + "Content-Length: -1\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("Content-Length not a number\(m)", mode, prefix + "Content-Length: abc\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("lone CR in a header line\(m)", mode, prefix + "X-A: a\rb\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("invalid characters in the method\(m)", mode, "G@T / HTTP/1.1\r\nHost: api.miro.com\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
                .init("a 100 KiB URI\(m)", mode, "GET /" + String(repeating: "u", count: 100 * 1024) + " HTTP/1.1\r\nHost: api.miro.com\r\n\r\n",
                      answer: "HTTP/1.1 400", rows: [malformed]),
                .init("half a head, then silence (slowloris)\(m)", mode, "GET /ok HTTP/1.1\r\nHost: api", answer: "",
                      rows: idleRows, message: "--client-timeout"),
                .init("a head a byte at a time (slowloris, trickle)\(m)", mode, "GET /o", how: "trickle", answer: "",
                      rows: idleRows, message: "--client-timeout"),
                .init("disconnect mid-head\(m)", mode, "GET /ok HTTP/1.1\r\nHos", how: "close", answer: "",
                      rows: [.init(kind: "client-error", errorKind: "truncated")], message: "in the middle of a request head"),
                .init("binary garbage\(m)", mode, [0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a], answer: "HTTP/1.1 400", rows: [malformed]),
            ]
        }
        cases += [
            .init("disconnect mid-body", "plain", get + "Content-Length: 100\r\n\r\n0123456789", how: "close", answer: "",
                  rows: [.init(kind: "http", errorKind: nil)]),
            .init("disconnect mid-body (tls)", "tls", "POST /ok HTTP/1.1\r\nHost: api.miro.com\r\nContent-Length: 100\r\n\r\n0123", how: "close",
                  answer: "", rows: [.init(kind: "http", errorKind: nil)]),
            .init("TLS garbage after CONNECT", "connect-raw", "this is not a ClientHello\r\n\r\n", answer: "",
                  rows: [.init(kind: "tls-error", errorKind: "malformed")], message: "not a TLS handshake"),
            .init("CONNECT, then a close during the handshake", "connect-raw", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], how: "close", answer: "",
                  rows: [.init(kind: "tls-error", errorKind: "truncated")], message: "closed the connection during the TLS handshake"),
            .init("CONNECT to the proxy itself", "plain",
                  "CONNECT 127.0.0.1:\(proxyPort) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get + "Connection: close\r\n\r\n",
                  answer: "HTTP/1.1 200 Connection Established", rows: [.init(kind: "http", errorKind: nil), .init(kind: "tunnel", errorKind: nil)]),
            .init("CONNECT without a host", "plain", "CONNECT :443 HTTP/1.1\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
            .init("CONNECT to a port nobody listens on", "plain", "CONNECT 127.0.0.1:\(refusedPort) HTTP/1.1\r\n\r\n", answer: "HTTP/1.1 502",
                  rows: [.init(kind: "tunnel", errorKind: "connect")], message: "connection refused"),
            .init("absolute-form to a loopback port nobody listens on", "plain", "GET http://127.0.0.1:\(refusedPort)/x HTTP/1.1\r\nHost: x\r\n\r\n",
                  answer: "HTTP/1.1 502", rows: [.init(kind: "http", errorKind: "connect")], message: "connection refused"),
            .init("origin-form to the proxy", "plain", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", answer: "HTTP/1.1 400",
                  rows: [.init(kind: "client-error", errorKind: nil)], message: "tokentap is a proxy"),
            .init("HTTP/2 preface to the proxy", "plain", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", answer: "HTTP/1.1 400", rows: [malformed]),
            .init("Expect: 100-continue and no body", "plain", get + "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n", how: "close",
                  answer: "", rows: [.init(kind: "http", errorKind: nil)]),
        ]
        return cases
    }

    @Test("bad clients (at least 40): each gets its answer (or a close), is recorded with its error_kind and message, and the next normal request is served")
    func badClients() throws {
        let session = "clients"
        let proxy = try startProxy(session: session)
        defer { #expect(proxy.stop() == 0) }
        let cases = Self.clientCases(refusedPort: ports["refused"]!, proxyPort: proxy.port)
        #expect(cases.count >= 40)
        var known = 0
        for (i, c) in cases.enumerated() {
            // Its own time limit: the client reads until the proxy closes, or 3 s of silence.
            let result = try runCommand(try SandboxRig.pythonInterpreter(),
                                        [script, "client", c.mode, String(proxy.port), proxyCA, "api.miro.com", c.how, "3"],
                                        stdin: Data(c.bytes), timeout: 30)
            #expect(result.status == 0, "\(c): \(result.stderr)")
            let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] ?? [:]
            let received = json["received"] as? String ?? ""
            if c.answer.isEmpty {
                #expect(!received.hasPrefix("HTTP/1.1 2") || c.how == "close", "\(c): \(received.prefix(200))")
            } else {
                #expect(received.hasPrefix(c.answer), "\(c): \(received.prefix(300))")
            }
            if c.name == "CONNECT to the proxy itself" {
                // The request sent right behind the CONNECT, through the tunnel, is answered by the proxy itself.
                #expect(received.hasSuffix("\r\n\r\nok"), "\(c): \(received.prefix(300))")
            }
            if c.how != "close" {
                #expect(json["closed"] as? Bool == true, "\(c): the proxy must close the connection (--client-timeout 1)")
            }
            let marker = "/ok?after=client\(i)"
            let next = try curl(proxy, "https://api.miro.com\(marker)")
            #expect(next.status == 200 && next.body == "ok", "\(c): the next request got \(next)")
            let (rows, total) = try newRows(session, after: known, marker: marker)
            known = total
            let got = rows.map { ClientCase.Row(kind: $0["kind"] as? String ?? "", errorKind: $0["error_kind"] as? String) }
            #expect(got.sorted { $0.description < $1.description } == c.rows.sorted { $0.description < $1.description }, "\(c): \(rows)")
            if !c.message.isEmpty, let first = rows.first {
                #expect((first["error"] as? String)?.contains(c.message) == true, "\(c): \(first)")
            }
            // A head cut off by a close or by silence is kept, not judged.
            for row in rows where ["truncated", "timeout"].contains(row["error_kind"] as? String) && row["kind"] as? String == "client-error" {
                #expect((row["findings"] as? [String])?.isEmpty == true, "\(c): \(row)")
            }
        }
    }
}
