import Foundation
import OAuthDiagnosis
import Redaction
import Reports
import Testing
import TokentapCore

@Suite("HTML escaping")
struct HTMLEscapeTests {
    @Test("the five markup characters become character references")
    func markup() {
        #expect(HTMLEscape.escape(#"<a href="x" title='y'>&amp;</a>"#)
                == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;")
    }

    @Test("script, end tags, CDATA ends and attribute breakouts are inert")
    func hostile() {
        #expect(HTMLEscape.escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(HTMLEscape.escape("</details>") == "&lt;/details&gt;")
        #expect(HTMLEscape.escape("]]>") == "]]&gt;")
        #expect(HTMLEscape.escape("<![CDATA[x]]>") == "&lt;![CDATA[x]]&gt;")
        #expect(HTMLEscape.escape(#""onload=alert(1)"#) == "&quot;onload=alert(1)")
        #expect(HTMLEscape.escape("<!-- -->") == "&lt;!-- --&gt;")
        for text in ["<script>", "</details>", "]]>", #""onload="#, "'onerror='"] {
            let out = HTMLEscape.escape(text)
            #expect(!out.contains("<") && !out.contains(">") && !out.contains("\"") && !out.contains("'"), "\(out)")
        }
    }

    @Test("text, line breaks and Unicode stay; other control characters become visible")
    func controls() {
        #expect(HTMLEscape.escape("a\tb\nc\r\n") == "a\tb\nc\r\n")
        #expect(HTMLEscape.escape("é → ✓ 日本") == "é → ✓ 日本")
        #expect(HTMLEscape.escape("x\u{0}y\u{1B}z\u{7F}") == "x\u{2400}y\u{241B}z\u{2421}")
        #expect(HTMLEscape.escape("\u{85}") == "\u{FFFD}")
        #expect(HTMLEscape.escape("") == "")
        // Escaping is not idempotent on purpose: an already-escaped value is shown as it was recorded.
        #expect(HTMLEscape.escape("&lt;") == "&amp;lt;")
    }
}

@Suite("HTML report")
struct HTMLReportTests {
    static let redactor = Redactor(key: Data(repeating: 7, count: 32))
    static let diagnoser = Diagnoser(redactor: redactor)
    static let secret = "Xk9fQ2mZ7pL4vR8tY1wB6nC3dE5gH0jKq2"
    static let code = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_c0deAbCdEfGhIjKlMnOpQrStUv"
    static let hostile = #"<script>alert(1)</script> </details> ]]> "onload=alert(2)"#

    static func at(_ s: TimeInterval) -> Date { Date(timeIntervalSince1970: 1_764_410_000 + s) }

    /// authorize (302 with a code) → token exchange 401 with redirect-uri-mismatch → a tunnel →
    /// an API call the proxy answered 502 (upstream unreachable), with hostile values; redacted.
    static func exchanges() -> [Exchange] {
        let authorize = Exchange(
            id: 1, session: "s1", started: at(0), host: "miro.com", method: "GET",
            target: "/oauth/authorize?response_type=code&client_id=3074457363680401096&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=st4te",
            status: 302, reason: "Found",
            response: MessageRecord(headers: [HeaderField(name: "Location", value: "https://app.example/cb?code=\(code)&state=st4te")]))
        let tokenBody = "grant_type=authorization_code&client_id=3074457363680401096&client_secret=\(secret)&code=\(code)&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F"
        let mismatch = Finding(rule: "redirect-uri-mismatch", severity: .error, confidence: .certain, exchange: 2,
                               title: "The redirect_uri differs from the one sent to authorize: a trailing slash.",
                               evidence: ["authorize (#1): https://app.example/cb", "token exchange: https://app.example/cb/"],
                               fix: "Send exactly the redirect_uri of the authorize request.", reference: "RFC 6749 §4.1.3")
        let token = Exchange(
            id: 2, session: "s1", started: at(3), host: "api.miro.com", method: "POST", target: "/v1/oauth/token",
            request: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                                             HeaderField(name: "X-Evil", value: hostile)],
                                   body: Data(tokenBody.utf8)),
            status: 401, reason: "Unauthorized",
            response: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/json")],
                                    body: Data(#"{"status":401,"message":"Redirect URI mismatch. \u003cscript\u003e","type":"error","note":"<script>alert(1)</script> </details> ]]> \"onload=x"}"#.utf8)),
            findings: [mismatch])
        let tunnel = Exchange(id: 3, session: "s1", kind: .tunnel, started: at(4), host: "example.org", method: "", target: "",
                              request: MessageRecord(wireSize: 517), response: MessageRecord(wireSize: 4096))
        let unreachable = Finding(rule: "upstream-unreachable", severity: .error, confidence: .certain, exchange: 4,
                                  title: "tokentap could not connect to api.miro.com: connection refused.",
                                  evidence: ["error: connection refused"], fix: "Check the network.", reference: "design.md")
        let api = Exchange(
            id: 4, session: "s1", started: at(5), host: "api.miro.com", method: "GET",
            target: #"/v2/boards/"onload=x<script>?access_token=abc"#,
            request: MessageRecord(headers: [HeaderField(name: "Authorization", value: "Bearer eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_accEssTokenAAAAAAAAAAAAAAA")]),
            status: 502, reason: "Bad Gateway",
            response: MessageRecord(body: Data("tokentap: upstream api.miro.com unreachable".utf8)),
            error: "connect to api.miro.com: connection refused", errorKind: .connect, findings: [unreachable])
        return [authorize, token, tunnel, api].map { redactor.redact($0) }
    }

    static func render(_ exchanges: [Exchange] = exchanges()) -> String {
        String(decoding: HTMLReport(diagnoser: diagnoser, version: "9.9").export(exchanges), as: UTF8.self)
    }

    /// The `<g class="exchange…">` elements, each as its text up to `</g>`.
    static func arrows(_ html: String) -> [String] {
        html.components(separatedBy: "<g class=\"exchange").dropFirst().map { $0.components(separatedBy: "</g>")[0] }
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test("self-contained: the CSP meta, no script, nothing to load")
    func selfContained() {
        let html = Self.render()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains(#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#))
        #expect(!html.lowercased().contains("<script"))
        #expect(!html.contains(" src="))
        #expect(!html.lowercased().contains("<link"))
        #expect(!html.contains("url("))
        #expect(!html.contains("@import"))
        // Every link stays in the page.
        for part in html.components(separatedBy: "href=\"").dropFirst() { #expect(part.hasPrefix("#"), "\(part.prefix(40))") }
        #expect(html.contains("prefers-color-scheme: dark"))
        #expect(html.contains("@media print"))
    }

    @Test("the verdicts come first, then the diagram, then the exchanges with their findings")
    func order() throws {
        let html = Self.render()
        let verdict = try #require(html.range(of: #"<article class="verdict" data-rule="redirect-uri-mismatch" data-exchange="2">"#))
        let svg = try #require(html.range(of: "<svg"))
        let details = try #require(html.range(of: #"id="exchange-2""#))
        #expect(verdict.lowerBound < svg.lowerBound && svg.lowerBound < details.lowerBound)
        #expect(html.contains("Send exactly the redirect_uri of the authorize request."))
        // The 502 has a verdict of its own: the proxy could not reach the server.
        #expect(html.contains(#"<article class="verdict" data-rule="upstream-unreachable" data-exchange="4">"#))
        // Findings next to their exchange, with evidence and fix.
        let section2 = html.components(separatedBy: #"id="exchange-2""#)[1].components(separatedBy: "</section>")[0]
        #expect(section2.contains(#"data-rule="redirect-uri-mismatch""#))
        #expect(section2.contains("token exchange: https://app.example/cb/"))
        #expect(section2.contains("fix: Send exactly the redirect_uri"))
        #expect(section2.contains("<details>") && section2.contains("<summary>"))
    }

    @Test("one arrow per exchange, from the lane the OAuth role decides, failed ones marked")
    func arrows() {
        let html = Self.render()
        let arrows = Self.arrows(html)
        #expect(arrows.count == 4)
        #expect(arrows[0].hasPrefix(#"" data-exchange="1" data-from="browser""#), "\(arrows[0])")
        #expect(arrows[1].hasPrefix(#" failed" data-exchange="2" data-from="app" data-failed="true""#), "\(arrows[1])")
        #expect(arrows[2].hasPrefix(#"" data-exchange="3" data-from="app""#))
        #expect(arrows[3].hasPrefix(#" failed" data-exchange="4" data-from="app" data-failed="true""#))
        #expect(arrows[0].contains("#1 GET /oauth/authorize → 302"))
        #expect(arrows[1].contains("#2 POST /v1/oauth/token → 401 ✗"))
        // A tunnel row: the host and the bytes, never failed.
        #expect(arrows[2].contains("CONNECT example.org:443 (tunnel, 517 B out, 4096 B in) → tunnelled"))
        // The proxy's own 502.
        #expect(arrows[3].contains("→ 502 from tokentap ✗"))
        // Lanes: browser, app, then each host in order of appearance.
        for lane in ["Browser", "App", "miro.com", "api.miro.com", "example.org:443"] {
            #expect(html.contains(#"<g class="lane" data-lane="\#(lane)">"#), "\(lane)")
        }
        // No query string on an arrow: not even the redacted one.
        for a in arrows { #expect(!a.contains("response_type") && !a.contains("access_token=") && !a.contains("state=")) }
    }

    @Test("the code issued in the redirect and sent in the exchange carry the same placeholder")
    func handOffs() throws {
        let arrows = Self.arrows(Self.render())
        let issued = try #require(arrows[0].range(of: #"issues code redacted\.code\.[0-9a-f]{12}\.[0-9]+"#, options: .regularExpression))
        let placeholder = String(arrows[0][issued].dropFirst("issues code ".count))
        #expect(arrows[1].contains("sends code \(placeholder)"))
        #expect(!arrows[1].contains("client_secret"), "a client secret is not a hand-off")
        #expect(arrows[3].contains("sends access_token redacted.access_token."))
    }

    @Test("hostile values in headers, bodies and paths render as text")
    func hostileValues() {
        let html = Self.render()
        #expect(!html.contains("<script"))
        #expect(!html.contains("]]>"))
        #expect(!html.contains(#""onload="#))
        #expect(Self.count("<details>", in: html) == Self.count("</details>", in: html))
        #expect(Self.count("<details>", in: html) == 4)
        #expect(html.contains("X-Evil: &lt;script&gt;alert(1)&lt;/script&gt; &lt;/details&gt; ]]&gt; &quot;onload=alert(2)"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &lt;/details&gt; ]]&gt; \\&quot;onload=x"))
        #expect(html.contains("/v2/boards/&quot;onload=x&lt;script&gt;"))
    }

    @Test("only redacted values: no raw secret of the fixture")
    func redacted() {
        let html = Self.render()
        #expect(!html.contains(Self.secret))
        #expect(!html.contains(Self.code))
        #expect(!html.contains("accEssToken"))
        #expect(html.contains("client_secret=redacted.client_secret."))
    }

    @Test("nothing failed: the report says so and marks no arrow")
    func nothingFailed() {
        let html = Self.render([Self.exchanges()[0]])
        #expect(html.contains("Nothing: no OAuth exchange failed."))
        #expect(!html.contains(#"class="exchange failed""#))
        #expect(!html.contains("data-failed"))
        #expect(Self.arrows(html).count == 1)
    }

    @Test("a callback is drawn from the browser into the app's lane, with the code it delivers")
    func callback() throws {
        let authorize = Exchange(
            id: 1, session: "s1", started: Self.at(0), host: "miro.com", method: "GET",
            target: "/oauth/authorize?response_type=code&client_id=3074457363680401096&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback&state=st4te",
            status: 302, response: MessageRecord(headers: [HeaderField(name: "Location", value: "http://localhost:8080/callback?code=\(Self.code)&state=st4te")]))
        let callback = Exchange(id: 2, session: "s1", started: Self.at(1), scheme: "http", host: "localhost", port: 8080, method: "GET",
                                target: "/callback?code=\(Self.code)&state=st4te", status: 200)
        let html = Self.render([authorize, callback].map { Self.redactor.redact($0) })
        let arrows = Self.arrows(html)
        #expect(arrows.count == 2)
        #expect(arrows[1].hasPrefix(#"" data-exchange="2" data-from="browser""#), "\(arrows[1])")
        #expect(arrows[1].contains("#2 GET localhost:8080/callback → 200"))
        #expect(!html.contains(#"data-lane="localhost:8080""#), "the callback ends in the app's lane")
        let issued = try #require(arrows[0].range(of: #"issues code redacted\.code\.[0-9a-f]{12}\.[0-9]+"#, options: .regularExpression))
        #expect(arrows[1].contains("sends code " + arrows[0][issued].dropFirst("issues code ".count)))
    }

    @Test("a WebSocket row is one arrow with its bytes and close code")
    func websocketRow() {
        let ws = Exchange(id: 7, session: "s1", kind: .websocket, started: Self.at(0), host: "api.miro.com", method: "GET",
                          target: "/ws?access_token=wsSecretToken123", status: 101,
                          websocket: WebSocketSummary(key: "k", open: false, framesClient: 3, framesServer: 3, bytesClient: 120,
                                                      bytesServer: 90, closeCode: 1000, closedBy: "client"))
        let html = Self.render([Self.redactor.redact(ws)])
        let arrows = Self.arrows(html)
        #expect(arrows.count == 1)
        #expect(arrows[0].contains("WebSocket /ws (120 B out, 90 B in, close 1000) → 101"), "\(arrows[0])")
        #expect(!html.contains("wsSecretToken123"))
    }

    @Test("the HTML report is an Exporter named html")
    func exporter() {
        let exporter: any Exporter = HTMLReport(diagnoser: Self.diagnoser, version: "1")
        #expect(exporter.format == "html")
        #expect(!exporter.export([]).isEmpty)
    }
}
