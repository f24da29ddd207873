import Foundation
import Testing

/// The planted-secret corpus (issue 5): traffic through the real proxy carries secrets in every
/// position; afterwards no file under recordings/, no proxy output and no `show --json` contains
/// any of them, in raw, base64, percent-encoded or JSON-escaped form.
@Suite("Redaction end to end", .serialized)
final class RedactionEndToEndTests {
    let fixture: UpstreamFixture
    var dir: URL { fixture.dir }
    var upstream: TestUpstream { fixture.upstream }
    var home: String { fixture.home }

    init() throws { fixture = try UpstreamFixture() }

    /// A unique secret; `special` adds characters that change under percent- and JSON-encoding.
    static func secret(_ n: Int, special: Bool = false) -> String {
        let core = "PLANTED\(n)x" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(14))
        return special ? core + "/+=" : core
    }

    /// A JWT whose signature part is the planted value.
    static func jwt(_ planted: String) -> String {
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.\(planted)"
    }

    @Test("no planted secret reaches the database, the WAL, the proxy's output or show --json")
    func plantedCorpus() throws {
        var planted: [String] = []
        func plant(_ n: Int, special: Bool = false) -> String {
            let s = Self.secret(n, special: special)
            planted.append(s)
            return s
        }
        let clientID = "3074457363680401096"
        let miroPrefix = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_"

        // Responses the upstream will send.
        let s16 = plant(16), s17 = plant(17), s18 = plant(18), s19 = plant(19), s20 = plant(20), s21 = plant(21)
        let s22 = plant(22), s23 = plant(23, special: true), s24 = plant(24), s25 = plant(25), s26 = plant(26)
        upstream.fixtures.withLockedValue { f in
            f["token"] = .init(headers: [("Content-Type", "application/json"), ("Set-Cookie", "sid=\(s19); Path=/; HttpOnly"),
                                         ("X-Auth-Token", s24)],
                               body: #"{"access_token":"\#(miroPrefix)\#(s16)","refresh_token":"\#(miroPrefix)\#(s17)","id_token":"\#(Self.jwt(s18))","expires_in":3599,"team_id":3458764513820540928,"scope":"boards:read","token_type":"bearer"}"#)
            f["authorize"] = .init(status: 302, headers: [("Location", "https://app.example/cb?code=\(s20)&state=xyz")])
            f["html"] = .init(headers: [("Content-Type", "text/html")], body: "<html><script>var t = \"\(Self.jwt(s21))\";</script></html>")
            f["gzip"] = .init(headers: [("Content-Type", "application/json")],
                              body: #"{"access_token":"\#(s22)","nested":{"client_secret":"\#(s23.replacingOccurrences(of: "/", with: "\\/"))"}}"#,
                              gzipChunked: true)
            f["form"] = .init(headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "access_token=\(s25)&token_type=bearer")
            f["shape"] = .init(headers: [("Content-Type", "application/json")], body: #"{"data":"\#(miroPrefix)\#(s26)"}"#)
        }

        let proxy = try fixture.startProxy(session: "planted")
        func curl(_ args: [String]) throws {
            let r = try fixture.curl(proxy, ["-o", "/dev/null"] + args)
            #expect(r.status == 0, "\(r.stderr)")
        }
        func pct(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }

        // Requests carrying secrets.
        let s1 = plant(1, special: true), s2 = plant(2)
        try curl(["-X", "POST", "https://api.miro.com/fixture/token?grant_type=authorization_code&client_id=\(clientID)&client_secret=\(pct(s1))&code=\(s2)&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"])
        // The same client secret again: same placeholder expected.
        try curl(["-X", "POST", "https://api.miro.com/fixture/token?grant_type=refresh_token&client_id=\(clientID)&client_secret=\(pct(s1))&refresh_token=\(miroPrefix)\(s17)"])
        let s3 = plant(3, special: true), s4 = plant(4), s5 = plant(5), s6 = plant(6)
        try curl(["--data-raw", "grant_type=authorization_code&client_secret=\(pct(s3))&code=\(s4)&code_verifier=\(s5)&refresh_token=\(s6)",
                  "https://api.miro.com/echo"])
        let s7 = plant(7), s8 = plant(8), s9 = plant(9, special: true)
        try curl(["-H", "Content-Type: application/json",
                  "--data-raw", #"{"outer":{"accessToken":"\#(s7)","list":[{"refresh_token":"\#(s8)"}]},"password":"\#(s9.replacingOccurrences(of: "/", with: "\\/"))"}"#,
                  "https://api.miro.com/fixture/form"])
        let s10 = plant(10), s11 = plant(11, special: true), s12 = plant(12), s13 = plant(13), s14 = plant(14), s15 = plant(15)
        try curl(["-H", "Authorization: Bearer \(miroPrefix)\(s10)", "https://api.miro.com/fixture/shape"])
        try curl(["-u", "\(clientID):\(s11)", "-d", "grant_type=authorization_code&code=x", "https://api.miro.com/fixture/token"])
        try curl(["-H", "Cookie: session=\(s12); theme=dark; other=\(s13)", "-H", "X-Api-Key: \(s14)", "-H", "X-Session-Token: \(s15)",
                  "https://api.miro.com/fixture/html"])
        try curl(["https://miro.com/fixture/authorize?response_type=code&client_id=\(clientID)&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=xyz"])
        try curl(["--compressed", "https://api.miro.com/fixture/gzip"])
        let s27 = plant(27), s28 = plant(28)
        try curl(["https://api.miro.com/v2/boards?access_token=\(s27)"])
        try curl(["-H", "Content-Type: text/plain", "--data-raw", "token is \(Self.jwt(s28)) ok", "https://api.miro.com/fixture/shape"])
        #expect(planted.count >= 25)
        #expect(proxy.stop() == 0)

        // Every form the secrets could take.
        var forms: [String: String] = [:]
        for s in planted {
            forms[s] = "raw"
            forms[Data(s.utf8).base64EncodedString()] = "base64 of \(s)"
            forms[pct(s)] = "percent-encoded \(s)"
            forms[s.replacingOccurrences(of: "/", with: "\\/")] = "JSON-escaped \(s)"
        }
        forms[Data("\(clientID):\(s11)".utf8).base64EncodedString()] = "Basic credentials"

        var haystacks: [(String, Data)] = []
        let recordings = dir.appendingPathComponent("home/recordings")
        for name in try FileManager.default.contentsOfDirectory(atPath: recordings.path) {
            haystacks.append(("recordings/\(name)", try Data(contentsOf: recordings.appendingPathComponent(name))))
        }
        #expect(haystacks.contains { $0.0.hasSuffix("tokentap.sqlite") })
        haystacks.append(("proxy stdout", Data(proxy.lines.withLockedValue { $0 }.joined(separator: "\n").utf8)))
        haystacks.append(("proxy stderr", Data(proxy.errorText.withLockedValue { $0 }.utf8)))
        let list = try tokentap(["list", "--home", home, "--session", "planted", "--all", "--json"])
        haystacks.append(("list --json", list.stdout))
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(rows.count == 11)  // one per request above
        var shows: [String] = []
        for row in rows {
            let show = try tokentap(["show", "--home", home, "--json", String(try #require(row["id"] as? Int))])
            #expect(show.status == 0)
            haystacks.append(("show --json \(row["id"]!)", show.stdout))
            shows.append(show.text)
            let text = try tokentap(["show", "--home", home, String(try #require(row["id"] as? Int))])
            haystacks.append(("show \(row["id"]!)", text.stdout))
        }
        for (name, data) in haystacks {
            let text = String(decoding: data, as: UTF8.self)
            for (form, what) in forms where text.contains(form) || data.range(of: Data(form.utf8)) != nil {
                Issue.record("\(what) found in \(name)")
            }
        }

        // The same client secret in two exchanges has one placeholder; placeholders carry the role.
        let placeholders = shows.joined().matches(of: /redacted\.client_secret\.[0-9a-f]{12}\.\d+(\.[a-z-]+)*/).map { String($0.output.0) }
        #expect(Set(placeholders.filter { $0.hasSuffix(".\(s1.count).plus") || $0.contains(".\(s1.count)") }).count >= 1)
        let first = try #require(shows.first { $0.contains("grant_type=authorization_code&client_id=\(clientID)&client_secret=redacted.") })
        let second = try #require(shows.first { $0.contains("grant_type=refresh_token&client_id=\(clientID)&client_secret=redacted.") })
        let p1 = try #require(first.firstMatch(of: /client_secret=(redacted\.[a-z_]+\.[0-9a-f]{12}\.\d+(\.[a-z-]+)*)/)?.output.1)
        let p2 = try #require(second.firstMatch(of: /client_secret=(redacted\.[a-z_]+\.[0-9a-f]{12}\.\d+(\.[a-z-]+)*)/)?.output.1)
        #expect(p1 == p2)
        // The client id stays readable, and so do state and redirect_uri.
        #expect(shows.joined().contains(clientID))
        #expect(shows.joined().contains("state=xyz"))
    }
}
