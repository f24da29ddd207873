import Foundation
import Testing

/// Issue 14's planted-secret corpus: at least 60 distinct secrets, one per position, through the
/// real proxy to `tokentap sandbox` (requests, token endpoint findings) and to the test upstream
/// (response positions, mapped as `upstream.miro.com`). Afterwards the raw bytes of recordings/
/// (the SQLite file and its WAL), the proxy's stdout and stderr, `list`, `show`, `doctor` (text and
/// `--json`) and every export format hold none of them, in any encoding; the non-secrets users
/// need stay readable byte for byte; and the classifier needed no last-check fallback.
@Suite("Secret corpus end to end", .serialized)
final class SecretCorpusEndToEndTests {
    let fixture: UpstreamFixture
    var dir: URL { fixture.dir }
    var home: String { fixture.home }

    init() throws { fixture = try UpstreamFixture() }

    @Test("60+ planted secrets in every position: zero hits anywhere tokentap writes")
    func corpus() throws {
        var planted: [String] = []
        /// A unique secret; `special` adds characters that change under percent- and JSON-encoding.
        func plant(_ tag: String, special: Bool = false) -> String {
            let s = "P\(planted.count)\(tag)x" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))
                + (special ? "/+=" : "")
            planted.append(s)
            return s
        }
        func jwt(_ sig: String) -> String { "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.\(sig)" }
        func pct(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
        func jsonEscaped(_ s: String) -> String { s.replacingOccurrences(of: "/", with: "\\/") }

        let sandbox = try ServerProcess(["sandbox", "--home", home, "--listen", "127.0.0.1:0"])
        defer { sandbox.stop() }
        let sandboxCA = try #require(sandbox.line(startingWith: "sandbox CA: "))
        let demo = try #require(sandbox.line(startingWith: "demo app: ")).split(separator: " ").map(String.init)
        let (clientID, redirectURI) = (demo[0], demo[2])

        // Response-side positions, served by the test upstream at upstream.miro.com/fixture/NAME.
        let r = (access: plant("rAT"), refresh: plant("rRT"), idSig: plant("rIDT"), cookie: plant("rCK"),
                 header: plant("rHDR"), errSecret: plant("rERR", special: true), errText: plant("rERRT"),
                 locCode: plant("rLOC"), fragToken: plant("rFRAG"), xmlEl: plant("rXML"), xmlAttr: plant("rXATTR"),
                 textLine: plant("rTXT"), gzipLie: plant("rGZ"), html: plant("rHTML"), deep: plant("rDEEP"),
                 deepCamel: plant("rCAMEL"), wsKey: plant("rWSS"))
        fixture.upstream.fixtures.withLockedValue { f in
            f["token"] = .init(headers: [("Content-Type", "application/json"), ("Set-Cookie", "sid=\(r.cookie); Path=/; HttpOnly"),
                                         ("X-Upstream-Session-Token", r.header), ("X-OAuth-Scopes", "boards:read, boards:write"),
                                         ("X-RateLimit-Limit", "100000"), ("X-RateLimit-Remaining", "99999")],
                               body: #"{"access_token":"\#(r.access)","refresh_token":"\#(r.refresh)","id_token":"\#(jwt(r.idSig))","expires_in":3599,"token_type":"bearer","scope":"boards:read"}"#)
            f["error"] = .init(status: 401, headers: [("Content-Type", "application/json")],
                               body: #"{"error":"invalid_client","error_description":"bad client","client_secret":"\#(jsonEscaped(r.errSecret))","error_uri":"https://login.example/error?code=9002327"}"#)
            f["errortext"] = .init(status: 400, headers: [("Content-Type", "text/plain")], body: "invalid request: token=\(r.errText) rejected")
            f["redirect"] = .init(status: 302, headers: [("Location", "https://app.example/cb?code=\(r.locCode)&state=st1#access_token=\(r.fragToken)&token_type=bearer")])
            f["xml"] = .init(headers: [("Content-Type", "application/xml")],
                             body: #"<r xmlns:t="urn:t"><t:access_token>\#(r.xmlEl)</t:access_token><session key="k1" sessionToken="\#(r.xmlAttr)"/><token_type>bearer</token_type></r>"#)
            f["text"] = .init(headers: [("Content-Type", "text/plain")], body: "status: ok\nrefresh_token: \(r.textLine)\nexpires_in: 3600\n")
            f["gziplie"] = .init(headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                                 body: #"{"refresh_token":"\#(r.gzipLie)","expires_in":3599}"#)
            f["html"] = .init(headers: [("Content-Type", "text/html")], body: "<html><script>var t=\"\(jwt(r.html))\";</script></html>")
            f["deep"] = .init(headers: [("Content-Type", "application/json")],
                              body: #"{"a":{"b":{"c":{"webhook_secret":"\#(r.deep)","privateKey":"\#(r.deepCamel)","status_code":"201"}}}}"#)
            f["ws"] = .init(headers: [("Sec-WebSocket-Key", r.wsKey)], body: "ok")
        }

        let proxy = try ServerProcess([
            "proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", "corpus",
            "--map-remote", "miro.com=127.0.0.1:\(sandbox.port)", "--map-remote", "api.miro.com=127.0.0.1:\(sandbox.port)",
            "--map-remote", "upstream.miro.com=127.0.0.1:\(fixture.upstream.port)",
            "--upstream-ca", sandboxCA, "--upstream-ca", fixture.upstream.caFile.path,
        ])
        var requests = 0
        func curl(_ args: [String]) throws {
            let result = try fixture.curl(proxy, ["-o", "/dev/null"] + args)
            #expect(result.status == 0, "\(args): \(result.stderr)")
            requests += 1
        }
        let token = "https://api.miro.com/v1/oauth/token"
        for name in ["token", "error", "errortext", "redirect", "xml", "text", "gziplie", "html", "deep", "ws"] {
            try curl(["https://upstream.miro.com/fixture/\(name)"])
        }

        // The browser half: authorize (sandbox auto-consents and issues a code).
        try curl(["https://miro.com/oauth/authorize?response_type=code&client_id=\(clientID)&redirect_uri=\(pct(redirectURI))&state=st-readable"])
        // Token request, form body: extra parameters whose names the old lists did not know (extra-params quotes them).
        let f = (code: plant("fCODE"), secret: plant("fCS", special: true), device: plant("fDEV"), camel: plant("fCAMEL"),
                 pk: plant("fPK"), sess: plant("fSESS"), verifier: plant("fPKCE"), otp: plant("fOTP"))
        try curl(["--data-raw", "grant_type=authorization_code&code=\(f.code)&client_id=\(clientID)&client_secret=\(pct(f.secret))&redirect_uri=\(pct(redirectURI))&code_verifier=\(f.verifier)&device_code=\(f.device)&clientSecret=\(f.camel)&private_key=\(f.pk)&session_token=\(f.sess)&mfa_otp=\(f.otp)", token])
        // JSON body to the token endpoint, secrets 3 deep.
        let j = (code: plant("jCODE"), device: plant("jDEV"), camel: plant("jCAMEL", special: true), deep: plant("jDEEP"), pass: plant("jPW"))
        try curl(["-H", "Content-Type: application/json", "--data-raw",
                  #"{"grant_type":"authorization_code","code":"\#(j.code)","client_id":"\#(clientID)","device_code":"\#(j.device)","clientSecret":"\#(jsonEscaped(j.camel))","config":{"nested":{"webhook_secret":"\#(j.deep)","password":"\#(j.pass)"}}}"#, token])
        // param-conflict: client_secret in the query and the body with different values.
        let c = (query: plant("cQS"), body: plant("cBODY"), code: plant("cCODE"))
        try curl(["--data-raw", "grant_type=authorization_code&code=\(c.code)&client_id=\(clientID)&client_secret=\(c.body)&redirect_uri=\(pct(redirectURI))",
                  "\(token)?client_secret=\(c.query)"])
        // credential-formatting: a secret with a trailing newline and a refresh token in quotes.
        let cf = (secret: plant("cfCS"), refresh: plant("cfRT"))
        try curl(["--data-raw", "grant_type=refresh_token&client_id=\(clientID)&client_secret=\(cf.secret)%0A&refresh_token=%22\(cf.refresh)%22", token])
        // Basic client authentication.
        let basic = plant("bCS", special: true)
        let basicCode = plant("bCODE")
        try curl(["-u", "\(clientID):\(basic)", "--data-raw", "grant_type=authorization_code&code=\(basicCode)&redirect_uri=\(pct(redirectURI))", token])
        // REST: query secrets, Bearer, headers (known and unknown), cookies.
        let q = (access: plant("qAT"), apiKey: plant("qAK"), bearer: plant("hBEARER"), custom: plant("hCUSTOM"),
                 xApiKey: plant("hAPIKEY"), cookie1: plant("hCK1"), cookie2: plant("hCK2"), sessionID: plant("hSID"))
        try curl(["https://api.miro.com/v2/boards?access_token=\(q.access)&api_key=\(q.apiKey)&limit=10"])
        try curl(["-H", "Authorization: Bearer \(q.bearer)", "-H", "X-Acme-Custom-Token: \(q.custom)", "-H", "X-Api-Key: \(q.xApiKey)",
                  "-H", "Cookie: session=\(q.cookie1); theme=dark; other=\(q.cookie2)", "-H", "X-Session-Id: \(q.sessionID)",
                  "https://api.miro.com/v2/boards"])
        // Request bodies of other shapes, to the test upstream.
        let x = (el: plant("xEL"), attr: plant("xATTR"), cdata: plant("xCDATA"), ent: plant("xENT"))
        try curl(["-H", "Content-Type: text/xml", "--data-raw",
                  #"<?xml version="1.0"?><req><auth:client_secret xmlns:auth="urn:a">\#(x.el)</auth:client_secret><cred user="alice" password="\#(x.attr)"/><refresh_token><![CDATA[\#(x.cdata)]]></refresh_token><apiKey>\#(x.ent)&amp;x</apiKey></req>"#,
                  "https://upstream.miro.com/ok"])
        let m = (secret: plant("mCS"), refresh: plant("mRT"))
        try curl(["-F", "client_secret=\(m.secret)", "-F", "refresh_token=\(m.refresh)", "-F", "client_id=\(clientID)", "https://upstream.miro.com/ok"])
        let t = (env: plant("tENV"), yaml: plant("tYAML"), quoted: plant("tQUOTED"))
        try curl(["-H", "Content-Type: text/plain", "--data-binary",
                  "# settings\nMIRO_CLIENT_SECRET=\(t.env)\nsigning_key: \(t.yaml)\nexport ACCESS_TOKEN=\"\(t.quoted) with spaces\"\nredirect_uri=\(redirectURI)\n",
                  "https://upstream.miro.com/ok"])
        let h = (jwtSig: plant("tJWT"), proxyAuth: plant("hPROXY"))
        try curl(["-H", "Content-Type: text/plain", "--data-raw", "token is \(jwt(h.jwtSig)) ok", "-H", "X-Signature: \(h.proxyAuth)",
                  "https://upstream.miro.com/ok"])
        // Miro's documented query style for a refresh; an HTML attribute carrying JSON; a Miro-shaped
        // token by shape alone; an array of tokens under a secret key.
        let more = (rt: plant("qRT"), cs: plant("qCS"), attr: plant("hATTR"), miro: plant("sMIRO"), arr1: plant("aT1"), arr2: plant("aT2"))
        try curl(["-X", "POST", "\(token)?grant_type=refresh_token&client_id=\(clientID)&client_secret=\(more.cs)&refresh_token=\(more.rt)"])
        try curl(["-H", "Content-Type: text/html", "--data-raw",
                  #"<div data-config="{&quot;refresh_token&quot;:&quot;\#(more.attr)&quot;}">eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_\#(more.miro)</div>"#,
                  "https://upstream.miro.com/ok"])
        try curl(["-H", "Content-Type: application/json", "--data-raw", #"{"tokens":["\#(more.arr1)","\#(more.arr2)"],"count":2}"#,
                  "https://upstream.miro.com/ok"])
        #expect(planted.count >= 60, "\(planted.count) planted")
        #expect(proxy.stop() == 0)
        sandbox.stop()

        // What tokentap wrote and prints.
        var haystacks: [(String, Data)] = []
        let recordings = dir.appendingPathComponent("home/recordings")
        let files = try FileManager.default.contentsOfDirectory(atPath: recordings.path)
        for name in files {
            haystacks.append(("recordings/\(name)", try Data(contentsOf: recordings.appendingPathComponent(name))))
        }
        #expect(files.contains("tokentap.sqlite"))
        let stdout = proxy.lines.withLockedValue { $0 }.joined(separator: "\n")
        let stderr = proxy.errorText.withLockedValue { $0 }
        haystacks.append(("proxy stdout", Data(stdout.utf8)))
        haystacks.append(("proxy stderr", Data(stderr.utf8)))
        #expect(!stderr.contains("redaction fallback"), "the classifier missed a value: \(stderr)")
        let list = try tokentap(["list", "--home", home, "--session", "corpus", "--all", "--json"])
        haystacks.append(("list --json", list.stdout))
        haystacks.append(("list", try tokentap(["list", "--home", home, "--session", "corpus", "--all"]).stdout))
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(rows.count == requests)
        var shows = ""
        for row in rows {
            let id = String(try #require(row["id"] as? Int))
            let json = try tokentap(["show", "--home", home, "--json", id])
            #expect(json.status == 0)
            haystacks.append(("show --json \(id)", json.stdout))
            let text = try tokentap(["show", "--home", home, id])
            haystacks.append(("show \(id)", text.stdout))
            let raw = try tokentap(["show", "--home", home, "--raw", id])
            haystacks.append(("show --raw \(id)", raw.stdout))
            shows += raw.text
        }
        let doctor = try tokentap(["doctor", "--home", home, "--session", "corpus"])
        let doctorJSON = try tokentap(["doctor", "--home", home, "--session", "corpus", "--json"])
        haystacks += [("doctor", doctor.stdout), ("doctor --json", doctorJSON.stdout)]
        for format in ["har", "markdown", "curl"] {
            let out = dir.appendingPathComponent("export.\(format)")
            let result = try tokentap(["export", "--home", home, "--session", "corpus", "--format", format, "-o", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            haystacks.append(("export \(format)", try Data(contentsOf: out)))
            #expect(!result.stderr.contains("redaction fallback"))
        }

        var forms: [String: String] = [:]
        for s in planted {
            forms[s] = "raw \(s)"
            forms[Data(s.utf8).base64EncodedString()] = "base64 of \(s)"
            forms[pct(s)] = "percent-encoded \(s)"
            forms[jsonEscaped(s)] = "JSON-escaped \(s)"
        }
        forms[Data("\(clientID):\(basic)".utf8).base64EncodedString()] = "Basic credentials"
        var hits = 0
        for (name, data) in haystacks {
            for (form, what) in forms where data.range(of: Data(form.utf8)) != nil {
                Issue.record("\(what) found in \(name)")
                hits += 1
            }
        }
        #expect(hits == 0)

        // The findings that quote values fired, and quote placeholders.
        let findings = String(decoding: doctorJSON.stdout, as: UTF8.self)
        for rule in ["extra-params", "param-conflict", "credential-formatting"] {
            #expect(findings.contains("\"\(rule)\""), "\(rule) did not fire")
        }
        #expect(findings.contains("device_code in form body: redacted.device_code."))
        #expect(findings.contains("private_key in form body: redacted.private_key."))

        // Non-secrets stay readable, byte for byte (`show --raw`: bodies as stored).
        for readable in ["client_id=\(clientID)", "redirect_uri=\(pct(redirectURI))", "state=st-readable", "grant_type=authorization_code",
                         #""token_type":"bearer""#, #""expires_in":3599"#, "X-OAuth-Scopes: boards:read, boards:write",
                         "X-RateLimit-Limit: 100000", "X-RateLimit-Remaining: 99999", #""scope":"boards:read""#,
                         "<token_type>bearer</token_type>", "expires_in: 3600", "code=9002327", #""status_code":"201""#] {
            #expect(shows.contains(readable), "\(readable) is not readable in show")
        }
        // The wrongly labelled gzip body was kept (scanned), not dropped.
        #expect(shows.contains(#"{"refresh_token":"redacted.refresh_token."#))
    }
}
