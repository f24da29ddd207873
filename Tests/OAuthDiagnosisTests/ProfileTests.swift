import Foundation
import Testing
@testable import OAuthDiagnosis
import TokentapCore


/// Provider profiles as data (issue 24): the built-in JSON, user files overriding it, bad files
/// rejected with file, field and line; and, per built-in profile, one correct exchange (no verdict,
/// no error or warning) and one failing exchange named by the profile's facts. Pure: exchanges are
/// values, judged as `doctor` judges them.
@Suite("Provider profiles")
struct ProfileTests {
    static let all = ProviderProfile.builtIn + [.generic]

    /// A temporary profile file with `text`; returns its path.
    func file(_ text: String, name: String = "profile.json") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-profiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func scenario(_ profiles: [ProviderProfile] = Self.all) -> Scenario {
        var s = Scenario()
        s.profiles = profiles
        return s
    }

    /// No finding of severity error or warning on any exchange, and no verdict.
    func expectCorrect(_ s: Scenario, sourceLocation: SourceLocation = #_sourceLocation) {
        for (i, f) in s.allFindings().enumerated() {
            #expect(f.alarms.isEmpty, "exchange \(i + 1): \(f.alarms.map { "\($0.rule): \($0.title)" })", sourceLocation: sourceLocation)
        }
        #expect(s.verdicts.allSatisfy { $0 == nil }, "\(s.verdicts.compactMap { $0?.summary })", sourceLocation: sourceLocation)
    }

    // MARK: - the format

    @Test("the built-in profiles decode from their JSON, one per provider of the facts table")
    func builtIns() {
        #expect(ProviderProfile.builtIn.map(\.name) == ["Miro", "Atlassian", "GitHub", "Slack", "Google", "Microsoft Entra", "Okta"])
        #expect(ProviderProfile.generic.isGeneric && ProviderProfile.builtIn.allSatisfy { !$0.isGeneric })
        #expect(ProviderProfile.miro.codeLifetime == 600 && ProviderProfile.miro.refreshTokenLifetime == 60 * 86_400)
        #expect(ProviderProfile.builtIn.allSatisfy { $0.origin == "built-in" && $0.overrides.isEmpty })
        // Entra's tenant is a path segment of its endpoint.
        let entra = ProviderProfile.builtIn[5]
        #expect(entra.isTokenEndpoint("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        #expect(!entra.isTokenEndpoint("https://login.microsoftonline.com/oauth2/v2.0/token"))
    }

    @Test("every rule unit's id is a catalog rule with a place in the verdict precedence, once")
    func ruleListIsExplicit() {
        let ids = DiagnosisRules.all.map(\.id)
        #expect(Set(ids).count == ids.count, "\(ids)")
        let ranked = Set(Verdict.precedence.flatMap(\.1))
        #expect(Set(ids) == ranked, "unranked: \(Set(ids).subtracting(ranked)), no unit: \(ranked.subtracting(ids))")
    }

    @Test("a user profile file overrides a built-in field, and the evidence names the file")
    func overrideCodeLifetime() throws {
        let path = try file(#"{"name": "Miro", "codeLifetime": 300}"#)
        let profiles = try ProfileLoader.load(files: [path])
        let miro = try #require(profiles.first { $0.name == "Miro" })
        #expect(miro.codeLifetime == 300 && miro.overrides == ["codeLifetime": path] && miro.origin == "built-in")
        #expect(miro.tokenEndpoints == ProviderProfile.miro.tokenEndpoints)
        var s = scenario(profiles)
        s.add(S.authorize(at: 0))
        s.add(S.token(S.codeParams(), style: .form, at: 360, status: 400, response: S.miroError(400, "Authorization code expired")))
        let f = s.findings()
        #expect(f.rule("code-expired")?.severity == .error)
        #expect(f.evidenceContains("code-expired", "Miro code lifetime: 5m 00s (Miro profile, \(path))"), "\(f.rule("code-expired")?.evidence ?? [])")
        #expect(s.verdict()?.cause == "code-expired")
        // The built-in lifetime (10 minutes) finds nothing wrong with the same exchange's age.
        var builtIn = scenario()
        builtIn.exchanges = s.exchanges
        #expect(builtIn.findings().rule("code-expired") == nil)
    }

    @Test("a file naming a new provider adds a profile for its hosts, the rest from the generic profile")
    func newProvider() throws {
        let path = try file(#"{"name": "Example IdP", "hosts": ["idp.example"], "tokenEndpoints": ["https://idp.example/oauth/token"], "acceptsJSONBody": true}"#)
        let profiles = try ProfileLoader.load(files: [path])
        let p = try #require(profiles.first)
        #expect(p.name == "Example IdP" && p.origin == path && p.acceptsJSONBody && p.grantTypes == ProviderProfile.generic.grantTypes)
        var s = scenario(profiles)
        s.add(S.token(S.codeParams(redirectURI: nil), style: .json, at: 0, status: 200, response: S.tokens(),
                      url: "https://idp.example/oauth/token"))
        #expect(s.findings().rule("body-not-form-encoded") == nil)
        var generic = scenario()
        generic.exchanges = s.exchanges
        #expect(generic.findings().rule("body-not-form-encoded") != nil)
    }

    @Test("a JSON syntax error is rejected with the file and the line")
    func syntaxError() throws {
        let path = try file("{\n  \"name\": \"Miro\",\n  \"codeLifetime\" 300\n}\n")
        let error = try #require(throws: ProfileFileError.self) { try ProfileLoader.load(files: [path]) }
        #expect(error.file == path && error.line == 3 && error.field == nil)
        #expect(error.description.contains(path) && error.description.contains("line 3"))
    }

    @Test("a field of the wrong type is rejected with the file and the field path", arguments: [
        (#"{"name": "Miro", "codeLifetime": "ten minutes"}"#, "codeLifetime", "a number"),
        (#"{"name": "Miro", "errorCodes": [{"code": "X1", "meaning": "m", "cause": 7}]}"#, "errorCodes[0].cause", "a string"),
        (#"{"name": "Miro", "queryParameters": "sometimes"}"#, "queryParameters", "sometimes"),
        (#"{"name": "Miro", "codeLifetme": 300}"#, "codeLifetme", "unknown field"),
        (#"{"codeLifetime": 300}"#, "name", "missing"),
        (#"{"name": "Acme"}"#, "hosts", "hosts"),
    ])
    func badField(_ text: String, _ field: String, _ reason: String) throws {
        let path = try file(text)
        let error = try #require(throws: ProfileFileError.self) { try ProfileLoader.load(files: [path]) }
        #expect(error.file == path)
        #expect(error.field == field, "\(error)")
        #expect(error.description.contains(reason), "\(error)")
        #expect(error.description.contains("field \(field)"))
    }

    @Test("a later file overrides an earlier one; the home's profiles folder is read in name order")
    func order() throws {
        let a = try file(#"{"name": "Okta", "codeLifetime": 120}"#, name: "a.json")
        let folder = URL(fileURLWithPath: a).deletingLastPathComponent().path
        try #"{"name": "Okta", "codeLifetime": 240}"#.write(toFile: folder + "/b.json", atomically: true, encoding: .utf8)
        try "not a profile".write(toFile: folder + "/notes.txt", atomically: true, encoding: .utf8)
        let files = ProfileLoader.files(inFolder: folder)
        #expect(files == [folder + "/a.json", folder + "/b.json"])
        let okta = try #require(try ProfileLoader.load(files: files).first { $0.name == "Okta" })
        #expect(okta.codeLifetime == 240 && okta.overrides["codeLifetime"] == folder + "/b.json")
        #expect(ProfileLoader.files(inFolder: folder + "/missing").isEmpty)
    }

    // MARK: - Miro and generic

    @Test("Miro: a form-encoded code exchange is correct; a JSON body is body-not-form-encoded by the profile")
    func miro() {
        var ok = scenario()
        ok.add(S.authorize(at: 0))
        ok.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens()))
        expectCorrect(ok)
        var bad = scenario()
        bad.add(S.authorize(at: 0))
        bad.add(S.token(S.codeParams(), style: .json, at: 5, status: 400, response: S.miroError(400, "Missing required parameter: grant_type")))
        #expect(bad.verdict()?.cause == "body-not-form-encoded")
        #expect(bad.findings().evidenceContains("body-not-form-encoded", "Miro expects application/x-www-form-urlencoded (Miro profile, built-in)"))
    }

    @Test("generic: a form-encoded exchange is correct; a code used after RFC 6749's 10 minutes is code-expired")
    func generic() {
        let auth = S.authorize(at: 0, host: "auth.example.com", path: "/oauth/authorize")
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(S.codeParams(), style: .form, at: 5, response: S.tokens(), url: "https://auth.example.com/oauth/token"))
        expectCorrect(ok)
        var bad = scenario()
        bad.add(auth)
        bad.add(S.token(S.codeParams(), style: .form, at: 700, status: 400, response: json(["error": "invalid_grant"]),
                        url: "https://auth.example.com/oauth/token"))
        #expect(bad.verdict()?.cause == "code-expired")
        #expect(bad.findings().evidenceContains("code-expired", "(generic OAuth 2.0 profile, built-in)"))
    }

    // MARK: - Atlassian

    static let atlassianToken = "https://auth.atlassian.com/oauth/token"

    @Test("Atlassian: a JSON body is accepted; a refresh without a refresh token names offline_access")
    func atlassian() {
        let auth = S.authorize(at: 0, state: "s1", extra: [("scope", "offline_access read:jira-work")], host: "auth.atlassian.com", path: "/authorize")
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(S.codeParams(), style: .json, at: 5, response: S.tokens(scope: "offline_access read:jira-work"), url: Self.atlassianToken))
        expectCorrect(ok)
        #expect(ok.findings().rule("body-not-form-encoded") == nil)
        // The same JSON body to a host without a profile is only accepted because it succeeded.
        var unknown = scenario()
        unknown.add(S.token(S.codeParams(), style: .json, at: 5, response: S.tokens(), url: "https://auth.example.com/oauth/token"))
        #expect(unknown.findings().rule("body-not-form-encoded") != nil)

        var bad = scenario()
        bad.add(S.authorize(at: 0, state: "s1", extra: [("scope", "read:jira-work")], host: "auth.atlassian.com", path: "/authorize"))
        bad.add(S.token(S.codeParams(), style: .json, at: 5, response: S.tokens(Miro.access, nil, scope: "read:jira-work"), url: Self.atlassianToken))
        bad.add(S.token(S.refreshParams("undefined"), style: .json, at: 4000, status: 403,
                        response: json(["error": "unauthorized_client", "error_description": "refresh_token is invalid"]), url: Self.atlassianToken))
        #expect(bad.verdict()?.cause == "refresh-token-not-issued")
        #expect(bad.findings().evidenceContains("refresh-token-not-issued",
                                                 "Atlassian issues a refresh token only with the offline_access scope (Atlassian profile, built-in)"))
    }

    // MARK: - GitHub

    static let githubToken = "https://github.com/login/oauth/access_token"
    static func githubParams() -> [(String, String)] {
        [("client_id", "Iv1.8a61f9b3a7aba766"), ("client_secret", "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"), ("code", Miro.code),
         ("redirect_uri", Miro.redirect)]
    }

    @Test("GitHub: no grant_type is accepted; an error sent with HTTP 200 is judged a failure")
    func github() {
        let auth = S.authorize(at: 0, clientID: "Iv1.8a61f9b3a7aba766", host: "github.com", path: "/login/oauth/authorize")
        let good = json(["access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "bearer", "scope": "repo"])
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(Self.githubParams(), style: .form, at: 5, response: good, url: Self.githubToken))
        expectCorrect(ok)
        #expect(ok.findings().rule("grant-type-invalid") == nil)

        var bad = scenario()
        bad.add(auth)
        bad.add(S.token(Self.githubParams(), style: .form, at: 5, response: good, url: Self.githubToken))
        bad.add(S.token(Self.githubParams(), style: .form, at: 6, status: 200,
                        response: json(["error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."]),
                        url: Self.githubToken))
        let v = bad.verdict()
        #expect(v?.cause == "code-reused" && v?.status == 200, "\(v?.summary ?? "no verdict")")
        let f = bad.findings()
        #expect(f.evidenceContains("provider-error", "GitHub answers errors with HTTP 200 (GitHub profile, built-in)"))
        #expect(f.evidenceContains("provider-error", "provider code bad_verification_code: the code is wrong or expired"))
    }

    // MARK: - Slack

    static let slackToken = "https://slack.com/api/oauth.v2.access"

    @Test("Slack: a correct exchange; ok:false with HTTP 200 is a failure, its error code naming the cause")
    func slack() {
        let auth = S.authorize(at: 0, clientID: "1234567890.0987654321", host: "slack.com", path: "/oauth/v2/authorize")
        let params = S.codeParams(clientID: "1234567890.0987654321", secret: "8f7e6d5c4b3a29181f7e6d5c4b3a2918")
        let good = json(["ok": true, "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "token_type": "bot", "scope": "chat:write"])
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(params, style: .form, at: 5, response: good, url: Self.slackToken))
        expectCorrect(ok)

        var bad = scenario()
        bad.add(auth)
        bad.add(S.token(params, style: .form, at: 5, response: good, url: Self.slackToken))
        bad.add(S.token(params, style: .form, at: 5.04, status: 200, response: json(["ok": false, "error": "code_already_used"]), url: Self.slackToken))
        let f = bad.findings()
        #expect(f.evidenceContains("provider-error", "provider code code_already_used names code-reused: the code was already exchanged (Slack profile, built-in)"))
        #expect(f.evidenceContains("provider-error", "Slack answers errors with HTTP 200"))
        let v = bad.verdict()
        #expect(v?.cause == "code-reused" && v?.status == 200, "\(v?.summary ?? "no verdict")")

        // Alone (no earlier exchange in the session), ok:false with 200 is still a failed exchange with a verdict.
        var alone = scenario()
        alone.add(S.token(params, style: .form, at: 5, status: 200, response: json(["ok": false, "error": "invalid_code"]), url: Self.slackToken))
        #expect(alone.verdict() != nil)
        #expect(alone.findings().rule("provider-error") != nil)
    }

    // MARK: - Google

    static let googleToken = "https://oauth2.googleapis.com/token"

    @Test("Google: a correct exchange; a refresh without access_type=offline is refresh-token-not-issued naming it")
    func google() {
        let auth = S.authorize(at: 0, clientID: "1234-abc.apps.googleusercontent.com", host: "accounts.google.com", path: "/o/oauth2/v2/auth")
        let params = S.codeParams(clientID: "1234-abc.apps.googleusercontent.com", secret: "GOCSPX-1a2b3c4d5e6f7g8h9i0j")
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(params, style: .form, at: 5, response: S.tokens("ya29.a0AfH6SMBx", nil, expiresIn: 3599, scope: "openid"), url: Self.googleToken))
        expectCorrect(ok)

        var bad = ok
        bad.add(S.token(S.refreshParams("undefined", clientID: "1234-abc.apps.googleusercontent.com", secret: "GOCSPX-1a2b3c4d5e6f7g8h9i0j"),
                        style: .form, at: 4000, status: 400, response: json(["error": "invalid_grant", "error_description": "Bad Request"]),
                        url: Self.googleToken))
        #expect(bad.verdict()?.cause == "refresh-token-not-issued")
        let f = bad.findings()
        #expect(f.evidenceContains("refresh-token-not-issued", "Google issues a refresh token only with access_type=offline on the authorize request"))
        #expect(f.evidenceContains("provider-error", "provider code invalid_grant: the code or refresh token is expired, already used or revoked"))
    }

    // MARK: - Microsoft Entra

    static let entraToken = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    static let entraClient = "6731de76-14a6-49ae-97bc-6eba6914391e"
    static func entraParams(code: String = Miro.code) -> [(String, String)] {
        S.codeParams(code: code, clientID: entraClient, secret: "qWgdYAmab0YSkuL1qKv5bPX") + [("scope", "openid offline_access User.Read")]
    }
    static func entraAuthorize(at t: TimeInterval = 0) -> Exchange {
        S.authorize(at: t, clientID: entraClient, extra: [("scope", "openid offline_access User.Read")],
                    host: "login.microsoftonline.com", path: "/common/oauth2/v2.0/authorize")
    }
    static func aadsts(_ code: String, _ text: String) -> Data {
        json(["error": "invalid_grant", "error_description": "\(code): \(text) Trace ID: 0f4e Correlation ID: 3c2d Timestamp: 2026-11-30 07:00:00Z",
              "error_codes": [Int(code.dropFirst(6))!]])
    }

    @Test("Microsoft Entra: a v2.0 code exchange with scope is correct; AADSTS codes map to their causes")
    func entra() {
        var ok = scenario()
        ok.add(Self.entraAuthorize())
        ok.add(S.token(Self.entraParams(), style: .form, at: 5, response: S.tokens(scope: "openid offline_access User.Read"), url: Self.entraToken))
        expectCorrect(ok)

        // AADSTS54005: the code was already redeemed; the wire shows it too (code-reused), the code agrees.
        var reused = ok
        reused.add(S.token(Self.entraParams(), style: .form, at: 9, status: 400,
                           response: Self.aadsts("AADSTS54005", "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."),
                           url: Self.entraToken))
        let f = reused.findings()
        #expect(f.evidenceContains("provider-error", "provider code AADSTS54005 names code-reused: the code was already redeemed (Microsoft Entra profile, built-in)"))
        #expect(reused.verdict()?.cause == "code-reused")

        // AADSTS7000215 alone (nothing on the wire): the verdict's summary names the cause the code points at.
        var secret = scenario()
        secret.add(Self.entraAuthorize())
        secret.add(S.token(Self.entraParams(), style: .form, at: 5, status: 401,
                           response: Self.aadsts("AADSTS7000215", "Invalid client secret provided."), url: Self.entraToken))
        let d = Verdict.decide(secret.findings())
        #expect(d?.cause.rule == "server-rejected-credentials", "\(secret.findings().rules)")
        #expect(d?.supportingMessage != nil)
    }

    @Test("Microsoft Entra: spa-origin-required from AADSTS9002327 without an Origin header, and AADSTS9002326 with one")
    func spaOrigin() throws {
        var spa = scenario()
        spa.add(Self.entraAuthorize())
        spa.add(S.token(Self.entraParams(), style: .form, at: 5, status: 400,
                        response: Self.aadsts("AADSTS9002327", "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests."),
                        url: Self.entraToken))
        let f = spa.findings()
        let finding = try #require(f.rule("spa-origin-required"))
        #expect(finding.severity == .error && finding.confidence == .certain)
        #expect(finding.evidence.contains("no Origin header"))
        #expect(finding.fix.contains("https://app.example"))
        #expect(spa.verdict()?.cause == "spa-origin-required")

        var web = scenario()
        web.add(Self.entraAuthorize())
        web.add(S.token(Self.entraParams(), style: .form, at: 5, status: 400,
                        response: Self.aadsts("AADSTS9002326", "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type."),
                        url: Self.entraToken, headers: [HeaderField(name: "Origin", value: "https://app.example")]))
        let w = try #require(web.findings().rule("spa-origin-required"))
        #expect(w.confidence == .certain && w.title.contains("Web redirect URI"))
        #expect(web.verdict()?.cause == "spa-origin-required")

        // Another host answering with the same text: no Entra profile, no spa-origin-required.
        var other = scenario()
        other.add(S.token(Self.entraParams(), style: .form, at: 5, status: 400,
                          response: Self.aadsts("AADSTS9002327", "Tokens issued for SPA."), url: "https://auth.example.com/oauth2/v2.0/token"))
        #expect(other.findings().rule("spa-origin-required") == nil)
    }

    // MARK: - Okta

    static let oktaToken = "https://dev-123456.okta.com/oauth2/default/v1/token"

    @Test("Okta: Basic client authentication alone is correct; Basic plus client_secret in the body is rejected for certain")
    func okta() {
        let params = S.codeParams(clientID: "0oa1b2c3d4e5f6g7h8i9", secret: "hP4bA9xLwQe7Zr2Kt5Vm8Ny1Uc3Sd6Fg")
        let auth = S.authorize(at: 0, clientID: "0oa1b2c3d4e5f6g7h8i9", host: "dev-123456.okta.com", path: "/oauth2/default/v1/authorize")
        var ok = scenario()
        ok.add(auth)
        ok.add(S.token(params, style: .basic(clientIDInBody: false), at: 5, response: S.tokens(), url: Self.oktaToken))
        expectCorrect(ok)

        let basic = "Basic " + Data("0oa1b2c3d4e5f6g7h8i9:hP4bA9xLwQe7Zr2Kt5Vm8Ny1Uc3Sd6Fg".utf8).base64EncodedString()
        let error = json(["error": "invalid_client", "error_description": "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body."])
        var bad = scenario()
        bad.add(auth)
        bad.add(S.token(params, style: .form, at: 5, status: 401, response: error, url: Self.oktaToken,
                        headers: [HeaderField(name: "Authorization", value: basic)]))
        let f = bad.findings()
        #expect(f.rule("client-auth-conflict")?.confidence == .certain)
        #expect(f.evidenceContains("client-auth-conflict", "Okta rejects more than one client authentication method (Okta profile, built-in)"))
        #expect(bad.verdict()?.cause == "client-auth-conflict")
        // Without the Okta fact, equal values in both places are only likely to be the problem.
        var generic = scenario()
        generic.add(S.token(params, style: .form, at: 5, status: 401, response: error, url: "https://auth.example.com/oauth2/default/v1/token",
                            headers: [HeaderField(name: "Authorization", value: basic)]))
        #expect(generic.findings().rule("client-auth-conflict")?.confidence == .likely)
    }
}
