import Foundation
import Testing

/// The OAuth doctor end to end (issue 7): Python clients make the mistakes of oauth-rules.md on
/// purpose, through the real proxy against `tokentap sandbox`, each in its own session; then
/// `tokentap doctor --session S --json` must name the right rule on the failing exchange, and
/// `tokentap list --json` must show the rule id in that exchange's `findings`. Correct flows must
/// produce no `error` or `warning` finding. Serialized; each test has its own sandbox and home.
@Suite("Doctor end to end", .serialized)
final class DoctorEndToEndTests {
    let rig: SandboxRig

    init() throws {
        rig = try SandboxRig()
    }

    deinit { rig.stop() }

    /// What one client run left behind.
    struct Diagnosis {
        var session: String
        /// The client's own view: `[{name, status, body}]`.
        var steps: [[String: Any]]
        /// `tokentap list --json` of the session.
        var list: [[String: Any]]
        /// `tokentap doctor --json` of the session.
        var doctor: [String: Any]
        /// The proxy's stdout: one line per exchange, the verdict's sentence and fix under a failed one.
        var live: [String] = []

        var findings: [[String: Any]] { doctor["findings"] as? [[String: Any]] ?? [] }
        /// The doctor's verdicts: one per failed OAuth exchange.
        var verdicts: [[String: Any]] { doctor["verdicts"] as? [[String: Any]] ?? [] }
        func verdict(on exchange: [String: Any]?) -> [String: Any]? {
            guard let id = exchange?["id"] as? Int else { return nil }
            return verdicts.first { $0["exchange"] as? Int == id }
        }
        var timeline: [[String: Any]] { doctor["timeline"] as? [[String: Any]] ?? [] }
        /// Findings of severity error or warning.
        var serious: [[String: Any]] { findings.filter { ["error", "warning"].contains($0["severity"] as? String ?? "") } }

        func step(_ name: String) -> [String: Any]? { steps.first { $0["name"] as? String == name } }
        func status(_ name: String) -> Int? { step(name)?["status"] as? Int }
        func body(_ name: String) -> String { step(name)?["body"] as? String ?? "" }

        /// The recorded token endpoint requests, in order.
        var tokenRequests: [[String: Any]] {
            list.filter { ($0["url"] as? String)?.hasPrefix(SandboxRig.tokenURL) == true }
        }
        func findings(_ rule: String) -> [[String: Any]] { findings.filter { $0["rule"] as? String == rule } }
        /// Rule ids `list` shows for one exchange.
        func listedRules(_ exchange: [String: Any]) -> [String] { exchange["findings"] as? [String] ?? [] }
        /// Everything the doctor printed, for failure messages.
        var dump: String {
            let data = try? JSONSerialization.data(withJSONObject: doctor, options: [.prettyPrinted, .sortedKeys])
            return data.map { String(decoding: $0, as: UTF8.self) } ?? "\(doctor)"
        }
    }

    /// Runs `doctor_clients.py MODE` through a proxy recording session `doctor-MODE`, stops the proxy
    /// (so every exchange is written), and reads back `list` and `doctor`.
    func run(_ mode: String) throws -> Diagnosis {
        let session = "doctor-\(mode)"
        let proxy = try rig.startProxy(session: session)
        let output: [String: Any]
        do {
            output = try rig.python(proxy, script: "doctor_clients.py", [mode, rig.clientID, rig.clientSecret, rig.redirectURI])
        } catch {
            proxy.stop()
            throw error
        }
        #expect(proxy.stop() == 0, "proxy stderr: \(proxy.errorText.withLockedValue { $0 })")
        // Let the reader of its stdout take the last lines (it runs until EOF on its own queue).
        var count = -1
        for _ in 0..<30 where proxy.lines.withLockedValue({ $0.count }) != count {
            count = proxy.lines.withLockedValue { $0.count }
            usleep(100_000)
        }
        return Diagnosis(session: session, steps: output["steps"] as? [[String: Any]] ?? [],
                         list: try rig.list(session: session), doctor: try rig.doctor(session: session),
                         live: proxy.lines.withLockedValue { $0 })
    }

    /// The doctor names `rule` with `severity` on `exchange` (an entry of `list`), and `list` shows the
    /// rule id in that exchange's `findings`. Returns the finding.
    @discardableResult
    func expectRule(_ rule: String, on exchange: [String: Any]?, in d: Diagnosis, severity: String = "error",
                    sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any]? {
        guard let exchange, let id = exchange["id"] as? Int else {
            Issue.record("no recorded exchange to check \(rule) on; list: \(d.list)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(d.doctor["session"] as? String == d.session, sourceLocation: sourceLocation)
        let finding = d.findings(rule).first { $0["exchange"] as? Int == id }
        #expect(finding != nil, "doctor names \(rule) on #\(id); doctor said:\n\(d.dump)", sourceLocation: sourceLocation)
        #expect(finding?["severity"] as? String == severity, "severity of \(rule): \(finding ?? [:])", sourceLocation: sourceLocation)
        for key in ["confidence", "title", "fix", "reference"] {
            #expect((finding?[key] as? String)?.isEmpty == false, "\(rule) has a \(key)", sourceLocation: sourceLocation)
        }
        #expect((finding?["evidence"] as? [String])?.isEmpty == false, "\(rule) has evidence", sourceLocation: sourceLocation)
        #expect(d.listedRules(exchange).contains(rule), "list shows \(rule) on #\(id): \(exchange)", sourceLocation: sourceLocation)
        return finding
    }

    /// The doctor's verdict on `exchange` names `cause`, with a one-sentence summary and a fix.
    @discardableResult
    func expectVerdict(_ cause: String, on exchange: [String: Any]?, in d: Diagnosis,
                       sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any]? {
        let verdict = d.verdict(on: exchange)
        #expect(verdict?["cause"] as? String == cause, "verdict on #\(exchange?["id"] ?? "?"): \(d.verdicts)", sourceLocation: sourceLocation)
        #expect((verdict?["summary"] as? String)?.hasSuffix(".") == true, "\(verdict ?? [:])", sourceLocation: sourceLocation)
        #expect((verdict?["fix"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(verdict?["status"] as? Int == exchange?["status"] as? Int, sourceLocation: sourceLocation)
        return verdict
    }

    /// No finding's text carries a raw secret of the demo app or the sandbox's code/token shape.
    func expectNoSecrets(_ d: Diagnosis, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!d.dump.contains(rig.clientSecret), "the client secret leaked into doctor output", sourceLocation: sourceLocation)
        let listText = (try? JSONSerialization.data(withJSONObject: d.list)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(!listText.contains(rig.clientSecret), "the client secret leaked into list output", sourceLocation: sourceLocation)
    }

    @Test("a correct flow in the query-string style of Miro's SDKs: no error or warning")
    func correctQueryStyle() throws {
        let d = try run("correct-query")
        #expect(d.steps.map { $0["status"] as? Int } == [302, 200, 200, 200, 200], "\(d.steps)")
        #expect(d.serious.isEmpty, "false alarms:\n\(d.dump)")
        #expect(d.verdicts.isEmpty, "\(d.verdicts)")
        let steps = d.timeline.map { $0["step"] as? String ?? "" }
        for expected in ["authorize", "redirect", "token exchange", "api call", "refresh"] {
            #expect(steps.contains(expected), "timeline has \(expected): \(steps)")
        }
        expectNoSecrets(d)
    }

    @Test("a correct flow with requests-oauthlib (form body, Basic and body credentials): no error or warning",
          arguments: ["basic", "body"])
    func correctOAuthlib(clientAuth: String) throws {
        let session = "doctor-oauthlib-\(clientAuth)"
        let proxy = try rig.startProxy(session: session)
        let result: [String: Any]
        do {
            result = try rig.python(proxy, script: "oauthlib_flow.py", [rig.clientID, rig.clientSecret, rig.redirectURI, clientAuth])
        } catch {
            proxy.stop()
            throw error
        }
        #expect(proxy.stop() == 0)
        #expect((result["boards_new"] as? [String: Any])?["status"] as? Int == 200, "\(result)")
        let d = Diagnosis(session: session, steps: [], list: try rig.list(session: session), doctor: try rig.doctor(session: session))
        // The last call reuses the access token the refresh replaced: that one is expected to be named.
        let lastCall = try #require(d.list.last)
        #expect(lastCall["status"] as? Int == 401)
        let unexpected = d.serious.filter { $0["exchange"] as? Int != lastCall["id"] as? Int }
        #expect(unexpected.isEmpty, "false alarms:\n\(d.dump)")
        expectRule("access-token-superseded", on: lastCall, in: d)
        expectVerdict("access-token-superseded", on: lastCall, in: d)
        #expect(d.verdicts.count == 1, "\(d.verdicts)")
        expectNoSecrets(d)
    }

    @Test("redirect_uri with a trailing slash at the exchange: redirect-uri-mismatch naming the trailing slash")
    func trailingSlash() throws {
        let d = try run("trailing-slash")
        #expect(d.status("exchange") == 401)
        #expect(d.body("exchange").contains("Redirect URI mismatch."))
        let finding = expectRule("redirect-uri-mismatch", on: d.tokenRequests.last, in: d)
        let text = ([finding?["title"] as? String ?? ""] + (finding?["evidence"] as? [String] ?? [])).joined(separator: " ")
        #expect(text.contains("trailing slash"), "\(text)")
        expectVerdict("redirect-uri-mismatch", on: d.tokenRequests.last, in: d)
        expectNoSecrets(d)
    }

    @Test("a code exchanged twice: code-reused on the second exchange, nothing serious on the first")
    func codeTwice() throws {
        let d = try run("code-twice")
        #expect(d.status("exchange-1") == 200)
        #expect(d.status("exchange-2") == 401)
        #expect(d.tokenRequests.count == 2)
        expectRule("code-reused", on: d.tokenRequests.last, in: d)
        expectVerdict("code-reused", on: d.tokenRequests.last, in: d)
        let first = try #require(d.tokenRequests.first)
        #expect(d.verdict(on: first) == nil)
        #expect(!d.listedRules(first).contains("code-reused"))
        #expect(d.serious.allSatisfy { $0["exchange"] as? Int != first["id"] as? Int }, "\(d.dump)")
        // Replay before time: the reuse is not blamed on expiry or on the credentials.
        #expect(d.findings("code-expired").isEmpty)
        #expect(d.findings("server-rejected-credentials").isEmpty)
        expectNoSecrets(d)
    }

    @Test("Basic credentials with a trailing newline (echo | base64): basic-auth-malformed")
    func basicNewline() throws {
        let d = try run("basic-newline")
        #expect(d.status("exchange") == 401, "\(d.steps)")
        expectRule("basic-auth-malformed", on: d.tokenRequests.last, in: d)
        expectVerdict("basic-auth-malformed", on: d.tokenRequests.last, in: d)
        #expect(d.findings("server-rejected-credentials").isEmpty, "a request-side cause explains it:\n\(d.dump)")
        expectNoSecrets(d)
    }

    @Test("a Basic header value ending in a line break (base64.encodebytes) on a raw socket: the proxy refuses it with 400, records the redacted head as a client error, and the doctor names basic-auth-malformed")
    func basicNewlineOnTheWire() throws {
        let d = try run("basic-newline-raw")
        // `Authorization: Basic …\n\r\n` ends the header line with a bare LF, which the proxy's
        // HTTP/1.1 parser (llhttp, strict) refuses: the client gets tokentap's 400, not Miro's answer.
        #expect(d.status("exchange") == 400, "\(d.steps)")
        #expect(d.body("exchange").contains("malformed HTTP request"), "\(d.steps)")
        let rows = try rig.list(session: d.session, all: true)
        let refused = try #require(rows.first { $0["kind"] as? String == "client-error" }, "\(rows)")
        #expect(refused["status"] as? Int == 400)
        #expect(refused["error_kind"] as? String == "malformed")
        #expect((refused["error"] as? String)?.contains("malformed request") == true)
        // The refused head was kept (method, target, fields), redacted, and judged.
        #expect(refused["method"] as? String == "POST", "\(refused)")
        expectRule("basic-auth-malformed", on: refused, in: d)
        expectVerdict("basic-auth-malformed", on: refused, in: d)
        expectNoSecrets(d)
    }

    @Test("a JSON body to Miro's token endpoint: body-not-form-encoded")
    func jsonBody() throws {
        let d = try run("json-body")
        #expect(d.status("exchange") == 400, "\(d.steps)")
        expectRule("body-not-form-encoded", on: d.tokenRequests.last, in: d)
        let verdict = expectVerdict("body-not-form-encoded", on: d.tokenRequests.last, in: d)
        #expect((verdict?["summary"] as? String)?.contains("message agrees") == true, "\(verdict ?? [:])")
        #expect(d.verdicts.count == 1, "\(d.verdicts)")
        // The text form answers first: the verdict, then the timeline, then the findings.
        let text = try tokentap(["doctor", "--home", rig.home, "--session", d.session]).text
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count > 3 && lines[2] == "What went wrong", "\(text)")
        #expect(lines.count > 3 && lines[3].hasPrefix("  Token exchange #"), "\(text)")
        #expect(lines.contains("      cause: body-not-form-encoded (likely)"), "\(text)")
        let order = ["What went wrong", "Timeline", "Findings"].compactMap { text.range(of: $0)?.lowerBound }
        #expect(order.count == 3 && order == order.sorted(), "\(text)")
        #expect(!text.contains("[info,"), "info findings only with --all:\n\(text)")
        #expect(text.contains("info finding"), "the text says info findings are hidden:\n\(text)")
        let all = try tokentap(["doctor", "--home", rig.home, "--session", d.session, "--all"]).text
        #expect(all.contains("[info, certain]") && all.contains("provider-error"), "\(all)")
        #expect(!text.contains(rig.clientSecret))
        // The proxy's live output: under the failed exchange, the verdict's sentence and fix only.
        let row = try #require(d.live.firstIndex { $0.contains("POST api.miro.com/v1/oauth/token") && $0.contains(" 400 ") }, "\(d.live)")
        #expect(row + 2 < d.live.count && d.live[row + 1].hasPrefix("    Token exchange #"), "\(d.live)")
        #expect(row + 2 < d.live.count && d.live[row + 2].hasPrefix("    fix: "), "\(d.live)")
        #expect(!d.live.contains { $0.hasPrefix("    error ") }, "one verdict, not every finding: \(d.live)")
        expectNoSecrets(d)
    }

    @Test("a refresh with the refresh token a refresh already rotated: refresh-token-rotated")
    func staleRefresh() throws {
        let d = try run("stale-refresh")
        #expect(d.steps.map { $0["status"] as? Int } == [302, 200, 200, 401], "\(d.steps)")
        #expect(d.tokenRequests.count == 3)
        expectRule("refresh-token-rotated", on: d.tokenRequests.last, in: d)
        expectVerdict("refresh-token-rotated", on: d.tokenRequests.last, in: d)
        let firstRefresh = d.tokenRequests[1]
        #expect(d.serious.allSatisfy { $0["exchange"] as? Int != firstRefresh["id"] as? Int }, "\(d.dump)")
        expectNoSecrets(d)
    }

    @Test("a wrong client secret in a well-formed request: server-rejected-credentials")
    func wrongSecret() throws {
        let d = try run("wrong-secret")
        #expect(d.status("exchange") == 401, "\(d.steps)")
        expectRule("server-rejected-credentials", on: d.tokenRequests.last, in: d)
        let verdict = expectVerdict("server-rejected-credentials", on: d.tokenRequests.last, in: d)
        #expect((verdict?["summary"] as? String)?.contains("Miro's message agrees") == true, "\(verdict ?? [:])")
        expectNoSecrets(d)
    }

    @Test("the same never-issued code twice, both rejected for the code: no code-reused; the verdict names the code (issue 17)")
    func badCodeTwice() throws {
        let d = try run("bad-code-twice")
        #expect(d.status("exchange-1") == 401 && d.status("exchange-2") == 401, "\(d.steps)")
        #expect(d.body("exchange-2").contains("Invalid authorization code"))
        #expect(d.tokenRequests.count == 2)
        #expect(d.findings("code-reused").isEmpty, "the code never worked:\n\(d.dump)")
        expectVerdict("code-unknown", on: d.tokenRequests.first, in: d)
        expectVerdict("code-unknown", on: d.tokenRequests.last, in: d)
        expectNoSecrets(d)
    }

    @Test("a never-issued code sent with credentials that worked: code-unknown (likely), not server-rejected-credentials (issue 17)")
    func unknownCodeAfterSuccess() throws {
        let d = try run("unknown-code-after-success")
        #expect(d.status("exchange-1") == 200 && d.status("exchange-2") == 401, "\(d.steps)")
        #expect(d.findings("server-rejected-credentials").isEmpty, "\(d.dump)")
        let verdict = expectVerdict("code-unknown", on: d.tokenRequests.last, in: d)
        #expect(verdict?["confidence"] as? String == "likely")
        #expect(d.verdicts.count == 1, "\(d.verdicts)")
        expectNoSecrets(d)
    }

    @Test("a code exchanged 660 s (sandbox clock) after the redirect: code-expired, not code-reused")
    func expiredCode() throws {
        let d = try run("expired-code")
        #expect(d.status("advance") == 200, "\(d.steps)")
        #expect(d.status("exchange") == 401)
        #expect(d.body("exchange").contains("expired"))
        let finding = expectRule("code-expired", on: d.tokenRequests.last, in: d)
        #expect((finding?["title"] as? String)?.contains("11m") == true, "elapsed time shown: \(finding ?? [:])")
        expectVerdict("code-expired", on: d.tokenRequests.last, in: d)
        #expect(d.findings("code-reused").isEmpty)
        #expect(d.timeline.contains { $0["step"] as? String == "test clock" }, "\(d.timeline)")
        expectNoSecrets(d)
    }
}
