import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

/// RFC 7636 Appendix B.
let rfcVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
let rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

/// The real failures listed at the end of oauth-rules.md, each next to its correct variant.
@Suite struct RealFailureTests {
    func basicHeader(_ plain: String) -> HeaderField {
        HeaderField(name: "Authorization", value: "Basic " + Data(plain.utf8).base64EncodedString())
    }
    let bodyParams: [(String, String)] = [("grant_type", "authorization_code"), ("code", Miro.code), ("redirect_uri", Miro.redirect)]

    // 1
    @Test func echoBase64NewlineInBasic() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(bodyParams, style: .form, at: 5, status: 401, response: S.miroError(),
                      headers: [basicHeader("\(Miro.clientID):\(Miro.secret)\n")]))
        let f = s.findings()
        let b = f.rule("basic-auth-malformed")
        #expect(b?.severity == .error)
        #expect(b?.confidence == .certain)
        #expect(f.evidenceContains("basic-auth-malformed", "\(Miro.clientID):<client_secret redacted.client_secret."))
        #expect(f.evidenceContains("basic-auth-malformed", "newline"))
        #expect(f.rule("server-rejected-credentials") == nil)
        #expect(!f.flatMap(\.evidence).contains { $0.contains(Miro.secret) })
        #expect(s.verdict()?.cause == "basic-auth-malformed")

        var ok = Scenario()
        ok.add(S.authorize())
        ok.add(S.token(bodyParams, style: .form, at: 5, response: S.tokens(), headers: [basicHeader("\(Miro.clientID):\(Miro.secret)")]))
        #expect(ok.verdict() == nil)
        #expect(ok.findings().rule("basic-auth-malformed") == nil)
        #expect(ok.findings().alarms.isEmpty)
    }

    @Test func encodebytesNewlineAfterBase64() {
        var s = Scenario()
        let v = "Basic " + Data("\(Miro.clientID):\(Miro.secret)".utf8).base64EncodedString() + "\n"
        s.add(S.token(bodyParams, style: .form, at: 5, status: 401, response: S.miroError(),
                      headers: [HeaderField(name: "Authorization", value: v)]))
        let b = s.findings().rule("basic-auth-malformed")
        #expect(b?.severity == .error)
        #expect(b?.evidence.contains { $0.contains("ends with \"\\n\"") } == true)
        #expect(s.verdict()?.cause == "basic-auth-malformed")
    }

    // 2
    @Test func doubleCallbackReusesTheCode() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5.000, response: S.tokens()))
        s.add(S.token(S.codeParams(), style: .form, at: 5.040, status: 400, response: S.miroError(400, "Invalid authorization code")))
        let first = s.findings(at: 1)
        #expect(first.rule("code-reused") == nil)
        #expect(first.alarms.isEmpty)
        let second = s.findings(at: 2)
        let r = second.rule("code-reused")
        #expect(r?.severity == .error && r?.confidence == .certain)
        #expect(second.evidenceContains("code-reused", "#2"))
        #expect(second.evidenceContains("code-reused", "40 ms earlier"))
        #expect(second.first?.rule == "code-reused")
        #expect(second.rule("server-rejected-credentials") == nil)
        #expect(s.verdict(at: 1) == nil)
        #expect(s.verdict(at: 2)?.cause == "code-reused")
        #expect(s.verdict(at: 2)?.confidence == .certain)
    }

    @Test func replayBeforeTimeEvenWhenTheResponseSaysExpired() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), at: 5, response: S.tokens()))
        s.add(S.token(S.codeParams(), at: 900, status: 400, response: S.miroError(400, "Authorization code expired")))
        let f = s.findings()
        #expect(f.rule("code-reused")?.severity == .error)
        #expect(f.rule("code-expired") == nil)
        #expect(s.verdict()?.cause == "code-reused")
    }

    // 3
    @Test func trailingSlashRedirectURI() {
        var s = Scenario()
        s.add(S.authorize(redirectURI: "https://app.example/cb/"))
        s.add(S.token(S.codeParams(redirectURI: "https://app.example/cb"), style: .form, at: 5, status: 401,
                      response: S.miroError(401, "Redirect URI mismatch.")))
        let f = s.findings()
        #expect(f.rule("redirect-uri-mismatch")?.severity == .error)
        #expect(f.rule("redirect-uri-mismatch")?.confidence == .certain)
        #expect(f.rule("redirect-uri-mismatch")?.title.contains("trailing slash") == true)
        #expect(f.rule("provider-error")?.severity == .info)
        #expect(s.verdict()?.cause == "redirect-uri-mismatch")
        #expect(s.verdict()?.consequences == ["provider-error"])

        var ok = Scenario()
        ok.add(S.authorize(redirectURI: "https://app.example/cb/"))
        ok.add(S.token(S.codeParams(redirectURI: "https://app.example/cb/"), style: .form, at: 5, response: S.tokens()))
        #expect(ok.findings().rule("redirect-uri-mismatch") == nil)
    }

    // 4
    @Test func codeNotURLDecoded() {
        let issued = Miro.prefix + "abc/def+ghiJKLmnoPQRstu"
        var s = Scenario()
        s.add(S.authorize(code: issued))
        // The app copied the code from the raw query string: "%2F" and "%2B" stay encoded and get encoded again.
        s.add(S.token(S.codeParams(code: formEncode(issued)), style: .form, at: 5, status: 400, response: S.miroError(400, "Invalid code")))
        let f = s.findings()
        #expect(f.rule("code-mangled")?.severity == .error)
        #expect(f.rule("code-mangled")?.title.contains("not URL-decoded") == true)
        #expect(f.rule("code-unknown") == nil)
        #expect(f.rule("credential-formatting") == nil)
        #expect(s.verdict()?.cause == "code-mangled")

        var ok = Scenario()
        ok.add(S.authorize(code: issued))
        ok.add(S.token(S.codeParams(code: issued), style: .form, at: 5, response: S.tokens()))
        #expect(ok.findings().rule("code-mangled") == nil)
        #expect(ok.findings().alarms.isEmpty)
    }

    // 5
    @Test func redirectURIEncodedTwice() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(redirectURI: formEncode(Miro.redirect)), style: .form, at: 5, status: 401,
                      response: S.miroError(401, "Redirect URI mismatch.")))
        let f = s.findings()
        #expect(f.rule("redirect-uri-mismatch")?.title.contains("encoding level") == true)
        #expect(f.evidenceContains("redirect-uri-mismatch", "https%3A%2F%2Fapp.example%2Fcb"))
        #expect(s.verdict()?.cause == "redirect-uri-mismatch")
    }

    // 6
    @Test func staleRefreshTokenAfterRotation() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(), style: .form, at: 3600, response: S.tokens(Miro.access2, Miro.refresh2)))
        s.add(S.token(S.refreshParams(), style: .form, at: 7200, status: 401, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("refresh-token-rotated")?.severity == .error)
        #expect(f.evidenceContains("refresh-token-rotated", "already used in #2"))
        #expect(f.rule("server-rejected-credentials") == nil)
        #expect(s.verdict()?.cause == "refresh-token-rotated")
        // Correct: the new refresh token.
        var ok = s
        ok.exchanges[2] = S.token(S.refreshParams(Miro.refresh2), style: .form, at: 7200, response: S.tokens(Miro.access, Miro.refresh))
        #expect(ok.findings().rule("refresh-token-rotated") == nil)
    }

    @Test func concurrentRefreshesRace() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.refreshParams(), style: .form, at: 3600, response: S.tokens(Miro.access2, Miro.refresh2), totalMs: 300))
        s.add(S.token(S.refreshParams(), style: .form, at: 3600.1, status: 401, response: S.miroError()))
        let f = s.findings()
        #expect(f.rule("refresh-token-rotated")?.title.contains("raced") == true)
        #expect(s.verdict()?.cause == "refresh-token-rotated")
    }

    // 7
    @Test func basicAndBodyCredentials() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, status: 401, response: S.miroError(),
                      headers: [basicHeader("\(Miro.clientID):\(Miro.secret)")]))
        let f = s.findings()
        #expect(f.rule("client-auth-conflict")?.severity == .error)
        #expect(f.evidenceContains("client-auth-conflict", "equal"))
        #expect(s.verdict()?.cause == "client-auth-conflict")
        var diff = Scenario()
        diff.add(S.authorize())
        diff.add(S.token(S.codeParams(), style: .form, at: 5, status: 401, response: S.miroError(),
                         headers: [basicHeader("\(Miro.clientID):\(Miro.otherSecret)")]))
        #expect(diff.findings().rule("client-auth-conflict")?.confidence == .certain)
        #expect(diff.findings().evidenceContains("client-auth-conflict", "differ"))
        #expect(diff.verdict()?.cause == "client-auth-conflict")
    }

    // 8
    @Test func grantTypeWithCRLF() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(grant: "authorization_code\r\n"), style: .form, at: 5, status: 400, response: S.miroError(400, "Bad request")))
        let f = s.findings()
        #expect(f.rule("grant-type-invalid")?.severity == .error)
        #expect(f.evidenceContains("grant-type-invalid", "\"authorization_code\\r\\n\""))
        #expect(f.evidenceContains("grant-type-invalid", "authorization_code%0D%0A"))
        #expect(f.rule("grant-type-invalid")?.title.contains("line break") == true)
        #expect(s.verdict()?.cause == "grant-type-invalid")
    }

    // 9
    @Test func httpTokenURLRedirectedToGET() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .form, at: 5, status: 301, url: "http://api.miro.com/v1/oauth/token",
                      headers: []).withLocation("https://api.miro.com/v1/oauth/token"))
        s.add(S.http("GET", "https://api.miro.com/v1/oauth/token", at: 5.2, status: 405, responseBody: S.miroError(405, "Method not allowed")))
        let first = s.findings(at: 1)
        #expect(first.rule("token-over-plain-http") != nil)
        #expect(first.rule("token-redirected")?.severity == .warning)
        let f = s.findings(at: 2)
        #expect(f.rule("token-redirected")?.severity == .error)
        #expect(f.evidenceContains("token-redirected", "method changed POST → GET"))
        #expect(f.rule("token-method-not-post") == nil)
        #expect(f.rule("param-missing") == nil)
        #expect(s.verdict(at: 1)?.cause == "token-over-plain-http")
        #expect(s.verdict(at: 2)?.cause == "token-redirected")
    }

    // 10
    @Test func jsonBodyToMiro() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), style: .json, at: 5, status: 400, response: S.miroError(400, "Bad request")))
        let f = s.findings()
        #expect(f.rule("body-not-form-encoded")?.severity == .error)
        #expect(f.evidenceContains("body-not-form-encoded", "application/json"))
        #expect(f.rule("server-rejected-credentials") == nil)
        #expect(s.verdict()?.cause == "body-not-form-encoded")
    }

    // 11
    @Test func secretWithTrailingNewline() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(secret: Miro.secret + "\n"), style: .form, at: 5, status: 401, response: S.miroError()))
        let f = s.findings()
        let c = f.rule("credential-formatting")
        #expect(c?.severity == .error)
        #expect(c?.title.contains("client_secret") == true)
        #expect(f.evidenceContains("credential-formatting", "newline"))
        #expect(!f.flatMap(\.evidence).contains { $0.contains(Miro.secret) })
        #expect(s.verdict()?.cause == "credential-formatting")
    }

    // 12
    @Test func refreshTokenSentAsCode() {
        var s = Scenario()
        s.add(S.token(S.codeParams(), at: 0, response: S.tokens()))
        s.add(S.token(S.codeParams(code: Miro.refresh), style: .form, at: 3600, status: 400, response: S.miroError(400, "Invalid code")))
        let f = s.findings()
        #expect(f.rule("token-type-confusion")?.severity == .error)
        #expect(f.rule("token-type-confusion")?.title.contains("refresh token") == true)
        #expect(f.rule("code-unknown") == nil)
        #expect(s.verdict()?.cause == "token-type-confusion")
    }

    // 13
    @Test func pkceVerifierRegenerated() {
        var s = Scenario()
        s.add(S.authorize(clientID: "app1", extra: [("code_challenge", rfcChallenge), ("code_challenge_method", "S256")],
                          host: "idp.example.com", path: "/authorize"))
        let other = "Q" + String(rfcVerifier.dropFirst())
        s.add(S.token([("grant_type", "authorization_code"), ("client_id", "app1"), ("code", Miro.code),
                       ("redirect_uri", Miro.redirect), ("code_verifier", other)],
                      style: .form, at: 5, status: 400, response: json(["error": "invalid_grant"]), url: "https://idp.example.com/token"))
        let f = s.findings()
        #expect(f.rule("pkce-verifier-mismatch")?.severity == .error)
        #expect(f.rule("pkce-verifier-mismatch")?.confidence == .certain)
        #expect(s.verdict()?.cause == "pkce-verifier-mismatch")

        var ok = Scenario()
        ok.add(S.authorize(clientID: "app1", extra: [("code_challenge", rfcChallenge), ("code_challenge_method", "S256")],
                           host: "idp.example.com", path: "/authorize"))
        ok.add(S.token([("grant_type", "authorization_code"), ("client_id", "app1"), ("code", Miro.code),
                        ("redirect_uri", Miro.redirect), ("code_verifier", rfcVerifier)],
                       style: .form, at: 5, response: S.tokens(), url: "https://idp.example.com/token"))
        #expect(ok.findings().rule("pkce-verifier-mismatch") == nil)
        #expect(ok.findings().alarms.isEmpty, "\(ok.findings().alarms.map(\.rule))")
    }

    // 14
    @Test func sdkUsesItsFirstAccessTokenAnHourLater() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), at: 5, response: S.tokens()))
        s.add(S.api(bearer: Miro.access, at: 5 + 75 * 60, status: 401))
        let f = s.findings()
        #expect(f.rule("access-token-expired")?.severity == .error)
        #expect(f.evidenceContains("access-token-expired", "used 1h 15m 00s after issue"))
        #expect(s.verdict()?.cause == "access-token-expired")
        #expect(s.verdict()?.step == "api call")
        var ok = s
        ok.exchanges[2] = S.api(bearer: Miro.access, at: 5 + 30 * 60, status: 401)
        #expect(ok.findings().rule("access-token-expired") == nil)
    }
}

extension Exchange {
    func withLocation(_ l: String) -> Exchange {
        var e = self
        e.response.headers.append(HeaderField(name: "Location", value: l))
        return e
    }
}
