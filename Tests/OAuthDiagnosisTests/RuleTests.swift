import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

/// One positive and one negative case per rule of oauth-rules.md.
@Suite struct TokenShapeRuleTests {
    /// authorize, then the token exchange `e`; returns the exchange's findings.
    func exchange(_ e: Exchange, profiles: [ProviderProfile] = [.miro], authorize: Exchange? = S.authorize()) -> [Finding] {
        var s = Scenario()
        s.profiles = profiles
        if let authorize { s.add(authorize) }
        s.add(e)
        return s.findings()
    }
    func good(_ style: Style = .form) -> [Finding] { exchange(S.token(S.codeParams(), style: style, at: 5, response: S.tokens())) }
    let rejected = S.miroError(401, "Authorization failed")

    @Test func tokenEndpointWrong() {
        let f = exchange(S.token(S.codeParams(), style: .form, at: 5, status: 404, response: rejected, url: "https://miro.com/oauth/token"))
        #expect(f.rule("token-endpoint-wrong")?.severity == .error)
        #expect(f.evidenceContains("token-endpoint-wrong", "https://api.miro.com/v1/oauth/token"))
        let v2 = exchange(S.token(S.codeParams(), style: .form, at: 5, status: 404, response: rejected, url: "https://api.miro.com/v2/oauth/token"))
        #expect(v2.rule("token-endpoint-wrong") != nil)
        #expect(f.cause == "token-endpoint-wrong" && v2.cause == "token-endpoint-wrong")
        #expect(good().rule("token-endpoint-wrong") == nil)
    }

    @Test func tokenMethodNotPost() {
        let f = exchange(S.token(S.codeParams(), style: .query, at: 5, status: 405, response: rejected, method: "GET"))
        #expect(f.rule("token-method-not-post")?.severity == .error)
        #expect(f.cause == "token-method-not-post")
        #expect(good(.query).rule("token-method-not-post") == nil)
    }

    @Test func tokenOverPlainHTTPButNotLoopback() {
        let f = exchange(S.token(S.codeParams(), style: .form, at: 5, status: 400, response: rejected, url: "http://api.miro.com/v1/oauth/token"))
        #expect(f.rule("token-over-plain-http")?.severity == .error)
        #expect(f.cause == "token-over-plain-http")
        let local = exchange(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens(), url: "http://localhost:8080/realms/x/token"),
                             authorize: nil)
        #expect(local.rule("token-over-plain-http") == nil)
    }

    @Test func token307IsInfo() {
        let e = S.token(S.codeParams(), style: .form, at: 5, status: 307).withLocation("https://api.miro.com/v1/oauth/token/")
        #expect(exchange(e).rule("token-redirected")?.severity == .info)
        #expect(good().rule("token-redirected") == nil)
    }

    @Test(arguments: [("Authorization_Code", "wrong case"), ("authorisation_code", "misspelled"),
                      ("\"authorization_code\"", "quotes"), (" authorization_code", "whitespace")])
    func grantTypeInvalid(_ value: String, _ words: String) {
        let f = exchange(S.token(S.codeParams(grant: value), style: .form, at: 5, status: 400, response: rejected))
        #expect(f.rule("grant-type-invalid")?.severity == .error)
        #expect(f.rule("grant-type-invalid")?.title.contains(words) == true, "\(f.rule("grant-type-invalid")?.title ?? "")")
        #expect(f.rule("grant-type-invalid")?.fix.contains("authorization_code") == true)
        #expect(f.cause == "grant-type-invalid")
    }

    @Test func grantTypeMissing() {
        let f = exchange(S.token(S.codeParams().filter { $0.0 != "grant_type" }, style: .form, at: 5, status: 400, response: rejected))
        #expect(f.rule("grant-type-invalid")?.title.contains("no grant_type") == true)
        #expect(f.cause == "grant-type-invalid")
        #expect(good().rule("grant-type-invalid") == nil)
    }

    @Test func slackAndGitHubNeedNoGrantType() {
        for url in ["https://slack.com/api/oauth.v2.access", "https://github.com/login/oauth/access_token"] {
            var s = Scenario()
            s.add(S.token(S.codeParams().filter { $0.0 != "grant_type" }, style: .form, at: 0, response: S.tokens(), url: url))
            #expect(s.findings().alarms.isEmpty, "\(url): \(s.findings().alarms.map(\.rule))")
            var failed = Scenario()
            failed.add(S.token(S.codeParams().filter { $0.0 != "grant_type" }, style: .form, at: 0, status: 200,
                               response: json(["ok": false, "error": "invalid_client"]), url: url))
            let f = failed.findings()
            #expect(f.rule("grant-type-invalid")?.confidence == .possible)
            #expect(f.rule("server-rejected-credentials") != nil)
            #expect(failed.verdict()?.cause == "server-rejected-credentials")
            #expect(failed.verdict()?.alternatives == ["grant-type-invalid"])
        }
    }

    @Test func paramMissing() {
        let f = exchange(S.token(S.codeParams().filter { $0.0 != "client_secret" }, style: .form, at: 5, status: 401, response: rejected))
        #expect(f.rule("param-missing")?.severity == .error)
        #expect(f.rule("param-missing")?.title.contains("client_secret") == true)
        #expect(f.cause == "param-missing")
        #expect(f.rule("server-rejected-credentials") == nil)
        // A public client with PKCE at a generic provider needs no secret.
        var s = Scenario()
        s.add(S.token([("grant_type", "authorization_code"), ("client_id", "app1"), ("code", Miro.code),
                       ("code_verifier", rfcVerifier)], style: .form, at: 5, response: S.tokens(), url: "https://idp.example.com/oauth2/token"))
        #expect(s.findings().rule("param-missing") == nil)
    }

    @Test func paramConflict() {
        var e = S.token(S.codeParams(), style: .form, at: 5, status: 401, response: rejected)
        e.target += "?client_id=3074457363680409999"
        let f = exchange(e)
        #expect(f.rule("param-conflict")?.severity == .error)
        #expect(f.cause == "param-conflict")
        #expect(f.evidenceContains("param-conflict", "client_id in query: \"3074457363680409999\""))
        #expect(good(.basic(clientIDInBody: true)).rule("param-conflict") == nil)
    }

    @Test func paramsInQueryAndSplitByProfile() {
        #expect(good(.query).rule("params-in-query")?.severity == .info)
        var e = S.token(S.codeParams().filter { $0.0 != "grant_type" }, style: .form, at: 5, response: S.tokens())
        e.target += "?grant_type=authorization_code"
        #expect(exchange(e).rule("param-split")?.severity == .info)
        var g = S.token(S.codeParams().filter { $0.0 != "grant_type" }, style: .form, at: 5, status: 400,
                        response: json(["error": "invalid_client"]), url: "https://idp.example.com/oauth/token")
        g.target += "?grant_type=authorization_code"
        #expect(exchange(g, authorize: nil).rule("param-split")?.severity == .warning)
        #expect(good(.form).rule("params-in-query") == nil)
        #expect(good(.form).rule("param-split") == nil)
    }

    @Test func genericLearnsFromTheSession() {
        var s = Scenario()
        let url = "https://idp.example.com/oauth/token"
        s.add(S.token(S.codeParams(), style: .json, at: 0, response: S.tokens(), url: url))
        s.add(S.token(S.codeParams(code: Miro.code2), style: .json, at: 60, status: 400, response: json(["error": "invalid_grant"]), url: url))
        let f = s.findings()
        #expect(f.rule("body-not-form-encoded")?.severity == .info)
        #expect(f.evidenceContains("body-not-form-encoded", "accepted a json body earlier"))
        // The same client's credentials worked: the code it never saw issued is the likely cause.
        #expect(s.verdict()?.cause == "code-unknown")
        // Without the earlier success it is the cause.
        var first = Scenario()
        first.add(s.exchanges[1])
        #expect(first.findings().rule("body-not-form-encoded")?.severity == .error)
        #expect(first.verdict()?.cause == "body-not-form-encoded")
    }

    @Test func contentTypeMismatch() {
        var e = S.token(S.codeParams(), style: .form, at: 5, status: 400, response: rejected)
        e.request.headers = e.request.headers.map { $0.name == "Content-Type" ? HeaderField(name: "Content-Type", value: "application/json") : $0 }
        let f = exchange(e)
        #expect(f.rule("content-type-mismatch")?.severity == .error)
        #expect(f.evidenceContains("content-type-mismatch", "application/json"))
        #expect(f.cause == "content-type-mismatch")
        var noCT = S.token(S.codeParams(), style: .form, at: 5, status: 400, response: rejected)
        noCT.request.headers.removeAll { $0.name == "Content-Type" }
        #expect(exchange(noCT).rule("content-type-mismatch")?.severity == .warning)
        #expect(good().rule("content-type-mismatch") == nil)
        #expect(good(.query).rule("content-type-mismatch") == nil)
    }

    static let badBasicHeaders: [(String, String)] = {
        let pair = "\(Miro.clientID):\(Miro.secret)"
        let urlAlphabet = Data((pair + "???").utf8).base64EncodedString().replacingOccurrences(of: "/", with: "_")
        let noColon = Data((Miro.clientID + Miro.secret).utf8).base64EncodedString()
        let unpadded = Data((pair + "x").utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let noScheme = Data(pair.utf8).base64EncodedString()
        return [("Bearer " + Miro.access, "Bearer"), ("Basic " + urlAlphabet, "base64url"), ("Basic " + noColon, "no `:`"),
                ("Basic " + unpadded, "padding"), (noScheme, "no `Basic` scheme")]
    }()

    @Test(arguments: badBasicHeaders)
    func basicAuthMalformed(_ header: String, _ words: String) {
        let f = exchange(S.token(S.codeParams().filter { $0.0 != "client_secret" && $0.0 != "client_id" }, style: .form, at: 5,
                                 status: 401, response: rejected, headers: [HeaderField(name: "Authorization", value: header)]))
        let b = f.rule("basic-auth-malformed")
        #expect(b?.severity == .error)
        #expect(b.map { ($0.evidence + [$0.title]).contains { $0.contains(words) } } == true, "\(b?.evidence ?? [])")
        #expect(f.cause == "basic-auth-malformed", "\(f.rules)")
        #expect(!f.flatMap(\.evidence).contains { $0.contains(Miro.secret) || $0.contains(Miro.access) })
    }

    @Test func basicAuthWellFormed() {
        #expect(good(.basic(clientIDInBody: false)).rule("basic-auth-malformed") == nil)
    }

    @Test func clientCredentialsSwapped() {
        let f = exchange(S.token(S.codeParams(clientID: Miro.secret, secret: Miro.clientID), style: .form, at: 5, status: 401, response: rejected))
        let r = f.rule("client-credentials-swapped")
        #expect(r?.severity == .error)
        #expect(r?.confidence == .certain) // the secret equals the authorize request's client_id
        #expect(f.cause == "client-credentials-swapped")
        #expect(f.rule("client-id-mismatch") == nil)
        let noAuth = exchange(S.token(S.codeParams(clientID: Miro.secret, secret: Miro.clientID), style: .form, at: 5, status: 401, response: rejected),
                              authorize: nil)
        #expect(noAuth.rule("client-credentials-swapped")?.confidence == .likely)
        #expect(!noAuth.flatMap(\.evidence).contains { $0.contains(Miro.secret) })
        #expect(good().rule("client-credentials-swapped") == nil)
    }

    @Test func jsonNumberClientIDKeepsItsDigits() {
        var e = S.token([], style: .form, at: 5, status: 400, response: rejected)
        e.request.body = Data(#"{"grant_type":"authorization_code","client_id":3074457363680401096,"client_secret":"x","code":"\#(Miro.code)","redirect_uri":"\#(Miro.redirect)"}"#.utf8)
        e.request.headers = [HeaderField(name: "Content-Type", value: "application/json")]
        let f = exchange(e)
        #expect(f.rule("body-not-form-encoded") != nil)
        #expect(f.rule("client-id-mismatch") == nil)
        #expect(f.cause == "body-not-form-encoded")
    }

    @Test func clientIDMismatch() {
        let f = exchange(S.token(S.codeParams(clientID: "3074457363680409999"), style: .form, at: 5, status: 401, response: rejected))
        #expect(f.rule("client-id-mismatch")?.severity == .error)
        #expect(f.rule("client-id-mismatch")?.confidence == .certain)
        #expect(f.evidenceContains("client-id-mismatch", "3074457363680409999"))
        #expect(f.cause == "client-id-mismatch")
        #expect(good().rule("client-id-mismatch") == nil)
    }

    @Test(arguments: [("\"" + Miro.clientID + "\"", "quotes"), ("YOUR_CLIENT_ID", "template")])
    func credentialFormatting(_ clientID: String, _ words: String) {
        let f = exchange(S.token(S.codeParams(clientID: clientID), style: .form, at: 5, status: 401, response: rejected))
        #expect(f.rule("credential-formatting")?.severity == .error)
        #expect(f.rule("credential-formatting")?.title.contains(words) == true)
        #expect(f.cause == "credential-formatting")
        #expect(good().rule("credential-formatting") == nil)
    }

    @Test func extraParamsByProfile() {
        let miro = exchange(S.token(S.codeParams() + [("scope", "boards:read"), ("state", "x")], style: .form, at: 5, response: S.tokens()))
        #expect(miro.rule("extra-params")?.severity == .info)
        var s = Scenario()
        s.add(S.token(S.codeParams() + [("code_challenge", rfcChallenge)], style: .form, at: 5, status: 400,
                      response: json(["error": "invalid_request"]), url: "https://idp.example.com/token"))
        #expect(s.findings().rule("extra-params")?.severity == .warning)
        #expect(s.verdict()?.cause == "provider-error")
        #expect(s.verdict()?.alternatives == ["extra-params"])
        #expect(good().rule("extra-params") == nil)
    }

    @Test func serverRejectedCredentials() {
        let f = exchange(S.token(S.codeParams(secret: Miro.otherSecret), style: .form, at: 5, status: 401, response: rejected))
        let r = f.rule("server-rejected-credentials")
        #expect(r?.severity == .error && r?.confidence == .likely)
        #expect(f.alarms.map(\.rule) == ["server-rejected-credentials"])
        #expect(f.cause == "server-rejected-credentials")
        // Certain when the same client_id succeeded with another secret.
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        s.add(S.authorize(at: 100, code: Miro.code2))
        s.add(S.token(S.codeParams(code: Miro.code2, secret: Miro.otherSecret), style: .form, at: 105, status: 401, response: rejected))
        #expect(s.findings().rule("server-rejected-credentials")?.confidence == .certain)
        #expect(s.verdict()?.cause == "server-rejected-credentials")
        #expect(s.verdict()?.confidence == .certain)
        #expect(good().rule("server-rejected-credentials") == nil)
    }

    @Test func proxyAnsweredFailuresAreNotTheProvider() {
        var e = S.token(S.codeParams(), style: .form, at: 5, status: 502)
        e.error = "upstream api.miro.com:443 refused the connection"
        e.errorKind = .connect
        let f = exchange(e)
        #expect(f.rule("provider-error") == nil)
        #expect(f.rule("server-rejected-credentials") == nil)
        #expect(f.rules == ["upstream-unreachable"])
        #expect(f.cause == "upstream-unreachable")
        // The typed kind decides, not the words: the same text without a kind is the provider's answer.
        e.errorKind = nil
        #expect(exchange(e).rule("upstream-unreachable") == nil)
        for (kind, rule) in [(ErrorKind.tls, "upstream-tls-failed"), (.timeout, "upstream-timeout"), (.truncated, "upstream-response-invalid"),
                             (.malformed, "upstream-response-invalid")] {
            e.errorKind = kind
            e.error = "whatever the proxy said"
            #expect(exchange(e).rules == [rule])
        }
    }

    @Test func providerErrorEnvelopes() {
        let f = exchange(S.token(S.codeParams(secret: Miro.otherSecret), style: .form, at: 5, status: 401, response: rejected))
        #expect(f.evidenceContains("provider-error", "code: \"oauthError\""))
        #expect(f.evidenceContains("provider-error", "message: \"Authorization failed\""))
        // Slack: HTTP 200 with ok:false.
        var slack = Scenario()
        slack.add(S.token(S.codeParams(), style: .form, at: 0, status: 200, response: json(["ok": false, "error": "invalid_code"]),
                          url: "https://slack.com/api/oauth.v2.access"))
        let sf = slack.findings()
        #expect(sf.evidenceContains("provider-error", "error: \"invalid_code\""))
        // The provider names the code, never seen issued: it, not the credentials, leads.
        #expect(slack.verdict()?.cause == "code-unknown")
        #expect(slack.verdict()?.confidence == .possible)
        #expect(slack.verdict()?.consequences.contains("server-rejected-credentials") == true)
        // GitHub: form-encoded error with HTTP 200.
        var gh = Scenario()
        var e = S.token(S.codeParams(), style: .form, at: 0, status: 200, url: "https://github.com/login/oauth/access_token")
        e.response.body = Data("error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.".utf8)
        gh.add(e)
        #expect(gh.findings().evidenceContains("provider-error", "bad_verification_code"))
        #expect(good().rule("provider-error") == nil)
    }
}

@Suite struct CodeAndRedirectRuleTests {
    @Test func redirectURIMissing() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(redirectURI: nil), style: .form, at: 5, status: 401, response: S.miroError()))
        #expect(s.findings().rule("redirect-uri-missing")?.severity == .error)
        #expect(s.verdict()?.cause == "redirect-uri-missing")
        // Generic provider whose authorize request had no redirect_uri: not required.
        var g = Scenario()
        g.add(S.token(S.codeParams(redirectURI: nil), style: .form, at: 5, response: S.tokens(), url: "https://idp.example.com/token"))
        #expect(g.findings().rule("redirect-uri-missing") == nil)
    }

    @Test func redirectURIMismatchNamesTheDifference() {
        var s = Scenario()
        s.add(S.authorize(redirectURI: "http://localhost:3000/cb"))
        s.add(S.token(S.codeParams(redirectURI: "http://127.0.0.1:3000/cb"), style: .form, at: 5, status: 401, response: S.miroError()))
        #expect(s.findings().rule("redirect-uri-mismatch")?.title.contains("localhost vs 127.0.0.1") == true)
        #expect(s.verdict()?.cause == "redirect-uri-mismatch")
        var q = Scenario()
        q.add(S.authorize())
        q.add(S.token(S.codeParams(redirectURI: Miro.redirect + "?code=x"), style: .form, at: 5, status: 401, response: S.miroError()))
        #expect(q.findings().rule("redirect-uri-mismatch")?.title.contains("added query") == true)
    }

    @Test func redirectURIMismatchLearnedFromAnEarlierSuccess() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), style: .form, at: 0, response: S.tokens()))
        s.add(S.token(S.codeParams(code: Miro.code2, redirectURI: Miro.redirect + "/"), style: .form, at: 60, status: 401,
                      response: S.miroError(401, "Redirect URI mismatch.")))
        let f = s.findings()
        #expect(f.rule("redirect-uri-mismatch")?.confidence == .likely)
        #expect(f.rule("redirect-uri-mismatch")?.title.contains("trailing slash added") == true)
        #expect(s.verdict()?.cause == "redirect-uri-mismatch")
        var ok = Scenario()
        ok.add(S.token(S.codeParams(), style: .form, at: 0, response: S.tokens()))
        ok.add(S.token(S.codeParams(code: Miro.code2), style: .form, at: 60, status: 401, response: S.miroError()))
        #expect(ok.findings().rule("redirect-uri-mismatch") == nil)
    }

    @Test func failedAuthorizeWithAnotherRedirectURI() {
        var s = Scenario()
        s.add(S.authorize())
        var bad = S.authorize(at: 60, redirectURI: Miro.redirect + "/", code: nil, redirectState: .some(nil)).droppingResponse()
        bad.status = 400
        bad.response.body = S.miroError(400, "Redirect URI mismatch.")
        s.add(bad)
        let f = s.findings()
        #expect(f.rule("redirect-uri-mismatch")?.severity == .error)
        #expect(f.rule("provider-error")?.severity == .info)
        #expect(s.verdict()?.cause == "redirect-uri-mismatch")
        #expect(s.verdict()?.step == "authorize")
        var first = Scenario()
        first.add(bad)
        #expect(first.findings().rule("redirect-uri-mismatch") == nil)
        #expect(first.findings().rule("provider-error")?.severity == .error)
        // Only the provider's word: its message is the cause, and only possibly right.
        #expect(first.verdict()?.cause == "provider-error")
        #expect(first.verdict()?.confidence == .possible)
    }

    @Test func codeExpired() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 664, status: 400, response: S.miroError(400, "Invalid code")))
        let f = s.findings()
        #expect(f.rule("code-expired")?.severity == .error)
        #expect(f.evidenceContains("code-expired", "code used 11m 04s after issue"))
        #expect(f.rule("server-rejected-credentials") == nil)
        #expect(s.verdict()?.cause == "code-expired")
        var ok = Scenario()
        ok.add(S.authorize())
        ok.add(S.token(S.codeParams(), style: .form, at: 540, status: 400, response: S.miroError(400, "Invalid code")))
        #expect(ok.findings().rule("code-expired") == nil)
    }

    @Test func sandboxClockAdvanceCounts() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.http("POST", "https://api.miro.com/__sandbox/advance?seconds=660", at: 2, status: 200,
                     responseBody: json(["advanced": 660, "now": 1_750_000_662])))
        s.add(S.token(S.codeParams(), style: .form, at: 4, status: 400, response: S.miroError(400, "Invalid code")))
        let f = s.findings()
        #expect(f.rule("code-expired")?.severity == .error)
        #expect(f.evidenceContains("code-expired", "11m 04s"))
        #expect(s.verdict()?.cause == "code-expired")
        #expect(s.findings(at: 1).isEmpty)
        #expect(s.diagnoser.timeline(s.stored).map(\.step) == ["authorize", "redirect", "test clock", "token exchange"])
        #expect(s.diagnoser.timeline(s.stored).last?.summary.contains("code used 11m 04s after issue") == true)
        // An advance that failed moves nothing.
        var ok = s
        ok.exchanges[1].status = 400
        #expect(ok.findings().rule("code-expired") == nil)
    }

    @Test func codeMangledPlusAsSpace() {
        let issued = Miro.prefix + "ab+cdEFghIJklMNopQRst"
        var s = Scenario()
        s.add(S.authorize(code: issued))
        s.add(S.token(S.codeParams(code: issued.replacingOccurrences(of: "+", with: " ")), style: .form, at: 5, status: 400, response: S.miroError()))
        #expect(s.findings().rule("code-mangled")?.title.contains("`+`") == true)
        #expect(s.verdict()?.cause == "code-mangled")
    }

    @Test func codeUnknownIsInfoAndLowersTheFallback() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), style: .form, at: 5, status: 400, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("code-unknown")?.severity == .info)
        #expect(f.rule("server-rejected-credentials")?.confidence == .possible)
        #expect(s.verdict()?.cause == "server-rejected-credentials")
        #expect(s.verdict()?.confidence == .possible)
        var ok = Scenario()
        ok.add(S.authorize())
        ok.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        #expect(ok.findings().rule("code-unknown") == nil)
    }

    @Test func callbackThroughTheProxyIssuesTheCode() {
        var s = Scenario()
        s.add(S.authorize(code: nil, redirectState: .some(nil)).droppingResponse())
        s.add(S.http("GET", "http://localhost:3000/cb?code=\(formEncode(Miro.code))&state=st4te", at: 3, status: 200))
        s.add(S.token(S.codeParams(redirectURI: Miro.redirect), style: .form, at: 700, status: 400, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("code-expired") != nil)
        #expect(f.rule("code-unknown") == nil)
        #expect(s.verdict()?.cause == "code-expired")
    }

    @Test func stateMismatch() {
        var s = Scenario()
        s.add(S.authorize(state: "s1", redirectState: .some("s2")))
        #expect(s.findings().rule("state-mismatch")?.severity == .error)
        #expect(s.verdict()?.cause == "state-mismatch")
        var missing = Scenario()
        missing.add(S.authorize(state: "s1", redirectState: .some(nil)))
        #expect(missing.findings().rule("state-mismatch")?.title.contains("no state") == true)
        #expect(missing.verdict()?.cause == "state-mismatch")
        // Two logins in flight: the callback answers the older one.
        var two = Scenario()
        two.add(S.authorize(state: "s1", code: nil, redirectState: .some(nil)).droppingResponse())
        two.add(S.authorize(at: 2, state: "s2", code: nil, redirectState: .some(nil)).droppingResponse())
        two.add(S.http("GET", "http://localhost:3000/cb?code=abc&state=s1", at: 4, status: 200))
        #expect(two.findings().rule("state-mismatch")?.severity == .warning)
        var ok = Scenario()
        ok.add(S.authorize())
        #expect(ok.findings().isEmpty)
    }

    @Test func loopbackRedirectPort() {
        var s = Scenario()
        s.add(S.authorize(redirectURI: "http://127.0.0.1:5000/cb", host: "idp.example.com", path: "/authorize"))
        var bad = S.authorize(at: 600, redirectURI: "http://127.0.0.1:5001/cb", code: nil, redirectState: .some(nil),
                              host: "idp.example.com", path: "/authorize").droppingResponse()
        bad.status = 400
        bad.response.body = json(["error": "invalid_request", "error_description": "redirect_uri mismatch"])
        s.add(bad)
        #expect(s.findings().rule("loopback-redirect-port")?.severity == .error)
        #expect(s.verdict()?.cause == "loopback-redirect-port")
        var ok = Scenario()
        ok.add(S.authorize(redirectURI: "http://127.0.0.1:5000/cb", host: "idp.example.com", path: "/authorize"))
        var same = bad
        same.target = same.target.replacingOccurrences(of: "5001", with: "5000")
        ok.add(same)
        #expect(ok.findings().rule("loopback-redirect-port") == nil)
    }

    @Test func pkceMissingAndInvalid() {
        let auth = S.authorize(clientID: "app1", extra: [("code_challenge", rfcChallenge), ("code_challenge_method", "S256")],
                               host: "idp.example.com", path: "/authorize")
        let base: [(String, String)] = [("grant_type", "authorization_code"), ("client_id", "app1"), ("code", Miro.code), ("redirect_uri", Miro.redirect)]
        var s = Scenario()
        s.add(auth)
        s.add(S.token(base, style: .form, at: 5, status: 400, response: json(["error": "invalid_grant"]), url: "https://idp.example.com/token"))
        #expect(s.findings().rule("pkce-verifier-missing")?.severity == .error)
        #expect(s.verdict()?.cause == "pkce-verifier-missing")
        var inv = Scenario()
        inv.add(auth)
        inv.add(S.token(base + [("code_verifier", "abc+/=")], style: .form, at: 5, status: 400, response: json(["error": "invalid_grant"]),
                        url: "https://idp.example.com/token"))
        let f = inv.findings()
        #expect(f.rule("pkce-verifier-invalid")?.severity == .error)
        #expect(f.evidenceContains("pkce-verifier-invalid", "standard base64"))
        #expect(inv.verdict()?.cause == "pkce-verifier-invalid")
        var ok = Scenario()
        ok.add(auth)
        ok.add(S.token(base + [("code_verifier", rfcVerifier)], style: .form, at: 5, response: S.tokens(), url: "https://idp.example.com/token"))
        #expect(ok.findings().filter { $0.rule.hasPrefix("pkce") }.isEmpty)
    }
}

@Suite struct TokenLifecycleRuleTests {
    @Test func refreshTokenExpired() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(), style: .form, at: 61 * 86_400, status: 401, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("refresh-token-expired")?.severity == .error)
        #expect(f.evidenceContains("refresh-token-expired", "60d"))
        #expect(s.verdict()?.cause == "refresh-token-expired")
        var ok = Scenario()
        ok.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        ok.add(S.token(S.refreshParams(), style: .form, at: 59 * 86_400, response: S.tokens(Miro.access2, Miro.refresh2)))
        #expect(ok.findings().alarms.isEmpty)
    }

    @Test func refreshTokenClientMismatch() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(clientID: "3074457363680409999"), style: .form, at: 100, status: 401, response: S.miroError()))
        #expect(s.findings().rule("refresh-token-client-mismatch")?.severity == .error)
        #expect(s.verdict()?.cause == "refresh-token-client-mismatch")
        var ok = Scenario()
        ok.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        ok.add(S.token(S.refreshParams(), style: .form, at: 100, response: S.tokens(Miro.access2, Miro.refresh2)))
        #expect(ok.findings().rule("refresh-token-client-mismatch") == nil)
    }

    @Test func accessTokenSuperseded() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(), style: .form, at: 1800, response: S.tokens(Miro.access2, Miro.refresh2)))
        s.add(S.api(bearer: Miro.access, at: 1900, status: 401))
        let f = s.findings()
        #expect(f.rule("access-token-superseded")?.severity == .error)
        #expect(f.rule("access-token-superseded")?.confidence == .certain)
        #expect(f.rule("access-token-expired") == nil)
        #expect(s.verdict()?.cause == "access-token-superseded")
        var ok = s
        ok.exchanges[2] = S.api(bearer: Miro.access2, at: 1900, status: 200)
        #expect(ok.findings().isEmpty)
    }

    @Test func accessTokenMissing() {
        var s = Scenario()
        s.add(S.api(bearer: nil, at: 0, status: 401))
        #expect(s.findings().rule("access-token-missing")?.severity == .error)
        #expect(s.verdict()?.cause == "access-token-missing")
        var q = Scenario()
        q.add(S.api(bearer: nil, authorization: "Bearer \"\(Miro.access)\"", at: 0, status: 401))
        let f = q.findings()
        #expect(f.rule("access-token-missing")?.title.contains("quotes") == true)
        #expect(q.verdict()?.cause == "access-token-missing")
        #expect(!f.flatMap(\.evidence).contains { $0.contains(Miro.access) })
        var ok = Scenario()
        ok.add(S.api(bearer: Miro.access, at: 0, status: 200))
        #expect(ok.findings().isEmpty)
        var browser = Scenario()
        var page = S.api(bearer: nil, at: 0, status: 401)
        page.request.headers.append(HeaderField(name: "Cookie", value: "session=abc"))
        browser.add(page)
        #expect(browser.findings().isEmpty)
    }

    @Test func apiWrongHost() {
        var s = Scenario()
        s.add(S.api(bearer: Miro.access, at: 0).retargeted("https://miro.com/v2/boards", status: 404))
        #expect(s.findings().rule("api-wrong-host")?.severity == .error)
        #expect(s.findings().evidenceContains("api-wrong-host", "api.miro.com"))
        #expect(s.verdict()?.cause == "api-wrong-host")
        var ok = Scenario()
        ok.add(S.api(bearer: Miro.access, at: 0))
        #expect(ok.findings().rule("api-wrong-host") == nil)
    }

    @Test func tokenTypeConfusionAcrossRoles() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(Miro.access), style: .form, at: 100, status: 401, response: S.miroError()))
        #expect(s.findings().rule("token-type-confusion")?.title.contains("access token") == true)
        #expect(s.verdict()?.cause == "token-type-confusion")
        var b = Scenario()
        b.add(S.authorize())
        b.add(S.api(bearer: Miro.code, at: 5, status: 401))
        #expect(b.findings().rule("token-type-confusion")?.title.contains("code") == true)
        #expect(b.verdict()?.cause == "token-type-confusion")
        var ok = Scenario()
        ok.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        ok.add(S.api(bearer: Miro.access, at: 5))
        #expect(ok.findings().rule("token-type-confusion") == nil)
    }

    @Test func scopeMismatch() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens(scope: "boards:read")))
        s.add(S.api("POST", bearer: Miro.access, at: 10, status: 403))
        let f = s.findings()
        #expect(f.rule("scope-mismatch")?.severity == .error)
        #expect(f.evidenceContains("scope-mismatch", "boards:write"))
        #expect(s.verdict()?.cause == "scope-mismatch")
        var ok = Scenario()
        ok.add(S.token(S.codeParams(), at: 0, response: S.tokens(scope: "boards:read boards:write")))
        ok.add(S.api("POST", bearer: Miro.access, at: 10, status: 403))
        #expect(ok.findings().rule("scope-mismatch") == nil)
    }

    @Test func grantedNarrowerThanAsked() {
        func run(asked: String, granted: String) -> [Finding] {
            var s = Scenario()
            s.add(S.authorize(clientID: "app1", extra: [("scope", asked)], host: "idp.example.com", path: "/authorize"))
            s.add(S.token([("grant_type", "authorization_code"), ("client_id", "app1"), ("client_secret", "s3cr3t-value"),
                           ("code", Miro.code), ("redirect_uri", Miro.redirect)], style: .form, at: 5,
                          response: S.tokens(scope: granted), url: "https://idp.example.com/token"))
            return s.findings()
        }
        #expect(run(asked: "read write", granted: "read").rule("scope-mismatch")?.severity == .warning)
        #expect(run(asked: "read write", granted: "write read").rule("scope-mismatch") == nil)
        #expect(run(asked: "email", granted: "https://www.googleapis.com/auth/userinfo.email").alarms.isEmpty)
    }

    @Test func rateLimited() {
        var s = Scenario()
        let reset = Int(S.t0.timeIntervalSince1970) + 42
        s.add(S.api(bearer: Miro.access, at: 0, status: 429,
                    responseHeaders: [HeaderField(name: "X-RateLimit-Limit", value: "100000"),
                                      HeaderField(name: "X-RateLimit-Remaining", value: "0"),
                                      HeaderField(name: "X-RateLimit-Reset", value: String(reset))],
                    body: json(["status": 429, "code": "tooManyRequests", "message": "Too many requests", "type": "error"])))
        let f = s.findings()
        #expect(f.first?.rule == "rate-limited")
        #expect(f.evidenceContains("rate-limited", "X-RateLimit-Remaining: 0"))
        #expect(f.evidenceContains("rate-limited", "42s after this request"))
        #expect(s.verdict()?.cause == "rate-limited")
        var ok = Scenario()
        ok.add(S.api(bearer: Miro.access, at: 0))
        #expect(ok.findings().rule("rate-limited") == nil)
    }

    @Test func clientTLSUntrusted() {
        var s = Scenario()
        s.add(Exchange(session: "t", kind: .tlsError, started: S.t0, host: "api.miro.com", method: "", target: "",
                       error: "client handshake failed: alert unknown_ca", errorKind: .tls))
        let f = s.findings()
        #expect(f.rule("client-tls-untrusted")?.severity == .error)
        #expect(f.rule("client-tls-untrusted")?.confidence == .certain)
        #expect(s.verdict()?.cause == "client-tls-untrusted")
        #expect(s.verdict()?.step == "tls error")
        var proxyWording = Scenario()
        proxyWording.add(Exchange(session: "t", kind: .tlsError, started: S.t0, host: "api.miro.com", method: "", target: "",
                                  error: "client 127.0.0.1:5555 closed the connection during the TLS handshake", errorKind: .truncated))
        // A client that hung up during the handshake: likely, not certain (the kind says so, not the words).
        #expect(proxyWording.findings().rule("client-tls-untrusted")?.confidence == .likely)
        var up = Scenario()
        up.add(Exchange(session: "t", kind: .tlsError, started: S.t0, host: "api.miro.com", method: "", target: "",
                        error: "client sent bytes that are not a TLS handshake", errorKind: .malformed))
        #expect(up.findings().isEmpty)
    }

    @Test func jwtClockSkew() {
        func jwt(_ claims: [String: Any]) -> String {
            func b64(_ d: Data) -> String {
                d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            }
            return b64(json(["alg": "RS256"])) + "." + b64(json(claims)) + ".c2ln"
        }
        let now = S.t0.timeIntervalSince1970
        func run(_ claims: [String: Any], status: Int) -> [Finding] {
            var s = Scenario()
            var e = S.token([("grant_type", "client_credentials"),
                             ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                             ("client_assertion", jwt(claims))], style: .form, at: 0, status: status,
                            response: status == 200 ? S.tokens() : json(["error": "invalid_client"]), url: "https://idp.example.com/token")
            e.response.headers.append(HeaderField(name: "Date", value: "Sun, 15 Jun 2025 15:06:40 GMT")) // == t0
            s.add(e)
            return s.findings()
        }
        let bad = run(["iat": now - 900, "exp": now - 600], status: 401)
        #expect(bad.rule("jwt-clock-skew")?.severity == .error)
        #expect(bad.evidenceContains("jwt-clock-skew", "exp is 10m 00s before the response Date"))
        #expect(bad.cause == "jwt-clock-skew")
        #expect(run(["iat": now - 5, "exp": now + 300], status: 200).rule("jwt-clock-skew") == nil)
    }
}

extension Exchange {
    /// The authorize request without its redirect (the browser did not go through the proxy for it).
    func droppingResponse() -> Exchange {
        var e = self
        e.status = 200
        e.response = MessageRecord()
        return e
    }
    func retargeted(_ url: String, status: Int) -> Exchange {
        let u = URLComponents(string: url)!
        var e = self
        e.host = u.host!
        e.target = u.percentEncodedPath
        e.status = status
        return e
    }
}
