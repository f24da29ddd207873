import Foundation
import NIOConcurrencyHelpers
import Testing

/// What the proxy records, read back with `tokentap list` and `show` (design.md's JSON shapes).
@Suite("Recording end to end", .serialized)
final class RecordingEndToEndTests {
    let fixture: UpstreamFixture
    var dir: URL { fixture.dir }
    var upstream: TestUpstream { fixture.upstream }
    var home: String { fixture.home }
    var proxyCA: String { fixture.proxyCA }

    init() throws { fixture = try UpstreamFixture() }

    func startProxy(session: String = "rec") throws -> ServerProcess { try fixture.startProxy(session: session) }

    func curl(_ proxy: ServerProcess, _ args: [String]) throws -> CommandResult { try fixture.curl(proxy, args) }

    func listJSON(_ extra: [String] = []) throws -> [[String: Any]] {
        let result = try tokentap(["list", "--home", home, "--json"] + extra)
        #expect(result.status == 0, "list failed: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
    }

    @Test("a form POST and a chunked gzip GET are recorded with the right fields, in design.md's shapes")
    func recordsFields() throws {
        let proxy = try startProxy()
        let post = try curl(proxy, ["-d", "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", "https://api.miro.com/echo?team=1"])
        #expect(post.status == 0)
        let gzip = try curl(proxy, ["--compressed", "https://api.miro.com/gzip"])
        #expect(gzip.text == TestUpstream.jsonLines)
        #expect(proxy.stop() == 0)  // the writer flushes on the way out

        let rows = try listJSON()
        #expect(rows.count == 2)
        let listKeys: Set<String> = ["id", "session", "kind", "started", "duration_ms", "method", "url", "status", "error", "error_kind", "findings"]
        for row in rows { #expect(Set(row.keys) == listKeys) }
        let first = rows[0], second = rows[1]
        #expect(first["method"] as? String == "POST")
        #expect(first["url"] as? String == "https://api.miro.com/echo?team=1")
        #expect(first["status"] as? Int == 200)
        #expect(first["session"] as? String == "rec")
        #expect(first["kind"] as? String == "http")
        #expect(first["error"] is NSNull)
        #expect(first["findings"] is [Any])
        #expect(first["duration_ms"] is Double || first["duration_ms"] is Int)
        let started = try #require(first["started"] as? String)
        #expect(started.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"#, options: .regularExpression) != nil)
        #expect(second["url"] as? String == "https://api.miro.com/gzip")

        let show = try tokentap(["show", "--home", home, "--json", String(try #require(first["id"] as? Int))])
        #expect(show.status == 0, "\(show.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: show.stdout) as? [String: Any])
        #expect(Set(doc.keys) == listKeys.union(["request", "response", "timings"]))
        let request = try #require(doc["request"] as? [String: Any])
        #expect(Set(request.keys) == ["headers", "body", "body_encoding", "truncated", "http_version"])
        #expect(request["body"] as? String == "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb")
        #expect(request["body_encoding"] as? String == "utf8")
        #expect(request["truncated"] as? Bool == false)
        let headers = try #require(request["headers"] as? [[String: String]])
        #expect(headers.first?["name"] == "Host")  // curl's order and case, kept
        #expect(headers.contains { $0["name"] == "Content-Type" && $0["value"] == "application/x-www-form-urlencoded" })
        let response = try #require(doc["response"] as? [String: Any])
        #expect(Set(response.keys) == ["headers", "body", "body_encoding", "truncated", "http_version", "reason"])
        #expect(response["reason"] as? String == "OK")
        let timings = try #require(doc["timings"] as? [String: Any])
        #expect(Set(timings.keys) == ["connect", "tls", "send", "wait", "receive", "total"])

        // The gzip body is stored decoded (on the side), with its original encoding kept in the headers.
        let showGzip = try tokentap(["show", "--home", home, "--json", String(try #require(second["id"] as? Int))])
        let gz = try #require(try JSONSerialization.jsonObject(with: showGzip.stdout) as? [String: Any])
        let gzResponse = try #require(gz["response"] as? [String: Any])
        #expect(gzResponse["body"] as? String == TestUpstream.jsonLines)
        let gzHeaders = try #require(gzResponse["headers"] as? [[String: String]])
        #expect(gzHeaders.contains { $0["name"].map { $0.lowercased() } == "content-encoding" && $0["value"] == "gzip" })

        // Text output works too.
        let text = try tokentap(["list", "--home", home])
        #expect(text.status == 0)
        #expect(text.text.contains("https://api.miro.com/gzip"))
    }

    @Test("a tunnelled host appears only with --all, as kind tunnel")
    func tunnelOnlyWithAll() throws {
        let proxy = try startProxy()
        let result = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", upstream.caFile.path,
                                                      "https://localhost:\(upstream.port)/bytes?size=1000"])
        #expect(result.stdout.count == 1000)
        _ = try curl(proxy, ["https://api.miro.com/ping"])
        #expect(proxy.stop() == 0)
        let plain = try listJSON()
        #expect(plain.count == 1)
        #expect(plain.allSatisfy { $0["kind"] as? String == "http" })
        let all = try listJSON(["--all"])
        let tunnel = try #require(all.first { $0["kind"] as? String == "tunnel" })
        #expect(tunnel["url"] as? String == "localhost:\(upstream.port)")
    }

    @Test("kill -9 after N completed exchanges and a pause loses none of them")
    func killNine() throws {
        let proxy = try startProxy(session: "crash")
        let urls = (0..<7).map { "https://api.miro.com/echo?n=\($0)" }
        let result = try curl(proxy, urls)
        #expect(result.status == 0)
        usleep(1_500_000)
        #expect(proxy.stop(signal: SIGKILL) == SIGKILL || !proxy.process.isRunning)
        let rows = try listJSON(["--session", "crash"])
        #expect(rows.count == 7)
        #expect(rows.compactMap { $0["url"] as? String } == urls)
        // And a new proxy opens the same database cleanly.
        let again = try startProxy(session: "after")
        _ = try curl(again, ["https://api.miro.com/ping"])
        #expect(again.stop() == 0)
        #expect(try listJSON(["--session", "after"]).count == 1)
    }

    @Test("reading with list while 500 exchanges are being written gives no error")
    func listWhileWriting() throws {
        let proxy = try startProxy(session: "busy")
        let failures = NIOLockedValueBox<[String]>([])
        let reads = NIOLockedValueBox(0)
        let done = NIOLockedValueBox(false)
        let home = self.home
        let reader = Thread {
            while !done.withLockedValue({ $0 }) {
                guard let result = try? tokentap(["list", "--home", home, "--session", "busy", "--json"]) else { continue }
                reads.withLockedValue { $0 += 1 }
                if result.status != 0 || (try? JSONSerialization.jsonObject(with: result.stdout)) == nil {
                    failures.withLockedValue { $0.append("exit \(result.status): \(result.stderr)") }
                }
                usleep(100_000)  // leave the two cores to the proxy and curl
            }
        }
        reader.start()
        for batch in 0..<5 {
            let urls = (0..<100).map { "https://api.miro.com/echo?b=\(batch)&n=\($0)" }
            let result = try curl(proxy, ["-o", "/dev/null"] + urls.flatMap { [$0, "-o", "/dev/null"] })
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(proxy.stop() == 0)
        done.withLockedValue { $0 = true }
        while reader.isExecuting { usleep(20_000) }
        #expect(reads.withLockedValue { $0 } > 0)
        #expect(failures.withLockedValue { $0 } == [])
        #expect(try listJSON(["--session", "busy"]).count == 500)
    }

    @Test("an unknown id and a missing database get a clear message and exit code 1")
    func errors() throws {
        let empty = dir.appendingPathComponent("empty").path
        let missing = try tokentap(["list", "--home", empty])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("tokentap proxy"))
        let proxy = try startProxy()
        _ = try curl(proxy, ["https://api.miro.com/ping"])
        #expect(proxy.stop() == 0)
        let unknown = try tokentap(["show", "--home", home, "999999"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("#999999"))
        #expect(unknown.stderr.contains("tokentap list"))
        let bad = try tokentap(["list", "--home", home, "--status", "abc"])
        #expect(bad.status == 2)
    }
}
