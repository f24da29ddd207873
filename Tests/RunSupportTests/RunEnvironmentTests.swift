import Foundation
import ProxyServer
@testable import RunSupport
import Testing
import TokentapCore

@Suite("tokentap run: environment")
struct RunEnvironmentTests {
    let defaults = HostPattern.defaults

    @Test("NO_PROXY keeps entries that spare intercepted hosts and drops those that would bypass them")
    func noProxy() throws {
        let (kept, removed) = NoProxy.filter("localhost,127.0.0.1, .miro.com,api.miro.com:443,miro.com,example.org,*.miro.com,com,[::1]",
                                             intercept: defaults)
        #expect(kept == "localhost,127.0.0.1,example.org,[::1]")
        #expect(removed == [".miro.com", "api.miro.com:443", "miro.com", "*.miro.com", "com"])
        #expect(NoProxy.filter("*", intercept: defaults).kept == "")
        let extra = try HostPattern(parsing: "auth.example.org")
        #expect(NoProxy.filter("example.org,other.org", intercept: defaults + [extra]).kept == "other.org")
        #expect(NoProxy.filter("localhost", intercept: [try HostPattern(parsing: "*")]).kept == "")
        // A sibling or a name that only ends in the same letters is not an intercepted host.
        #expect(NoProxy.filter("notmiro.com,miro.co", intercept: defaults).kept == "notmiro.com,miro.co")
    }

    static let certA = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    static let certB = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
    static let certC = "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n"

    @Test("the bundle is system roots, then inherited certificates (once each), then tokentap's CA")
    func bundle() {
        let text = CABundle.compose(systemRoots: "junk\n" + Self.certA, inherited: [("SSL_CERT_FILE", Self.certA + Self.certB)],
                                    caPEM: Self.certC)
        #expect(CABundle.certificates(in: text) == [Self.certA, Self.certB, Self.certC])
        #expect(text.contains("# from SSL_CERT_FILE"))
        #expect(!text.contains("junk"))
    }

    @Test("apply sets proxy and trust variables, filters NO_PROXY and prepends the hook to PYTHONPATH")
    func apply() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-runenv-\(UUID().uuidString)")
        let oldHook = dir.appendingPathComponent("old-hook")
        try FileManager.default.createDirectory(at: oldHook, withIntermediateDirectories: true)
        try Data().write(to: oldHook.appendingPathComponent(PythonHook.moduleFile))
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = RunEnvironment(proxyURL: "http://127.0.0.1:9", intercept: defaults, bundle: "/b.pem", nodeExtraCertificates: "/n.pem",
                                 wgetrc: "/w", pythonHook: "/hook dir")
        let out = env.apply(to: ["PATH": "/bin", "no_proxy": "localhost,miro.com", "PYTHONPATH": "/mine:\(oldHook.path)",
                                 "SSL_CERT_FILE": "/corp.pem"])
        for name in RunEnvironment.proxyVariables { #expect(out[name] == "http://127.0.0.1:9") }
        for name in RunEnvironment.bundleVariables { #expect(out[name] == "/b.pem") }
        #expect(out["NODE_EXTRA_CA_CERTS"] == "/n.pem")
        #expect(out["WGETRC"] == "/w")
        #expect(out["no_proxy"] == "localhost")
        #expect(out["NO_PROXY"] == nil)
        #expect(out["PYTHONPATH"] == "/hook dir:/mine")
        #expect(out["PATH"] == "/bin")
    }

    @Test("generated files are keyed by their content, in a folder with a .gitignore of *")
    func generated() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-gen \(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = GeneratedFiles(home: Home(url: dir, source: .option))
        let a = try files.file("x", suffix: ".pem", content: "one")
        let again = try files.file("x", suffix: ".pem", content: "one")
        let b = try files.file("x", suffix: ".pem", content: "two")
        #expect(a == again)
        #expect(a != b)
        #expect(try String(contentsOf: a, encoding: .utf8) == "one")
        #expect(try String(contentsOf: files.folder.appendingPathComponent(".gitignore"), encoding: .utf8) == "*\n")
        let hook = try files.directory("python", files: PythonHook.files)
        #expect(FileManager.default.fileExists(atPath: hook.appendingPathComponent("sitecustomize.py").path))
        #expect(try files.directory("python", files: PythonHook.files) == hook)
    }
}
