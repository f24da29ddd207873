import CertificateAuthority
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Bad upstreams and bad clients, through the built proxy: what the client gets, the row recorded
/// (`error_kind` and message), and that the next normal request is served. The misbehaving peers
/// are raw sockets (`Python/bad_peers.py`); the upstreams' certificates come from a test
/// `CertificateAuthority`.
@Suite("Failure corpora end to end", .serialized)
final class FailureCorpusEndToEndTests {
    let dir: URL
    let upstreamCA: CertificateAuthority
    let upstream = Process()
    let upstreamInput = Pipe()
    var ports: [String: Int] = [:]
    var home: String { dir.appendingPathComponent("home").path }
    var proxyCA: String { dir.appendingPathComponent("home/certs/tokentap-ca.pem").path }
    let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/bad_peers.py").path

    static func pem(_ der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [String] = []
        var rest = Substring(b64)
        while !rest.isEmpty { lines.append(String(rest.prefix(64))); rest = rest.dropFirst(64) }
        return "-----BEGIN CERTIFICATE-----\n" + lines.joined(separator: "\n") + "\n-----END CERTIFICATE-----\n"
    }

    init() throws {
        dir = try makeTemporaryDirectory("tokentap-failures")
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "tokentap failure corpus CA")
        upstreamCA = try CertificateAuthority(certificate: cert, privateKey: key)
        let (otherCert, otherKey) = try CertificateAuthority.makeCA(commonName: "an unknown CA")
        let other = try CertificateAuthority(certificate: otherCert, privateKey: otherKey)
        func write(_ name: String, _ text: String) throws {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write("ca.pem", upstreamCA.certificatePEM)
        try write("good.pem", Self.pem(try upstreamCA.leaf(for: "api.miro.com").derBytes))
        try write("good.key", upstreamCA.leafPrivateKeyPEM)
        try write("wrong.pem", Self.pem(try upstreamCA.mint(name: "other.example").derBytes))
        try write("expired.pem", Self.pem(try upstreamCA.mint(name: "expired.miro.com", now: Date().addingTimeInterval(-400 * 86_400)).derBytes))
        try write("unknown.pem", Self.pem(try other.leaf(for: "unknown.miro.com").derBytes))
        try write("unknown.key", other.leafPrivateKeyPEM)

        upstream.executableURL = URL(fileURLWithPath: try SandboxRig.pythonInterpreter())
        upstream.arguments = [script, "upstream", dir.path]
        let out = Pipe()
        upstream.standardOutput = out
        upstream.standardInput = upstreamInput
        try upstream.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let json = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Int])
        ports = json
    }

    deinit {
        try? upstreamInput.fileHandleForWriting.close()
        upstream.terminate()
        upstream.waitUntilExit()
    }

    func startProxy(session: String, _ extra: [String] = []) throws -> ServerProcess {
        var args = ["proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", session, "--upstream-ca", dir.appendingPathComponent("ca.pem").path,
                    "--upstream-timeout", "1", "--client-timeout", "1", "--max-body", "65536",
                    "--map-remote", "api.miro.com=127.0.0.1:\(ports["tls"]!)"]
        for name in ["wrong", "unknown", "expired", "plain", "hangup", "silent", "refused"] {
            args += ["--map-remote", "\(name).miro.com=127.0.0.1:\(ports[name]!)"]
        }
        return try ServerProcess(args + extra)
    }

    /// Every row of `session` (all kinds), oldest first.
    func rows(_ session: String) throws -> [[String: Any]] {
        let result = try tokentap(["list", "--home", home, "--session", session, "--all", "--json"])
        return (try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]]) ?? []
    }

    /// Waits for the rows recorded after the first `known` ones, up to and including the row of
    /// the normal request to `marker`; returns those before it.
    func newRows(_ session: String, after known: Int, marker: String) throws -> (rows: [[String: Any]], all: Int) {
        var found: [[String: Any]] = []
        var total = known
        _ = try eventually(10) {
            let all = try rows(session)
            total = all.count
            found = Array(all.dropFirst(known))
            return found.contains { ($0["url"] as? String)?.hasSuffix(marker) == true }
        }
        let before = found.prefix { ($0["url"] as? String)?.hasSuffix(marker) != true }
        return (Array(before), total)
    }

    /// curl through the proxy: (HTTP status or 0, body, curl's exit status).
    func curl(_ proxy: ServerProcess, _ url: String, timeout: Int = 15) throws -> (status: Int, body: String, exit: Int32) {
        let r = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", proxyCA, "--max-time", String(timeout),
                                                 "-o", "-", "-w", "\n%{http_code}", url])
        let text = r.text
        let split = text.lastIndex(of: "\n").map { (String(text[..<$0]), Int(text[text.index(after: $0)...]) ?? 0) } ?? (text, 0)
        return (split.1, split.0, r.status)
    }

    // MARK: - bad upstreams

    struct UpstreamCase: CustomStringConvertible, Sendable {
        var url: String
        /// The status the client gets (0: curl failed without one, e.g. a response cut off).
        var status: Int
        var kind: String?
        /// Words the recorded error must contain.
        var message: String
        var description: String { url }
    }

    static let upstreamCases: [UpstreamCase] = [
        .init(url: "https://refused.miro.com/x", status: 502, kind: "connect", message: "connection refused"),
        .init(url: "https://api.miro.com/reset-before-response", status: 502, kind: "connect", message: "before responding"),
        .init(url: "https://api.miro.com/close-before-response", status: 502, kind: "connect", message: "before responding"),
        .init(url: "https://api.miro.com/reset-mid", status: 200, kind: "truncated", message: "before the response was complete"),
        .init(url: "https://plain.miro.com/x", status: 502, kind: "tls", message: "did not answer with TLS"),
        .init(url: "https://hangup.miro.com/x", status: 502, kind: "tls", message: "during the TLS handshake"),
        .init(url: "https://wrong.miro.com/x", status: 502, kind: "tls", message: "certificate"),
        .init(url: "https://expired.miro.com/x", status: 502, kind: "tls", message: "certificate"),
        .init(url: "https://unknown.miro.com/x", status: 502, kind: "tls", message: "certificate"),
        .init(url: "https://silent.miro.com/x", status: 504, kind: "timeout", message: "did not answer in time"),
        .init(url: "https://api.miro.com/slow", status: 504, kind: "timeout", message: "no response head within the upstream timeout"),
        .init(url: "https://api.miro.com/bad-status", status: 502, kind: "malformed", message: "not valid HTTP/1.1"),
        .init(url: "https://api.miro.com/garbage", status: 502, kind: "malformed", message: "not valid HTTP/1.1"),
        .init(url: "https://api.miro.com/cl-long", status: 200, kind: "truncated", message: "before the response was complete"),
        .init(url: "https://api.miro.com/cl-long-no-notify", status: 200, kind: "truncated", message: "without TLS close_notify"),
        .init(url: "https://api.miro.com/cl-short", status: 200, kind: nil, message: ""),
        .init(url: "https://api.miro.com/no-cl-early", status: 200, kind: "truncated", message: "without TLS close_notify"),
        .init(url: "https://api.miro.com/no-cl-notify", status: 200, kind: nil, message: ""),
        .init(url: "https://api.miro.com/complete-no-notify", status: 200, kind: nil, message: ""),
        .init(url: "https://api.miro.com/bad-chunk", status: 200, kind: "malformed", message: "invalid response body after its head"),
    ]

    @Test("bad upstreams: the client gets 502/504 or the response as far as it came; the row says what happened (error_kind and message); the next request is served")
    func badUpstreams() throws {
        let session = "upstreams"
        let proxy = try startProxy(session: session)
        defer { #expect(proxy.stop() == 0) }
        var known = 0
        for (i, c) in Self.upstreamCases.enumerated() {
            let got = try curl(proxy, c.url)
            #expect(got.status == c.status, "\(c): client got \(got)")
            if c.kind == nil { #expect(got.exit == 0, "\(c): \(got)") }
            let marker = "/ok?after=\(i)"
            let next = try curl(proxy, "https://api.miro.com\(marker)")
            #expect(next.status == 200 && next.body == "ok", "\(c): the next request got \(next)")
            let (rows, total) = try newRows(session, after: known, marker: marker)
            known = total
            let row = rows.first { ($0["url"] as? String) == c.url }
            #expect(row != nil, "\(c): no row in \(rows)")
            guard let row else { continue }
            #expect(row["status"] as? Int == c.status, "\(c): \(row)")
            #expect(row["error_kind"] as? String == c.kind, "\(c): \(row)")
            let error = row["error"] as? String ?? ""
            #expect(c.kind == nil ? error.isEmpty : error.contains(c.message), "\(c): \(error)")
        }
        // The kinds reach the rules: one verdict per proxy-reported failure, named by kind.
        let doctor = try tokentap(["doctor", "--home", home, "--session", session, "--json"])
        #expect(doctor.status == 0)
        let all = try rows(session)
        for kind in ["connect": "upstream-unreachable", "tls": "upstream-tls-failed", "timeout": "upstream-timeout",
                     "truncated": "upstream-response-invalid", "malformed": "upstream-response-invalid"] {
            let failed = all.filter { $0["error_kind"] as? String == kind.key }
            #expect(!failed.isEmpty, "no \(kind.key) row")
            #expect(failed.allSatisfy { ($0["findings"] as? [String])?.contains(kind.value) == true }, "\(kind.key): \(failed)")
        }
    }

    @Test("an endless chunked body: the client gets the stream; the row keeps --max-body bytes, truncated; the next request is served")
    func endlessChunked() throws {
        let session = "endless"
        let proxy = try startProxy(session: session)
        defer { #expect(proxy.stop() == 0) }
        // curl stops reading after 3 s (--max-time): the proxy must not hang on it.
        let got = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", proxyCA, "--max-time", "3",
                                                   "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "https://api.miro.com/endless-chunked"])
        let words = got.text.split(separator: " ")
        #expect(words.first == "200", "\(got.text)")
        #expect((Int(words.last ?? "") ?? 0) > 65536, "\(got.text)")
        let next = try curl(proxy, "https://api.miro.com/ok?after=endless")
        #expect(next.status == 200)
        let (rows, _) = try newRows(session, after: 0, marker: "/ok?after=endless")
        let row = try #require(rows.first { ($0["url"] as? String)?.hasSuffix("/endless-chunked") == true }, "\(rows)")
        let id = try #require(row["id"] as? Int)
        let shown = try tokentap(["show", String(id), "--home", home, "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: shown.stdout) as? [String: Any])
        let response = try #require(doc["response"] as? [String: Any])
        #expect(response["truncated"] as? Bool == true)
        // The client went away: not a proxy-side failure of the upstream.
        #expect(row["error_kind"] is NSNull, "\(row)")
        #expect((row["error"] as? String)?.contains("client closed") == true, "\(row)")
    }
}
