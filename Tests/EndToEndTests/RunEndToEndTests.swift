import Foundation
import NIOConcurrencyHelpers
import Testing

/// The environment of the test process without any proxy, CA or Python setting: the clients under
/// test have none of their own, whatever reaches tokentap does so through `tokentap run`.
func environmentWithoutProxySettings() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
                 "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "WGETRC",
                 "PYTHONPATH", "GIT_SSL_CAINFO", "AWS_CA_BUNDLE", "DENO_CERT", "TOKENTAP_PROXY", "TOKENTAP_CA_BUNDLE",
                 "TOKENTAP_HOME", "NODE_OPTIONS", "NODE_USE_ENV_PROXY", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"] {
        env[name] = nil
    }
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env
}

/// `text` as one single-quoted shell word.
func shellWord(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// `tokentap run` against the sandbox: the proxy reaches it through `--map-remote` and trusts it
/// through `--upstream-ca`; the clients (curl, wget, git, Python) are unmodified.
final class RunRig: @unchecked Sendable {
    let rig: SandboxRig
    var home: String { rig.home }

    init(homeName: String = "home") throws {
        rig = try SandboxRig(homeName: homeName)
    }

    deinit { rig.stop() }

    /// The proxy options that put the sandbox behind tokentap, recording into `session`.
    func proxyOptions(session: String) -> [String] {
        ["--session", session, "--map-remote", "miro.com=127.0.0.1:\(rig.sandbox.port)",
         "--map-remote", "api.miro.com=127.0.0.1:\(rig.sandbox.port)", "--upstream-ca", rig.sandboxCA]
    }

    /// `tokentap run --home HOME [options] -- COMMAND` with no proxy settings in the environment.
    func run(_ options: [String], _ command: [String], environment extra: [String: String] = [:]) throws -> CommandResult {
        var env = environmentWithoutProxySettings()
        for (k, v) in extra { env[k] = v }
        return try runCommand(tokentapBinary, ["run", "--home", home] + options + ["--"] + command, environment: env)
    }

    /// A fresh authorization code from the sandbox (auto-consent), fetched with curl through `run`.
    func code(session: String) throws -> String {
        let query = SandboxRig.form([("response_type", "code"), ("client_id", rig.clientID), ("redirect_uri", rig.redirectURI),
                                     ("state", "s1")])
        let result = try run(proxyOptions(session: session), ["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}",
                                                             "\(SandboxRig.authorizeURL)?\(query)"])
        guard result.status == 0, let items = URLComponents(string: result.text)?.queryItems,
              let code = items.first(where: { $0.name == "code" })?.value else {
            throw ProcessFailure(message: "no code from the sandbox: \(result.status) \(result.text) \(result.stderr)")
        }
        return code
    }

    /// The form body of an `authorization_code` exchange.
    func exchangeForm(code: String) -> String {
        SandboxRig.form([("grant_type", "authorization_code"), ("client_id", rig.clientID), ("client_secret", rig.clientSecret),
                         ("code", code), ("redirect_uri", rig.redirectURI)])
    }

    /// Runs `Python/run_clients.py CLIENT …` through `tokentap run`; returns its JSON and the result.
    func python(_ client: String, session: String, code: String, interpreterFlags: [String] = [],
                environment: [String: String] = [:]) throws -> ([String: Any], CommandResult) {
        let interpreter = try SandboxRig.pythonInterpreter()
        let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/run_clients.py").path
        let result = try run(proxyOptions(session: session),
                             [interpreter] + interpreterFlags + [script, client, rig.clientID, rig.clientSecret, rig.redirectURI, code],
                             environment: environment)
        guard let json = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] else {
            throw ProcessFailure(message: "run_clients.py \(client) printed no JSON (exit \(result.status)): \(result.text)\nstderr: \(result.stderr)")
        }
        return (json, result)
    }

    /// Checks that `session` holds the token exchange, redacted (no raw code or secret in `show
    /// --json`) and diagnosed (a `token exchange` step in `doctor`'s timeline).
    func expectTokenExchangeRecorded(session: String, code: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let rows = try rig.list(session: session)
        let token = rows.first { ($0["url"] as? String ?? "").hasPrefix(SandboxRig.tokenURL) && $0["method"] as? String == "POST" }
        #expect(token != nil, "no token exchange recorded in \(session): \(rows)", sourceLocation: sourceLocation)
        guard let token, let id = token["id"] as? Int else { return }
        #expect(token["status"] as? Int == 200, "\(token)", sourceLocation: sourceLocation)
        let show = try tokentap(["show", "\(id)", "--home", home, "--json"])
        #expect(show.status == 0, sourceLocation: sourceLocation)
        #expect(!show.text.contains(rig.clientSecret), "client secret stored raw", sourceLocation: sourceLocation)
        #expect(!show.text.contains(code), "code stored raw", sourceLocation: sourceLocation)
        #expect(show.text.contains("redacted.client_secret."), sourceLocation: sourceLocation)
        let doctor = try rig.doctor(session: session)
        let timeline = doctor["timeline"] as? [[String: Any]] ?? []
        #expect(timeline.contains { $0["exchange"] as? Int == id && $0["step"] as? String == "token exchange" },
                "doctor: \(timeline)", sourceLocation: sourceLocation)
    }
}

/// `tokentap run` end to end (issue 16): unmodified clients through `run` against the sandbox, the
/// Python hook, attaching to a running proxy, the process under a terminal, exit codes.
@Suite("tokentap run end to end", .serialized)
final class RunEndToEndTests {
    let run: RunRig

    init() throws { run = try RunRig() }

    // MARK: - clients with no settings of their own

    @Test("curl and wget (no flags of their own) exchange a code through run: recorded, redacted, diagnosed; the summary says so")
    func curlAndWget() throws {
        let curlCode = try run.code(session: "curl")
        let curl = try run.run(run.proxyOptions(session: "curl"), ["curl", "-sS", "-d", run.exchangeForm(code: curlCode), SandboxRig.tokenURL])
        #expect(curl.status == 0, "\(curl.stderr)")
        #expect(curl.text.contains("\"access_token\""), "\(curl.text)")
        #expect(curl.stderr.contains("1 exchange(s) recorded (1 OAuth) in session curl"), "\(curl.stderr)")
        try run.expectTokenExchangeRecorded(session: "curl", code: curlCode)

        let wgetCode = try run.code(session: "wget")
        let wget = try run.run(run.proxyOptions(session: "wget"),
                               ["wget", "-q", "-O", "-", "--post-data=\(run.exchangeForm(code: wgetCode))", SandboxRig.tokenURL])
        #expect(wget.status == 0, "\(wget.stderr)")
        #expect(wget.text.contains("\"access_token\""), "\(wget.text)")
        try run.expectTokenExchangeRecorded(session: "wget", code: wgetCode)
    }

    @Test("git ls-remote through run: trusts tokentap's CA and goes through the proxy")
    func git() throws {
        let fixture = try UpstreamFixture()
        let sha = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        fixture.upstream.fixtures.withLockedValue {
            $0["repo.git/info/refs"] = .init(headers: [("Content-Type", "text/plain")], body: "\(sha)\trefs/heads/main\n")
            $0["repo.git/HEAD"] = .init(headers: [("Content-Type", "text/plain")], body: "ref: refs/heads/main\n")
        }
        var env = environmentWithoutProxySettings()
        env["HOME"] = fixture.dir.path  // no user git configuration
        let result = try runCommand(tokentapBinary, [
            "run", "--home", fixture.home, "--session", "git", "--map-remote", "api.miro.com=127.0.0.1:\(fixture.upstream.port)",
            "--upstream-ca", fixture.upstream.caFile.path, "--", "git", "ls-remote", "https://api.miro.com/fixture/repo.git",
        ], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("\(sha)\trefs/heads/main"), "\(result.text)")
        let list = try tokentap(["list", "--home", fixture.home, "--session", "git", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(rows.contains { ($0["url"] as? String ?? "").hasPrefix("https://api.miro.com/fixture/repo.git/info/refs") && $0["status"] as? Int == 200 },
                "\(rows)")
    }

    // MARK: - Python

    @Test("requests-oauthlib OAuth2Session.fetch_token through run")
    func oauthlib() throws {
        let code = try run.code(session: "oauthlib")
        let (json, result) = try run.python("oauthlib", session: "oauthlib", code: code)
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)")
        try run.expectTokenExchangeRecorded(session: "oauthlib", code: code)
    }

    @Test("miro-api 2.2.4 exchange_code_for_access_token (urllib3 directly) is captured by the hook, which chains to an existing sitecustomize")
    func miroSDK() throws {
        let own = try makeTemporaryDirectory("tokentap-own-site")
        try "import sys\nsys.stderr.write('own sitecustomize ran\\n')\n"
            .write(to: own.appendingPathComponent("sitecustomize.py"), atomically: true, encoding: .utf8)
        let code = try run.code(session: "miro")
        let (json, result) = try run.python("miro", session: "miro", code: code, environment: ["PYTHONPATH": own.path])
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)")
        #expect((json["access_token"] as? String ?? "").hasPrefix(SandboxRig.miroTokenPrefix))
        #expect(result.stderr.contains("own sitecustomize ran"), "\(result.stderr)")
        #expect(!result.stderr.contains("python hook"), "\(result.stderr)")
        try run.expectTokenExchangeRecorded(session: "miro", code: code)
    }

    @Test("a patch that fails prints one `tokentap: python hook:` line and leaves the module and the program as they were")
    func hookFailure() throws {
        // An `aiohttp` the hook does not expect: its ClientSession has no `_request`.
        let fake = try makeTemporaryDirectory("tokentap-fake-aiohttp")
        let package = fake.appendingPathComponent("aiohttp")
        try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
        try "".write(to: package.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try "class ClientSession:\n    pass\n".write(to: package.appendingPathComponent("client.py"), atomically: true, encoding: .utf8)
        let interpreter = try SandboxRig.pythonInterpreter()
        let result = try run.run([], [interpreter, "-c", "import aiohttp.client, urllib3; print('still running', aiohttp.client.ClientSession.__init__ is object.__init__)"],
                                 environment: ["PYTHONPATH": fake.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text == "still running True\n", "\(result.text)")
        let hookLines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tokentap: python hook: ") }
        #expect(hookLines.count == 1, "\(result.stderr)")
        #expect(hookLines.first?.contains("aiohttp.client") == true, "\(result.stderr)")
        #expect(!result.stderr.contains("Traceback"), "\(result.stderr)")
    }

    @Test("python -I is not hooked: miro-api goes around the proxy and the summary names the likely reasons")
    func isolatedPython() throws {
        let code = try run.code(session: "isolated")
        let (json, result) = try run.python("miro", session: "isolated", code: code, interpreterFlags: ["-I"])
        #expect(json["ok"] as? Bool == false, "\(json)")
        #expect(result.stderr.contains("nothing reached an intercepted host"), "\(result.stderr)")
        #expect(result.stderr.contains("-I"), "\(result.stderr)")
        #expect(try run.rig.list(session: "isolated").allSatisfy { !($0["url"] as? String ?? "").contains("/oauth/token") })
    }

    @Test("httpx and aiohttp default sessions through run", arguments: ["httpx", "aiohttp"])
    func httpxAndAiohttp(_ client: String) throws {
        let code = try run.code(session: client)
        let (json, result) = try run.python(client, session: client, code: code)
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)")
        try run.expectTokenExchangeRecorded(session: client, code: code)
    }

    @Test("a requests Session with trust_env = False is not captured (the summary says nothing reached Miro); with trust_env it is")
    func requestsTrustEnv() throws {
        let code = try run.code(session: "no-env")
        let (direct, directRun) = try run.python("requests-no-env", session: "no-env", code: code)
        #expect(direct["ok"] as? Bool == false, "\(direct)")
        #expect(directRun.stderr.contains("nothing reached an intercepted host (miro.com, *.miro.com) through the proxy"),
                "\(directRun.stderr)")
        #expect(directRun.stderr.contains("trust_env=False"), "\(directRun.stderr)")

        let (proxied, proxiedRun) = try run.python("requests-env", session: "env", code: code)
        #expect(proxied["ok"] as? Bool == true, "\(proxied) \(proxiedRun.stderr)")
        #expect(proxiedRun.stderr.contains("1 exchange(s) recorded (1 OAuth) in session env"), "\(proxiedRun.stderr)")
        #expect(!proxiedRun.stderr.contains("nothing reached"))
        try run.expectTokenExchangeRecorded(session: "env", code: code)
    }

    // MARK: - attach

    @Test("a running tokentap proxy writes proxy.json, answers the identity request, and run attaches to it")
    func attach() throws {
        let proxy = try run.rig.startProxy(session: "attached")
        let stateFile = run.home + "/recordings/proxy.json"
        let attributes = try FileManager.default.attributesOfItem(atPath: stateFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let stateData = try Data(contentsOf: URL(fileURLWithPath: stateFile))
        let state = try #require(try JSONSerialization.jsonObject(with: stateData) as? [String: Any])
        #expect(state["address"] as? String == "127.0.0.1:\(proxy.port)")
        #expect((state["pid"] as? NSNumber)?.int32Value == proxy.process.processIdentifier)
        #expect(state["session"] as? String == "attached")
        #expect(state["home"] as? String == URL(fileURLWithPath: run.home).standardizedFileURL.path)
        #expect(state["version"] is String)
        #expect(parseDate(state["started"] as? String) != nil, "\(state)")

        // The identity request, origin form, to the proxy itself.
        let identity = try runCommand("/usr/bin/curl", ["-sS", "-i", "--noproxy", "*", "http://127.0.0.1:\(proxy.port)/__tokentap/status"])
        #expect(identity.text.hasPrefix("HTTP/1.1 200"), "\(identity.text)")
        let body = identity.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        let answered = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary)
        #expect(answered == (state as NSDictionary))

        // No proxy options: run attaches and records into the proxy's session.
        let result = try run.run([], ["curl", "-sS", SandboxRig.boardsURL])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("attached to the proxy at 127.0.0.1:\(proxy.port)"), "\(result.stderr)")
        #expect(result.stderr.contains("in session attached"), "\(result.stderr)")
        #expect(try eventually { try run.rig.list(session: "attached").contains { $0["url"] as? String == SandboxRig.boardsURL } })

        // --attach names it explicitly; with proxy options it is a usage error.
        let explicit = try run.run(["--attach", "127.0.0.1:\(proxy.port)"], ["curl", "-sS", "-o", "/dev/null", SandboxRig.boardsURL])
        #expect(explicit.status == 0, "\(explicit.stderr)")
        #expect(explicit.stderr.contains("attached to the proxy"))
        let both = try run.run(["--attach", "127.0.0.1:\(proxy.port)", "--session", "x"], ["true"])
        #expect(both.status == 2, "\(both.stderr)")
        #expect(both.stderr.contains("--attach"))

        // Proxy options with a live proxy: a separate proxy, said on stderr.
        let own = try run.run(run.proxyOptions(session: "own"), ["curl", "-sS", "-o", "/dev/null", SandboxRig.boardsURL])
        #expect(own.status == 0, "\(own.stderr)")
        #expect(own.stderr.contains("starting a separate proxy"), "\(own.stderr)")
        #expect(try run.rig.list(session: "own").count == 1)

        // A second proxy on the same home leaves the live one's state file alone.
        let second = try ServerProcess(["proxy", "--home", run.home, "--listen", "127.0.0.1:0", "--session", "second"])
        #expect(try eventually { second.errorText.withLockedValue { $0.contains("another proxy") } })
        #expect(try Data(contentsOf: URL(fileURLWithPath: stateFile)) == stateData)
        #expect(second.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: stateFile))

        #expect(proxy.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: stateFile), "proxy.json is removed on exit")
    }

    @Test("a stale proxy.json (killed proxy) is ignored; --attach where no tokentap answers exits 1")
    func staleAndMissing() throws {
        let proxy = try run.rig.startProxy(session: "killed")
        let port = proxy.port
        proxy.stop(signal: SIGKILL)
        #expect(FileManager.default.fileExists(atPath: run.home + "/recordings/proxy.json"))
        let result = try run.run([], ["sh", "-c", "echo \"$HTTPS_PROXY\""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("ignoring"), "\(result.stderr)")
        #expect(result.stderr.contains("proxy on 127.0.0.1:"), "\(result.stderr)")
        #expect(!result.text.contains(":\(port)\n"), "\(result.text)")

        let dead = try run.run(["--attach", "127.0.0.1:\(port)"], ["true"])
        #expect(dead.status == 1, "\(dead.stderr)")
        #expect(dead.stderr.contains("no tokentap proxy answers at 127.0.0.1:\(port)"), "\(dead.stderr)")
        // Something listens there, but it is not tokentap (the sandbox speaks TLS).
        let other = try run.run(["--attach", "127.0.0.1:\(run.rig.sandbox.port)"], ["true"])
        #expect(other.status == 1, "\(other.stderr)")

        // A new proxy on the stale file's very address takes the file over (it answers for itself).
        let again = try ServerProcess(["proxy", "--home", run.home, "--listen", "127.0.0.1:\(port)", "--session", "again"])
        let state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.home + "/recordings/proxy.json"))) as? [String: Any])
        #expect((state["pid"] as? NSNumber)?.int32Value == again.process.processIdentifier, "\(state)")
        #expect(state["session"] as? String == "again")
        #expect(!again.errorText.withLockedValue { $0.contains("another proxy") })
        #expect(again.stop() == 0)
    }

    // MARK: - the process

    @Test("exit status: the command's, 127 not found, 126 not executable, 128+N for signal N")
    func exitStatus() throws {
        #expect(try run.run([], ["sh", "-c", "exit 3"]).status == 3)
        #expect(try run.run([], ["sh", "-c", "exit 64"]).status == 64)
        let missing = try run.run([], ["no-such-command-tokentap"])
        #expect(missing.status == 127)
        #expect(missing.stderr.contains("no-such-command-tokentap"))
        let file = run.rig.dir.appendingPathComponent("not-executable.sh")
        try "echo hi\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try run.run([], [file.path]).status == 126)
        #expect(try run.run([], ["sh", "-c", "kill -TERM $$"]).status == 143)
        #expect(try run.run([], []).status == 2)
    }

    @Test("SIGTERM to tokentap is passed on to the command; tokentap exits with its status")
    func forwardsTerm() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tokentapBinary)
        process.arguments = ["run", "--home", run.home, "--", "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"]
        process.environment = environmentWithoutProxySettings()
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let lines = NIOLockedValueBox<[String]>([])
        try process.run()
        collectLines(out, into: lines)
        #expect(try eventually(30) { lines.withLockedValue { $0.contains("ready") } })
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 7)
        #expect(try eventually { lines.withLockedValue { $0.contains("got-term") } })
    }

    /// A command line run under a pseudo-terminal by util-linux `script` (the terminal's foreground
    /// process group is the one tokentap and the command share).
    final class Terminal: @unchecked Sendable {
        let process = Process()
        let input = Pipe()
        let output = NIOLockedValueBox("")

        init(_ commandLine: String, environment: [String: String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-q", "-e", "-f", "-c", commandLine, "/dev/null"]
            var env = environment
            env["SHELL"] = "/bin/sh"
            process.environment = env
            let out = Pipe()
            process.standardInput = input
            process.standardOutput = out
            process.standardError = out
            try process.run()
            collectText(out, into: output)
        }

        func type(_ text: String) { input.fileHandleForWriting.write(Data(text.utf8)) }

        func waitForOutput(_ needle: String, seconds: Double = 30) -> Bool {
            eventually(seconds) { output.withLockedValue { $0.contains(needle) } }
        }

        /// The exit status of `script` (`-e`: the command's), or -1 when it did not end within 60 s.
        func wait() -> Int32 {
            if !eventually(60, { !process.isRunning }) {
                kill(process.processIdentifier, SIGKILL)  // and fail (its reaping is Foundation's business)
                return -1
            }
            process.waitUntilExit()
            try? input.fileHandleForWriting.close()
            return process.terminationStatus
        }
    }

    @Test("under a terminal, a command that reads a line gets it (same process group as tokentap, in the foreground)")
    func readsTheTerminal() throws {
        let line = "\(shellWord(tokentapBinary)) run --home \(shellWord(run.home)) -- sh -c 'echo ready; read answer; echo \"got:$answer\"'"
        let terminal = try Terminal(line, environment: environmentWithoutProxySettings())
        #expect(terminal.waitForOutput("ready"), "\(terminal.output.withLockedValue { $0 })")
        terminal.type("hello tokentap\n")
        #expect(terminal.wait() == 0, "\(terminal.output.withLockedValue { $0 })")
        #expect(terminal.output.withLockedValue { $0.contains("got:hello tokentap") }, "\(terminal.output.withLockedValue { $0 })")
    }

    @Test("Ctrl-C stops the command; tokentap writes the last exchanges and exits 130")
    func controlC() throws {
        let query = SandboxRig.form([("response_type", "code"), ("client_id", run.rig.clientID), ("redirect_uri", run.rig.redirectURI)])
        let options = run.proxyOptions(session: "ctrl-c").map(shellWord).joined(separator: " ")
        let script = "curl -sS -o /dev/null \(shellWord("\(SandboxRig.authorizeURL)?\(query)")); echo ready; sleep 60"
        let line = "\(shellWord(tokentapBinary)) run --home \(shellWord(run.home)) \(options) -- sh -c \(shellWord(script))"
        let terminal = try Terminal(line, environment: environmentWithoutProxySettings())
        #expect(terminal.waitForOutput("ready"), "\(terminal.output.withLockedValue { $0 })")
        terminal.type("\u{03}")
        let status = terminal.wait()
        let text = terminal.output.withLockedValue { $0 }
        #expect(status == 130, "\(text)")
        #expect(text.contains("1 exchange(s) recorded (1 OAuth) in session ctrl-c"), "\(text)")
        let rows = try run.rig.list(session: "ctrl-c")
        #expect(rows.count == 1 && rows.first?["status"] as? Int == 302, "\(rows)")
    }
}

/// The same clients when the home's path has a space in it (generated files, wgetrc, PYTHONPATH).
@Suite("tokentap run with a home path containing a space", .serialized)
final class RunSpacedHomeTests {
    @Test("curl, wget and requests-oauthlib through run in a home whose path has a space")
    func spacedHome() throws {
        let run = try RunRig(homeName: "my home")
        #expect(run.home.contains(" "))
        let code = try run.code(session: "spaced")
        let curl = try run.run(run.proxyOptions(session: "spaced"), ["curl", "-sS", "-d", run.exchangeForm(code: code), SandboxRig.tokenURL])
        #expect(curl.text.contains("\"access_token\""), "\(curl.text) \(curl.stderr)")
        try run.expectTokenExchangeRecorded(session: "spaced", code: code)

        let wgetCode = try run.code(session: "spaced-wget")
        let wget = try run.run(run.proxyOptions(session: "spaced-wget"),
                               ["wget", "-q", "-O", "-", "--post-data=\(run.exchangeForm(code: wgetCode))", SandboxRig.tokenURL])
        #expect(wget.status == 0, "\(wget.stderr)")
        try run.expectTokenExchangeRecorded(session: "spaced-wget", code: wgetCode)

        let pyCode = try run.code(session: "spaced-python")
        let (json, result) = try run.python("oauthlib", session: "spaced-python", code: pyCode)
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)")
        try run.expectTokenExchangeRecorded(session: "spaced-python", code: pyCode)
        let generated = try FileManager.default.contentsOfDirectory(atPath: run.home + "/run")
        #expect(generated.contains(".gitignore"))
        #expect(try String(contentsOfFile: run.home + "/run/.gitignore", encoding: .utf8) == "*\n")
    }
}

private func parseDate(_ text: String?) -> Date? {
    guard let text else { return nil }
    return ISO8601DateFormatter().date(from: text)
}
