import Foundation
import Testing

/// The HTML report end to end (issue 27): a session with a redirect-uri mismatch recorded through the
/// real proxy against `tokentap sandbox`, written by `tokentap doctor --html` and `tokentap export
/// --format html`, then opened by a real headless Chromium (Debian's `chromium`; `.ci/run` installs
/// it): its net log shows no request on behalf of the report, a screenshot is written, and the DOM
/// Chromium built has one arrow per exchange, the failed one marked, the verdict's rule and fix, and
/// none of the session's raw secrets. Without Chromium the test fails (it never skips).
@Suite("HTML report end to end", .serialized)
final class HTMLReportEndToEndTests {
    let rig: SandboxRig

    init() throws {
        rig = try SandboxRig()
    }

    deinit { rig.stop() }

    var dir: URL { rig.dir }

    /// authorize → token exchange with `redirect_uri` + `/` (401, redirect-uri-mismatch) → authorize
    /// again → a correct exchange (200) → `GET /v2/boards` with the access token. Returns the raw
    /// secrets the clients used or received.
    func recordMismatchSession(_ session: String) throws -> [String] {
        let proxy = try rig.startProxy(session: session)
        var secrets = [rig.clientSecret]
        do {
            let first = try rig.authorize(proxy)
            let code1 = try #require(SandboxRig.code(in: first), "authorize redirected with a code: \(first)")
            let failed = try rig.exchange(proxy, code: code1, redirectURI: rig.redirectURI + "/")
            #expect(failed.status == 401, "\(failed)")
            let second = try rig.authorize(proxy, state: "state-43")
            let code2 = try #require(SandboxRig.code(in: second))
            let ok = try rig.exchange(proxy, code: code2)
            #expect(ok.status == 200, "\(ok)")
            let access = try #require(ok.json?["access_token"] as? String)
            let boards = try rig.boards(proxy, token: access)
            #expect(boards.status == 200)
            secrets += [code1, code2, access]
            if let refresh = ok.json?["refresh_token"] as? String { secrets.append(refresh) }
        } catch {
            proxy.stop()
            throw error
        }
        #expect(proxy.stop() == 0, "proxy stderr: \(proxy.errorText.withLockedValue { $0 })")
        return secrets
    }

    /// Debian's `chromium` on PATH (or at /usr/bin/chromium); nil when missing.
    static func chromiumPath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(dir)/chromium"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs headless Chromium on `url` with `--log-net-log`, in a profile and HOME of its own under
    /// the test's folder. Chromium's own background traffic (update checks, account lookups) is
    /// turned off as far as flags go; what remains is recognised in the net log as the browser's.
    func chromium(_ arguments: [String], url: String, netLog: URL) throws -> CommandResult {
        let chromium = try #require(Self.chromiumPath(),
                                    "Debian's chromium is needed to render the report: `apt-get install chromium` (.ci/run installs it)")
        let profile = dir.appendingPathComponent("chromium-profile-\(UUID().uuidString)")
        let home = dir.appendingPathComponent("chromium-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        environment["XDG_CONFIG_HOME"] = home.appendingPathComponent(".config").path
        environment["XDG_CACHE_HOME"] = home.appendingPathComponent(".cache").path
        let flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)",
                     "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
                     "--disable-breakpad", "--window-size=1200,1600", "--log-net-log=\(netLog.path)"]
        let result = try runCommand(chromium, flags + arguments + [url], environment: environment, timeout: 120)
        #expect(result.status == 0, "chromium exited \(result.status): \(result.stderr.suffix(2000))")
        return result
    }

    /// The URLs the net log shows requested on behalf of a page (every URL in the log except those
    /// of the browser's own requests: initiator `not an origin`, not isolated under `file://`).
    static func pageRequests(netLog: URL) throws -> (page: Set<String>, browser: Set<String>) {
        var data = try Data(contentsOf: netLog)
        var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        if object == nil {
            // A log cut short lacks its closing brackets (Chromium's documented recovery).
            data.append(contentsOf: Array("]}".utf8))
            object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        let log = try #require(object, "the net log is JSON")
        let events = try #require(log["events"] as? [[String: Any]], "the net log has events")
        #expect(!events.isEmpty)
        var browser = Set<String>(), all = Set<String>()
        for event in events {
            guard let params = event["params"] as? [String: Any], let url = params["url"] as? String else { continue }
            all.insert(url)
            if let initiator = params["initiator"] as? String {
                let isolation = params["network_isolation_key"] as? String ?? ""
                if initiator == "not an origin" && !isolation.contains("file:") { browser.insert(url) }
            }
        }
        return (all.subtracting(browser), browser)
    }

    @Test("doctor --html and export --format html of a redirect-uri mismatch, rendered by headless Chromium")
    func chromiumRendersReport() throws {
        let session = "html-mismatch"
        let secrets = try recordMismatchSession(session)

        // doctor --html -o FILE: `wrote FILE` on stderr; without -o the same page on stdout.
        let report = dir.appendingPathComponent("doctor report.html")
        let written = try tokentap(["doctor", "--home", rig.home, "--session", session, "--html", "-o", report.path])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(written.stderr == "wrote \(report.path)\n")
        #expect(written.stdout.isEmpty)
        let html = try String(contentsOf: report, encoding: .utf8)
        let printed = try tokentap(["doctor", "--home", rig.home, "--session", session, "--html"])
        #expect(printed.status == 0)
        #expect(printed.text == html)
        let exported = dir.appendingPathComponent("export.html")
        let export = try tokentap(["export", "--home", rig.home, "--session", session, "--format", "html", "-o", exported.path])
        #expect(export.status == 0, "\(export.stderr)")
        let exportHTML = try String(contentsOf: exported, encoding: .utf8)
        #expect(try tokentap(["doctor", "--home", rig.home, "--json", "--html"]).status == 2)
        #expect(try tokentap(["doctor", "--home", rig.home, "-o", report.path]).status == 2, "-o goes with --html")

        // What the doctor says, to compare with the page.
        let list = try rig.list(session: session, all: true)
        let doctor = try rig.doctor(session: session)
        let verdicts = doctor["verdicts"] as? [[String: Any]] ?? []
        #expect(verdicts.count == 1, "\(verdicts)")
        let verdict = try #require(verdicts.first)
        #expect(verdict["cause"] as? String == "redirect-uri-mismatch")
        let failedID = try #require(verdict["exchange"] as? Int)
        let fix = try #require(verdict["fix"] as? String)
        #expect(list.count == 5, "\(list)")

        // No raw secret in either file.
        for secret in secrets {
            #expect(!html.contains(secret), "a raw secret (\(secret.prefix(6))…) is in the doctor report")
            #expect(!exportHTML.contains(secret), "a raw secret (\(secret.prefix(6))…) is in the export")
        }
        #expect(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"))
        #expect(!html.lowercased().contains("<script"))

        // Chromium: a screenshot, then the DOM it built; each run with a net log.
        let url = report.absoluteString
        #expect(url.hasPrefix("file:///"))
        let png = dir.appendingPathComponent("report.png")
        let shotLog = dir.appendingPathComponent("net-screenshot.json")
        _ = try chromium(["--screenshot=\(png.path)"], url: url, netLog: shotLog)
        let image = try Data(contentsOf: png)
        #expect(image.count > 10_000, "a screenshot of the report, not an empty page: \(image.count) bytes")
        #expect(image.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG")

        let domLog = dir.appendingPathComponent("net-dom.json")
        let dom = try chromium(["--dump-dom"], url: url, netLog: domLog).text
        #expect(dom.contains("<svg"), "\(dom.prefix(500))")
        let arrows = dom.components(separatedBy: "<g class=\"exchange").count - 1
        #expect(arrows == list.count, "one arrow per exchange: \(arrows) for \(list.count)")
        #expect(dom.contains("<g class=\"exchange failed\" data-exchange=\"\(failedID)\""), "the failed exchange is marked")
        #expect(dom.components(separatedBy: "<g class=\"exchange failed\"").count - 1 == 1, "only the failed exchange is marked")
        for entry in list {
            let id = try #require(entry["id"] as? Int)
            #expect(dom.contains("data-exchange=\"\(id)\""), "#\(id) has its arrow")
        }
        #expect(dom.contains("<article class=\"verdict\" data-rule=\"redirect-uri-mismatch\" data-exchange=\"\(failedID)\">"))
        #expect(dom.contains("data-rule=\"redirect-uri-mismatch\""))
        let domText = fix.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\u{A0}", with: "&nbsp;")
        #expect(dom.contains(domText), "the verdict's fix: \(fix)")
        for secret in secrets { #expect(!dom.contains(secret)) }
        // The code issued in the redirect is the code sent in the failed exchange: one placeholder.
        let issued = dom.components(separatedBy: "issues code ").dropFirst().map { String($0.prefix { $0 != "<" }) }
        #expect(issued.count == 2, "each authorize issues a code")
        if let first = issued.first { #expect(dom.contains("sends code \(first)"), "\(first)") }

        // Nothing requested on behalf of the report: no URL but the report's own.
        for log in [shotLog, domLog] {
            let requests = try Self.pageRequests(netLog: log)
            #expect(requests.page.subtracting([url]).isEmpty, "the report made requests: \(requests.page)")
        }

        // The check sees a page's requests: the same Chromium logs an image an unprotected page loads.
        let control = dir.appendingPathComponent("control.html")
        try Data("<!DOCTYPE html><img src=\"http://127.0.0.1:9/tokentap-control.png\">".utf8).write(to: control)
        let controlLog = dir.appendingPathComponent("net-control.json")
        _ = try chromium(["--dump-dom"], url: control.absoluteString, netLog: controlLog)
        #expect(try Self.pageRequests(netLog: controlLog).page.contains("http://127.0.0.1:9/tokentap-control.png"))
    }
}
