import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

typealias S = Scenario

/// A whole correct Miro flow: authorize, exchange, API call, refresh an hour later, API call.
func correctMiroFlow(style: Style) -> Scenario {
    var s = Scenario()
    s.add(S.authorize(at: 0))
    s.add(S.token(S.codeParams(), style: style, at: 8, response: S.tokens()))
    s.add(S.api(bearer: Miro.access, at: 10))
    s.add(S.api("POST", "https://api.miro.com/v2/boards", bearer: Miro.access, at: 20, status: 201))
    s.add(S.token(S.refreshParams(), style: style, at: 3500, response: S.tokens(Miro.access2, Miro.refresh2)))
    s.add(S.api(bearer: Miro.access2, at: 3510))
    s.add(S.token(S.refreshParams(Miro.refresh2), style: style, at: 7000,
                  response: S.tokens(Miro.prefix + "accEssTokenCCCCCCCCCCCCCCC", Miro.prefix + "reFreshTokenTTTTTTTTTTTTTT")))
    return s
}

@Suite struct CorrectFlowTests {
    static let styles: [(String, Style)] = [("query (Miro SDK)", .query), ("form body", .form),
                                            ("requests-oauthlib Basic", .basic(clientIDInBody: false)),
                                            ("requests-oauthlib Basic + client_id", .basic(clientIDInBody: true))]

    @Test(arguments: styles)
    func correctMiroFlowHasNoAlarm(_ name: String, _ style: Style) {
        let s = correctMiroFlow(style: style)
        for (i, f) in s.allFindings().enumerated() {
            #expect(f.alarms.isEmpty, "\(name): exchange \(i + 1): \(f.alarms.map { "\($0.rule): \($0.title)" })")
        }
    }

    @Test func querySDKStyleIsInfoOnlyForMiro() {
        let s = correctMiroFlow(style: .query)
        let f = s.findings(at: 1)
        #expect(f.rule("params-in-query")?.severity == .info)
        #expect(f.rule("code-unknown") == nil)
    }

    @Test func miroShapesAreNotBlamedForAFailure() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(secret: Miro.otherSecret), style: .query, at: 5, status: 401, response: S.miroError()))
        var e = S.token(S.codeParams(code: Miro.code2, secret: Miro.otherSecret).filter { $0.0 != "grant_type" }, style: .form,
                        at: 6, status: 401, response: S.miroError())
        e.target += "?grant_type=authorization_code"
        s.add(e)
        #expect(s.findings(at: 1).rule("params-in-query")?.severity == .info)
        #expect(s.findings(at: 1).alarms.map(\.rule) == ["server-rejected-credentials"])
        #expect(s.verdict(at: 1)?.cause == "server-rejected-credentials")
        #expect(s.findings(at: 2).rule("param-split")?.severity == .info)
    }

    @Test func sameShapesAreWarningsForAGenericProvider() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), style: .query, at: 0, status: 400,
                      response: json(["error": "invalid_request"]), url: "https://idp.example.com/oauth2/token"))
        let f = s.findings()
        #expect(f.rule("params-in-query")?.severity == .warning)
        // A warning only may explain it: the provider's own error leads, the shape is an alternative.
        #expect(s.verdict()?.cause == "provider-error")
        #expect(s.verdict()?.alternatives == ["params-in-query"])
    }

    @Test func timelineShowsElapsedTimes() {
        var s = correctMiroFlow(style: .form)
        s.add(S.api(bearer: Miro.access2, at: 3500 + 4500, status: 401))
        let steps = s.diagnoser.timeline(s.stored)
        #expect(steps.map(\.step).prefix(4) == ["authorize", "redirect", "token exchange", "api call"])
        #expect(steps.contains { $0.step == "token exchange" && $0.summary.contains("code used 8s after issue") })
        #expect(steps.contains { $0.step == "refresh" && $0.summary.contains("refresh token issued") })
        #expect(steps.last?.summary.contains("access token 1h 15m 00s old (expires_in 3599)") == true)
        #expect(!steps.contains { $0.summary.contains(Miro.code) || $0.summary.contains(Miro.access) })
    }
}

@Suite struct FlowReconstructionTests {
    @Test("browser and app in one session: authorize → redirect → callback (loopback, plain HTTP) → token exchange, one code placeholder throughout")
    func callbackJoinsTheBrowserAndTheApp() {
        var s = Scenario()
        let redirect = "http://127.0.0.1:8765/callback"
        s.add(S.authorize(redirectURI: redirect))
        s.add(S.http("GET", redirect + "?code=\(formEncode(Miro.code))&state=st4te&client_id=\(Miro.clientID)", at: 1, status: 200))
        s.add(S.http("GET", "http://127.0.0.1:8765/favicon.ico", at: 1.5, status: 404))
        s.add(S.token(S.codeParams(redirectURI: redirect), style: .form, at: 2, status: 200, response: S.tokens()))
        let steps = s.diagnoser.timeline(s.stored)
        #expect(steps.map(\.step) == ["authorize", "redirect", "callback", "token exchange"])
        let placeholders = steps.dropFirst().map { step in
            step.summary.split(separator: " ").first { $0.hasPrefix("redacted.code.") }.map { String($0) }
        }
        #expect(placeholders.allSatisfy { $0 != nil } && Set(placeholders).count == 1, "\(steps.map(\.summary))")
        #expect(steps[2].summary.contains("GET http://127.0.0.1:8765/callback") && steps[2].summary.contains("(issued in #1)"))
        #expect(steps[3].summary.contains("→ 200; code used 2s after issue (#1)"), "\(steps[3].summary)")
        #expect(!steps.contains { $0.summary.contains(Miro.code) })
        #expect(s.findings(at: 3).alarms.isEmpty, "\(s.findings(at: 3).alarms.map(\.rule))")
    }

    @Test func consentFormRedirectIssuesTheCode() {
        var s = Scenario()
        s.add(S.authorize(code: nil, redirectState: .some(nil)).droppingResponse())
        s.add(S.http("POST", "https://miro.com/oauth/consent", at: 20, status: 302,
                     responseHeaders: [HeaderField(name: "Location", value: Miro.redirect + "?code=\(formEncode(Miro.code))&state=st4te")]))
        s.add(S.token(S.codeParams(), style: .form, at: 20 + 664, status: 400, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("code-unknown") == nil)
        #expect(f.evidenceContains("code-expired", "issued in #2"))
        #expect(s.verdict()?.cause == "code-expired")
        #expect(s.findings(at: 1).isEmpty)
        #expect(s.diagnoser.timeline(s.stored).map(\.step) == ["authorize", "redirect", "token exchange"])
    }

    @Test func rolesOfSingleExchanges() {
        let d = Scenario().diagnoser
        #expect(d.oauthRole(of: S.authorize()) == "authorize")
        #expect(d.oauthRole(of: S.token(S.codeParams(), at: 0)) == "token")
        #expect(d.oauthRole(of: S.token(S.codeParams(), style: .form, at: 0, url: "https://idp.example.com/oauth2/token")) == "token")
        #expect(d.oauthRole(of: S.api(bearer: Miro.access, at: 0)) == "api")
        #expect(d.oauthRole(of: S.http("GET", "http://localhost:3000/cb?code=abc&state=x", at: 0, status: 200)) == "callback")
        #expect(d.oauthRole(of: S.http("GET", "https://miro.com/app/dashboard/", at: 0, status: 200)) == nil)
        #expect(d.oauthRole(of: S.http("OPTIONS", "https://api.miro.com/v2/boards", at: 0, status: 204)) == nil)
    }

    @Test func bearerOverPlainHTTP() {
        var s = Scenario()
        s.add(S.api(bearer: Miro.access, at: 0).retargeted("http://api.example.com/v1/me", status: 200).withScheme("http"))
        #expect(s.findings().rule("token-over-plain-http")?.severity == .warning)
        var local = Scenario()
        local.add(S.api(bearer: Miro.access, at: 0).retargeted("http://localhost:8080/me", status: 200).withScheme("http"))
        #expect(local.findings().isEmpty)
    }

    @Test func followUpOfA307IsNotAReuse() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, status: 307).withLocation("https://api.miro.com/v1/oauth/token"))
        s.add(S.token(S.codeParams(), style: .form, at: 5.1, response: S.tokens()))
        #expect(s.findings().isEmpty)
    }

    @Test func apiCallDuringARefreshIsNotSuperseded() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(), style: .form, at: 1800, response: S.tokens(Miro.access2, Miro.refresh2), totalMs: 500))
        s.add(S.api(bearer: Miro.access, at: 1800.2, status: 401))
        #expect(s.findings().rule("access-token-superseded") == nil)
    }

    @Test func rawHistoryFromKeepSecretsCompares() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        var history = s.exchanges
        for i in history.indices { history[i].id = Int64(i + 1); history[i].keepsSecrets = true }
        let again = S.token(S.codeParams(), style: .form, at: 6, status: 400, response: S.miroError())
        let f = s.diagnoser.diagnose(again, history: history)
        #expect(f.rule("code-reused")?.severity == .error)
        #expect(!f.flatMap(\.evidence).contains { $0.contains(Miro.code) })
    }

    /// `doctor` and HAR import may re-diagnose a stored (redacted) session: the same rules fire.
    @Test func storedSessionDiagnosesLikeLive() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        s.add(S.token(S.codeParams(), style: .form, at: 5.04, status: 400, response: S.miroError(400, "Invalid code")))
        s.add(S.token(S.codeParams(secret: Miro.secret + "\n"), style: .form, at: 6, status: 401, response: S.miroError()))
        s.add(S.token([("grant_type", "authorization_code"), ("code", Miro.code2), ("redirect_uri", Miro.redirect)], style: .form, at: 7,
                      status: 401, response: S.miroError(),
                      headers: [HeaderField(name: "Authorization", value: "Basic " + Data("\(Miro.clientID):\(Miro.secret)\n".utf8).base64EncodedString())]))
        s.add(S.token([("grant_type", "authorization_code"), ("code", Miro.code2), ("redirect_uri", Miro.redirect)], style: .form, at: 8,
                      status: 401, response: S.miroError(),
                      headers: [HeaderField(name: "Authorization", value: "Basic " + Data("\(Miro.clientID):\(Miro.secret)".utf8).base64EncodedString() + "\n")]))
        s.add(S.api(bearer: Miro.access, at: 5 + 4000, status: 401))
        let live = s.allFindings().map { Set($0.alarms.map(\.rule)) }
        let stored = s.stored
        let again = stored.indices.map { i in Set(s.diagnoser.diagnose(stored[i], history: Array(stored[..<i])).alarms.map(\.rule)) }
        #expect(live == again)
        #expect(again[2].contains("code-reused"))
        #expect(again[3].contains("credential-formatting"))
        #expect(again[4].contains("basic-auth-malformed"))
        #expect(again[5].contains("basic-auth-malformed"))
        #expect(again[6].contains("access-token-expired"))
        let session = s.diagnoser.diagnoseSession(stored)
        #expect(session.first?.severity == .error)
        #expect(session.contains { $0.rule == "code-reused" && $0.exchange == 3 })
    }

    /// Every finding and timeline line of every scenario in this file keeps secrets out.
    @Test func evidenceNeverShowsARawSecret() {
        let secrets = [Miro.secret, Miro.otherSecret, Miro.code, Miro.code2, Miro.access, Miro.refresh, Miro.access2, Miro.refresh2]
        var scenarios: [Scenario] = [correctMiroFlow(style: .query), correctMiroFlow(style: .form)]
        var bad = Scenario()
        bad.add(S.authorize())
        bad.add(S.token(S.codeParams(secret: Miro.secret + "\n"), style: .json, at: 700, status: 401, response: S.miroError(),
                        headers: [HeaderField(name: "Authorization", value: "Basic " + Data("\(Miro.clientID):\(Miro.secret)\n".utf8).base64EncodedString())]))
        bad.add(S.token(S.codeParams(clientID: Miro.secret, secret: Miro.clientID), style: .query, at: 701, status: 401, response: S.miroError()))
        bad.add(S.api(bearer: Miro.code, at: 702, status: 401))
        bad.add(S.api(bearer: nil, authorization: "Bearer  \(Miro.access)\n", at: 703, status: 401))
        scenarios.append(bad)
        for s in scenarios {
            let texts = s.allFindings().flatMap { $0 }.flatMap { [$0.title, $0.fix] + $0.evidence }
                + s.diagnoser.timeline(s.stored).map(\.summary)
            for t in texts { #expect(!secrets.contains { t.contains($0) }, "\(t)") }
        }
    }
}

extension Exchange {
    func withScheme(_ scheme: String) -> Exchange {
        var e = self
        e.scheme = scheme
        e.port = scheme == "https" ? 443 : 80
        return e
    }
}
