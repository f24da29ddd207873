import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

/// A correct flow at a generic provider: authorize, exchange, API call, refresh, API call.
func correctGenericFlow(style: Style) -> Scenario {
    var s = Scenario()
    let base = "https://idp.example.com"
    s.add(S.authorize(at: 0, clientID: "app1", host: "idp.example.com", path: "/oauth2/authorize"))
    let secret = "s3cr3t-Value-0123456789abcdef"
    s.add(S.token([("grant_type", "authorization_code"), ("client_id", "app1"), ("client_secret", secret), ("code", Miro.code),
                   ("redirect_uri", Miro.redirect)], style: style, at: 4, response: S.tokens(), url: base + "/oauth2/token"))
    s.add(S.api(bearer: Miro.access, at: 5).retargeted("https://api.example.com/v1/me", status: 200))
    s.add(S.token([("grant_type", "refresh_token"), ("client_id", "app1"), ("client_secret", secret), ("refresh_token", Miro.refresh)],
                  style: style, at: 1800, response: S.tokens(Miro.access2, Miro.refresh2), url: base + "/oauth2/token"))
    s.add(S.api(bearer: Miro.access2, at: 1801).retargeted("https://api.example.com/v1/me", status: 200))
    return s
}

/// A response the proxy wrote itself for a failed upstream (HTTPRelayHandler's 502/504).
func proxyAnswered(_ e: Exchange, status: Int, error: String, kind: ErrorKind = .connect) -> Exchange {
    var e = e
    e.status = status
    e.error = error
    e.errorKind = kind
    e.response = MessageRecord(headers: [HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8"),
                                         HeaderField(name: "X-Tokentap-Error", value: "upstream")],
                               body: Data("tokentap: \(error)\n".utf8))
    return e
}

/// Issue 17: one cause per failed exchange, first, in one sentence.
@Suite struct VerdictTests {
    // MARK: the faults of the issue

    /// Miro reads no parameter from a JSON body: the body is the cause, the missing parameters its
    /// consequences (a JS client spelling the credentials `clientId`/`clientSecret`).
    @Test func jsonBodyExplainsTheMissingParameters() throws {
        var s = Scenario()
        s.add(S.authorize())
        var e = S.token([], style: .json, at: 5, status: 400,
                        response: S.miroError(400, "JSON request bodies are not accepted: send application/x-www-form-urlencoded parameters."))
        e.request.body = json(["grant_type": "authorization_code", "clientId": Miro.clientID, "clientSecret": Miro.secret,
                               "code": Miro.code, "redirect_uri": Miro.redirect])
        s.add(e)
        let f = s.findings()
        let missing = f.filter { $0.rule == "param-missing" }
        #expect(missing.count == 2, "\(f.rules)")
        let v = try #require(s.verdict())
        #expect(v.cause == "body-not-form-encoded")
        #expect(v.confidence == .likely)
        #expect(v.step == "token exchange")
        #expect(v.status == 400)
        #expect(v.consequences.contains("param-missing"))
        #expect(v.consequences.contains("provider-error"))
        #expect(!v.alternatives.contains("param-missing"))
        #expect(v.summary.hasPrefix("Token exchange #2 (HTTP 400): the token request body is json, not form-encoded"), "\(v.summary)")
        #expect(v.summary.contains("2 × param-missing"), "\(v.summary)")
        #expect(v.summary.contains("Miro's message agrees"), "\(v.summary)")
        #expect(v.fix.contains("x-www-form-urlencoded"))
        #expect(!v.summary.contains(Miro.secret))
        #expect(!v.summary.contains(Miro.code))
    }

    /// A code never seen issued, sent with credentials that got tokens earlier in the session.
    @Test func unknownCodeWithCredentialsThatWorked() throws {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        s.add(S.token(S.codeParams(code: Miro.code2), style: .form, at: 3600, status: 401,
                      response: S.miroError(401, "Invalid authorization code.")))
        let f = s.findings()
        #expect(f.rule("server-rejected-credentials") == nil, "\(f.rules)")
        #expect(f.rule("code-unknown")?.severity == .error)
        #expect(f.evidenceContains("code-unknown", "got tokens in #2"))
        #expect(f.evidenceContains("code-unknown", "supporting evidence only"))
        let v = try #require(s.verdict())
        #expect(v.cause == "code-unknown")
        #expect(v.confidence == .likely)
        #expect(!v.alternatives.contains("server-rejected-credentials"))
        #expect(v.summary.contains("Invalid authorization code"), "\(v.summary)")
    }

    /// The same bad code twice, both rejected for the code itself: the code never worked, so the
    /// second is not a reuse.
    @Test func sameBadCodeTwiceIsNotReused() throws {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(code: Miro.code2), style: .form, at: 5, status: 401, response: S.miroError(401, "Invalid authorization code.")))
        s.add(S.token(S.codeParams(code: Miro.code2), style: .form, at: 9, status: 401, response: S.miroError(401, "Invalid authorization code.")))
        let second = s.findings()
        #expect(second.rule("code-reused") == nil, "\(second.rules)")
        #expect(second.evidenceContains("code-unknown", "rejected for the code itself"))
        let v = try #require(s.verdict())
        #expect(v.cause == "code-unknown")
        #expect(s.verdict(at: 1)?.cause == "code-unknown")
        // A first use rejected for another reason (the redirect URI) did use the code up.
        var other = Scenario()
        other.add(S.authorize())
        other.add(S.token(S.codeParams(redirectURI: Miro.redirect + "/"), style: .form, at: 5, status: 401,
                          response: S.miroError(401, "Redirect URI mismatch.")))
        other.add(S.token(S.codeParams(), style: .form, at: 9, status: 401, response: S.miroError(401, "Invalid authorization code.")))
        #expect(other.verdict(at: 1)?.cause == "redirect-uri-mismatch")
        #expect(other.verdict()?.cause == "code-reused")
    }

    /// A refresh with a refresh token that was never issued: the token responses carried none.
    @Test func refreshTokenNeverIssued() throws {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens(Miro.access, nil)))
        s.add(S.token(S.refreshParams("undefined"), style: .form, at: 3605, status: 401, response: S.miroError(401, "Invalid refresh token.")))
        let f = s.findings()
        #expect(f.rule("refresh-token-not-issued")?.severity == .error)
        #expect(f.rule("refresh-token-not-issued")?.confidence == .certain)
        #expect(f.evidenceContains("refresh-token-not-issued", "`undefined`"))
        #expect(f.rule("server-rejected-credentials") == nil)
        let v = try #require(s.verdict())
        #expect(v.cause == "refresh-token-not-issued")
        #expect(v.step == "refresh")
        #expect(v.summary.contains("Miro's message agrees"), "\(v.summary)")
        // Any never-issued value: likely.
        var other = s
        other.exchanges[2] = S.token(S.refreshParams(Miro.refresh2), style: .form, at: 3605, status: 401,
                                     response: S.miroError(401, "Invalid refresh token."))
        #expect(other.findings().rule("refresh-token-not-issued")?.confidence == .likely)
        #expect(other.verdict()?.cause == "refresh-token-not-issued")
        // When the responses did carry refresh tokens, it is not this rule.
        var issued = Scenario()
        issued.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        issued.add(S.token(S.refreshParams(Miro.refresh2), style: .form, at: 100, status: 401, response: S.miroError(401, "Invalid refresh token.")))
        #expect(issued.findings().rule("refresh-token-not-issued") == nil)
    }

    /// GitHub needs no grant_type: once it gave tokens without one, a later request is not blamed for it.
    @Test func gitHubWithoutGrantTypeLearnedFromTheSession() throws {
        let url = "https://github.com/login/oauth/access_token"
        let params = S.codeParams().filter { $0.0 != "grant_type" }
        var s = Scenario()
        s.add(S.token(params, style: .form, at: 0, response: S.tokens(), url: url))
        var e = S.token(S.codeParams(code: Miro.code2).filter { $0.0 != "grant_type" }, style: .form, at: 60, status: 200, url: url)
        e.response.body = Data("error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.".utf8)
        s.add(e)
        let f = s.findings()
        #expect(f.rule("grant-type-invalid") == nil, "\(f.rules)")
        #expect(f.rule("server-rejected-credentials") == nil)
        let v = try #require(s.verdict())
        #expect(v.cause == "code-unknown")
        #expect(!v.alternatives.contains("grant-type-invalid"))
        #expect(s.verdict(at: 0) == nil)
    }

    /// A request the proxy answered itself (502, upstream unreachable): the proxy's failure is the
    /// cause, and no provider-side rule judges a response the provider never sent.
    @Test func proxyAnswered502IsUpstreamUnreachable() throws {
        let refused = "cannot connect to upstream api.miro.com:443: connection refused"
        var s = Scenario()
        s.add(S.authorize())
        s.add(proxyAnswered(S.token(S.codeParams(), style: .form, at: 5), status: 502, error: refused))
        s.add(proxyAnswered(S.api(bearer: nil, at: 6), status: 502, error: refused))
        let token = s.findings(at: 1)
        #expect(token.rules == ["upstream-unreachable"], "\(token.rules)")
        #expect(s.verdict(at: 1)?.cause == "upstream-unreachable")
        #expect(s.verdict(at: 1)?.summary.contains("502 from tokentap") == true)
        let api = s.findings(at: 2)
        #expect(api.rule("access-token-missing") == nil)
        #expect(api.rule("provider-error") == nil)
        let v = try #require(s.verdict(at: 2))
        #expect(v.cause == "upstream-unreachable")
        #expect(v.step == "api call")
        #expect(v.summary.hasPrefix("API call #3 (502 from tokentap)"), "\(v.summary)")
        // The code never reached the provider: exchanging it next is not a reuse.
        s.add(S.token(S.codeParams(), style: .form, at: 8, response: S.tokens()))
        #expect(s.findings().alarms.isEmpty, "\(s.findings().alarms.map(\.rule))")
    }

    @Test(arguments: [
        (504, "upstream api.miro.com:443 sent no response head within the upstream timeout", ErrorKind.timeout, "upstream-timeout"),
        (502, "upstream api.miro.com:443 presented a certificate that is not trusted for api.miro.com (add its CA with --upstream-ca FILE): CERTIFICATE_VERIFY_FAILED", .tls, "upstream-tls-failed"),
        (502, "upstream api.miro.com:443 sent a response that is not valid HTTP/1.1 (invalidStatus)", .malformed, "upstream-response-invalid"),
        (502, "cannot resolve upstream host api.miro.com: NXDOMAIN", .connect, "upstream-unreachable"),
    ])
    func otherProxySideFailures(_ status: Int, _ error: String, _ kind: ErrorKind, _ rule: String) {
        var t = Scenario()
        t.add(proxyAnswered(S.token(S.codeParams(), style: .form, at: 5), status: status, error: error, kind: kind))
        #expect(t.findings().rules == [rule])
        #expect(t.verdict()?.cause == rule)
    }

    @Test func truncatedResponseAndClientAbort() {
        // A response cut short after the upstream's head: the upstream's status is kept.
        var cut = Scenario()
        var e = S.token(S.codeParams(), style: .form, at: 5, status: 200, response: Data("{\"access_tok".utf8))
        e.error = "upstream api.miro.com:443 closed the connection before the response was complete; the client got it cut off"
        e.errorKind = .truncated
        cut.add(e)
        #expect(cut.findings().rules == ["upstream-response-invalid"])
        #expect(cut.verdict()?.cause == "upstream-response-invalid")
        // A client that went away is not a proxy-side failure.
        var gone = Scenario()
        var g = S.api(bearer: Miro.access, at: 0, status: 200)
        g.error = "client closed the connection before the response completed"
        gone.add(g)
        #expect(gone.findings().isEmpty)
        #expect(gone.verdict() == nil)
    }

    /// Values another tool already replaced are unknown: never evidence of a mismatch or a reuse, and a
    /// URL's raw space reads like its `%20` (har-sanitizer's `[state redacted]`).
    @Test(arguments: ["[state redacted]", "REDACTED", "***", "<hidden>"])
    func valuesReplacedElsewhereAreUnknown(_ marker: String) {
        var s = Scenario()
        let url = "https://accounts.google.com/o/oauth2/v2/auth?client_id=app1&response_type=code&redirect_uri="
            + formEncode(Miro.redirect) + "&state=" + formEncode(marker)
        s.add(S.http("GET", url, at: 0, status: 302,
                     responseHeaders: [HeaderField(name: "Location", value: Miro.redirect + "?state=\(marker)&code=[code redacted]")]))
        s.add(S.http("GET", Miro.redirect + "?state=" + formEncode(marker) + "&code=%5Bcode%20redacted%5D", at: 1, status: 200))
        let all = s.allFindings().flatMap { $0 }
        #expect(all.isEmpty, "\(marker): \(all.rules)")
        #expect(s.verdicts.compactMap { $0 }.isEmpty)
        // The same replaced code twice is not a reuse; nor "never issued".
        var t = Scenario()
        t.add(S.token(S.codeParams(code: marker), style: .form, at: 0, response: S.tokens()))
        t.add(S.token(S.codeParams(code: marker), style: .form, at: 5, status: 400, response: S.miroError(400, "Invalid code")))
        let f = t.findings()
        #expect(f.rule("code-reused") == nil, "\(f.rules)")
        #expect(f.rule("code-unknown") == nil, "\(f.rules)")
        #expect(RedactedElsewhere.isMarker(marker))
    }

    @Test func markersAreNarrow() {
        #expect(RedactedElsewhere.isMarker("[state%20redacted]"))
        #expect(RedactedElsewhere.isMarker("[FILTERED]"))
        #expect(!RedactedElsewhere.isMarker(Miro.code))
        #expect(!RedactedElsewhere.isMarker("redacted.code.3f2a9c1b0d4e.43"))
        #expect(!RedactedElsewhere.isMarker("hidden-gem-app-0123"))
        #expect(!RedactedElsewhere.isMarker("st4te"))
        // Issue 25's fast answer (a digit or `.`, nothing percent-encoded) changes no verdict:
        // percent-encoded markers still decode first, digits and dots still make no marker.
        #expect(RedactedElsewhere.isMarker("%5Bredacted%5D"))
        #expect(RedactedElsewhere.isMarker("  ***  "))
        #expect(RedactedElsewhere.isMarker("<Hidden>"))
        #expect(RedactedElsewhere.isMarker("••••"))
        #expect(!RedactedElsewhere.isMarker("[redacted 2]"))
        #expect(!RedactedElsewhere.isMarker("redacted."))
        #expect(!RedactedElsewhere.isMarker("%5Bredacted%202%5D"))
        #expect(!RedactedElsewhere.isMarker("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"))
        // Issue 25b's fast answers: a long token of letters only (nothing to trim) and a digit or
        // `.` outside the `%XX` escapes are no marker; percent-encoded markers still are.
        #expect(!RedactedElsewhere.isMarker("eyJ" + String(repeating: "a", count: 700)))
        #expect(!RedactedElsewhere.isMarker(String(repeating: "r", count: 65)))
        #expect(!RedactedElsewhere.isMarker("http%3A%2F%2Flocalhost%3A3000%2Fcallback"))
        #expect(!RedactedElsewhere.isMarker("%5Bredacted%5D2"))
        #expect(!RedactedElsewhere.isMarker("%zz1"))
        #expect(!RedactedElsewhere.isMarker("[" + String(repeating: " ", count: 60) + "redacted]"))
        #expect(RedactedElsewhere.isMarker("%2A%2A%2A"))
        #expect(RedactedElsewhere.isMarker("%5BREDACTED%5D"))
        #expect(RedactedElsewhere.isMarker("    " + String(repeating: " ", count: 70) + "redacted"))
        // The redactor keeps them as they are: they hide nothing.
        #expect(Scenario.redactor.redactForm("code=REDACTED&client_secret=***") == "code=REDACTED&client_secret=***")
    }

    /// Requests the browser makes on its own are not API calls.
    @Test func faviconAndPreflightAreNotAPICalls() {
        var s = Scenario()
        s.add(S.http("GET", "https://api.miro.com/favicon.ico", at: 0, status: 401, responseBody: S.miroError(401, "No access token")))
        s.add(S.http("OPTIONS", "https://api.miro.com/v2/boards", at: 1,
                     headers: [HeaderField(name: "Access-Control-Request-Method", value: "GET")], status: 401,
                     responseBody: S.miroError(401, "No access token")))
        let all = s.allFindings().flatMap { $0 }
        #expect(all.isEmpty, "\(all.rules)")
        #expect(s.verdicts.compactMap { $0 }.isEmpty)
        #expect(s.diagnoser.oauthRole(of: s.exchanges[0]) == nil)
        #expect(s.diagnoser.timeline(s.stored).isEmpty)
    }

    /// An authorize request the provider answered with `error=` in the redirect: the provider's word
    /// is all there is.
    @Test func authorizeErrorInTheRedirect() throws {
        var s = Scenario()
        s.add(S.authorize(code: nil, error: "access_denied"))
        let v = try #require(s.verdict())
        #expect(v.step == "authorize")
        #expect(v.cause == "provider-error")
        #expect(v.confidence == .possible)
        #expect(v.summary.contains("access_denied"), "\(v.summary)")
    }

    /// The timeline says who answered a proxy-side failure.
    @Test func timelineNamesTheProxysAnswer() {
        var s = Scenario()
        s.add(proxyAnswered(S.token(S.codeParams(), style: .form, at: 5), status: 502,
                            error: "cannot connect to upstream api.miro.com:443: connection refused"))
        let step = s.diagnoser.timeline(s.stored).first
        #expect(step?.summary.contains("→ 502 from tokentap (cannot connect to upstream api.miro.com:443: connection refused)") == true,
                "\(step?.summary ?? "")")
    }

    // MARK: correct flows

    @Test(arguments: [("query", Style.query), ("form", Style.form)])
    func correctFlowsHaveNoVerdict(_ name: String, _ style: Style) {
        for s in [correctMiroFlow(style: style), correctGenericFlow(style: style)] {
            let host = s.exchanges[0].host
            for (i, f) in s.allFindings().enumerated() {
                #expect(f.alarms.isEmpty, "\(name) \(host) #\(i + 1): \(f.alarms.map(\.rule))")
            }
            let verdicts = s.verdicts.compactMap { $0 }
            #expect(verdicts.isEmpty, "\(name) \(host): \(verdicts.map(\.summary))")
            #expect(s.diagnoser.verdicts(s.stored).isEmpty)
        }
    }

    // MARK: the precedence function

    func finding(_ rule: String, _ severity: Severity = .error, _ confidence: Confidence = .certain,
                 evidence: [String] = []) -> Finding {
        Finding(rule: rule, severity: severity, confidence: confidence, exchange: 7, title: "The \(rule) title", evidence: evidence,
                fix: "fix \(rule)", reference: "RFC")
    }

    @Test func precedenceIsExplicit() {
        // A proxy-side failure beats everything.
        let proxyFindings: [Finding] = [finding("param-missing"), finding("upstream-unreachable"), finding("provider-error")]
        let proxy = Verdict.decide(proxyFindings)
        #expect(proxy?.cause.rule == "upstream-unreachable")
        #expect(proxy?.consequences.map(\.rule) == ["param-missing", "provider-error"])
        // An unreadable request explains what the server could not read, whatever the confidence.
        let bodyFindings: [Finding] = [finding("param-missing"), finding("param-missing"), finding("body-not-form-encoded", .error, .likely),
                                       finding("provider-error", .info)]
        let body = Verdict.decide(bodyFindings)
        #expect(body?.cause.rule == "body-not-form-encoded")
        #expect(body?.consequences.map(\.rule) == ["param-missing", "param-missing", "provider-error"])
        #expect(body?.alternatives.isEmpty == true)
        // An error beats a warning; the fallback loses to any request-side cause.
        let warned: [Finding] = [finding("params-in-query", .warning), finding("server-rejected-credentials", .error, .likely)]
        let errorFirst = Verdict.decide(warned)?.cause.rule
        #expect(errorFirst == "server-rejected-credentials")
        let twoFindings: [Finding] = [finding("redirect-uri-mismatch"), finding("credential-formatting"), finding("server-rejected-credentials")]
        let two = Verdict.decide(twoFindings)
        #expect(two?.cause.rule == "credential-formatting")
        #expect(two?.alternatives.map(\.rule) == ["redirect-uri-mismatch"])
        #expect(two?.consequences.map(\.rule) == ["server-rejected-credentials"])
        // The provider's message supports the cause it names (a tie otherwise broken by the list).
        let namedFindings: [Finding] = [finding("credential-formatting"), finding("redirect-uri-mismatch"),
                                        finding("provider-error", .info, evidence: ["HTTP 401", "message: \"Redirect URI mismatch.\""])]
        let named = Verdict.decide(namedFindings)
        #expect(named?.cause.rule == "redirect-uri-mismatch")
        #expect(named?.supportingMessage == "\"Redirect URI mismatch.\"")
        // Only info findings: no cause.
        let infoOnly: [Finding] = [finding("code-unknown", .info)]
        #expect(Verdict.decide(infoOnly) == nil)
        #expect(Verdict.tier(of: "upstream-timeout") == .proxy)
        #expect(Verdict.tier(of: "body-not-form-encoded") == .unreadable)
        #expect(Verdict.tier(of: "provider-error") == .fallback)
    }

    @Test func aVerdictIsOneSentenceWithoutSecrets() throws {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(secret: Miro.secret + "\n"), style: .form, at: 5, status: 401, response: S.miroError()))
        let v = try #require(s.verdict())
        #expect(v.cause == "credential-formatting")
        #expect(v.summary.hasSuffix("."))
        #expect(!v.summary.dropLast().contains(". "), "\(v.summary)")
        #expect(!v.summary.contains(Miro.secret))
        #expect(!v.fix.contains(Miro.secret))
        let data = try JSONEncoder().encode(v)
        let back = try JSONDecoder().decode(Verdict.self, from: data)
        #expect(back == v)
        #expect(String(decoding: data, as: UTF8.self).contains("\"consequences\""))
    }
}
