import Foundation
import ProxyServer
@testable import RunSupport
import Testing
import TokentapCore

/// The pure parts of the Node and JVM settings (issue 21).
@Suite("tokentap run: Node and JVM settings")
struct RuntimeSettingsTests {
    let defaults = HostPattern.defaults

    @Test("NO_PROXY → http.nonProxyHosts: |-separated, domains with their subdomains, no ports, octet CIDR ranges, loopback kept")
    func nonProxyHosts() throws {
        let (value, unsupported) = JavaOptions.nonProxyHosts(
            "example.org, .corp.example,*.internal.example,db.local:5432,10.0.0.0/8,192.168.1.0/24,172.16.0.0/12,192.0.2.7,[::1]:8080,fe80::1,*",
            intercept: defaults)
        #expect(value == "localhost|127.*|[::1]|example.org|*.example.org|corp.example|*.corp.example|internal.example|*.internal.example|db.local|*.db.local|10.*|192.168.1.*|192.0.2.7|[fe80::1]")
        #expect(unsupported == ["172.16.0.0/12"])
        #expect(JavaOptions.nonProxyHosts("", intercept: defaults).value == "localhost|127.*|[::1]")
        // Loopback defaults an intercepted pattern covers are left out (they would bypass it).
        let local = try HostPattern(parsing: "localhost")
        #expect(JavaOptions.nonProxyHosts("example.org", intercept: defaults + [local]).value == "127.*|[::1]|example.org|*.example.org")
    }

    @Test("JAVA_TOOL_OPTIONS words are quoted only when needed, with the quote the value lacks")
    func javaQuoting() {
        #expect(JavaOptions.property("a", "/plain/path.p12") == "-Da=/plain/path.p12")
        #expect(JavaOptions.property("a", "/my home/x.p12") == "-Da=\"/my home/x.p12\"")
        #expect(JavaOptions.property("a", "/it's \"here\"/x") == nil)
        #expect(JavaOptions.property("a", "/say \"hi\"/x") == "-Da='/say \"hi\"/x'")
        let options = JavaOptions.toolOptions(proxyHost: "127.0.0.1", proxyPort: 8877, nonProxyHosts: "localhost|*.example.org",
                                              trustStore: "/my home/run/java-truststore-1.p12")
        #expect(options == "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=8877 -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=8877 "
            + "-Dhttp.nonProxyHosts=localhost|*.example.org -Djavax.net.ssl.trustStore=\"/my home/run/java-truststore-1.p12\" "
            + "-Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12")
        #expect(JavaOptions.appending("-Dx=1", to: nil) == "-Dx=1")
        #expect(JavaOptions.appending("-Dx=1", to: "  ") == "-Dx=1")
        #expect(JavaOptions.appending("-Dx=1", to: "-Xmx64m") == "-Xmx64m -Dx=1")
        #expect(JavaOptions.appending("-Dx=1", to: "-Xmx64m -Dx=1") == "-Xmx64m -Dx=1")
        #expect(JavaOptions.hostAndPort(ofProxyURL: "http://127.0.0.1:8877").map { "\($0.host) \($0.port)" } == "127.0.0.1 8877")
        #expect(JavaOptions.hostAndPort(ofProxyURL: "http://[::1]:9").map { "\($0.host) \($0.port)" } == "::1 9")
        #expect(JavaOptions.hostAndPort(ofProxyURL: "http://nohost") == nil)
    }

    @Test("NODE_OPTIONS gets --require with the path double-quoted (backslashes and quotes escaped), after the command's own options")
    func nodeOptions() {
        #expect(NodeHook.options(requiring: "/my home/run/node-hook-1.js", appendingTo: nil) == "--require \"/my home/run/node-hook-1.js\"")
        #expect(NodeHook.options(requiring: "/a\"b\\c.js", appendingTo: "") == "--require \"/a\\\"b\\\\c.js\"")
        #expect(NodeHook.options(requiring: "/h.js", appendingTo: "--max-old-space-size=100") == "--max-old-space-size=100 --require \"/h.js\"")
        // A run inside a run names the same (content-hashed) preload once.
        #expect(NodeHook.options(requiring: "/h.js", appendingTo: "--inspect --require \"/h.js\"") == "--inspect --require \"/h.js\"")
    }

    @Test("apply sets NODE_USE_ENV_PROXY, NODE_OPTIONS and JAVA_TOOL_OPTIONS (non-proxy hosts from the filtered NO_PROXY)")
    func apply() {
        let env = RunEnvironment(proxyURL: "http://127.0.0.1:9", intercept: defaults, bundle: "/b.pem", nodeExtraCertificates: "/n.pem",
                                 wgetrc: "/w", pythonHook: nil, nodeHook: "/h dir/node-hook.js", javaTrustStore: "/t.p12")
        let out = env.apply(to: ["NO_PROXY": "miro.com,example.org", "NODE_OPTIONS": "--inspect", "JAVA_TOOL_OPTIONS": "-Xmx1g"])
        #expect(out["NODE_USE_ENV_PROXY"] == "1")
        #expect(out["NODE_OPTIONS"] == "--inspect --require \"/h dir/node-hook.js\"")
        #expect(out["JAVA_TOOL_OPTIONS"] == "-Xmx1g -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9 -Dhttp.proxyHost=127.0.0.1 "
            + "-Dhttp.proxyPort=9 -Dhttp.nonProxyHosts=localhost|127.*|[::1]|example.org|*.example.org -Djavax.net.ssl.trustStore=/t.p12 "
            + "-Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12")
        // Without NO_PROXY the JVM keeps its own default non-proxy hosts; without a store, no JVM settings.
        #expect(env.apply(to: [:])["JAVA_TOOL_OPTIONS"]?.contains("nonProxyHosts") == false)
        var bare = env
        bare.javaTrustStore = nil
        bare.nodeHook = nil
        #expect(bare.apply(to: ["JAVA_TOOL_OPTIONS": "-Xmx1g"])["JAVA_TOOL_OPTIONS"] == "-Xmx1g")
        #expect(bare.apply(to: [:])["NODE_OPTIONS"] == nil)
    }

    @Test("the preload is plain JavaScript that never throws out of its wrapper")
    func preloadSource() {
        #expect(NodeHook.source.hasPrefix("// Generated by tokentap run"))
        #expect(!NodeHook.source.contains("require('undici')"))
        #expect(NodeHook.source.contains("tokentap: node hook: "))
    }

    @Test("keytool is found through JAVA_HOME, else PATH; its JDK's cacerts through symbolic links")
    func keytool() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-jdk-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let jdk = dir.appendingPathComponent("jdk")
        try FileManager.default.createDirectory(at: jdk.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: jdk.appendingPathComponent("lib/security"), withIntermediateDirectories: true)
        let tool = jdk.appendingPathComponent("bin/keytool")
        _ = FileManager.default.createFile(atPath: tool.path, contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        _ = FileManager.default.createFile(atPath: jdk.appendingPathComponent("lib/security/cacerts").path, contents: Data())
        let bin = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent("keytool").path, withDestinationPath: tool.path)
        #expect(JavaTrustStore.findKeytool(environment: ["JAVA_HOME": jdk.path, "PATH": "/nonexistent"]) == tool.path)
        let viaPath = try #require(JavaTrustStore.findKeytool(environment: ["PATH": "/nonexistent:\(bin.path)"]))
        #expect(viaPath == bin.appendingPathComponent("keytool").path)
        #expect(JavaTrustStore.cacerts(forKeytool: viaPath) == jdk.appendingPathComponent("lib/security/cacerts").resolvingSymlinksInPath().path)
        #expect(JavaTrustStore.findKeytool(environment: ["PATH": "/nonexistent"]) == nil)
    }
}
