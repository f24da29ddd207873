import Foundation
import Recording
@testable import Reports
import Testing
import TestSupport
import TokentapCore

/// HAR 1.2 export and import (issue 8, issue 9), pure: no store, no network.
@Suite("HAR")
struct HARTests {
    static let t0 = Date(timeIntervalSince1970: 1_750_000_000.123456)

    static func sample() -> Exchange {
        let finding = Finding(rule: "code-expired", severity: .error, confidence: .certain, exchange: 7,
                              title: "The code was used 11m 04s after it was issued", evidence: ["code redacted.code.0123456789ab.20 issued in #6"],
                              fix: "Exchange the code right after the redirect.", reference: "https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2")
        let body = Data("grant_type=authorization_code&code=redacted.code.0123456789ab.20&redirect_uri=https%3A%2F%2Fapp.example%2Fcb".utf8)
        return Exchange(
            id: 7, session: "s1", started: t0,
            timings: Timings(connect: 3, tls: 5, send: 1, wait: 40, receive: 2, total: 51),
            host: "api.miro.com", method: "POST", target: "/v1/oauth/token?client_id=3074457363680401096",
            request: MessageRecord(headers: [HeaderField(name: "Host", value: "api.miro.com"),
                                             HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                   body: body, wireSize: body.count),
            status: 400, reason: "Bad Request",
            response: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "image/png")],
                                    body: Data([0x89, 0x50, 0x4E, 0x47, 0xFF, 0xFE, 0x00]), wireSize: 7),
            findings: [finding])
    }

    func json(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("export writes HAR 1.2: creator, request, response, timings, postData params, base64, _tokentap")
    func exportShape() throws {
        let root = try json(HAR.export([Self.sample()], creatorVersion: "9.9.9"))
        let log = try #require(root["log"] as? [String: Any])
        #expect(log["version"] as? String == "1.2")
        let creator = try #require(log["creator"] as? [String: Any])
        #expect(creator["name"] as? String == "tokentap")
        #expect(creator["version"] as? String == "9.9.9")
        let entries = try #require(log["entries"] as? [[String: Any]])
        #expect(entries.count == 1)
        let e = entries[0]
        #expect(e["startedDateTime"] as? String == "2025-06-15T15:06:40.123456Z")
        #expect((e["time"] as? Double) == 51)
        #expect((e["cache"] as? [String: Any])?.isEmpty == true)

        let req = try #require(e["request"] as? [String: Any])
        #expect(req["method"] as? String == "POST")
        #expect(req["url"] as? String == "https://api.miro.com/v1/oauth/token?client_id=3074457363680401096")
        #expect(req["httpVersion"] as? String == "HTTP/1.1")
        #expect((req["headers"] as? [[String: String]])?.first == ["name": "Host", "value": "api.miro.com"])
        #expect((req["queryString"] as? [[String: String]]) == [["name": "client_id", "value": "3074457363680401096"]])
        #expect((req["cookies"] as? [Any])?.isEmpty == true)
        #expect(req["headersSize"] as? Int == -1)
        #expect(req["bodySize"] as? Int == Self.sample().request.body.count)
        let post = try #require(req["postData"] as? [String: Any])
        #expect(post["mimeType"] as? String == "application/x-www-form-urlencoded")
        #expect(post["text"] as? String == String(decoding: Self.sample().request.body, as: UTF8.self))
        let params = try #require(post["params"] as? [[String: String]])
        #expect(params.contains(["name": "redirect_uri", "value": "https://app.example/cb"]))
        #expect(params.first == ["name": "grant_type", "value": "authorization_code"])

        let resp = try #require(e["response"] as? [String: Any])
        #expect(resp["status"] as? Int == 400)
        #expect(resp["statusText"] as? String == "Bad Request")
        #expect(resp["httpVersion"] as? String == "HTTP/1.1")
        #expect(resp["redirectURL"] as? String == "")
        #expect(resp["headersSize"] as? Int == -1)
        #expect(resp["bodySize"] as? Int == 7)
        let content = try #require(resp["content"] as? [String: Any])
        #expect(content["size"] as? Int == 7)
        #expect(content["mimeType"] as? String == "image/png")
        #expect(content["encoding"] as? String == "base64")
        #expect(content["text"] as? String == Data([0x89, 0x50, 0x4E, 0x47, 0xFF, 0xFE, 0x00]).base64EncodedString())

        let timings = try #require(e["timings"] as? [String: Double])
        #expect(timings["blocked"] == -1 && timings["dns"] == -1)
        #expect(timings["connect"] == 8)  // HAR: connect includes ssl
        #expect(timings["ssl"] == 5)
        #expect(timings["send"] == 1 && timings["wait"] == 40 && timings["receive"] == 2)

        let ext = try #require(e["_tokentap"] as? [String: Any])
        #expect(ext["id"] as? Int == 7)
        #expect(ext["session"] as? String == "s1")
        #expect(ext["kind"] as? String == "http")
        let findings = try #require(ext["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings[0]["rule"] as? String == "code-expired")
        #expect(findings[0]["severity"] as? String == "error")
        #expect(findings[0]["evidence"] as? [String] == ["code redacted.code.0123456789ab.20 issued in #6"])
        #expect(findings[0]["fix"] as? String == "Exchange the code right after the redirect.")
    }

    @Test("unknown timings are -1 for connect and ssl, and the phases still add up to time")
    func unknownTimings() throws {
        var e = Self.sample()
        e.timings = Timings(total: 12.5)
        let entry = HAR.entry(e)
        let t = try #require(entry["timings"] as? [String: Any])
        #expect(t["connect"] as? Double == -1 && t["ssl"] as? Double == -1)
        #expect(t["wait"] as? Double == 12.5 && t["send"] as? Double == 0 && t["receive"] as? Double == 0)
    }

    @Test("an exported HAR imports back to the same exchange and findings")
    func roundTrip() throws {
        let original = Self.sample()
        let entries = try HAR.parse(HAR.export([original], creatorVersion: "1"), session: "again")
        #expect(entries.count == 1)
        let e = entries[0].exchange
        #expect(e.session == "again")
        #expect(e.started.microsecondsSince1970 == original.started.microsecondsSince1970)
        #expect(e.method == "POST" && e.host == "api.miro.com" && e.port == 443 && e.scheme == "https")
        #expect(e.target == original.target)
        #expect(e.request.headers == original.request.headers)
        #expect(e.request.body == original.request.body)
        #expect(e.response.body == original.response.body)
        #expect(e.status == 400 && e.reason == "Bad Request")
        #expect(e.timings.connect == 3 && e.timings.tls == 5 && e.timings.wait == 40 && e.timings.total == 51)
        #expect(entries[0].findings == original.findings)
        #expect(entries[0].originalID == 7)
    }

    @Test("Chrome DevTools: pseudo-headers dropped, http/2.0, base64 content, _ fields ignored")
    func chrome() throws {
        let har = """
        {"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},
         "pages":[{"startedDateTime":"2026-11-29T10:00:00.000Z","id":"page_1","title":"https://app.example/","pageTimings":{}}],
         "entries":[
          {"_initiator":{"type":"other"},"_priority":"VeryHigh","_resourceType":"document","cache":{},"connection":"443","pageref":"page_1",
           "request":{"method":"GET","url":"https://miro.com/oauth/authorize?response_type=code&client_id=3074457363680401096&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
             "httpVersion":"http/2.0","headers":[{"name":":authority","value":"miro.com"},{"name":":method","value":"GET"},{"name":"accept","value":"text/html"}],
             "queryString":[{"name":"response_type","value":"code"}],"cookies":[],"headersSize":-1,"bodySize":0},
           "response":{"status":302,"statusText":"","httpVersion":"http/2.0","headers":[{"name":"location","value":"https://app.example/cb?code=abc&state=xyz"}],
             "cookies":[],"content":{"size":0,"mimeType":"x-unknown"},"redirectURL":"https://app.example/cb?code=abc&state=xyz","headersSize":-1,"bodySize":-1,"_transferSize":120,"_error":null},
           "serverIPAddress":"[2a00::1]","startedDateTime":"2026-11-29T10:00:00.123Z","time":87.5,
           "timings":{"blocked":1.2,"dns":-1,"ssl":-1,"connect":-1,"send":0.3,"wait":85,"receive":1,"_blocked_queueing":0.5}},
          {"_resourceType":"image","cache":{},"request":{"method":"GET","url":"https://app.example/logo.png","httpVersion":"http/2.0","headers":[],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},
           "response":{"status":200,"statusText":"","httpVersion":"http/2.0","headers":[{"name":"content-type","value":"image/png"}],"cookies":[],
             "content":{"size":4,"mimeType":"image/png","text":"iVBORw==","encoding":"base64"},"redirectURL":"","headersSize":-1,"bodySize":4},
           "startedDateTime":"2026-11-29T10:00:01.000Z","time":5,"timings":{"blocked":-1,"dns":-1,"ssl":-1,"connect":-1,"send":0,"wait":4,"receive":1}}
         ]}}
        """
        let entries = try HAR.parse(Data(har.utf8), session: "chrome")
        #expect(entries.count == 2)
        let a = entries[0].exchange
        #expect(a.host == "miro.com" && a.path == "/oauth/authorize")
        #expect(a.query?.contains("client_id=3074457363680401096") == true)
        #expect(a.request.httpVersion == "HTTP/2")
        #expect(a.request.headers == [HeaderField(name: "accept", value: "text/html")])
        #expect(a.status == 302 && a.reason == nil)
        #expect(a.response.headers.first(named: "Location") == "https://app.example/cb?code=abc&state=xyz")
        #expect(a.timings.total == 87.5 && a.timings.wait == 85 && a.timings.connect == nil && a.timings.tls == nil)
        #expect(a.started == parseISO8601("2026-11-29T10:00:00.123Z"))
        #expect(entries[0].findings.isEmpty)
        let b = entries[1].exchange
        #expect(b.response.body == Data([0x89, 0x50, 0x4E, 0x47]))
        #expect(b.response.wireSize == 4)
    }

    @Test("Firefox: offset timestamps, a form body given only as postData.params, connect including ssl")
    func firefox() throws {
        let har = """
        {"log":{"version":"1.2","creator":{"name":"Firefox","version":"133.0"},"browser":{"name":"Firefox","version":"133.0"},
         "pages":[],"entries":[
          {"pageref":"page_1","startedDateTime":"2026-11-29T11:10:00.250+01:00","time":30,
           "request":{"bodySize":77,"method":"POST","url":"https://api.miro.com/v1/oauth/token","httpVersion":"HTTP/1.1",
             "headers":[{"name":"Host","value":"api.miro.com"},{"name":"Content-Type","value":"application/x-www-form-urlencoded"}],
             "cookies":[],"queryString":[],"headersSize":210,
             "postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"grant_type","value":"authorization_code"},{"name":"code","value":"a b+c/d"}]}},
           "response":{"status":401,"statusText":"Unauthorized","httpVersion":"HTTP/1.1","headers":[{"name":"Content-Type","value":"application/json"}],
             "cookies":[],"content":{"mimeType":"application/json","size":27,"text":"{\\"message\\":\\"Unauthorized\\"}"},"redirectURL":"","headersSize":120,"bodySize":147},
           "cache":{},"timings":{"blocked":0,"dns":0,"connect":12,"ssl":8,"send":0,"wait":9,"receive":1},"serverIPAddress":"127.0.0.1","connection":"443"}
         ]}}
        """
        let entries = try HAR.parse(Data(har.utf8), session: "firefox")
        let e = try #require(entries.first?.exchange)
        #expect(e.started == parseISO8601("2026-11-29T10:10:00.250Z"))
        #expect(String(decoding: e.request.body, as: UTF8.self) == "grant_type=authorization_code&code=a%20b%2Bc%2Fd")
        #expect(e.request.wireSize == 77)
        #expect(e.status == 401 && e.reason == "Unauthorized")
        #expect(String(decoding: e.response.body, as: UTF8.self) == "{\"message\":\"Unauthorized\"}")
        #expect(e.response.wireSize == 147)
        #expect(e.timings.connect == 4 && e.timings.tls == 8)
    }

    @Test("mitmproxy: microsecond timestamps, decoded gzip content, base64 request body")
    func mitmproxy() throws {
        let har = """
        {"log":{"version":"1.2","creator":{"name":"mitmproxy","version":"11.0.0","comment":"mitmproxy version 11.0.0"},"pages":[],"entries":[
          {"startedDateTime":"2026-11-29T12:00:00.654321+00:00","time":12.34,
           "request":{"method":"PUT","url":"http://localhost:8080/upload?x=1","httpVersion":"HTTP/1.1","cookies":[],
             "headers":[{"name":"content-type","value":"application/octet-stream"}],"queryString":[{"name":"x","value":"1"}],"headersSize":80,"bodySize":3,
             "postData":{"mimeType":"application/octet-stream","text":"AAEC","encoding":"base64"}},
           "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","cookies":[],
             "headers":[{"name":"content-type","value":"application/json"},{"name":"content-encoding","value":"gzip"}],
             "content":{"size":11,"compression":-20,"mimeType":"application/json","text":"{\\"ok\\":true}"},"redirectURL":"","headersSize":90,"bodySize":31},
           "cache":{},"timings":{"connect":1.5,"ssl":-1,"send":0.1,"receive":0.2,"wait":10},"serverIPAddress":"127.0.0.1"}
        ]}}
        """
        let entries = try HAR.parse(Data(har.utf8), session: "mitm")
        let e = try #require(entries.first?.exchange)
        #expect(e.started.microsecondsSince1970 == parseISO8601("2026-11-29T12:00:00Z")!.microsecondsSince1970 + 654_321)
        #expect(e.scheme == "http" && e.host == "localhost" && e.port == 8080 && e.target == "/upload?x=1")
        #expect(e.request.body == Data([0, 1, 2]))
        #expect(e.response.body == Data("{\"ok\":true}".utf8))
        #expect(e.response.decodedFrom == "gzip")  // the HAR holds the decoded body: not decoded again
        #expect(e.response.wireSize == 31)
        #expect(e.timings.connect == 1.5 && e.timings.tls == nil)
    }

    @Test("HTTP Toolkit: its _ fields are ignored; a still-gzipped base64 body stays encoded for decoding")
    func httpToolkit() throws {
        let gz: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]
        let har = """
        {"log":{"version":"1.2","creator":{"name":"HTTP Toolkit","version":"1.19.0"},"pages":[{"id":"pg","title":"Client","startedDateTime":"2026-11-29T12:00:00.000Z","pageTimings":{}}],
         "entries":[{"pageref":"pg","startedDateTime":"2026-11-29T12:00:00.000Z","time":4,
           "request":{"method":"GET","url":"https://api.miro.com/v2/boards","httpVersion":"HTTP/1.1","headers":[{"name":"authorization","value":"Bearer abc"}],
             "queryString":[],"cookies":[],"headersSize":-1,"bodySize":0,"_requestBodyStatus":"discarded:not-representable"},
           "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[{"name":"content-encoding","value":"gzip"}],"cookies":[],
             "content":{"mimeType":"application/json","size":8,"text":"\(Data(gz).base64EncodedString())","encoding":"base64"},"redirectURL":"","headersSize":-1,"bodySize":8},
           "cache":{},"timings":{"blocked":-1,"dns":-1,"connect":-1,"send":0,"wait":3,"receive":1,"ssl":-1},
           "_webSocketMessages":[],"_resourceType":"fetch"}]}}
        """
        let e = try #require(try HAR.parse(Data(har.utf8), session: "toolkit").first?.exchange)
        #expect(e.request.headers.first(named: "authorization") == "Bearer abc")
        #expect(e.response.body == Data(gz))
        #expect(e.response.decodedFrom == nil)
        #expect(e.error == nil)
    }

    @Test("a malformed entry throws an error naming the entry index and the field")
    func malformed() throws {
        func failure(_ har: String) -> HAR.FormatError? {
            do { _ = try HAR.parse(Data(har.utf8), session: "x"); return nil } catch let e as HAR.FormatError { return e } catch { return nil }
        }
        let good = #"{"startedDateTime":"2026-11-29T12:00:00Z","time":1,"request":{"method":"GET","url":"https://a.example/","headers":[]},"response":{"status":200,"headers":[],"content":{"size":0}}}"#
        let noURL = #"{"startedDateTime":"2026-11-29T12:00:00Z","time":1,"request":{"method":"GET","headers":[]},"response":{"status":200}}"#
        let e1 = try #require(failure(#"{"log":{"entries":[\#(good),\#(noURL)]}}"#))
        #expect(e1.entry == 1 && e1.field == "request.url")
        #expect(e1.description.contains("entries[1]") && e1.description.contains("request.url"))

        let badBase64 = good.replacingOccurrences(of: #""content":{"size":0}"#, with: #""content":{"size":3,"text":"@@@","encoding":"base64"}"#)
        let e2 = try #require(failure(#"{"log":{"entries":[\#(good),\#(good),\#(badBase64)]}}"#))
        #expect(e2.entry == 2 && e2.field == "response.content.text")

        let badDate = good.replacingOccurrences(of: "2026-11-29T12:00:00Z", with: "yesterday")
        #expect(failure(#"{"log":{"entries":[\#(badDate)]}}"#)?.field == "startedDateTime")
        let badHeader = good.replacingOccurrences(of: #""headers":[]},"response""#, with: #""headers":[{"name":1}]},"response""#)
        #expect(failure(#"{"log":{"entries":[\#(badHeader)]}}"#)?.field == "request.headers[0].name")
        let badStatus = good.replacingOccurrences(of: #""status":200"#, with: #""status":"200""#)
        #expect(failure(#"{"log":{"entries":[\#(badStatus)]}}"#)?.field == "response.status")
        let relative = good.replacingOccurrences(of: "https://a.example/", with: "/relative")
        #expect(failure(#"{"log":{"entries":[\#(relative)]}}"#)?.field == "request.url")

        #expect(failure("not json")?.entry == nil)
        #expect(failure(#"{"log":{}}"#)?.field == "log.entries")
        #expect(failure(#"{"log":{"entries":[\#(good)]}}"#) == nil)
    }

    @Test("data: and extension URLs are skipped, not errors; unescaped characters in a URL are escaped")
    func skipsAndEscapes() throws {
        func entry(_ url: String) -> String {
            #"{"startedDateTime":"2026-11-29T12:00:00Z","time":1,"request":{"method":"GET","url":"\#(url)","headers":[]},"response":{"status":200}}"#
        }
        let har = #"{"log":{"entries":[\#(entry("data:image/png;base64,iVBORw==")),\#(entry("https://a.example/x y|z?q=a b&p=%2F")),\#(entry("chrome-extension://abc/page.html"))]}}"#
        let result = try HAR.parseReportingSkips(Data(har.utf8), session: "s")
        #expect(result.entries.count == 1)
        #expect(result.skipped.map(\.index) == [0, 2])
        #expect(result.skipped.first?.url.hasPrefix("data:") == true)
        let e = try #require(result.entries.first?.exchange)
        #expect(e.host == "a.example")
        #expect(e.target == "/x%20y%7Cz?q=a%20b&p=%2F")
    }

    @Test("har-sanitizer's raw `[state redacted]` in a query is escaped once, like a browser sends it; an IPv6 host keeps its brackets")
    func bracketsAndSpacesInAQuery() throws {
        func entry(_ url: String) -> String {
            #"{"startedDateTime":"2026-11-29T12:00:00Z","time":1,"request":{"method":"GET","url":"\#(url)","headers":[]},"response":{"status":200}}"#
        }
        let har = #"{"log":{"entries":[\#(entry("https://accounts.google.com/auth?scope=openid%20email&state=[state redacted]")),\#(entry("http://[::1]:8080/cb?a=[b]"))]}}"#
        let entries = try HAR.parse(Data(har.utf8), session: "s")
        #expect(entries.count == 2)
        #expect(entries.first?.exchange.target == "/auth?scope=openid%20email&state=%5Bstate%20redacted%5D")
        #expect(entries.last?.exchange.host == "::1")
        #expect(entries.last?.exchange.target == "/cb?a=%5Bb%5D")
    }

    @Test("merged findings are de-duplicated by rule and title; the computed one wins")
    func merge() {
        let a = Finding(rule: "code-expired", severity: .error, confidence: .certain, title: "T", evidence: ["new"], fix: "", reference: "")
        var b = a
        b.evidence = ["old"]
        let c = Finding(rule: "pkce-verifier-mismatch", severity: .error, confidence: .likely, title: "U", evidence: [], fix: "", reference: "")
        let merged = HAR.mergeFindings(computed: [a], imported: [b, c, c])
        #expect(merged.map(\.rule) == ["code-expired", "pkce-verifier-mismatch"])
        #expect(merged[0].evidence == ["new"])
    }
}

/// Issue 26's fuzzing regressions: HAR numbers beyond what `Int` holds used to trap in `Int(_:)`
/// (`tokentap import` crashed); now they are a `FormatError` naming the field.
@Suite("HAR import: hostile numbers")
struct HARHostileNumberTests {
    static func har(request: String = "", response: String = "", entry: String = "") -> Data {
        Data(#"{"log":{"entries":[{"startedDateTime":"2026-11-29T12:00:00Z","time":1\#(entry),"request":{"method":"GET","url":"https://api.miro.com/v2/boards","headers":[]\#(request)},"response":{"status":200,"headers":[]\#(response)}}]}}"#.utf8)
    }

    static func failure(_ data: Data) -> HAR.FormatError? {
        do { _ = try HAR.parse(data, session: "x"); return nil } catch let e as HAR.FormatError { return e } catch { return nil }
    }

    @Test("sizes and ids of ±1e30 or 1e300 are rejected with the field's path", arguments: [
        (har(request: #","bodySize":1e30"#), "request.bodySize"),
        (har(response: #","bodySize":-1e300"#), "response.bodySize"),
        (har(response: #","content":{"size":1e300,"mimeType":"text/plain"}"#), "response.content.size"),
        (har(entry: #","_tokentap":{"id":1e30}"#), "_tokentap.id"),
        (har(entry: #","_tokentap":{"findings":[{"rule":"r","severity":"error","confidence":"certain","exchange":1e300,"title":"t","evidence":[],"fix":"f","reference":"x"}]}"#),
         "_tokentap.findings[0].exchange"),
    ])
    func hugeNumbers(_ data: Data, _ field: String) throws {
        let error = try #require(Self.failure(data))
        #expect(error.field == field)
        #expect(error.entry == 0)
        #expect(error.problem.contains("not a whole number"))
    }

    @Test("ordinary sizes still import (-1 is HAR's unknown)")
    func ordinarySizes() throws {
        let entries = try HAR.parse(Self.har(request: #","bodySize":-1"#, response: #","bodySize":12,"content":{"size":12,"mimeType":"application/json","text":"{\"ok\":true}\n"}"#), session: "x")
        #expect(entries.count == 1)
        #expect(entries[0].exchange.response.wireSize == 12)
    }
}
