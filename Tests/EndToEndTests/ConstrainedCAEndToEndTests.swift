import CertificateAuthority
import Foundation
import Testing
import TokentapCore

/// tokentap's CA is a root plus a name-constrained intermediate (issue 18): what OpenSSL, curl,
/// Python's `ssl` and Java 17 accept and reject, and the command line around it. Every client
/// trusts exactly the root file and nothing else.
@Suite("Constrained CA end to end", .serialized)
final class ConstrainedCAEndToEndTests {
    let dir: URL
    /// Serves leaves of its own test CA; the leaf for 127.0.0.1 to clients without SNI.
    let upstream: TestUpstream

    init() throws {
        dir = try makeTemporaryDirectory("tokentap-ca-e2e")
        upstream = try TestUpstream(directory: dir, noSNIName: "127.0.0.1")
        try upstream.start()
    }

    deinit { upstream.stop() }

    var home: String { dir.appendingPathComponent("home").path }
    var root: String { "\(home)/certs/tokentap-ca.pem" }
    var intermediate: String { "\(home)/certs/tokentap-ca-intermediate.pem" }
    var caKey: String { "\(home)/certs/tokentap-ca-key.pem" }

    func startProxy(_ extra: [String], session: String = "ca") throws -> ServerProcess {
        try ServerProcess(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", session,
                           "--map-remote", "api.miro.com=127.0.0.1:\(upstream.port)", "--upstream-ca", upstream.caFile.path] + extra)
    }

    // MARK: - Clients

    /// The environment without proxy or trust variables, so each client uses only what it is given.
    static var cleanEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
                     "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "JAVA_TOOL_OPTIONS"] {
            environment[name] = nil
        }
        return environment
    }

    func curl(_ args: [String]) throws -> CommandResult {
        try runCommand("/usr/bin/curl", ["-sS", "--max-time", "30"] + args, environment: Self.cleanEnvironment)
    }

    /// `Tests/EndToEndTests/Python/tls_check.py ARGS` with `TOKENTAP_PYTHON`.
    func python(_ args: [String]) throws -> CommandResult {
        let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/tls_check.py").path
        return try runCommand(try SandboxRig.pythonInterpreter(), [script] + args, environment: Self.cleanEnvironment)
    }

    /// `Tests/EndToEndTests/Java/TLSCheck.java`, compiled once by javac per test run.
    static let javaClasses: Result<String, ProcessFailure> = {
        do {
            let out = try makeTemporaryDirectory("tokentap-java")
            let source = packageRoot.appendingPathComponent("Tests/EndToEndTests/Java/TLSCheck.java").path
            let result = try runCommand("/usr/bin/javac", ["-d", out.path, source], environment: cleanEnvironment)
            guard result.status == 0 else {
                return .failure(ProcessFailure(message: "javac failed (\(result.status)): \(result.stderr)"))
            }
            return .success(out.path)
        } catch {
            return .failure(ProcessFailure(message: "this test needs Java 17 (javac and java in /usr/bin): \(error)"))
        }
    }()

    func java(_ args: [String]) throws -> CommandResult {
        let classes = try Self.javaClasses.get()
        return try runCommand("/usr/bin/java", ["-cp", classes, "TLSCheck"] + args, environment: Self.cleanEnvironment)
    }

    func opensslVerify(leaf: String) throws -> CommandResult {
        try runCommand("/usr/bin/openssl", ["verify", "-CAfile", root, "-untrusted", intermediate, leaf])
    }

    /// The certificates (PEM blocks) in `text`, in order.
    static func pemBlocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = rest.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<rest.endIndex) {
            blocks.append(String(rest[start.lowerBound..<end.upperBound]) + "\n")
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    /// Mints a leaf for `name` the way someone who copied `certs/` could: with the openssl tool,
    /// the intermediate certificate and its key. Returns the leaf and key PEM paths.
    func mintWithOpenSSL(_ name: String) throws -> (leaf: String, key: String) {
        let base = dir.appendingPathComponent("minted-\(name)").path
        let key = base + ".key", csr = base + ".csr", ext = base + ".ext", leaf = base + ".pem"
        let san = IPAddress(name) != nil ? "IP:\(name)" : "DNS:\(name)"
        try "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=\(san)\n"
            .write(toFile: ext, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
            ["req", "-new", "-key", key, "-subj", "/O=copied key", "-out", csr],
            ["x509", "-req", "-in", csr, "-CA", intermediate, "-CAkey", caKey, "-set_serial", "0x\(UUID().uuidString.prefix(8))",
             "-days", "30", "-sha256", "-extfile", ext, "-out", leaf],
        ]
        for step in steps {
            let result = try runCommand("/usr/bin/openssl", step)
            guard result.status == 0 else { throw ProcessFailure(message: "openssl \(step) failed: \(result.stderr)") }
        }
        return (leaf, key)
    }

    // MARK: - Tests

    @Test("curl, Python ssl, Java and OpenSSL accept the proxy's leaves for api.miro.com and 127.0.0.1, served with intermediate and root")
    func permittedLeavesThroughProxy() throws {
        let proxy = try startProxy(["--intercept", "127.0.0.1"])
        defer { #expect(proxy.stop() == 0) }
        for file in [root, intermediate, caKey] { #expect(FileManager.default.fileExists(atPath: file), "\(file)") }
        #expect(FileSystem.mode(of: caKey) == 0o600)
        // The key on disk is the intermediate's, not the root's.
        let keyPublic = try runCommand("/usr/bin/openssl", ["pkey", "-in", caKey, "-pubout"]).text
        let intermediatePublic = try runCommand("/usr/bin/openssl", ["x509", "-in", intermediate, "-noout", "-pubkey"]).text
        let rootPublic = try runCommand("/usr/bin/openssl", ["x509", "-in", root, "-noout", "-pubkey"]).text
        #expect(keyPublic == intermediatePublic)
        #expect(keyPublic != rootPublic)
        let text = try runCommand("/usr/bin/openssl", ["x509", "-in", intermediate, "-noout", "-text"]).text
        #expect(text.contains("X509v3 Name Constraints: critical"))
        #expect(text.contains("DNS:miro.com") && text.contains("DNS:localhost"))
        #expect(text.contains("IP:127.0.0.0/255.0.0.0") && text.contains("IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"))

        let targets: [(host: String, port: Int)] = [("api.miro.com", 443), ("127.0.0.1", upstream.port)]
        for (host, port) in targets {
            let url = "https://\(host):\(port)/ping"
            let viaCurl = try curl(["--proxy", proxy.proxyURL, "--cacert", root, url])
            #expect(viaCurl.status == 0 && viaCurl.text == "ok\n", "curl \(url): \(viaCurl.stderr)")

            let viaPython = try python(["proxy", "127.0.0.1", String(proxy.port), root, host, String(port), "/ping"])
            #expect(viaPython.status == 0 && viaPython.text.hasPrefix("status 200 ok"), "python \(url): \(viaPython.text) \(viaPython.stderr)")

            let viaJava = try java(["proxy", "127.0.0.1", String(proxy.port), root, url])
            #expect(viaJava.status == 0 && viaJava.text.hasPrefix("status 200 ok"), "java \(url): \(viaJava.text) \(viaJava.stderr)")

            let isIP = IPAddress(host) != nil
            let sClient = try runCommand("/usr/bin/openssl", [
                "s_client", "-proxy", "127.0.0.1:\(proxy.port)", "-connect", "\(host):\(port)",
                "-CAfile", root, "-verify_return_error", "-showcerts",
            ] + (isIP ? ["-noservername", "-verify_ip", host] : ["-servername", host, "-verify_hostname", host]), stdin: Data())
            #expect(sClient.text.contains("Verify return code: 0 (ok)"), "s_client \(host): \(sClient.text) \(sClient.stderr)")
            // Leaf, intermediate, root.
            let served = Self.pemBlocks(sClient.text)
            #expect(served.count == 3, "\(host): the proxy served \(served.count) certificates")
            #expect(served.last == (try String(contentsOfFile: root, encoding: .utf8)))
            #expect(served.dropFirst().first == (try String(contentsOfFile: intermediate, encoding: .utf8)))
            let leafFile = dir.appendingPathComponent("served-\(host).pem").path
            try (served.first ?? "").write(toFile: leafFile, atomically: true, encoding: .utf8)
            let verified = try opensslVerify(leaf: leafFile)
            #expect(verified.status == 0 && verified.text.contains("\(leafFile): OK"), "\(verified.text) \(verified.stderr)")
            if isIP {
                // An IP leaf: IP SAN, and no IP (no CN at all) in its subject.
                let subject = try runCommand("/usr/bin/openssl", ["x509", "-in", leafFile, "-noout", "-subject", "-ext", "subjectAltName"]).text
                #expect(subject.contains("IP Address:127.0.0.1"))
                #expect(!subject.contains("CN") && !subject.contains("CN="), "\(subject)")
            }
        }
        // Both hosts were intercepted and recorded (curl, Python and Java each).
        #expect(proxy.stop() == 0)
        let list = try tokentap(["list", "--home", home, "--session", "ca", "--json"])
        let urls = (try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]] ?? []).compactMap { $0["url"] as? String }
        #expect(urls.filter { $0 == "https://api.miro.com/ping" }.count == 3, "\(urls)")
        #expect(urls.filter { $0 == "https://127.0.0.1:\(upstream.port)/ping" }.count == 3, "\(urls)")
    }

    @Test("a leaf for example.org minted with the intermediate's key is rejected by OpenSSL, curl, Python and Java; one for api.miro.com minted the same way is accepted")
    func copiedKeyCannotMintOtherNames() throws {
        let created = try tokentap(["ca", "--home", home])
        #expect(created.status == 0, "\(created.stderr)")
        for (name, permitted) in [("api.miro.com", true), ("example.org", false)] {
            let (leaf, key) = try mintWithOpenSSL(name)
            let server = try TestUpstream(directory: dir)
            server.fixedIdentity = (chain: [leaf, intermediate, root], key: key)
            try server.start()
            defer { server.stop() }

            let verify = try opensslVerify(leaf: leaf)
            let viaCurl = try curl(["--cacert", root, "--resolve", "\(name):\(server.port):127.0.0.1", "https://\(name):\(server.port)/ping"])
            let viaPython = try python(["direct", "127.0.0.1", String(server.port), name, root])
            let viaJava = try java(["direct", "127.0.0.1", String(server.port), name, root])
            let javaPKIX = try java(["pkix", root, leaf, intermediate])
            if permitted {
                #expect(verify.status == 0, "openssl verify \(name): \(verify.text) \(verify.stderr)")
                #expect(viaCurl.status == 0 && viaCurl.text == "ok\n", "curl \(name): \(viaCurl.stderr)")
                #expect(viaPython.status == 0, "python \(name): \(viaPython.text) \(viaPython.stderr)")
                #expect(viaJava.status == 0 && viaJava.text.contains("chain of 3"), "java \(name): \(viaJava.text) \(viaJava.stderr)")
                #expect(javaPKIX.status == 0, "java pkix \(name): \(javaPKIX.text) \(javaPKIX.stderr)")
            } else {
                #expect(verify.status != 0)
                #expect((verify.text + verify.stderr).contains("permitted subtree violation"), "\(verify.text) \(verify.stderr)")
                #expect(viaCurl.status == 60, "curl \(name): \(viaCurl.status) \(viaCurl.stderr)")
                #expect(viaPython.status == 1 && viaPython.text.contains("permitted subtree violation"), "python: \(viaPython.text) \(viaPython.stderr)")
                #expect(viaJava.status == 1 && viaJava.text.contains("rejected"), "java: \(viaJava.text) \(viaJava.stderr)")
                #expect(javaPKIX.status == 1 && javaPKIX.text.lowercased().contains("name constraints"), "java pkix: \(javaPKIX.text) \(javaPKIX.stderr)")
            }
        }
    }

    @Test("an --intercept outside the CA's constraints stops proxy and run with exit 2; ca --reissue --intercept then lets the proxy intercept it")
    func reissueForNewPattern() throws {
        #expect(try tokentap(["ca", "--home", home]).status == 0)
        let refused = try tokentap(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--intercept", "auth.example.com"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--intercept auth.example.com"), "\(refused.stderr)")
        #expect(refused.stderr.contains("`tokentap ca --reissue --intercept auth.example.com`"), "\(refused.stderr)")
        #expect(!refused.text.contains("listening on"))

        let marker = dir.appendingPathComponent("ran").path
        let run = try tokentap(["run", "--home", home, "--intercept", "*.example.com", "--", "touch", marker])
        #expect(run.status == 2)
        #expect(run.stderr.contains("`tokentap ca --reissue --intercept '*.example.com'`"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))

        let oldRoot = dir.appendingPathComponent("old-root.pem").path
        try FileManager.default.copyItem(atPath: root, toPath: oldRoot)
        let reissued = try tokentap(["ca", "--home", home, "--reissue", "--intercept", "auth.example.com"])
        #expect(reissued.status == 0, "\(reissued.stderr)")
        #expect(reissued.text.contains("issued a new CA") && reissued.text.contains("Remove it wherever you installed it by hand"), "\(reissued.text)")
        #expect(reissued.text.contains("permits:      miro.com, auth.example.com, localhost, 127.0.0.0/8, ::1/128"), "\(reissued.text)")
        #expect(try String(contentsOfFile: root, encoding: .utf8) != (try String(contentsOfFile: oldRoot, encoding: .utf8)))

        let proxy = try startProxy(["--intercept", "auth.example.com", "--map-remote", "auth.example.com=127.0.0.1:\(upstream.port)"],
                                   session: "reissued")
        defer { proxy.stop() }
        let ok = try curl(["--proxy", proxy.proxyURL, "--cacert", root, "https://auth.example.com/ping"])
        #expect(ok.status == 0 && ok.text == "ok\n", "\(ok.stderr)")
        // The old root no longer verifies anything the proxy serves.
        let old = try curl(["--proxy", proxy.proxyURL, "--cacert", oldRoot, "https://auth.example.com/ping"])
        #expect(old.status == 60)
        #expect(proxy.stop() == 0)
        let list = try tokentap(["list", "--home", home, "--session", "reissued", "--json"])
        let urls = (try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]] ?? []).compactMap { $0["url"] as? String }
        #expect(urls == ["https://auth.example.com/ping"])

        // `run` trusts the new root by itself.
        let viaRun = try tokentap(["run", "--home", home, "--intercept", "auth.example.com",
                                   "--map-remote", "auth.example.com=127.0.0.1:\(upstream.port)", "--upstream-ca", upstream.caFile.path,
                                   "--", "curl", "-sS", "https://auth.example.com/ping"])
        #expect(viaRun.status == 0 && viaRun.text == "ok\n", "\(viaRun.stderr)")
    }

    @Test("--intercept '*' is refused with a constrained CA (exit 2, naming --unconstrained); ca --reissue --unconstrained is a loud opt-in")
    func interceptEverything() throws {
        // No CA yet: refused before one is created.
        let fresh = try tokentap(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--intercept", "*"])
        #expect(fresh.status == 2)
        #expect(fresh.stderr.contains("`tokentap ca --reissue --unconstrained`"), "\(fresh.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root) && !FileManager.default.fileExists(atPath: caKey))

        #expect(try tokentap(["ca", "--home", home]).status == 0)
        let refused = try tokentap(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--intercept", "*"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("`tokentap ca --reissue --unconstrained`"), "\(refused.stderr)")
        let caStar = try tokentap(["ca", "--home", home, "--reissue", "--intercept", "*"])
        #expect(caStar.status == 2 && caStar.stderr.contains("--unconstrained"), "\(caStar.stderr)")
        for args in [["--unconstrained"], ["--intercept", "auth.example.com"], ["--reissue", "--unconstrained", "--intercept", "a.example.com"]] {
            let bad = try tokentap(["ca", "--home", home] + args)
            #expect(bad.status == 2, "ca \(args): \(bad.text) \(bad.stderr)")
        }

        let loud = try tokentap(["ca", "--home", home, "--reissue", "--unconstrained"])
        #expect(loud.status == 0, "\(loud.stderr)")
        #expect(loud.text.contains("WARNING: this CA has NO name constraints"), "\(loud.text)")
        #expect(loud.text.contains("permits:      ANY NAME"))
        let text = try runCommand("/usr/bin/openssl", ["x509", "-in", intermediate, "-noout", "-text"]).text
        #expect(text.contains("CA:TRUE") && !text.contains("Name Constraints"))

        let proxy = try startProxy(["--intercept", "*", "--map-remote", "other.example.net=127.0.0.1:\(upstream.port)"])
        defer { proxy.stop() }
        #expect(proxy.errorText.withLockedValue { $0.contains("WARNING") && $0.contains("no name constraints") })
        let ok = try curl(["--proxy", proxy.proxyURL, "--cacert", root, "https://other.example.net/ping"])
        #expect(ok.status == 0 && ok.text == "ok\n", "\(ok.stderr)")
        #expect(proxy.stop() == 0)
    }

    @Test("a CA made before name constraints still works, with one warning line at start-up suggesting --reissue")
    func legacyCA() throws {
        let certs = URL(fileURLWithPath: home).appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        let (certificate, key) = try CertificateAuthority.makeCA(commonName: "tokentap CA")
        try FileSystem.writeAtomically(Data(key.pemRepresentation.utf8), to: URL(fileURLWithPath: caKey), mode: 0o600)
        try FileSystem.writeAtomically(Data((try certificate.serializeAsPEM().pemString + "\n").utf8), to: URL(fileURLWithPath: root), mode: 0o644)
        let before = try String(contentsOfFile: root, encoding: .utf8)

        let proxy = try startProxy(["--intercept", "auth.example.com", "--map-remote", "auth.example.com=127.0.0.1:\(upstream.port)"])
        defer { proxy.stop() }
        for host in ["api.miro.com", "auth.example.com"] {
            let ok = try curl(["--proxy", proxy.proxyURL, "--cacert", root, "https://\(host)/ping"])
            #expect(ok.status == 0 && ok.text == "ok\n", "\(host): \(ok.stderr)")
        }
        #expect(proxy.stop() == 0)
        let warnings = proxy.errorText.withLockedValue { $0 }.split(separator: "\n").filter { $0.contains("--reissue") }
        #expect(warnings.count == 1, "\(proxy.errorText.withLockedValue { $0 })")
        #expect(warnings.first?.contains("predates name constraints") == true)

        let ca = try tokentap(["ca", "--home", home])
        #expect(ca.status == 0)
        #expect(ca.text.contains("a CA made before name constraints"))
        #expect(try String(contentsOfFile: root, encoding: .utf8) == before)
        #expect(!FileManager.default.fileExists(atPath: intermediate))
    }
}
