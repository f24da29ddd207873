import Foundation
import NIOConcurrencyHelpers
import Testing

/// Issue 26: recordings survive `kill -9` under load, and several recorders share one home
/// (design.md, "Data on disk" and "Two recorders on one home"). Deterministic: the tests wait for
/// events (a live line, a process exit), never assert on elapsed time.
@Suite("Durability end to end", .serialized)
final class DurabilityEndToEndTests {
    let fixture: UpstreamFixture
    var home: String { fixture.home }

    init() throws { fixture = try UpstreamFixture() }

    /// `tokentap list --json --all` of one session.
    func rows(_ session: String) throws -> [[String: Any]] {
        let result = try tokentap(["list", "--home", home, "--session", session, "--all", "--json"])
        #expect(result.status == 0, "list failed: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
    }

    /// `count` curl clients at once, each GETting `perClient` distinct `/echo?tag=…&c=…&n=…` URLs
    /// on one keep-alive connection through `proxyURL` (or, `proxyURL` nil, the proxy the
    /// environment names: under `tokentap run`). Returns every URL a client got a `200` for.
    static func curlCommand(tag: String, client: Int, perClient: Int, proxyURL: String?, ca: String?) -> [String] {
        var args = ["-sS", "--max-time", "300", "-w", "%{http_code} %{url_effective}\\n"]
        if let proxyURL { args += ["--proxy", proxyURL] }
        if let ca { args += ["--cacert", ca] }
        for n in 0..<perClient { args += ["-o", "/dev/null", "https://api.miro.com/echo?tag=\(tag)&c=\(client)&n=\(n)"] }
        return args
    }

    /// The URLs of the `200 URL` lines curl's `-w` printed.
    static func answered(_ stdout: String) -> [String] {
        stdout.split(separator: "\n").compactMap { line in line.hasPrefix("200 ") ? String(line.dropFirst(4)) : nil }
    }

    @Test("kill -9 one second after the last live line of a load run: every exchange with a live line is stored; the database opens cleanly")
    func killNineUnderLoad() throws {
        let proxy = try fixture.startProxy(session: "load")
        let clients = 16, perClient = 40
        // The load: 16 connections at once, 640 exchanges, as fast as the proxy takes them.
        let started = try (0..<clients).map { c in
            try Started("/usr/bin/curl", Self.curlCommand(tag: "load", client: c, perClient: perClient,
                                                          proxyURL: proxy.proxyURL, ca: fixture.proxyCA))
        }
        let results = started.map { $0.finish() }
        for r in results { #expect(r.status == 0, "curl: \(r.stderr)") }
        let answered = results.flatMap { Self.answered($0.stdout) }
        #expect(answered.count == clients * perClient)

        // Wait for the live line of the last exchange (every answered one has its line), then 1 s.
        func liveLines() -> [String] { proxy.lines.withLockedValue { $0.filter { $0.contains("/echo?tag=load&") } } }
        #expect(eventually(600) { liveLines().count >= answered.count }, "\(liveLines().count) live lines of \(answered.count)")
        usleep(1_000_000)
        #expect(proxy.stop(signal: SIGKILL) == SIGKILL)

        // Every exchange whose live line was printed is in the database, under the id it printed.
        let printed = liveLines()
        let stored = try rows("load")
        let storedByID = Dictionary(uniqueKeysWithValues: stored.compactMap { row -> (Int, String)? in
            guard let id = row["id"] as? Int, let url = row["url"] as? String else { return nil }
            return (id, url)
        })
        var missing: [String] = []
        for line in printed {
            // `#ID HH:MM:SS.mmm GET api.miro.com/echo?… 200 1.2ms`
            let fields = line.split(separator: " ")
            guard let id = Int(fields[0].dropFirst()), fields.count > 3 else { missing.append(line); continue }
            if storedByID[id] != "https://" + fields[3] { missing.append(line) }
        }
        #expect(missing.isEmpty, "live lines without their row: \(missing.prefix(5))")
        #expect(Set(stored.compactMap { $0["url"] as? String }) == Set(answered))
        #expect(stored.allSatisfy { $0["status"] as? Int == 200 })

        // The database opens cleanly: SQLite's own check, and a new proxy records into it.
        let check = try runCommand("/usr/bin/sqlite3", ["-readonly", home + "/recordings/tokentap.sqlite", "PRAGMA integrity_check;"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.text == "ok\n")
        let again = try fixture.startProxy(session: "after")
        let ping = try fixture.curl(again, ["https://api.miro.com/echo?after=1"])
        #expect(ping.status == 0)
        #expect(try eventually { again.lines.withLockedValue { $0.contains { $0.contains("/echo?after=1") } } })
        #expect(again.stop() == 0)
        #expect(try rows("after").count == 1)
        #expect(try rows("load").count == stored.count)
    }

    @Test("a proxy, a second proxy, a run with its own proxy and an import record into one database at once, each session complete")
    func recordersShareAHome() throws {
        let first = try fixture.startProxy(session: "first")
        let stateFile = home + "/recordings/proxy.json"
        let stateData = try Data(contentsOf: URL(fileURLWithPath: stateFile))

        // A second proxy while the first runs: it starts, warns, and leaves the state file alone.
        let second = try fixture.startProxy(session: "second")
        #expect(try eventually { second.errorText.withLockedValue { $0.contains("another proxy (pid \(first.process.processIdentifier)") } },
                "\(second.errorText.withLockedValue { $0 })")
        #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile)) == stateData)

        // A HAR of 300 entries to import.
        let entries: [[String: Any]] = (0..<300).map { n in
            ["startedDateTime": "2026-11-29T12:00:\(String(format: "%02d", n % 60)).000Z", "time": 5,
             "request": ["method": "GET", "url": "https://api.miro.com/v2/boards?imported=\(n)", "httpVersion": "HTTP/1.1",
                         "headers": [["name": "Accept", "value": "application/json"]], "queryString": [], "cookies": [],
                         "headersSize": -1, "bodySize": 0] as [String: Any],
             "response": ["status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "redirectURL": "",
                          "headers": [["name": "Content-Type", "value": "application/json"]],
                          "content": ["size": 9, "mimeType": "application/json", "text": "{\"n\":\(n)}"],
                          "headersSize": -1, "bodySize": 9] as [String: Any],
             "cache": [:] as [String: Any], "timings": ["send": 1, "wait": 3, "receive": 1]]
        }
        let har = fixture.dir.appendingPathComponent("three-hundred.har")
        try JSONSerialization.data(withJSONObject: ["log": ["version": "1.2", "creator": ["name": "test", "version": "1"],
                                                            "entries": entries] as [String: Any]]).write(to: har)

        // All at once: load through both proxies, a `run` with a proxy of its own, the import.
        let ca = fixture.proxyCA
        var processes: [(String, Started)] = []
        for c in 0..<6 {
            processes.append(("first", try Started("/usr/bin/curl", Self.curlCommand(tag: "first", client: c, perClient: 40, proxyURL: first.proxyURL, ca: ca))))
        }
        for c in 0..<3 {
            processes.append(("second", try Started("/usr/bin/curl", Self.curlCommand(tag: "second", client: c, perClient: 40, proxyURL: second.proxyURL, ca: ca))))
        }
        let target = "127.0.0.1:\(fixture.upstream.port)"
        processes.append(("run", try Started(tokentapBinary, ["run", "--home", home, "--session", "run",
                                                               "--map-remote", "api.miro.com=\(target)", "--upstream-ca", fixture.upstream.caFile.path, "--",
                                                               "curl"] + Self.curlCommand(tag: "run", client: 0, perClient: 120, proxyURL: nil, ca: nil),
                                              environment: environmentWithoutProxySettings())))
        processes.append(("import", try Started(tokentapBinary, ["import", "--home", home, "--session", "import", har.path])))
        let results = processes.map { ($0.0, $0.1.finish()) }
        for (name, r) in results { #expect(r.status == 0, "\(name): exit \(r.status): \(r.stderr)") }
        let runResult = try #require(results.first { $0.0 == "run" }?.1)
        #expect(runResult.stderr.contains("separate proxy"), "\(runResult.stderr)")
        #expect(runResult.stderr.contains("120 exchange(s) recorded"), "\(runResult.stderr)")
        #expect(results.first { $0.0 == "import" }?.1.stdout.contains("imported 300 exchanges into session import") == true)

        #expect(second.stop() == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile)) == stateData, "the second proxy left proxy.json alone on exit too")
        #expect(first.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: stateFile))

        // Nothing lost, nothing in the wrong session: each session holds exactly what its clients got.
        for session in ["first", "second", "run"] {
            let answered = results.filter { $0.0 == session }.flatMap { Self.answered($0.1.stdout) }
            #expect(answered.count == (session == "first" ? 240 : session == "second" ? 120 : 120), "\(session)")
            let stored = try rows(session)
            #expect(stored.count == answered.count, "\(session)")
            #expect(Set(stored.compactMap { $0["url"] as? String }) == Set(answered), "\(session)")
        }
        let imported = try rows("import")
        #expect(imported.count == 300)
        #expect(Set(imported.compactMap { $0["url"] as? String }) == Set((0..<300).map { "https://api.miro.com/v2/boards?imported=\($0)" }))
        let sessions = try tokentap(["sessions", "--home", home, "--json"])
        let names = try #require(try JSONSerialization.jsonObject(with: sessions.stdout) as? [[String: Any]]).compactMap { $0["name"] as? String }
        #expect(Set(names) == ["first", "second", "run", "import"], "\(names)")
    }
}

/// A process started with its stdout and stderr going to temporary files (no pipe readers: many
/// run at once), waited for with `finish()`.
final class Started {
    let process = Process()
    private let out: URL
    private let err: URL

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-started-\(UUID().uuidString)")
        out = base.appendingPathExtension("out")
        err = base.appendingPathExtension("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for the exit; the status and what it printed.
    func finish() -> (status: Int32, stdout: String, stderr: String) {
        process.waitUntilExit()
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
