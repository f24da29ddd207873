import Foundation
import NIOConcurrencyHelpers
import Testing

/// A long-running process whose stdout lines and stderr text are collected as they come.
final class BackgroundProcess: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    let lines = NIOLockedValueBox<[String]>([])
    let errorText = NIOLockedValueBox("")

    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        collectLines(out, into: lines)
        collectText(err, into: errorText)
    }

    var stderr: String { errorText.withLockedValue { $0 } }

    /// The first stdout line that parses as a JSON object holding `key`, waiting up to `seconds`.
    func jsonLine(with key: String, seconds: Double = 60) -> [String: Any]? {
        var found: [String: Any]?
        _ = eventually(seconds) {
            found = lines.withLockedValue { $0 }.lazy.compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }.first { $0[key] != nil }
            return found != nil || !process.isRunning
        }
        if found == nil {
            found = lines.withLockedValue { $0 }.lazy.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
                .first { $0[key] != nil }
        }
        return found
    }

    /// Waits for the exit (up to `seconds`, then SIGKILL) and returns the status.
    @discardableResult
    func wait(seconds: Double = 60) -> Int32 {
        if !eventually(seconds, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, seconds: Double = 30) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return wait(seconds: seconds)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A loopback TCP port free right now (bound, read, closed): the app's port has to be known before
/// the sandbox starts (its `--app` names the redirect URI), and the app runs under `tokentap run`,
/// which needs the proxy, which needs the sandbox.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ProcessFailure(message: "socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ProcessFailure(message: "bind: \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The Chromium the tests drive (`.ci/run` installs Debian's `chromium` when it is missing): a
/// test that needs it fails, never skips, when it is not there.
func chromiumPath() throws -> String {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
    }
    throw ProcessFailure(message: "no Chromium in PATH: these tests drive a real headless Chromium; install Debian's `chromium` (apt-get install chromium, as .ci/run does)")
}

/// `tokentap browser` end to end (issue 20): a real headless Chromium drives a tiny web app's OAuth
/// flow against the sandbox through an attached `tokentap proxy`, while the app runs under an
/// attached `tokentap run`: both halves land in one session, and the doctor joins them.
@Suite("tokentap browser end to end", .serialized)
final class BrowserEndToEndTests {
    static let clientID = "3458764513820549999"
    static let clientSecret = "browser-app-secret-0123456789abcdefgh"

    let port: Int
    let rig: SandboxRig
    var redirectURI: String { "http://127.0.0.1:\(port)/callback" }

    init() throws {
        port = try freeLoopbackPort()
        rig = try SandboxRig(sandboxArguments: ["--app", "\(Self.clientID):\(Self.clientSecret):http://127.0.0.1:\(port)/callback"])
    }

    deinit { rig.stop() }

    /// Runs the whole flow: proxy, app under `run`, browser; returns the doctor's JSON and what the app printed.
    func flow(session: String, appArguments: [String] = []) throws -> (doctor: [String: Any], app: [String: Any]) {
        _ = try chromiumPath()
        let proxy = try rig.startProxy(session: session)
        defer { #expect(proxy.stop() == 0) }
        let env = environmentWithoutProxySettings()
        let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/browser_app.py").path
        let app = try BackgroundProcess(tokentapBinary, ["run", "--home", rig.home, "--", try SandboxRig.pythonInterpreter(), script,
                                                         String(port), Self.clientID, Self.clientSecret] + appArguments,
                                        environment: env)
        defer { app.stop(signal: SIGKILL) }
        guard app.jsonLine(with: "listening") != nil else {
            throw ProcessFailure(message: "the app did not start: \(app.stderr)")
        }
        let browser = try BackgroundProcess(tokentapBinary, ["browser", "--home", rig.home, "--headless", "http://127.0.0.1:\(port)/login"],
                                            environment: env)
        defer { browser.stop(signal: SIGKILL) }
        let result = app.jsonLine(with: "exchanged", seconds: 90)
        #expect(browser.stderr.contains("attached to the proxy at 127.0.0.1:\(proxy.port)"), "\(browser.stderr)")
        #expect(browser.stderr.contains("--no-sandbox") == (geteuid() == 0), "\(browser.stderr)")
        let browserStatus = browser.stop(signal: SIGTERM)
        let appStatus = app.wait()
        guard let result else {
            throw ProcessFailure(message: "the app reported no exchange.\napp stdout: \(app.lines.withLockedValue { $0 })\napp stderr: \(app.stderr)\nbrowser stderr: \(browser.stderr)\nproxy: \(proxy.lines.withLockedValue { $0 }) \(proxy.errorText.withLockedValue { $0 })")
        }
        #expect(browserStatus == 0, "\(browser.stderr)")
        #expect(appStatus == 0, "\(app.stderr)")
        #expect(app.stderr.contains("attached to the proxy"), "\(app.stderr)")
        // Let the proxy write the last exchanges.
        _ = eventually(5) { (try? rig.list(session: session).contains { ($0["url"] as? String ?? "").contains("/oauth/token") }) == true }
        return (try rig.doctor(session: session), result)
    }

    /// The steps of the timeline, in order, with their summaries.
    func steps(_ doctor: [String: Any]) -> [(step: String, summary: String, exchange: Int)] {
        ((doctor["timeline"] as? [[String: Any]]) ?? []).map {
            ($0["step"] as? String ?? "", $0["summary"] as? String ?? "", $0["exchange"] as? Int ?? -1)
        }
    }

    /// The code placeholders (`redacted.code.…`) a text holds.
    func codePlaceholders(_ text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: "redacted\\.code\\.[A-Za-z0-9._~-]*[A-Za-z0-9]")
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range, in: text)!]) }
    }

    @Test("headless Chromium through tokentap browser: authorize, redirect, callback, token exchange (200) in one session, joined by the code")
    func correctFlow() throws {
        let (doctor, app) = try flow(session: "browser-flow")
        #expect(app["exchanged"] as? Int == 200, "\(app)")
        let timeline = steps(doctor)
        let names = timeline.map(\.step)
        guard let a = names.firstIndex(of: "authorize"), let r = names.firstIndex(of: "redirect"),
              let c = names.firstIndex(of: "callback"), let t = names.firstIndex(of: "token exchange") else {
            Issue.record("missing steps: \(timeline)")
            return
        }
        #expect(a < r && r < c && c < t, "\(timeline)")
        #expect(timeline[t].summary.contains("→ 200"), "\(timeline[t])")
        #expect(timeline[a].summary.contains("redirect_uri=\(redirectURI)"), "\(timeline[a])")
        #expect(timeline[c].summary.contains("GET http://127.0.0.1:\(port)/callback"), "\(timeline[c])")
        let codes = [r, c, t].map { codePlaceholders(timeline[$0].summary) }
        #expect(codes.allSatisfy { $0.count == 1 }, "\(codes)")
        #expect(Set(codes.flatMap { $0 }).count == 1, "the redirect, the callback and the exchange name one code: \(codes)")
        // The callback was recorded redacted, as any exchange: no raw code anywhere in the session.
        let rows = try rig.list(session: "browser-flow")
        let callback = try #require(rows.first { ($0["url"] as? String ?? "").hasPrefix(redirectURI) })
        #expect((callback["url"] as? String ?? "").contains("code=redacted.code."), "\(callback)")
        #expect(!((callback["url"] as? String ?? "").contains(SandboxRig.miroTokenPrefix)), "\(callback)")
        // Nothing failed; the login page and the browser's own requests play no OAuth role.
        #expect((doctor["verdicts"] as? [Any])?.isEmpty == true, "\(doctor["verdicts"] ?? "")")
        #expect(!timeline.contains { $0.summary.contains("favicon") }, "\(timeline)")
        #expect(rows.contains { ($0["url"] as? String ?? "") == "http://127.0.0.1:\(port)/login" }, "\(rows)")
    }

    @Test("the app sends redirect_uri with a trailing slash in the exchange: the verdict is redirect-uri-mismatch, quoting both values")
    func trailingSlash() throws {
        let (doctor, app) = try flow(session: "browser-slash", appArguments: ["--trailing-slash"])
        #expect(app["exchanged"] as? Int == 401, "\(app)")
        let verdicts = (doctor["verdicts"] as? [[String: Any]]) ?? []
        let verdict = try #require(verdicts.first { $0["step"] as? String == "token exchange" }, "\(verdicts)")
        #expect(verdict["cause"] as? String == "redirect-uri-mismatch", "\(verdict)")
        let findings = (doctor["findings"] as? [[String: Any]]) ?? []
        let finding = try #require(findings.first { $0["rule"] as? String == "redirect-uri-mismatch" }, "\(findings)")
        let evidence = (finding["evidence"] as? [String] ?? []).joined(separator: "\n")
        #expect(evidence.contains("authorize request (#") && evidence.contains("redirect_uri=\"\(redirectURI)\""), "\(evidence)")
        #expect(evidence.contains("redirect_uri=\"\(redirectURI)/\""), "\(evidence)")
        #expect(evidence.contains("trailing slash added"), "\(evidence)")
        let names = steps(doctor).map(\.step)
        #expect(names.contains("callback") && names.contains("redirect"), "\(names)")
    }

    @Test("with HOME an empty folder: after SIGTERM it is still empty, the temporary profile is gone, the tokentap home has nothing new outside certs/ and recordings/")
    func leavesNothingBehind() throws {
        _ = try chromiumPath()
        // A short path: Chromium's singleton socket (TMPDIR/…/SingletonSocket) must fit a socket address.
        var template = Array("/tmp/tb-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let dir = URL(fileURLWithPath: try #require(made.map { String(cString: $0) }))
        defer { try? FileManager.default.removeItem(at: dir) }
        let userHome = dir.appendingPathComponent("user-home")
        let tmp = dir.appendingPathComponent("tmp")
        let home = dir.appendingPathComponent("tokentap-home")
        for folder in [userHome, tmp] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        // The CA first (certs/), so that what the browser command adds can be told apart.
        #expect(try tokentap(["ca", "--home", home.path]).status == 0)
        let before = Set(try FileManager.default.subpathsOfDirectory(atPath: home.path))

        var env = environmentWithoutProxySettings()
        env["HOME"] = userHome.path
        env["TMPDIR"] = tmp.path
        for name in ["XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"] { env[name] = nil }
        // No running proxy in this home: the browser command starts its own.
        let browser = try BackgroundProcess(tokentapBinary, ["browser", "--home", home.path, "--headless"], environment: env)
        defer { browser.stop(signal: SIGKILL) }
        // Wait until Chromium has written its profile (it is running for real).
        var profile: URL?
        let written = eventually(60) {
            guard let name = (try? FileManager.default.contentsOfDirectory(atPath: tmp.path))?.first(where: { $0.hasPrefix("tokentap-browser-") }) else { return false }
            profile = tmp.appendingPathComponent(name)
            return ((try? FileManager.default.contentsOfDirectory(atPath: profile!.appendingPathComponent("profile").path)) ?? []).count > 1
        }
        #expect(written, "no profile written: \(browser.stderr)")
        let text = browser.stderr
        #expect(text.contains("proxy on 127.0.0.1:"), "\(text)")
        let pid = text.range(of: #"\(pid (\d+)\)"#, options: .regularExpression).flatMap { Int32(text[$0].dropFirst(5).dropLast()) }
        #expect(pid != nil, "\(text)")
        #expect(browser.stop(signal: SIGTERM) == 0, "\(browser.stderr)")

        #expect(try FileManager.default.contentsOfDirectory(atPath: userHome.path).isEmpty, "HOME was written to")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty, "temporary profile left: \(profile?.path ?? "?")")
        let added = Set(try FileManager.default.subpathsOfDirectory(atPath: home.path)).subtracting(before)
        #expect(added.allSatisfy { $0.hasPrefix("certs/") || $0.hasPrefix("recordings/") || $0 == "recordings" }, "\(added.sorted())")
        // The browser's process group is gone (tokentap waited for it).
        if let pid { #expect(kill(-pid, 0) == -1 && errno == ESRCH, "processes of group \(pid) are left") }
    }

    @Test("when the browser exits by itself: its group is ended (a helper it left is killed), its last lines are shown, the folder is deleted, exit 0; the command line is the documented one")
    func browserExitsByItself() throws {
        var template = Array("/tmp/tb-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let dir = URL(fileURLWithPath: try #require(made.map { String(cString: $0) }))
        defer { try? FileManager.default.removeItem(at: dir) }
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        // A stand-in browser: prints its arguments and environment, leaves a helper in its process
        // group (as Chromium's zygote and renderers are), and exits 3.
        let fake = dir.appendingPathComponent("fake-browser")
        let helperPid = dir.appendingPathComponent("helper.pid")
        try """
        #!/bin/sh
        sleep 300 &
        echo $! > '\(helperPid.path)'
        for a in "$@"; do echo "$a"; done > '\(dir.path)/args'
        echo "env: HOME=$HOME XDG_CONFIG_HOME=$XDG_CONFIG_HOME XDG_CACHE_HOME=$XDG_CACHE_HOME XDG_DATA_HOME=$XDG_DATA_HOME TMPDIR=$TMPDIR"
        exit 3
        """.write(to: fake, atomically: true, encoding: .utf8)
        chmod(fake.path, 0o755)
        let proxy = try rig.startProxy(session: "fake-browser")
        defer { #expect(proxy.stop() == 0) }
        var env = environmentWithoutProxySettings()
        env["TMPDIR"] = tmp.path
        let result = try runCommand(tokentapBinary, ["browser", "--home", rig.home, "--browser", fake.path, "--headless", "http://127.0.0.1:9/login"],
                                    environment: env, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("the browser exited with status 3"), "\(result.stderr)")
        let pin = try runCommand("/bin/sh", ["-c", "openssl x509 -in '\(rig.proxyCA)' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
            .text.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = result.stderr.split(separator: "\n").filter { $0.hasPrefix("  browser: ") }.map { String($0.dropFirst("  browser: ".count)) }
        let args = try String(contentsOf: dir.appendingPathComponent("args"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(args.count == (geteuid() == 0 ? 13 : 12), "\(args)")
        #expect(args.first?.hasPrefix("--user-data-dir=\(tmp.path)/tokentap-browser-") == true, "\(args)")
        for arg in ["--proxy-server=http://127.0.0.1:\(proxy.port)", "--proxy-bypass-list=<-loopback>",
                    "--ignore-certificate-errors-spki-list=\(pin)", "--no-first-run", "--no-default-browser-check",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--headless=new"] {
            #expect(args.contains(arg), "\(arg): \(args)")
        }
        #expect(args.contains("--no-sandbox") == (geteuid() == 0))
        #expect(args.last == "http://127.0.0.1:9/login")
        let folder = try #require(result.stderr.range(of: "temporary profile \(tmp.path)/tokentap-browser-", options: []).map { _ in
            (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? ["?"]
        })
        #expect(folder.isEmpty, "left in TMPDIR: \(folder)")
        #expect(shown.contains { $0.hasPrefix("env: HOME=\(tmp.path)/tokentap-browser-") && $0.contains("/home XDG_CONFIG_HOME=") }, "\(shown)")
        // The helper left in the browser's process group was ended with it.
        let helper = try #require(Int32((try String(contentsOf: helperPid, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(eventually(5) { kill(helper, 0) == -1 && errno == ESRCH }, "helper \(helper) still runs")
    }

    @Test("no Chromium in PATH: one line naming what was looked for and the Debian package, exit 1; --browser PATH that does not exist: exit 2")
    func noChromium() throws {
        let dir = try makeTemporaryDirectory("tokentap-browser-none")
        defer { try? FileManager.default.removeItem(at: dir) }
        let home = dir.appendingPathComponent("home").path
        var env = environmentWithoutProxySettings()
        env["PATH"] = dir.appendingPathComponent("empty-bin").path
        let none = try tokentap(["browser", "--home", home, "--headless"], environment: env)
        #expect(none.status == 1, "\(none.stderr)")
        let lines = none.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(none.stderr)")
        for needle in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "apt-get install chromium", "--browser"] {
            #expect(none.stderr.contains(needle), "\(needle): \(none.stderr)")
        }
        let missing = try tokentap(["browser", "--home", home, "--browser", "/nonexistent/chromium"],
                                   environment: environmentWithoutProxySettings())
        #expect(missing.status == 2, "\(missing.stderr)")
        #expect(missing.stderr.contains("/nonexistent/chromium"), "\(missing.stderr)")
        // --attach with proxy options is a usage error too; none of these started anything.
        let both = try tokentap(["browser", "--home", home, "--attach", "127.0.0.1:1", "--session", "x"],
                                environment: environmentWithoutProxySettings())
        #expect(both.status == 2, "\(both.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home + "/recordings/tokentap.sqlite"))
    }
}
