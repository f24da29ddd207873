import Foundation
import Testing
import TestSupport
@testable import Reports
import Recording
import TokentapCore

/// An exchange as stored, with every kind of value the renderers care about.
func tokenExchange(id: Int64 = 7, keepsSecrets: Bool = false) -> Exchange {
    let findings = [
        Finding(rule: "redirect-uri-mismatch", severity: .error, confidence: .certain, exchange: id,
                title: "The redirect_uri differs from the one used to authorize",
                evidence: ["authorize: http://localhost:3000/cb", "token: http://localhost:3000/cb/"],
                fix: "Send exactly the redirect_uri of the authorization request.",
                reference: "RFC 6749 §4.1.3"),
        Finding(rule: "secret-whitespace", severity: .warning, confidence: .likely, exchange: id,
                title: "client_secret has a trailing newline", evidence: ["‹secret:client_secret fp=1a2b len=33 +lf›"],
                fix: "Trim the secret.", reference: "https://developers.miro.com/docs/getting-started-with-oauth"),
    ]
    return Exchange(
        id: id, session: "20261129-120000", kind: .http, started: at(0.123456),
        timings: Timings(connect: 1.5, tls: nil, send: 0.25, wait: 80.125, receive: 2, total: 84),
        clientAddress: "127.0.0.1:50000", scheme: "https", host: "api.miro.com", port: 443, method: "POST",
        target: "/v1/oauth/token",
        request: MessageRecord(
            headers: [HeaderField(name: "Host", value: "api.miro.com"),
                      HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
            body: Data("grant_type=authorization_code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb%2F&code=abc+def".utf8),
            wireSize: 95),
        status: 400, reason: "Bad Request",
        response: MessageRecord(
            httpVersion: "HTTP/1.1",
            headers: [HeaderField(name: "content-type", value: "application/json")],
            body: Data(#"{"status":400,"message":"Invalid redirect_uri","details":{"z":1,"a":[]}}"#.utf8),
            truncated: true, wireSize: 60, decodedFrom: "gzip"),
        error: nil, findings: findings, keepsSecrets: keepsSecrets)
}

func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

/// True when `value` came from a JSON integer (not a float, not a bool).
func isJSONInt(_ value: Any?) -> Bool {
    guard let n = value as? NSNumber else { return false }
    return !["d", "f", "c", "B"].contains(String(cString: n.objCType))
}

/// True when `value` came from a JSON `true`/`false`.
func isJSONBool(_ value: Any?) -> Bool {
    guard let n = value as? NSNumber else { return false }
    return ["c", "B"].contains(String(cString: n.objCType))
}

let listKeys: Set<String> = ["id", "session", "kind", "started", "duration_ms", "method", "url", "status", "error", "error_kind", "findings"]

@Suite("Render")
struct RenderTests {
    @Test func listJSONHasDesignShape() throws {
        var failed = sample(started: at(1), host: "api.miro.com", target: "/v2/boards", status: 502, error: "connection refused")
        failed.id = 8
        var tunnel = sample(kind: .tunnel, started: at(2), host: "example.org", method: "", target: "", status: nil)
        tunnel.id = 9
        tunnel.port = 443
        let text = Render.listJSON([tokenExchange(), failed, tunnel])
        let array = try #require(try parseJSON(text) as? [[String: Any]])
        #expect(array.count == 3)
        for object in array { #expect(Set(object.keys) == listKeys) }

        let first = array[0]
        #expect(isJSONInt(first["id"]) && (first["id"] as? Int) == 7)
        #expect(first["session"] as? String == "20261129-120000")
        #expect(first["kind"] as? String == "http")
        #expect(first["started"] as? String == "2026-11-29T12:00:00.123456Z")
        #expect((first["duration_ms"] as? NSNumber)?.doubleValue == 84)
        #expect(first["method"] as? String == "POST")
        #expect(first["url"] as? String == "https://api.miro.com/v1/oauth/token")
        #expect(isJSONInt(first["status"]) && first["status"] as? Int == 400)
        #expect(first["error"] is NSNull)
        #expect(first["findings"] as? [String] == ["redirect-uri-mismatch", "secret-whitespace"])

        #expect(array[1]["status"] as? Int == 502)
        #expect(array[1]["error"] as? String == "connection refused")
        #expect((array[1]["duration_ms"] as? NSNumber)?.doubleValue == 12.5)
        #expect(array[2]["kind"] as? String == "tunnel")
        #expect(array[2]["status"] is NSNull)
        #expect(array[2]["url"] as? String == "example.org:443")
        #expect((array[2]["findings"] as? [Any])?.isEmpty == true)

        #expect(try parseJSON(Render.listJSON([])) as? [Any] != nil)
    }

    @Test func showJSONHasDesignShape() throws {
        var exchange = tokenExchange()
        exchange.request.body.append(contentsOf: [0xFF]) // not UTF-8 any more
        let object = try #require(try parseJSON(Render.showJSON(exchange)) as? [String: Any])
        #expect(Set(object.keys) == listKeys.union(["request", "response", "timings"]))
        #expect(object["started"] as? String == "2026-11-29T12:00:00.123456Z")

        let request = try #require(object["request"] as? [String: Any])
        #expect(Set(request.keys) == ["headers", "body", "body_encoding", "truncated", "http_version"])
        #expect(request["body_encoding"] as? String == "base64")
        #expect(Data(base64Encoded: try #require(request["body"] as? String)) == exchange.request.body)
        #expect(isJSONBool(request["truncated"]) && request["truncated"] as? Bool == false)
        #expect(request["http_version"] as? String == "HTTP/1.1")
        #expect(request["headers"] as? [[String: String]] ==
                [["name": "Host", "value": "api.miro.com"],
                 ["name": "Content-Type", "value": "application/x-www-form-urlencoded"]])

        let response = try #require(object["response"] as? [String: Any])
        #expect(Set(response.keys) == ["headers", "body", "body_encoding", "truncated", "http_version", "reason"])
        #expect(response["body_encoding"] as? String == "utf8")
        #expect(response["body"] as? String == String(decoding: exchange.response.body, as: UTF8.self))
        #expect(response["truncated"] as? Bool == true)
        #expect(response["reason"] as? String == "Bad Request")

        let timings = try #require(object["timings"] as? [String: Any])
        #expect(Set(timings.keys) == ["connect", "tls", "send", "wait", "receive", "total"])
        #expect((timings["connect"] as? NSNumber)?.doubleValue == 1.5)
        #expect(timings["tls"] is NSNull)
        #expect((timings["wait"] as? NSNumber)?.doubleValue == 80.125)
        #expect((timings["total"] as? NSNumber)?.doubleValue == 84)

        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.count == 2)
        #expect(Set(findings[0].keys) == ["rule", "severity", "confidence", "exchange", "title", "evidence", "fix", "reference"])
        #expect(findings[0]["rule"] as? String == "redirect-uri-mismatch")
        #expect(findings[0]["severity"] as? String == "error")
        #expect(findings[0]["confidence"] as? String == "certain")
        #expect(isJSONInt(findings[0]["exchange"]) && findings[0]["exchange"] as? Int == 7)
        #expect(findings[0]["evidence"] as? [String] == exchange.findings[0].evidence)
        #expect(findings[1]["reference"] as? String == "https://developers.miro.com/docs/getting-started-with-oauth")

        // A response-less exchange: nulls, not missing keys.
        var failed = sample(status: nil, error: "upstream timed out")
        failed.id = 3
        failed.reason = nil
        let other = try #require(try parseJSON(Render.showJSON(failed)) as? [String: Any])
        #expect(other["status"] is NSNull)
        #expect((other["response"] as? [String: Any])?["reason"] is NSNull)
        #expect((other["response"] as? [String: Any])?["body"] as? String == "")
    }

    @Test func durationsAreRoundedNotFloatNoise() throws {
        var e = sample()
        e.id = 1
        e.timings.total = 0.1 + 0.2
        let array = try #require(try parseJSON(Render.listJSON([e])) as? [[String: Any]])
        #expect((array[0]["duration_ms"] as? NSNumber)?.doubleValue == 0.3)
        #expect(!Render.listJSON([e]).contains("0.30000000000000004"))
    }

    @Test func listTableIsAlignedAndPlainWithoutColor() throws {
        var a = tokenExchange()
        a.id = 7
        var b = sample(started: at(3), host: "api.miro.com", target: "/v2/boards?limit=10", status: 200)
        b.id = 1234
        var c = sample(started: at(4), status: 502, error: "connection refused")
        c.id = 1235
        let text = Render.listTable([a, b, c], color: false)
        #expect(!text.contains("\u{1B}["))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("  ID  TIME"))
        // Columns line up: the URL column starts at the same offset on every line.
        let urlStarts = lines.dropFirst().map { line in line.range(of: "https://")!.lowerBound.utf16Offset(in: line) }
        #expect(Set(urlStarts).count == 1)
        #expect(lines[0].range(of: "URL")!.lowerBound.utf16Offset(in: lines[0]) == urlStarts[0])
        #expect(lines[1].contains("POST") && lines[1].contains("400") && lines[1].contains("redirect-uri-mismatch,secret-whitespace"))
        #expect(lines[2].hasPrefix("1234 ") && lines[2].contains("/v2/boards?limit=10") && lines[2].contains("200"))
        #expect(lines[3].contains("502") && lines[3].contains("(connection refused)"))

        let colored = Render.listTable([a, b], color: true)
        #expect(colored.contains("\u{1B}[31m400"))
        #expect(colored.contains("\u{1B}[32m200"))
    }

    @Test func listTableWithoutHeader() {
        var b = sample(status: 200)
        b.id = 5
        let text = Render.listTable([b], color: false, header: false)
        #expect(text.split(separator: "\n").count == 1)
        #expect(text.hasPrefix("5  ") && !text.contains("METHOD"))
    }

    @Test func sessionsRendering() throws {
        let sessions = [
            SessionSummary(name: "20261129-120000", firstStarted: at(0), lastStarted: at(60), count: 12, httpCount: 10, failures: 3),
            SessionSummary(name: "demo", firstStarted: at(100), lastStarted: at(100), count: 1, httpCount: 1, failures: 0),
        ]
        let lines = Render.sessionsTable(sessions, color: false).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("SESSION"))
        #expect(lines[1].hasPrefix("20261129-120000 ") && lines[1].hasSuffix("12    10         3"))
        #expect(lines[2].hasPrefix("demo *"))
        let array = try #require(try parseJSON(Render.sessionsJSON(sessions)) as? [[String: Any]])
        #expect(Set(array[0].keys) == ["name", "first_started", "last_started", "count", "http_count", "failures"])
        #expect(array[0]["first_started"] as? String == "2026-11-29T12:00:00.000000Z")
        #expect(array[0]["failures"] as? Int == 3 && isJSONInt(array[0]["count"]))
    }

    @Test func showTextPrettyPrintsBodies() throws {
        let text = Render.show(tokenExchange(), raw: false, color: false)
        #expect(!text.contains("\u{1B}["))
        #expect(text.contains("POST https://api.miro.com/v1/oauth/token HTTP/1.1"))
        #expect(text.contains("Content-Type: application/x-www-form-urlencoded"))
        // Form body: one parameter a line, percent-decoded.
        #expect(text.contains("\ngrant_type = authorization_code\n"))
        #expect(text.contains("\nredirect_uri = http://localhost:3000/cb/\n"))
        #expect(text.contains("\ncode = abc def\n"))
        // JSON body: pretty-printed, key order kept.
        #expect(text.contains("{\n  \"status\": 400,\n  \"message\": \"Invalid redirect_uri\",\n  \"details\": {\n    \"z\": 1,\n    \"a\": []\n  }\n}"))
        #expect(text.contains("HTTP/1.1 400 Bad Request"))
        #expect(text.contains("decoded from gzip"))
        #expect(text.contains("truncated"))
        #expect(text.contains("Timings: connect 1.5ms, send 0.2ms, wait 80.1ms, receive 2.0ms, total 84.0ms"))
        #expect(text.contains("[error, certain] redirect-uri-mismatch: The redirect_uri differs"))
        #expect(text.contains("evidence: token: http://localhost:3000/cb/"))
        #expect(text.contains("fix: Send exactly the redirect_uri of the authorization request."))
        #expect(text.contains("see: RFC 6749 §4.1.3"))
        #expect(!text.contains("RAW SECRETS"))
        // Errors before warnings.
        #expect(text.range(of: "redirect-uri-mismatch:")!.lowerBound < text.range(of: "secret-whitespace:")!.lowerBound)
    }

    @Test func showRawKeepsStoredBytes() {
        let e = tokenExchange()
        let text = Render.show(e, raw: true, color: false)
        #expect(text.contains("grant_type=authorization_code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb%2F&code=abc+def\n"))
        #expect(text.contains(#"{"status":400,"message":"Invalid redirect_uri","details":{"z":1,"a":[]}}"#))
        var binary = e
        binary.response.body = Data([0x00, 0xFF, 0x10])
        #expect(Render.show(binary, raw: true, color: false).contains(Data([0x00, 0xFF, 0x10]).base64EncodedString()))
    }

    @Test func showWarnsLoudlyAboutRawSecrets() {
        let text = Render.show(tokenExchange(keepsSecrets: true), raw: false, color: false)
        #expect(text.hasPrefix("!!! RAW SECRETS"))
        #expect(text.contains("--keep-secrets"))
        #expect(Render.show(tokenExchange(keepsSecrets: true), raw: false, color: true).contains("\u{1B}[1;31m!!! RAW SECRETS"))
    }

    @Test func showNamesHeaderFieldsThatArrivedAsReplacementCharacters() {
        var e = tokenExchange()
        e.response.headers.append(HeaderField(name: "WWW-Authenticate", value: "Basic realm=\"Soci\u{FFFD}t\u{FFFD}\""))
        e.response.headers.append(HeaderField(name: "www-authenticate", value: "Bearer realm=\"\u{FFFD}\""))
        #expect(e.response.headersNotUTF8 == ["WWW-Authenticate"])
        #expect(e.request.headersNotUTF8.isEmpty)
        let text = Render.show(e, raw: false, color: false)
        #expect(text.contains("(WWW-Authenticate: bytes that were not valid UTF-8 arrived as U+FFFD"))
        #expect(!Render.show(tokenExchange(), raw: false, color: false).contains("not valid UTF-8"))
    }

    @Test func showMakesLineBreaksInHeaderValuesVisible() {
        var e = tokenExchange()
        e.request.headers.append(HeaderField(name: "Authorization", value: "Basic abc\n"))
        #expect(Render.show(e, raw: false, color: false).contains("Authorization: Basic abc\\n\n"))
    }

    @Test func showTunnel() {
        var t = sample(kind: .tunnel, host: "example.org", method: "", target: "", status: nil)
        t.id = 2
        t.request.wireSize = 517
        t.response.wireSize = 4096
        let text = Render.show(t, raw: false, color: false)
        #expect(text.contains("CONNECT example.org:443"))
        #expect(text.contains("517") && text.contains("4096"))
    }

    @Test func prettyJSONLeavesNonJSONAlone() {
        #expect(Render.prettyJSON("not json") == nil)
        #expect(Render.prettyJSON("{\"a\":") == nil)
        #expect(Render.prettyJSON("42") == nil)
        #expect(Render.prettyJSON(#"{"s":"a,b:{c}[d]\"e"}"#) == "{\n  \"s\": \"a,b:{c}[d]\\\"e\"\n}")
        #expect(Render.prettyJSON("[1, 2]") == "[\n  1,\n  2\n]")
    }
}
