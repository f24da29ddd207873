import Foundation
import Testing

/// `tokentap import` and `tokentap export` with the built binary (issues 8 and 9): a HAR flow with
/// an expired code diagnosed through import, HAR export that validates as HAR 1.2 and re-imports to
/// the same exchanges and findings, a curl export that reproduces a token request at a local server,
/// and a Markdown report. No export may contain a planted secret. Serialized; temporary homes.
@Suite("Export and import end to end", .serialized)
final class ExportEndToEndTests {
    let dir: URL

    static let clientID = "3074457363680401096"
    static let secret = "Xk9fQ2mZ7pL4vR8tY1wB6nC3dE5gH0jKq2"
    static let code = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_c0deAbCdEfGhIjKlMnOpQrStUv"
    static let access = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_accEssTokenAAAAAAAAAAAAAAA"
    static let redirect = "https://app.example/cb"
    static var planted: [String] { [secret, code, access] }

    init() throws {
        dir = try makeTemporaryDirectory("tokentap-export")
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    var home: String { dir.appendingPathComponent("home").path }

    // MARK: HAR builders

    static func enc(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? s
    }

    static func time(_ offset: TimeInterval) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: 1_764_410_000 + offset))
    }

    static func headers(_ pairs: [(String, String)]) -> [[String: String]] { pairs.map { ["name": $0.0, "value": $0.1] } }

    /// One Chrome-style HAR entry.
    static func entry(at offset: TimeInterval, _ method: String, _ url: String, requestHeaders: [(String, String)] = [],
                      body: String? = nil, status: Int, responseHeaders: [(String, String)] = [], responseBody: String = "") -> [String: Any] {
        var request: [String: Any] = ["method": method, "url": url, "httpVersion": "http/2.0", "headers": headers(requestHeaders),
                                      "queryString": [], "cookies": [], "headersSize": -1, "bodySize": body?.utf8.count ?? 0]
        if let body {
            request["postData"] = ["mimeType": "application/x-www-form-urlencoded", "text": body]
        }
        return [
            "startedDateTime": time(offset), "time": 42.5, "_resourceType": "fetch", "_priority": "High", "cache": [:],
            "request": request,
            "response": ["status": status, "statusText": "", "httpVersion": "http/2.0", "headers": headers(responseHeaders),
                         "cookies": [], "content": ["size": responseBody.utf8.count, "mimeType": "application/json", "text": responseBody],
                         "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 300],
            "timings": ["blocked": 0.5, "dns": -1, "ssl": -1, "connect": -1, "send": 0.5, "wait": 40, "receive": 1.5],
        ]
    }

    /// authorize → 302 with a code → callback → (11 minutes later) token exchange → 400, plus a page
    /// load and a CORS preflight; the token entry comes first in the file (import sorts by time).
    static func codeExpiryHAR(extra: [[String: Any]] = []) -> Data {
        let authorize = "https://miro.com/oauth/authorize?response_type=code&client_id=\(clientID)&redirect_uri=\(enc(redirect))&state=st4te"
        let location = "\(redirect)?code=\(code)&state=st4te&client_id=\(clientID)&team_id=3458764516184293832"
        let tokenBody = "grant_type=authorization_code&client_id=\(clientID)&client_secret=\(secret)&code=\(code)&redirect_uri=\(enc(redirect))"
        let error = #"{"status":400,"code":"oauthError","message":"Invalid code","type":"error"}"#
        let entries: [[String: Any]] = [
            entry(at: 664, "POST", "https://api.miro.com/v1/oauth/token", requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                  body: tokenBody, status: 400, responseHeaders: [("content-type", "application/json")], responseBody: error),
            entry(at: 0, "GET", authorize, status: 302, responseHeaders: [("location", location)]),
            entry(at: 1, "GET", "\(redirect)?code=\(code)&state=st4te", status: 200, responseHeaders: [("content-type", "text/html")], responseBody: "<html>ok</html>"),
            entry(at: 2, "GET", "https://app.example/static/app.js", status: 200, responseBody: "console.log(1)"),
            entry(at: 663, "OPTIONS", "https://api.miro.com/v1/oauth/token", requestHeaders: [("access-control-request-method", "POST")], status: 204),
            entry(at: 700, "GET", "https://api.miro.com/v2/boards", requestHeaders: [("authorization", "Bearer \(access)")], status: 401,
                  responseBody: #"{"status":401,"code":"tokenNotProvided","message":"Unauthorized","type":"error"}"#),
        ]
        let har: [String: Any] = ["log": ["version": "1.2", "creator": ["name": "WebInspector", "version": "537.36"], "pages": [], "entries": entries + extra]]
        return try! JSONSerialization.data(withJSONObject: har, options: [.prettyPrinted])
    }

    func write(_ data: Data, _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func json(_ result: CommandResult) throws -> Any {
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return try JSONSerialization.jsonObject(with: result.stdout)
    }

    func doctor(_ session: String) throws -> [String: Any] {
        try #require(try json(try tokentap(["doctor", "--session", session, "--json", "--home", home])) as? [String: Any])
    }

    func list(_ session: String) throws -> [[String: Any]] {
        try #require(try json(try tokentap(["list", "--session", session, "--all", "--json", "--home", home])) as? [[String: Any]])
    }

    func importHAR(_ path: String, session: String? = nil) throws -> CommandResult {
        var args = ["import", path, "--home", home]
        if let session { args += ["--session", session] }
        let result = try tokentap(args)
        #expect(result.status == 0, "import failed: \(result.stderr)")
        return result
    }

    // MARK: Tests

    @Test("a HAR with 11 minutes between the redirect and the token exchange: doctor names code-expired")
    func codeExpiredThroughImport() throws {
        let path = try write(Self.codeExpiryHAR(), "login-flow.har")
        let result = try importHAR(path)
        #expect(result.text.contains("imported 6 exchanges into session login-flow"), "\(result.text)")

        let rows = try list("login-flow")
        #expect(rows.count == 6)
        // Sorted by the HAR's own start times, not file order.
        let started = rows.compactMap { $0["started"] as? String }
        #expect(started == started.sorted())
        #expect(rows.first?["url"] as? String == "https://miro.com/oauth/authorize?response_type=code&client_id=\(Self.clientID)&redirect_uri=\(Self.enc(Self.redirect))&state=st4te")
        #expect(started.first?.hasPrefix(String(Self.time(0).prefix(19))) == true)

        let d = try doctor("login-flow")
        let findings = try #require(d["findings"] as? [[String: Any]])
        let token = try #require(rows.first { ($0["url"] as? String) == "https://api.miro.com/v1/oauth/token" && $0["method"] as? String == "POST" })
        let expired = findings.first { $0["rule"] as? String == "code-expired" }
        #expect(expired != nil, "doctor: \(d)")
        #expect(expired?["exchange"] as? Int == token["id"] as? Int)
        #expect((expired?["evidence"] as? [String])?.contains { $0.contains("11m 04s") } == true)
        // No alarm from the page load or the CORS preflight.
        let others = Set(rows.filter { ["OPTIONS"].contains($0["method"] as? String ?? "") || ($0["url"] as? String ?? "").hasSuffix("app.js") }.compactMap { $0["id"] as? Int })
        #expect(!findings.contains { others.contains($0["exchange"] as? Int ?? -1) && ["error", "warning"].contains($0["severity"] as? String ?? "") })
        // Nothing secret was stored.
        let show = try tokentap(["show", String(token["id"] as! Int), "--json", "--home", home])
        for s in Self.planted { #expect(!show.text.contains(s)) }
        // Importing the same session twice is refused, and a malformed HAR imports nothing.
        let again = try tokentap(["import", path, "--home", home])
        #expect(again.status != 0 && again.stderr.contains("already exists"))
    }

    /// Imports `entries` as a session and returns the rules doctor names per exchange URL.
    func importedRules(_ entries: [[String: Any]], session: String) throws -> [(url: String, rule: String, severity: String)] {
        let har: [String: Any] = ["log": ["version": "1.2", "creator": ["name": "Firefox", "version": "120.0"], "entries": entries]]
        let path = try write(try JSONSerialization.data(withJSONObject: har), "\(session).har")
        _ = try importHAR(path, session: session)
        let rows = try list(session)
        let urls = Dictionary(uniqueKeysWithValues: rows.compactMap { row in (row["id"] as? Int).map { ($0, row["url"] as? String ?? "") } })
        let findings = try #require(try doctor(session)["findings"] as? [[String: Any]])
        return findings.map { (urls[$0["exchange"] as? Int ?? -1] ?? "?", $0["rule"] as? String ?? "", $0["severity"] as? String ?? "") }
    }

    @Test("through import: a REST 401 75 minutes after a 3599-second token is access-token-expired")
    func accessTokenExpiredThroughImport() throws {
        let tokenBody = "grant_type=authorization_code&client_id=\(Self.clientID)&client_secret=\(Self.secret)&code=\(Self.code)&redirect_uri=\(Self.enc(Self.redirect))"
        let ok = #"{"user_id":"3458764517517852417","access_token":"\#(Self.access)","refresh_token":"eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_refreshRRRRRRRRRRRRRRRRRR","expires_in":3599,"team_id":"3458764516184293832","scope":"boards:read","token_type":"bearer"}"#
        let rules = try importedRules([
            Self.entry(at: 0, "POST", "https://api.miro.com/v1/oauth/token", requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                       body: tokenBody, status: 200, responseHeaders: [("content-type", "application/json")], responseBody: ok),
            Self.entry(at: 60, "GET", "https://api.miro.com/v2/boards", requestHeaders: [("authorization", "Bearer \(Self.access)")], status: 200,
                       responseBody: #"{"data":[]}"#),
            Self.entry(at: 75 * 60, "GET", "https://api.miro.com/v2/boards", requestHeaders: [("authorization", "Bearer \(Self.access)")], status: 401,
                       responseBody: #"{"status":401,"code":"tokenExpired","message":"Token expired","type":"error"}"#),
        ], session: "expired-access")
        #expect(rules.contains { $0.rule == "access-token-expired" && $0.severity == "error" }, "\(rules)")
        #expect(!rules.contains { $0.severity == "error" && $0.rule != "access-token-expired" && $0.rule != "provider-error" }, "\(rules)")
    }

    @Test("through import: a har-sanitizer HAR ([state redacted], raw spaces) has no state-mismatch; the browser's favicon is not an API call")
    func sanitizedHARThroughImport() throws {
        // Cloudflare's har-sanitizer writes `[state redacted]` with a raw space and brackets into the
        // authorize URL and into the redirect's Location; Chromium then asks api.miro.com for its icon.
        let authorize = "https://accounts.google.com/o/oauth2/v2/auth?client_id=1234-abc.apps.googleusercontent.com&response_type=code"
            + "&redirect_uri=\(Self.enc(Self.redirect))&scope=openid%20email&state=[state redacted]"
        let location = "\(Self.redirect)?state=[state redacted]&code=[code redacted]&scope=email%20openid"
        let rules = try importedRules([
            Self.entry(at: 0, "GET", authorize, status: 302, responseHeaders: [("location", location)]),
            Self.entry(at: 1, "GET", "\(Self.redirect)?state=%5Bstate%20redacted%5D&code=%5Bcode%20redacted%5D&scope=email%20openid", status: 200,
                       responseHeaders: [("content-type", "text/html")], responseBody: "<html>ok</html>"),
            Self.entry(at: 2, "GET", "https://api.miro.com/favicon.ico", status: 401,
                       responseBody: #"{"status":401,"code":"tokenNotProvided","message":"No access token","type":"error"}"#),
        ], session: "sanitized")
        #expect(rules.isEmpty, "\(rules)")
        let d = try doctor("sanitized")
        #expect((d["verdicts"] as? [Any])?.isEmpty == true, "\(d)")
        // The authorize URL keeps one level of escaping (no `%2520`).
        let rows = try list("sanitized")
        #expect((rows.first?["url"] as? String)?.contains("scope=openid%20email&state=%5Bstate%20redacted%5D") == true, "\(rows.first ?? [:])")
    }

    @Test("through import: a refresh token sent as code is token-type-confusion (real failure 12)")
    func tokenTypeConfusionThroughImport() throws {
        let refresh = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_refreshConfusedZZZZZZZZZZZZ"
        let ok = #"{"user_id":"1","access_token":"\#(Self.access)","refresh_token":"\#(refresh)","expires_in":3599,"team_id":"1","scope":"boards:read","token_type":"bearer"}"#
        let first = "grant_type=authorization_code&client_id=\(Self.clientID)&client_secret=\(Self.secret)&code=\(Self.code)&redirect_uri=\(Self.enc(Self.redirect))"
        let confused = "grant_type=authorization_code&client_id=\(Self.clientID)&client_secret=\(Self.secret)&code=\(refresh)&redirect_uri=\(Self.enc(Self.redirect))"
        let rules = try importedRules([
            Self.entry(at: 0, "POST", "https://api.miro.com/v1/oauth/token", requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                       body: first, status: 200, responseHeaders: [("content-type", "application/json")], responseBody: ok),
            Self.entry(at: 3000, "POST", "https://api.miro.com/v1/oauth/token", requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                       body: confused, status: 401, responseHeaders: [("content-type", "application/json")],
                       responseBody: #"{"status":401,"code":"oauthError","message":"Invalid authorization code","type":"error"}"#),
        ], session: "confusion")
        #expect(rules.contains { $0.rule == "token-type-confusion" }, "\(rules)")
    }

    @Test("through import: a regenerated PKCE verifier at a generic provider is pkce-verifier-mismatch (real failure 13)")
    func pkceMismatchThroughImport() throws {
        // code_challenge = BASE64URL(SHA256("a" * 43)); the exchange sends "b" * 43.
        let challenge = "ZtNPunH49FD35FWYhT5Tv8I7vRKQJ8uxMaL0_9eHjNA"
        let redirect = "http://127.0.0.1:8765/callback"
        let authorize = "https://auth.example.com/authorize?response_type=code&client_id=abc&redirect_uri=\(Self.enc(redirect))&state=s1&code_challenge=\(challenge)&code_challenge_method=S256"
        let body = "grant_type=authorization_code&client_id=abc&code=pkcecode123&redirect_uri=\(Self.enc(redirect))&code_verifier=\(String(repeating: "b", count: 43))"
        let rules = try importedRules([
            Self.entry(at: 0, "GET", authorize, status: 302, responseHeaders: [("location", "\(redirect)?code=pkcecode123&state=s1")]),
            Self.entry(at: 5, "POST", "https://auth.example.com/oauth/token", requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                       body: body, status: 400, responseHeaders: [("content-type", "application/json")],
                       responseBody: #"{"error":"invalid_grant","error_description":"PKCE verification failed"}"#),
        ], session: "pkce")
        #expect(rules.contains { $0.rule == "pkce-verifier-mismatch" && $0.severity == "error" }, "\(rules)")
    }

    @Test("a malformed HAR names the entry and field and imports nothing")
    func malformedImport() throws {
        var har = try #require(try JSONSerialization.jsonObject(with: Self.codeExpiryHAR()) as? [String: Any])
        var log = har["log"] as! [String: Any]
        var entries = log["entries"] as! [[String: Any]]
        var request = entries[3]["request"] as! [String: Any]
        request["url"] = 17
        entries[3]["request"] = request
        log["entries"] = entries
        har["log"] = log
        _ = try importHAR(try write(Self.codeExpiryHAR(), "good.har"))
        let path = try write(try JSONSerialization.data(withJSONObject: har), "broken.har")
        let result = try tokentap(["import", path, "--home", home])
        #expect(result.status == 1)
        #expect(result.stderr.contains("entries[3]") && result.stderr.contains("request.url"), "\(result.stderr)")
        let listing = try tokentap(["list", "--session", "broken", "--json", "--home", home])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: listing.stdout) as? [Any])?.isEmpty == true, "nothing imported: \(listing.text)")
        #expect(try list("good").count == 6)
    }

    @Test("HAR export validates as HAR 1.2, re-imports to the same exchanges and findings, and holds no secret")
    func harRoundTrip() throws {
        _ = try importHAR(try write(Self.codeExpiryHAR(), "flow.har"))
        let out = dir.appendingPathComponent("export.har").path
        let export = try tokentap(["export", "--session", "flow", "--all", "--format", "har", "-o", out, "--home", home])
        #expect(export.status == 0, "\(export.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: out))
        let text = String(decoding: data, as: UTF8.self)
        for s in Self.planted { #expect(!text.contains(s), "planted secret in the HAR export") }
        #expect(text.contains("redacted.client_secret."))

        try validateHAR12(data, expectedEntries: 6)
        // The failed token exchange carries its verdict.
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entries = ((root["log"] as? [String: Any])?["entries"] as? [[String: Any]]) ?? []
        let verdicts = entries.compactMap { ($0["_tokentap"] as? [String: Any])?["verdict"] as? [String: Any] }
        #expect(verdicts.contains { $0["cause"] as? String == "code-expired" && $0["step"] as? String == "token exchange" }, "\(verdicts)")
        // And a real HAR parser from PyPI reads it: haralyzer, in the test virtualenv.
        guard let python = ProcessInfo.processInfo.environment["TOKENTAP_PYTHON"], !python.isEmpty else {
            Issue.record("TOKENTAP_PYTHON is not set: run the tests with scripts/test, which creates the virtualenv")
            return
        }
        let check = try runCommand(python, ["-c", """
            import json, sys
            from haralyzer import HarParser
            parser = HarParser(json.load(open(sys.argv[1])))
            print(len(parser.har_data["entries"]), parser.creator["name"], parser.har_data["version"])
            """, out])
        #expect(check.status == 0, "haralyzer: \(check.stderr)")
        #expect(check.text.trimmingCharacters(in: .whitespacesAndNewlines) == "6 tokentap 1.2")

        _ = try importHAR(out, session: "flow-again")
        let before = try list("flow"), after = try list("flow-again")
        #expect(before.count == after.count)
        func shape(_ rows: [[String: Any]]) -> [String] {
            rows.map { "\($0["method"] ?? "") \($0["url"] ?? "") \($0["status"] ?? "") \($0["started"] ?? "") \(($0["findings"] as? [String] ?? []).sorted())" }
        }
        #expect(shape(before) == shape(after))
        let d1 = try doctor("flow"), d2 = try doctor("flow-again")
        func rules(_ d: [String: Any]) -> [String] { ((d["findings"] as? [[String: Any]]) ?? []).map { "\($0["rule"] ?? "") \($0["title"] ?? "")" }.sorted() }
        #expect(rules(d1) == rules(d2))
        #expect(rules(d2).contains { $0.hasPrefix("code-expired ") })
    }

    /// The HAR 1.2 structure (softwareishard.com/blog/har-12-spec): required fields and their types.
    func validateHAR12(_ data: Data, expectedEntries: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let log = try #require(root["log"] as? [String: Any])
        #expect(log["version"] as? String == "1.2", sourceLocation: sourceLocation)
        let creator = try #require(log["creator"] as? [String: Any])
        #expect(creator["name"] as? String == "tokentap" && creator["version"] is String, sourceLocation: sourceLocation)
        let entries = try #require(log["entries"] as? [[String: Any]])
        #expect(entries.count == expectedEntries, sourceLocation: sourceLocation)
        func isNumber(_ v: Any?) -> Bool { v is NSNumber }
        func nameValues(_ v: Any?) -> Bool {
            guard let list = v as? [[String: Any]] else { return false }
            return list.allSatisfy { $0["name"] is String && $0["value"] is String }
        }
        for (i, e) in entries.enumerated() {
            let where_ = "entry \(i)"
            #expect((e["startedDateTime"] as? String).flatMap { ISO8601DateFormatter().date(from: String($0.prefix(19)) + "Z") } != nil, "\(where_) startedDateTime", sourceLocation: sourceLocation)
            #expect(isNumber(e["time"]), "\(where_) time", sourceLocation: sourceLocation)
            #expect(e["cache"] is [String: Any], "\(where_) cache", sourceLocation: sourceLocation)
            let req = try #require(e["request"] as? [String: Any])
            #expect(req["method"] is String && req["url"] is String && req["httpVersion"] is String, "\(where_) request", sourceLocation: sourceLocation)
            #expect(URL(string: req["url"] as? String ?? "")?.scheme != nil, "\(where_) url", sourceLocation: sourceLocation)
            #expect(nameValues(req["headers"]) && nameValues(req["queryString"]) && req["cookies"] is [Any], "\(where_) request lists", sourceLocation: sourceLocation)
            #expect(isNumber(req["headersSize"]) && isNumber(req["bodySize"]), "\(where_) request sizes", sourceLocation: sourceLocation)
            if let post = req["postData"] {
                let p = try #require(post as? [String: Any])
                #expect(p["mimeType"] is String && p["text"] is String, "\(where_) postData", sourceLocation: sourceLocation)
                if (p["mimeType"] as? String)?.hasPrefix("application/x-www-form-urlencoded") == true {
                    #expect(nameValues(p["params"]), "\(where_) postData.params", sourceLocation: sourceLocation)
                }
            }
            let resp = try #require(e["response"] as? [String: Any])
            #expect(isNumber(resp["status"]) && resp["statusText"] is String && resp["httpVersion"] is String, "\(where_) response", sourceLocation: sourceLocation)
            #expect(nameValues(resp["headers"]) && resp["cookies"] is [Any], "\(where_) response lists", sourceLocation: sourceLocation)
            #expect(resp["redirectURL"] is String && isNumber(resp["headersSize"]) && isNumber(resp["bodySize"]), "\(where_) response fields", sourceLocation: sourceLocation)
            let content = try #require(resp["content"] as? [String: Any])
            #expect(isNumber(content["size"]) && content["mimeType"] is String, "\(where_) content", sourceLocation: sourceLocation)
            if let enc = content["encoding"] { #expect(enc as? String == "base64", sourceLocation: sourceLocation) }
            let t = try #require(e["timings"] as? [String: Any])
            for k in ["send", "wait", "receive"] {
                #expect((t[k] as? Double).map { $0 >= 0 } == true, "\(where_) timings.\(k)", sourceLocation: sourceLocation)
            }
            for k in ["blocked", "dns", "connect", "ssl"] {
                #expect((t[k] as? Double).map { $0 >= 0 || $0 == -1 } ?? true, "\(where_) timings.\(k)", sourceLocation: sourceLocation)
            }
            let ext = try #require(e["_tokentap"] as? [String: Any])
            #expect(isNumber(ext["id"]) && ext["session"] is String && ext["kind"] is String && ext["findings"] is [[String: Any]], "\(where_) _tokentap", sourceLocation: sourceLocation)
        }
    }

    @Test("curl export of a token exchange, run with the variables set, sends the same request to a local server")
    func curlReproduces() throws {
        let upstream = try TestUpstream(directory: dir)
        try upstream.start()
        defer { upstream.stop() }
        let query = "client_id=\(Self.clientID)&client_secret=\(Self.secret)"
        let body = "grant_type=authorization_code&code=\(Self.code)&redirect_uri=\(Self.enc(Self.redirect))&note=cost$HOME\"q`x`\\n"
        let har: [String: Any] = ["log": ["version": "1.2", "creator": ["name": "x", "version": "1"], "entries": [
            Self.entry(at: 0, "POST", "https://api.miro.com/echo?\(query)",
                       requestHeaders: [(":authority", "api.miro.com"), ("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json"),
                                        ("content-length", String(body.utf8.count))],
                       body: body, status: 200, responseBody: "{}"),
        ]]]
        _ = try importHAR(try write(try JSONSerialization.data(withJSONObject: har), "echo.har"))
        let row = try #require(try list("echo").first)
        let id = try #require(row["id"] as? Int)
        let script = dir.appendingPathComponent("repro.sh").path
        let export = try tokentap(["export", "--id", String(id), "--format", "curl", "-o", script, "--home", home])
        #expect(export.status == 0, "\(export.stderr)")
        let text = try String(contentsOfFile: script, encoding: .utf8)
        for s in Self.planted { #expect(!text.contains(s), "planted secret in the curl export") }
        #expect(text.contains("\"$CLIENT_SECRET\"") || text.contains("$CLIENT_SECRET"), "\(text)")
        #expect(text.contains("$CODE"), "\(text)")

        // The variables the comment lists, set from the values the request carried (by role).
        let raw = ["client_secret": Self.secret, "code": Self.code]
        var env = ["PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": dir.path, "CURL_HOME": dir.path]
        for line in text.split(separator: "\n") where line.hasPrefix("#   ") {
            let parts = line.dropFirst(4).split(separator: ":", maxSplits: 1)
            let name = String(parts[0])
            let role = parts[1].split(separator: " ").dropFirst().first.map(String.init) ?? ""
            guard let value = raw[role] else {
                Issue.record("unexpected variable \(name) for role \(role) in:\n\(text)")
                continue
            }
            env[name] = value
        }
        #expect(env["CLIENT_SECRET"] == Self.secret && env["CODE"] == Self.code)
        // curl reaches the local server for api.miro.com and trusts its CA through its config file.
        try "connect-to = api.miro.com:443:127.0.0.1:\(upstream.port)\ncacert = \(upstream.caFile.path)\n"
            .write(to: dir.appendingPathComponent(".curlrc"), atomically: true, encoding: .utf8)
        let run = try runCommand("/bin/sh", [script], environment: env)
        #expect(run.status == 0, "\(run.stderr)\n\(text)")
        let echo = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: String], "\(run.text)")
        #expect(echo["method"] == "POST")
        let target = try #require(echo["target"])
        #expect(target.split(separator: "?").first == "/echo")
        func params(_ s: Substring?) -> [String] { (s ?? "").split(separator: "&").map(String.init).sorted() }
        #expect(params(target.split(separator: "?", maxSplits: 1).dropFirst().first) == params(Substring(query)))
        #expect(params(Substring(echo["body"] ?? "")) == params(Substring(body)))
    }

    @Test("a recording made with --keep-secrets is redacted in every export format")
    func keptSecretsAreRedactedOnExport() throws {
        let upstream = try TestUpstream(directory: dir)
        try upstream.start()
        defer { upstream.stop() }
        let proxy = try ServerProcess(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", "kept", "--keep-secrets",
                                       "--map-remote", "api.miro.com=127.0.0.1:\(upstream.port)", "--upstream-ca", upstream.caFile.path])
        let ca = dir.appendingPathComponent("home/certs/tokentap-ca.pem").path
        let sent = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", ca, "--max-time", "30",
                                                    "-H", "Authorization: Bearer \(Self.access)",
                                                    "-d", "grant_type=authorization_code&code=\(Self.code)",
                                                    "https://api.miro.com/echo?client_secret=\(Self.secret)"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(proxy.stop() == 0)
        // The recording holds the raw values (that is what --keep-secrets does)…
        let row = try #require(try list("kept").first)
        let show = try tokentap(["show", String(row["id"] as? Int ?? 0), "--json", "--home", home])
        #expect(show.text.contains(Self.secret) && show.text.contains(Self.code))
        // …and no export does.
        for format in ["har", "markdown", "curl", "html"] {
            let out = try tokentap(["export", "--session", "kept", "--format", format, "--home", home])
            #expect(out.status == 0, "\(format): \(out.stderr)")
            #expect(out.text.contains(format == "curl" ? "client_secret=$CLIENT_SECRET" : "redacted.client_secret."), "\(format): \(out.text)")
            #expect(out.text.contains(format == "curl" ? "Bearer $ACCESS_TOKEN" : "redacted.access_token."), "\(format): \(out.text)")
            for s in Self.planted { #expect(!out.text.contains(s), "planted secret in the \(format) export") }
        }
        // doctor --html shows the whole session, redacted the same way.
        let page = dir.appendingPathComponent("kept.html")
        let doctorHTML = try tokentap(["doctor", "--session", "kept", "--html", "-o", page.path, "--home", home])
        #expect(doctorHTML.status == 0, "\(doctorHTML.stderr)")
        #expect(doctorHTML.stderr == "wrote \(page.path)\n")
        let text = try String(contentsOf: page, encoding: .utf8)
        #expect(text.contains("redacted.client_secret.") && text.contains("redacted.access_token."))
        for s in Self.planted { #expect(!text.contains(s), "planted secret in doctor --html") }
    }

    @Test("markdown export: timeline, failing exchanges, rule ids with evidence and fix, version, no secret")
    func markdown() throws {
        let big = "{\"items\":\"" + String(repeating: "x", count: 5000) + "\"}"
        let large = Self.entry(at: 800, "GET", "https://api.miro.com/v2/boards?limit=50", status: 500, responseBody: big)
        _ = try importHAR(try write(Self.codeExpiryHAR(extra: [large]), "report.har"))
        let result = try tokentap(["export", "--session", "report", "--format", "markdown", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        let md = result.text
        for s in Self.planted { #expect(!md.contains(s), "planted secret in the Markdown report") }
        #expect(md.contains("`code-expired`"))
        let d = try doctor("report")
        for f in (d["findings"] as? [[String: Any]]) ?? [] {
            #expect(md.contains("`\(f["rule"] as? String ?? "?")`"))
            #expect(md.contains(f["fix"] as? String ?? "?"))
        }
        #expect(md.contains("## Timeline") && md.contains("**authorize**") && md.contains("**token exchange**"), "\(md)")
        // The verdicts come first: one cause per failed exchange.
        let wrong = try #require(md.range(of: "## What went wrong"))
        #expect(wrong.lowerBound < md.range(of: "## Timeline")!.lowerBound)
        #expect(md.contains("Cause: `code-expired` (certain)"), "\(md)")
        #expect(md.contains("Verdict: `code-expired`"), "\(md)")
        for v in (d["verdicts"] as? [[String: Any]]) ?? [] { #expect(md.contains("`\(v["cause"] as? String ?? "?")`")) }
        #expect(md.contains("POST https://api.miro.com/v1/oauth/token → 400"))
        #expect(md.contains("redacted.client_secret."))
        #expect(md.contains("tokentap 0."))
        #expect(md.contains("Secrets are redacted"))
        // Failing exchanges only, their bodies trimmed to about 2 KB.
        #expect(md.contains("GET https://api.miro.com/v2/boards?limit=50 → 500"))
        #expect(md.contains("more bytes trimmed"))
        #expect(!md.contains(String(repeating: "x", count: 2100)))
        #expect(!md.contains("### #4 GET https://app.example/static/app.js"))
    }
}
