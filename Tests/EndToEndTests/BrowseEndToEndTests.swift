import Foundation
import NIOConcurrencyHelpers
import Testing

/// `tokentap sessions`, `delete`, `tail`, combined `list` filters and `export --pseudonymize` with
/// the built binary (issue 9), on sessions recorded by importing small HAR files (no proxy).
/// Serialized; temporary homes.
@Suite("Browse end to end", .serialized)
final class BrowseEndToEndTests {
    let dir: URL
    var home: String { dir.appendingPathComponent("home").path }

    static let teamID = "3458764516184293832"
    static let userID = "3458764517517852417"
    static let email = "jane.doe@corp.example"
    static let userName = "Jane Doe"

    init() throws { dir = try makeTemporaryDirectory("tokentap-browse") }
    deinit { try? FileManager.default.removeItem(at: dir) }

    // MARK: HAR builder

    static func time(_ offset: TimeInterval) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: 1_764_410_000 + offset))
    }

    static func entry(at offset: TimeInterval, _ method: String, _ url: String, requestHeaders: [(String, String)] = [],
                      body: String? = nil, status: Int, responseHeaders: [(String, String)] = [], responseBody: String = "") -> [String: Any] {
        func headers(_ pairs: [(String, String)]) -> [[String: String]] { pairs.map { ["name": $0.0, "value": $0.1] } }
        var request: [String: Any] = ["method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": headers(requestHeaders),
                                      "queryString": [], "cookies": [], "headersSize": -1, "bodySize": body?.utf8.count ?? 0]
        if let body { request["postData"] = ["mimeType": "application/x-www-form-urlencoded", "text": body] }
        return [
            "startedDateTime": time(offset), "time": 12.5, "cache": [:], "request": request,
            "response": ["status": status, "statusText": "", "httpVersion": "HTTP/1.1", "headers": headers(responseHeaders),
                         "cookies": [], "content": ["size": responseBody.utf8.count, "mimeType": "application/json", "text": responseBody],
                         "redirectURL": "", "headersSize": -1, "bodySize": -1],
            "timings": ["send": 0.5, "wait": 10, "receive": 2],
        ]
    }

    static let authorize = "https://miro.com/oauth/authorize?response_type=code&client_id=3074457363680401096&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1"
    static let token = "https://api.miro.com/v1/oauth/token"
    static let boards = "https://api.miro.com/v2/boards"
    static let submit = "https://api.example.com/submit"
    static let script = "https://app.example/static/app.js"
    static let context = "https://api.miro.com/v1/oauth-token"

    /// Six exchanges at offsets 0, 10, 20, 200, 210, 220 s: authorize 302, token POST 401, boards 200
    /// (Bearer), another host's POST 400, a script 200, the token context 200 naming a user and team.
    static func firstSession() -> [[String: Any]] {
        let bearer = ("authorization", "Bearer eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_accEssTokenAAAAAAAAAAAAAAA")
        let contextBody = #"{"type":"user","team":{"id":"\#(teamID)","name":"Acme Design"},"user":{"id":"\#(userID)","name":"\#(userName)"},"#
            + #""createdBy":{"id":"\#(userID)","name":"\#(userName)"},"email":"\#(email)","scopes":["boards:read"]}"#
        return [
            entry(at: 0, "GET", authorize, status: 302,
                  responseHeaders: [("location", "https://app.example/cb?code=eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_c0de&state=s1&team_id=\(teamID)")]),
            entry(at: 10, "POST", token, requestHeaders: [("content-type", "application/x-www-form-urlencoded")],
                  body: "grant_type=authorization_code&client_id=3074457363680401096&client_secret=Xk9fQ2mZ7pL4vR8tY1wB6nC3dE5gH0jKq2&code=eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_c0de&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
                  status: 401, responseBody: #"{"status":401,"code":"oauthError","message":"Invalid client_secret.","type":"error"}"#),
            entry(at: 20, "GET", boards, requestHeaders: [bearer], status: 200, responseBody: #"{"data":[]}"#),
            entry(at: 200, "POST", submit, body: "a=1", status: 400, responseBody: "{}"),
            entry(at: 210, "GET", script, status: 200, responseBody: "console.log(1)"),
            entry(at: 220, "GET", context, requestHeaders: [bearer], status: 200, responseBody: contextBody),
        ]
    }

    /// Three exchanges: a POST 500 to another host, a GET 200, a POST 201 to the board API.
    static func secondSession() -> [[String: Any]] {
        [
            entry(at: 1000, "POST", submit, body: "b=2", status: 500, responseBody: "{}"),
            entry(at: 1001, "GET", boards, status: 200, responseBody: #"{"data":[]}"#),
            entry(at: 1002, "POST", boards, body: "name=x", status: 201, responseBody: "{}"),
        ]
    }

    func importSession(_ entries: [[String: Any]], _ name: String) throws {
        let har: [String: Any] = ["log": ["version": "1.2", "creator": ["name": "test", "version": "1"], "entries": entries]]
        let path = dir.appendingPathComponent("\(name).har")
        try JSONSerialization.data(withJSONObject: har).write(to: path)
        let result = try tokentap(["import", path.path, "--session", name, "--home", home])
        #expect(result.status == 0, "import: \(result.stderr)")
    }

    func list(_ args: [String]) throws -> [[String: Any]] {
        let result = try tokentap(["list"] + args + ["--json", "--home", home])
        #expect(result.status == 0, "list \(args): \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
    }

    func urls(_ rows: [[String: Any]]) -> [String] { rows.map { "\($0["method"] as? String ?? "") \($0["url"] as? String ?? "")" } }

    // MARK: Tests

    @Test("list filters combine: --status 4xx --method POST --host, --failed, --oauth, --since, --limit")
    func listFilters() throws {
        try importSession(Self.firstSession(), "one")
        let all = try list(["--session", "one"])
        #expect(all.count == 6)

        #expect(urls(try list(["--session", "one", "--status", "4xx", "--method", "POST", "--host", "api.miro.com"])) == ["POST \(Self.token)"])
        #expect(urls(try list(["--session", "one", "--status", "4xx", "--method", "post"])) == ["POST \(Self.token)", "POST \(Self.submit)"])
        #expect(urls(try list(["--session", "one", "--status", "401"])) == ["POST \(Self.token)"])
        #expect(urls(try list(["--session", "one", "--host", "*.miro.com", "--method", "GET"])) == ["GET \(Self.boards)", "GET \(Self.context)"])

        let failed = urls(try list(["--failed"]))  // the latest session by default
        #expect(failed.contains("POST \(Self.token)") && failed.contains("POST \(Self.submit)"))
        #expect(!failed.contains("GET \(Self.script)") && !failed.contains("GET \(Self.boards)"))

        let oauth = urls(try list(["--oauth"]))
        #expect(oauth.contains("GET \(Self.authorize)") && oauth.contains("POST \(Self.token)") && oauth.contains("GET \(Self.boards)"))
        #expect(!oauth.contains("GET \(Self.script)") && !oauth.contains("POST \(Self.submit)"))
        #expect(urls(try list(["--oauth", "--failed"])) == ["POST \(Self.token)"])

        #expect(urls(try list(["--since", Self.time(100)])) == ["POST \(Self.submit)", "GET \(Self.script)", "GET \(Self.context)"])
        #expect(urls(try list(["--since", Self.time(100), "--method", "GET", "--limit", "1"])) == ["GET \(Self.context)"])
        let limited = try list(["--limit", "2"])
        #expect(urls(limited) == ["GET \(Self.script)", "GET \(Self.context)"])
        #expect(limited.map { $0["id"] as? Int ?? 0 } == all.suffix(2).map { $0["id"] as? Int ?? -1 })

        let bad = try tokentap(["list", "--status", "4x", "--home", home])
        #expect(bad.status == 2)
    }

    @Test("sessions --json, then delete: refused without a terminal and --yes, unknown session exits 1, --yes deletes")
    func sessionsAndDelete() throws {
        try importSession(Self.firstSession(), "one")
        try importSession(Self.secondSession(), "two")
        let result = try tokentap(["sessions", "--json", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        let sessions = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
        #expect(sessions.map { $0["name"] as? String } == ["one", "two"])
        #expect(sessions.map { $0["count"] as? Int } == [6, 3])
        #expect((sessions[1]["failures"] as? Int) == 1)
        #expect((sessions[0]["failures"] as? Int ?? 0) >= 2)
        #expect(sessions[0]["first_started"] as? String == Self.time(0).replacingOccurrences(of: ".000Z", with: ".000000Z"))
        let text = try tokentap(["sessions", "--home", home])
        #expect(text.status == 0 && text.text.contains("one") && text.text.contains("two *"))

        let refused = try tokentap(["delete", "--session", "one", "--home", home])  // stdin is a pipe
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--yes"))
        let unknown = try tokentap(["delete", "--session", "nope", "--yes", "--home", home])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("nope"))
        #expect(try list(["--session", "one"]).count == 6)

        let deleted = try tokentap(["delete", "--session", "one", "--yes", "--home", home])
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(deleted.text.contains("6"))
        let after = try tokentap(["sessions", "--json", "--home", home])
        let remaining = try #require(try JSONSerialization.jsonObject(with: after.stdout) as? [[String: Any]])
        #expect(remaining.map { $0["name"] as? String } == ["two"])
        #expect(try list(["--session", "one"]).isEmpty)
    }

    /// Starts `tokentap tail ARGS --home HOME`, collecting its stdout lines and stderr text.
    func startTail(_ args: [String]) throws -> (Process, NIOLockedValueBox<[String]>, NIOLockedValueBox<String>) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tokentapBinary)
        process.arguments = ["tail"] + args + ["--home", home]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let lines = NIOLockedValueBox<[String]>([])
        let errors = NIOLockedValueBox("")
        collectLines(out, into: lines)
        collectText(err, into: errors)
        return (process, lines, errors)
    }

    @Test("tail --json --method POST prints, one JSON object a line, what another process records; SIGINT exits 0")
    func tail() throws {
        try importSession(Self.firstSession(), "one")
        let (process, lines, errors) = try startTail(["--json", "--method", "POST"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // It has read where the store ends: what is imported now is new.
        #expect(eventually(30) { errors.withLockedValue { $0.contains("following") } }, "\(errors.withLockedValue { $0 })")
        try importSession(Self.secondSession(), "two")
        #expect(eventually(30) { lines.withLockedValue { $0.count } >= 2 }, "lines: \(lines.withLockedValue { $0 })")
        kill(process.processIdentifier, SIGINT)
        let exited = eventually(20) { !process.isRunning }
        #expect(exited, "tail did not exit on SIGINT")
        if !exited { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)

        let objects = try lines.withLockedValue { $0 }.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(objects.map { "\($0["method"] as? String ?? "") \($0["url"] as? String ?? "")" } == ["POST \(Self.submit)", "POST \(Self.boards)"])
        #expect(objects.allSatisfy { $0["session"] as? String == "two" })
        #expect(objects.map { $0["status"] as? Int } == [500, 201])
        // The list --json item shape.
        let listed = try list(["--session", "two", "--method", "POST"])
        #expect(objects.map { Set($0.keys) } == listed.map { Set($0.keys) })
        #expect(objects.map { $0["id"] as? Int } == listed.map { $0["id"] as? Int })
    }

    @Test("tail (text) prints under a failed OAuth exchange its verdict's sentence and fix, not every finding")
    func tailPrintsTheVerdict() throws {
        try importSession(Self.firstSession(), "one")
        let (process, lines, _) = try startTail(["--limit", "10"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(eventually(30) { lines.withLockedValue { $0.contains { $0.hasPrefix("    Token exchange #") } } },
                "lines: \(lines.withLockedValue { $0 })")
        kill(process.processIdentifier, SIGINT)
        _ = eventually(20) { !process.isRunning }
        let text = lines.withLockedValue { $0 }
        let verdict = try #require(text.firstIndex { $0.hasPrefix("    Token exchange #") })
        #expect(text[verdict].contains("(HTTP 401)"), "\(text)")
        #expect(verdict + 1 < text.count && text[verdict + 1].hasPrefix("    fix: "), "\(text)")
        #expect(verdict > 0 && text[verdict - 1].contains("POST") && text[verdict - 1].contains("/v1/oauth/token"), "\(text)")
        #expect(!text.contains { $0.hasPrefix("    error ") }, "one verdict, not every finding: \(text)")
    }

    @Test("export --pseudonymize replaces e-mail, user names and user/team ids with stable pseudonyms")
    func pseudonymizedExport() throws {
        try importSession(Self.firstSession(), "one")
        let plain = try tokentap(["export", "--format", "har", "--session", "one", "--home", home])
        #expect(plain.status == 0, "\(plain.stderr)")
        for value in [Self.email, Self.userName, Self.teamID, Self.userID] { #expect(plain.text.contains(value)) }

        let result = try tokentap(["export", "--format", "har", "--session", "one", "--pseudonymize", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        for value in [Self.email, Self.userName, "Acme Design", Self.teamID, Self.userID] {
            #expect(!result.text.contains(value), "\(value) left in the export")
        }
        #expect(result.text.contains("user1@example.invalid"))
        let har = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let entries = try #require((har["log"] as? [String: Any])?["entries"] as? [[String: Any]])
        #expect(entries.count == 6)
        // The team id in the authorize redirect and in the token context got the same pseudonym.
        let locations: [String] = entries.compactMap { entry in
            let headers = (entry["response"] as? [String: Any])?["headers"] as? [[String: Any]] ?? []
            return headers.first { ($0["name"] as? String)?.lowercased() == "location" }?["value"] as? String
        }
        let location = try #require(locations.first)
        let parts = location.components(separatedBy: "team_id=")
        #expect(parts.count == 2)
        let team = parts[parts.count - 1]
        let texts: [String] = entries.compactMap { (($0["response"] as? [String: Any])?["content"] as? [String: Any])?["text"] as? String }
        let contextText = try #require(texts.first { $0.contains("\"team\"") })
        let context = try #require(try JSONSerialization.jsonObject(with: Data(contextText.utf8)) as? [String: Any])
        #expect((context["team"] as? [String: Any])?["id"] as? String == team)
        #expect((context["user"] as? [String: Any])?["id"] as? String == (context["createdBy"] as? [String: Any])?["id"] as? String)
        #expect((context["user"] as? [String: Any])?["name"] as? String == "User 1")
        #expect(context["scopes"] as? [String] == ["boards:read"])

        // The HTML report takes --pseudonymize too.
        let html = try tokentap(["export", "--format", "html", "--session", "one", "--pseudonymize", "--home", home])
        #expect(html.status == 0, "\(html.stderr)")
        for value in [Self.email, Self.userName, "Acme Design", Self.teamID, Self.userID] {
            #expect(!html.text.contains(value), "\(value) left in the HTML export")
        }
        #expect(html.text.contains("user1@example.invalid"))
        #expect(html.text.components(separatedBy: "<g class=\"exchange").count - 1 == 6)
    }
}
