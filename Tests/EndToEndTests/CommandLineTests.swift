import Foundation
import Testing

/// The command-line contract for the foundation: `ca`, option validation, exit codes.
@Suite("Command line", .serialized)
struct CommandLineTests {
    let home: String

    init() throws { home = try makeTemporaryDirectory("tokentap-cli").path }

    @Test("tokentap ca creates the CA on first use and prints its path and trust steps per runtime")
    func caCommand() throws {
        let result = try tokentap(["ca", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        let ca = "\(home)/certs/tokentap-ca.pem"
        #expect(result.text.contains(ca))
        for needle in ["--cacert", "HTTPS_PROXY=http://127.0.0.1:8877", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "GIT_SSL_CAINFO",
                       "NODE_EXTRA_CA_CERTS", "WGETRC", "PYTHONPATH", "NODE_USE_ENV_PROXY=1", "NODE_OPTIONS=", "--require",
                       "JAVA_TOOL_OPTIONS=", "-Djavax.net.ssl.trustStore=", "tokentap run", "update-ca-certificates", "Firefox"] {
            #expect(result.text.contains(needle), "missing \(needle)")
        }
        // No advice to write the JDK's system store or an NSS database (issue 16).
        for needle in ["keytool", "cacerts", "certutil", "nssdb"] {
            #expect(!result.text.contains(needle), "still suggests \(needle)")
        }
        // The bundle it names exists and ends with tokentap's CA.
        let bundleLine = try #require(result.text.split(separator: "\n").first { $0.contains("export SSL_CERT_FILE=") })
        let bundle = try #require(bundleLine.split(separator: " ").first { $0.hasPrefix("SSL_CERT_FILE=") }).dropFirst("SSL_CERT_FILE=".count)
        let bundleText = try String(contentsOfFile: String(bundle), encoding: .utf8)
        #expect(bundleText.hasSuffix(try String(contentsOfFile: ca, encoding: .utf8)))
        let pem = try tokentap(["ca", "--home", home, "--pem"])
        #expect(pem.text.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(pem.text == (try String(contentsOfFile: ca, encoding: .utf8)))
        let parsed = try runCommand("/usr/bin/openssl", ["x509", "-noout", "-subject"], stdin: pem.stdout)
        #expect(parsed.status == 0)
        #expect(parsed.text.contains("tokentap CA"))
        // Folders tokentap creates keep themselves out of git.
        #expect(try String(contentsOfFile: "\(home)/certs/.gitignore", encoding: .utf8) == "*\n")
    }

    @Test("a corrupt CA key stops the proxy with a message naming the file, and no new CA is made")
    func corruptCA() throws {
        _ = try tokentap(["ca", "--home", home])
        let key = "\(home)/certs/tokentap-ca-key.pem"
        try "-----BEGIN PRIVATE KEY-----\nAAAA\n".write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        let before = try String(contentsOfFile: "\(home)/certs/tokentap-ca.pem", encoding: .utf8)
        let result = try tokentap(["proxy", "--home", home, "--listen", "127.0.0.1:0"])
        #expect(result.status == 1)
        #expect(result.stderr.contains(key))
        #expect(result.stderr.contains("--reissue"))
        #expect(try String(contentsOfFile: "\(home)/certs/tokentap-ca.pem", encoding: .utf8) == before)
    }

    @Test("bad proxy option values get a one-line error and exit code 2", arguments: [
        ["--listen", "nonsense"], ["--map-remote", "a=b"], ["--intercept", "a*b"], ["--upstream-timeout", "0"],
        ["--upstream-ca", "/nonexistent.pem"], ["--listen", "0.0.0.0:8877"], ["--session", "has space"], ["--bogus"],
        ["--max-body", "-1"],
    ])
    func badOptions(_ args: [String]) throws {
        let result = try tokentap(["proxy", "--home", home] + args)
        #expect(result.status == 2, "\(args): \(result.stderr)")
        #expect(!result.stderr.isEmpty)
        #expect(result.stdout.isEmpty)
    }

    @Test("--allow-remote is what lets the proxy listen beyond loopback")
    func allowRemote() throws {
        let proxy = try ServerProcess(["proxy", "--home", home, "--listen", "0.0.0.0:0", "--allow-remote"])
        #expect(proxy.host == "0.0.0.0")
        #expect(proxy.stop() == 0)
    }
}
