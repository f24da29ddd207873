import Foundation
import OAuthDiagnosis
import Reports
import Testing
import TokentapCore

/// Each export format on the fixed exchanges (`Fixtures`): a failed token exchange with findings
/// (#2), a tunnel row (#3), a 502 the proxy answered (#4).
@Suite("Exporters")
struct ExporterTests {
    let exchanges = Fixtures.exchanges()

    func text(_ format: ExportFormat) -> String {
        String(decoding: format.exporter(diagnoser: Fixtures.diagnoser, version: "9.9").export(exchanges), as: UTF8.self)
    }

    @Test("one list: each format's exporter answers to its name")
    func list() {
        #expect(ExportFormat.allCases.map(\.rawValue) == ["har", "markdown", "curl", "html"])
        for format in ExportFormat.allCases {
            #expect(format.exporter(diagnoser: Fixtures.diagnoser, version: "9.9").format == format.rawValue)
        }
        #expect(ExportFormat.allCases.filter(\.isExecutable) == [.curl])
    }

    @Test("no format writes a raw secret", arguments: ExportFormat.allCases)
    func redacted(_ format: ExportFormat) {
        let out = text(format)
        #expect(!out.isEmpty)
        #expect(!out.contains(HTMLReportTests.secret))
        #expect(!out.contains(HTMLReportTests.code))
        #expect(!out.contains("accEssTokenAAAA"))
    }

    @Test("HAR: the tunnel as CONNECT, the 502 with its error, the failed exchange with findings and verdict")
    func har() throws {
        let root = try #require(try JSONSerialization.jsonObject(with: Data(text(.har).utf8)) as? [String: Any])
        let entries = try #require((root["log"] as? [String: Any])?["entries"] as? [[String: Any]])
        #expect(entries.count == 5)
        func tokentap(_ i: Int) -> [String: Any] { entries[i]["_tokentap"] as? [String: Any] ?? [:] }
        let tunnel = try #require(entries[2]["request"] as? [String: Any])
        #expect(tunnel["method"] as? String == "CONNECT")
        #expect(tunnel["url"] as? String == "https://example.org:443")
        #expect(tokentap(2)["kind"] as? String == "tunnel")
        #expect((entries[3]["response"] as? [String: Any])?["status"] as? Int == 502)
        #expect(tokentap(3)["error"] as? String == "connect to api.miro.com: connection refused")
        #expect((tokentap(3)["findings"] as? [[String: Any]])?.first?["rule"] as? String == "upstream-unreachable")
        #expect((tokentap(1)["findings"] as? [[String: Any]])?.first?["rule"] as? String == "redirect-uri-mismatch")
        #expect((tokentap(1)["verdict"] as? [String: Any])?["cause"] as? String == "redirect-uri-mismatch")
        #expect(tokentap(0)["verdict"] == nil && tokentap(0)["error"] == nil)
        // What tokentap writes, it imports back.
        let imported = try HAR.parse(Data(text(.har).utf8), session: "again")
        #expect(imported.map(\.exchange.kind) == [.http, .http, .tunnel, .http, .websocket])
        #expect(imported[3].exchange.status == 502 && imported[3].exchange.error == "connect to api.miro.com: connection refused")
        #expect(imported[1].findings.map(\.rule) == ["redirect-uri-mismatch"])
    }

    @Test("Markdown: the verdict first, the failing exchanges with their status, error and findings")
    func markdown() throws {
        let md = text(.markdown)
        let wrong = try #require(md.range(of: "## What went wrong"))
        let verdict = try #require(md.range(of: "Cause: `redirect-uri-mismatch` (certain)"))
        #expect(wrong.upperBound < verdict.lowerBound)
        #expect(md.contains("### #2 POST https://api.miro.com/v1/oauth/token → 401 Unauthorized"))
        #expect(md.contains("### #4 GET https://api.miro.com/v2/boards/"))
        #expect(md.contains("→ 502 Bad Gateway"))
        #expect(md.contains("Error: connect to api.miro.com: connection refused"))
        #expect(md.contains("### error (certain): `upstream-unreachable` on #4"))
        #expect(md.contains("Findings: `redirect-uri-mismatch`"))
        // The tunnel did not fail: it is counted, not listed among the failing exchanges.
        #expect(!md.contains("### #3"))
        #expect(md.contains("tokentap 9.9 · 5 exchanges"))
    }

    @Test("curl: a command per HTTP exchange, a comment for the tunnel, placeholders as variables")
    func curl() {
        let sh = text(.curl)
        #expect(sh.hasPrefix("#!/bin/sh\n"))
        #expect(sh.contains("set -u\n"))
        #expect(sh.contains("# #3 tunnel example.org:443: not an HTTP exchange, nothing to reproduce"))
        #expect(sh.contains("# #4 GET https://api.miro.com/v2/boards/"))
        #expect(sh.contains(": 502)"))
        #expect(sh.contains("curl -sS -g -X POST \"https://api.miro.com/v1/oauth/token\""))
        #expect(sh.contains("$CLIENT_SECRET"))
        #expect(sh.contains("#   CLIENT_SECRET: the client_secret (34 characters"))
        #expect(!sh.contains("redacted.client_secret"))
    }

    @Test("HTML: the report of the list is the HTML report")
    func html() {
        let page = text(.html)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.contains(#"data-rule="redirect-uri-mismatch""#))
        #expect(page == HTMLReportTests.render(exchanges))
    }

    @Test("Basic credentials: curl passes them with -u, Markdown decodes them; the secret stays a placeholder")
    func basicCredentials() throws {
        let basic = "Basic " + Data("3074457363680401096:\(HTMLReportTests.secret)".utf8).base64EncodedString()
        let raw = Exchange(id: 9, session: "s1", started: HTMLReportTests.at(9), host: "api.miro.com", method: "POST",
                           target: "/v1/oauth/token",
                           request: MessageRecord(headers: [HeaderField(name: "Authorization", value: basic)], body: Data("grant_type=refresh_token".utf8)),
                           status: 401, reason: "Unauthorized")
        let e = Fixtures.redactor.redact(raw)
        let sh = String(decoding: CurlExport(version: "9.9").export([e]), as: UTF8.self)
        #expect(sh.contains("-u \"3074457363680401096:$CLIENT_SECRET\""))
        #expect(!sh.contains("Authorization"))
        let md = String(decoding: MarkdownReport(diagnoser: Fixtures.diagnoser, version: "9.9").export([e]), as: UTF8.self)
        #expect(md.contains("The Basic credentials decode to `3074457363680401096:redacted.client_secret."))
        for out in [sh, md] { #expect(!out.contains(HTMLReportTests.secret)) }
    }
}
