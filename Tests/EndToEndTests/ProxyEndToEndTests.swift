import Crypto
import Foundation
import Testing

/// The built proxy against a real local HTTPS upstream, driven by curl. Serialized: each test
/// starts its own proxy on a `:0` port in a temporary home.
@Suite("Proxy end to end", .serialized)
final class ProxyEndToEndTests {
    let fixture: UpstreamFixture
    var dir: URL { fixture.dir }
    var upstream: TestUpstream { fixture.upstream }
    var home: String { fixture.home }

    init() throws { fixture = try UpstreamFixture() }

    func startProxy(_ extra: [String] = [], mapTo port: Int? = nil, trustUpstream: Bool = true) throws -> ServerProcess {
        try fixture.startProxy(extra, mapTo: port, trustUpstream: trustUpstream)
    }

    func curl(_ proxy: ServerProcess, _ args: [String]) throws -> CommandResult { try fixture.curl(proxy, args) }

    @Test("a form POST and a chunked gzip GET arrive through the proxy exactly as the server sent them")
    func formPostAndGzip() throws {
        let proxy = try startProxy()
        defer { #expect(proxy.stop() == 0) }
        let post = try curl(proxy, ["-d", "grant_type=authorization_code&code=abc", "https://api.miro.com/echo?x=1&client_secret=QUERYSECRET42"])
        #expect(post.status == 0, "\(post.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: post.stdout) as? [String: String])
        #expect(json["method"] == "POST")
        #expect(json["target"] == "/echo?x=1&client_secret=QUERYSECRET42")
        #expect(json["body"] == "grant_type=authorization_code&code=abc")
        #expect(json["host"] == "api.miro.com")

        // Raw (--raw: no decoding by curl) bytes through the proxy equal what the server sends
        // when asked directly (gzip is deterministic for the same input and compressor).
        let viaProxy = try curl(proxy, ["--raw", "-H", "Accept-Encoding: gzip", "-D", dir.appendingPathComponent("h1").path,
                                        "https://api.miro.com/gzip"])
        #expect(viaProxy.status == 0, "\(viaProxy.stderr)")
        let direct = try runCommand("/usr/bin/curl", ["-sS", "--raw", "-H", "Accept-Encoding: gzip", "--cacert", upstream.caFile.path,
                                                      "--resolve", "api.miro.com:\(upstream.port):127.0.0.1",
                                                      "https://api.miro.com:\(upstream.port)/gzip"])
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(viaProxy.stdout == direct.stdout)
        let headers = try String(contentsOf: dir.appendingPathComponent("h1"), encoding: .utf8).lowercased()
        #expect(headers.contains("transfer-encoding: chunked"))
        #expect(headers.contains("content-encoding: gzip"))
        // And decoded, it is the JSON lines.
        let decoded = try curl(proxy, ["--compressed", "https://api.miro.com/gzip"])
        #expect(decoded.text == TestUpstream.jsonLines)

        // One live line per exchange, its query string redacted.
        #expect(try eventually { proxy.lines.withLockedValue { $0.contains { $0.contains("POST api.miro.com/echo?x=1&client_secret=redacted.client_secret.") && $0.contains(" 200 ") } } })
        #expect(try eventually { proxy.lines.withLockedValue { $0.contains { $0.contains("GET api.miro.com/gzip 200") } } })
        #expect(!proxy.lines.withLockedValue { $0.contains { $0.contains("QUERYSECRET42") } })
    }

    @Test("a host that is not intercepted is tunnelled byte for byte (5 MiB digest)")
    func tunnel() throws {
        let proxy = try startProxy()
        defer { proxy.stop() }
        let size = 5 * 1024 * 1024
        let result = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", upstream.caFile.path,
                                                      "https://localhost:\(upstream.port)/bytes?size=\(size)&seed=3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.count == size)
        let expected = SHA256.hash(data: TestUpstream.bytes(size: size, seed: 3))
        #expect(SHA256.hash(data: result.stdout) == expected)
        // The upstream's certificate (not tokentap's) reached curl: it trusted only the upstream CA.
    }

    @Test("an upstream that refuses connections gives 502 naming the host and cause")
    func upstreamDown() throws {
        let closedPort = try freePort()
        let proxy = try startProxy(mapTo: closedPort)
        defer { proxy.stop() }
        let result = try curl(proxy, ["-w", "\n%{http_code}", "https://api.miro.com/anything"])
        #expect(result.text.hasSuffix("\n502"))
        #expect(result.text.contains("api.miro.com"))
        #expect(result.text.contains("refused"))
        // An API call without a token that the proxy could not deliver: the proxy's failure is the
        // verdict (live line and doctor), and no provider-side rule judges the proxy's own 502.
        let call = try curl(proxy, ["-w", "\n%{http_code}", "https://api.miro.com/v2/boards"])
        #expect(call.text.hasSuffix("\n502"))
        #expect(try eventually { proxy.lines.withLockedValue { $0.contains { $0.contains("API call #") && $0.contains("502 from tokentap") } } },
                "\(proxy.lines.withLockedValue { $0 })")
        #expect(proxy.lines.withLockedValue { $0.contains { $0.hasPrefix("    fix: ") } })
        #expect(proxy.stop() == 0)
        let doctor = try tokentap(["doctor", "--home", home, "--session", "e2e", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: doctor.stdout) as? [String: Any])
        let verdicts = try #require(object["verdicts"] as? [[String: Any]])
        #expect(verdicts.count == 2, "\(verdicts)")
        #expect(verdicts.allSatisfy { $0["cause"] as? String == "upstream-unreachable" && $0["status"] as? Int == 502 }, "\(verdicts)")
        let rules = (object["findings"] as? [[String: Any]] ?? []).compactMap { $0["rule"] as? String }
        #expect(!rules.contains("access-token-missing"), "\(rules)")
        #expect(!rules.contains("provider-error"), "\(rules)")
        let text = try tokentap(["doctor", "--home", home, "--session", "e2e"]).text
        #expect(text.hasPrefix("session e2e:"))
        #expect(text.contains("What went wrong\n  API call #"), "\(text)")
        #expect(text.range(of: "What went wrong")!.lowerBound < text.range(of: "Timeline")!.lowerBound)
    }

    @Test("an upstream certificate that is not trusted gives 502 and nothing is relayed")
    func untrustedUpstream() throws {
        let proxy = try startProxy(trustUpstream: false)
        defer { proxy.stop() }
        let result = try curl(proxy, ["-w", "\n%{http_code}", "-d", "secret=1", "https://api.miro.com/echo"])
        #expect(result.text.hasSuffix("\n502"))
        #expect(result.text.contains("--upstream-ca"))
        #expect(upstream.seen.withLockedValue { $0.isEmpty })
    }

    @Test("an upstream slower than --upstream-timeout gives 504")
    func slowUpstream() throws {
        let proxy = try startProxy(["--upstream-timeout", "1"])
        defer { proxy.stop() }
        let result = try curl(proxy, ["-w", "\n%{http_code}", "https://api.miro.com/slow?ms=4000"])
        #expect(result.text.hasSuffix("\n504"))
        #expect(result.text.contains("api.miro.com"))
    }

    @Test("Expect: 100-continue and 10 sequential requests on one keep-alive connection")
    func continueAndKeepAlive() throws {
        let proxy = try startProxy()
        defer { proxy.stop() }
        let body = String(repeating: "a", count: 2048)
        let expect = try curl(proxy, ["-H", "Expect: 100-continue", "-d", body, "-w", "\n%{http_code}", "https://api.miro.com/echo"])
        #expect(expect.text.hasSuffix("\n200"))
        #expect(expect.text.contains(body))

        let before = upstream.connections.withLockedValue { $0 }
        let urls = (0..<10).map { "https://api.miro.com/echo?n=\($0)" }
        let many = try curl(proxy, ["-w", "|%{num_connects}\n"] + urls)
        #expect(many.status == 0, "\(many.stderr)")
        let connects = many.text.split(separator: "\n").compactMap { $0.split(separator: "|").last.flatMap { Int($0) } }
        #expect(connects.count == 10)
        #expect(connects.first == 1)
        #expect(connects.dropFirst().allSatisfy { $0 == 0 })
        for n in 0..<10 { #expect(many.text.contains("/echo?n=\(n)")) }
        // Upstream connections are pooled: the ten requests of one client connection share one
        // upstream connection (at most one new one: the pool is per event loop).
        #expect(upstream.connections.withLockedValue { $0 } - before <= 1)
    }

    @Test("a plain origin-form request to the proxy gets 400 with a reason; the proxy keeps serving")
    func badClient() throws {
        let proxy = try startProxy()
        defer { proxy.stop() }
        let result = try runCommand("/usr/bin/curl", ["-sS", "-w", "\n%{http_code}", "http://127.0.0.1:\(proxy.port)/hello"])
        #expect(result.text.hasSuffix("\n400"))
        #expect(result.text.contains("proxy"))
        // Garbage bytes on a raw socket do not bring it down.
        try sendRaw("\u{01}\u{02}NOT HTTP\r\n\r\n", port: proxy.port)
        let ok = try curl(proxy, ["-w", "\n%{http_code}", "https://api.miro.com/ping"])
        #expect(ok.text.hasSuffix("\n200"))
    }

    @Test("tokentap run sets the proxy and CA variables for one command and passes its exit code on")
    func runCommandThroughProxy() throws {
        let result = try tokentap(["run", "--home", home, "--session", "run1", "--map-remote", "api.miro.com=127.0.0.1:\(upstream.port)",
                                   "--upstream-ca", upstream.caFile.path, "--",
                                   "curl", "-sS", "-d", "a=1", "https://api.miro.com/echo"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("\"body\":\"a=1\""))
        let list = try tokentap(["list", "--home", home, "--session", "run1", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows.first?["url"] as? String == "https://api.miro.com/echo")
        let failing = try tokentap(["run", "--home", home, "--", "sh", "-c", "exit 3"])
        #expect(failing.status == 3)
        let missing = try tokentap(["run", "--home", home])
        #expect(missing.status == 2)
    }

    @Test("a client idle past --client-timeout is closed")
    func idleClientClosed() throws {
        let proxy = try startProxy(["--client-timeout", "1"])
        defer { proxy.stop() }
        #expect(try idleUntilClosed(port: proxy.port, wait: 10))
    }

    @Test("a client that does not trust tokentap's CA gets a stderr line naming `tokentap ca`, recorded as tls-error")
    func untrustingClient() throws {
        let proxy = try startProxy()
        let result = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "https://api.miro.com/ping"])
        #expect(result.status == 60)  // curl: peer certificate cannot be authenticated
        #expect(try eventually { proxy.errorText.withLockedValue { $0.contains("tokentap ca") && $0.contains("does not trust") } })
        #expect(proxy.stop() == 0)
        let list = try tokentap(["list", "--home", home, "--all", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(rows.contains { $0["kind"] as? String == "tls-error" })
    }

    @Test("--keep-secrets stores raw values and says so at start and in show")
    func keepSecrets() throws {
        let proxy = try fixture.startProxy(session: "raw", ["--keep-secrets"])
        #expect(proxy.lines.withLockedValue { $0.contains { $0.contains("WARNING: --keep-secrets") } })
        _ = try curl(proxy, ["-d", "client_secret=RAWSECRET123", "https://api.miro.com/echo"])
        #expect(proxy.stop() == 0)
        let list = try tokentap(["list", "--home", home, "--session", "raw", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        let show = try tokentap(["show", "--home", home, String(try #require(rows.first?["id"] as? Int))])
        #expect(show.text.contains("RAWSECRET123"))
        #expect(show.text.contains("keep-secrets"))
    }

    @Test("SIGTERM stops the proxy with exit code 0")
    func gracefulStop() throws {
        let proxy = try startProxy()
        #expect(proxy.stop(signal: SIGTERM) == 0)
        let again = try startProxy()
        #expect(again.stop(signal: SIGINT) == 0)
    }
}

/// A TCP port that nothing listens on (bound, then closed).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    close(fd)
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Writes `text` to a fresh connection to 127.0.0.1:`port`, reads until the peer closes (or 5 s).
@discardableResult
func sendRaw(_ text: String, port: Int) throws -> String {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = text.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
    var received = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        received += buffer[0..<n]
    }
    return String(decoding: received, as: UTF8.self)
}

/// Connects to 127.0.0.1:`port`, sends nothing, and reports whether the peer closed the
/// connection (EOF) within `wait` seconds.
func idleUntilClosed(port: Int, wait: Int) throws -> Bool {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    var timeout = timeval(tv_sec: wait, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var byte: UInt8 = 0
    return recv(fd, &byte, 1, 0) == 0
}

/// A TCP socket connected to 127.0.0.1:`port`; the caller closes it.
func connectLoopback(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else {
        close(fd)
        throw ProcessFailure(message: "connect to \(port) failed")
    }
    return fd
}
