import Foundation
import Testing

/// Provider profile files with the built binary (issue 24): the home's `profiles/` and
/// `--profile FILE` change what `import` (and the proxy) conclude, the evidence names the file,
/// and a bad file stops `proxy`, `run` and `import` at start with exit 2, naming the file, the
/// field and the line. Serialized; temporary homes.
@Suite("Provider profiles end to end", .serialized)
final class ProfileEndToEndTests {
    let dir: URL

    init() throws { dir = try makeTemporaryDirectory("tokentap-profiles") }
    deinit { try? FileManager.default.removeItem(at: dir) }

    var home: String { dir.appendingPathComponent("home").path }

    func write(_ text: String, _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// `doctor --json`'s findings of a session.
    func findings(_ session: String) throws -> [[String: Any]] {
        let result = try tokentap(["doctor", "--session", session, "--json", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        return try #require(doc["findings"] as? [[String: Any]])
    }

    @Test("profiles/ and --profile override Miro's code lifetime for import; the later file wins and the evidence names it")
    func importWithProfiles() throws {
        // The HAR's code is exchanged 11m 04s after it was issued: code-expired with the built-in 10 minutes.
        let har = try write(String(decoding: ExportEndToEndTests.codeExpiryHAR(), as: UTF8.self), "flow.har")
        #expect(try tokentap(["import", har, "--session", "builtin", "--home", home]).status == 0)
        #expect(try findings("builtin").contains { $0["rule"] as? String == "code-expired" })

        // A home profile allowing 20 minutes: no code-expired.
        let homeFile = try write(#"{"name": "Miro", "codeLifetime": 1200}"#, "home/profiles/miro.json")
        let lenient = try tokentap(["import", har, "--session", "lenient", "--home", home])
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(try !findings("lenient").contains { $0["rule"] as? String == "code-expired" })

        // --profile comes after the home's files: 5 minutes, and the finding names that file.
        let strict = try write(#"{"name": "Miro", "codeLifetime": 300}"#, "strict.json")
        let result = try tokentap(["import", har, "--session", "strict", "--profile", strict, "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        let expired = try #require(try findings("strict").first { $0["rule"] as? String == "code-expired" })
        let evidence = try #require(expired["evidence"] as? [String])
        #expect(evidence.contains("Miro code lifetime: 5m 00s (Miro profile, \(strict))"), "\(evidence)")
        #expect(!evidence.joined().contains(homeFile))

        // doctor reads the --profile files the session recorded again; one that is gone is named.
        let kept = try tokentap(["doctor", "--session", "strict", "--home", home])
        #expect(kept.status == 0 && !kept.stderr.contains("no longer exists"), "\(kept.stderr)")
        try FileManager.default.removeItem(atPath: strict)
        let gone = try tokentap(["doctor", "--session", "strict", "--home", home])
        #expect(gone.status == 0, "\(gone.stderr)")
        #expect(gone.stderr.contains("profile file \(strict), used when session strict was recorded, no longer exists"), "\(gone.stderr)")
    }

    @Test("a bad profile file stops proxy, run and import at start with exit 2, naming file, field and line")
    func badProfiles() throws {
        let syntax = try write("{\n  \"name\": \"Miro\",\n  \"codeLifetime\": 300,,\n}\n", "syntax.json")
        let proxy = try tokentap(["proxy", "--listen", "127.0.0.1:0", "--profile", syntax, "--home", home])
        #expect(proxy.status == 2)
        #expect(proxy.stderr.contains("profile file \(syntax), line 3"), "\(proxy.stderr)")
        #expect(!proxy.text.contains("listening on"))

        let typed = try write(#"{"name": "Slack", "errorCodes": [{"code": "x", "meaning": "y", "cause": false}]}"#, "typed.json")
        let run = try tokentap(["run", "--profile", typed, "--home", home, "--", "/bin/true"])
        #expect(run.status == 2)
        #expect(run.stderr.contains(typed) && run.stderr.contains("field errorCodes[0].cause"), "\(run.stderr)")

        let har = try write(String(decoding: ExportEndToEndTests.codeExpiryHAR(), as: UTF8.self), "flow.har")
        let unknown = try write(#"{"name": "Miro", "codeLifetim": 300}"#, "unknown.json")
        let imported = try tokentap(["import", har, "--session", "never", "--profile", unknown, "--home", home])
        #expect(imported.status == 2)
        #expect(imported.stderr.contains(unknown) && imported.stderr.contains("field codeLifetim"), "\(imported.stderr)")
        // Nothing was imported.
        let list = try tokentap(["list", "--session", "never", "--json", "--home", home])
        #expect(list.status != 0 || list.text.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(list.text)")

        // A bad file in the home's profiles/ folder is rejected the same way, by its path.
        let inHome = try write(#"{"name": "Okta", "codeLifetime": "long"}"#, "home/profiles/okta.json")
        let again = try tokentap(["proxy", "--listen", "127.0.0.1:0", "--home", home])
        #expect(again.status == 2)
        #expect(again.stderr.contains(inHome) && again.stderr.contains("field codeLifetime"), "\(again.stderr)")
    }
}
