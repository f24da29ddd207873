import Foundation
@testable import Sandbox
import Testing

/// The sandbox driven over real TLS by curl (curl resolves miro.com and api.miro.com to the
/// in-process server). Runs serialized: each test starts its own server and several curls.
@Suite(.serialized)
struct SandboxFlowTests {
    static let prefix = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_"

    func expectTokenBody(_ result: CurlResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 200, "body: \(result.body)", sourceLocation: sourceLocation)
        let json = result.json
        #expect(Set(json.keys) == ["user_id", "access_token", "refresh_token", "expires_in", "team_id", "scope", "token_type"],
                sourceLocation: sourceLocation)
        #expect(json["expires_in"] as? Int == 3599, sourceLocation: sourceLocation)
        #expect(json["token_type"] as? String == "bearer", sourceLocation: sourceLocation)
        #expect(json["scope"] as? String == "boards:read boards:write", sourceLocation: sourceLocation)
        #expect((json["team_id"] as? String)?.allSatisfy(\.isNumber) == true, sourceLocation: sourceLocation)
        #expect((json["user_id"] as? String)?.allSatisfy(\.isNumber) == true, sourceLocation: sourceLocation)
        for key in ["access_token", "refresh_token"] {
            let token = json[key] as? String ?? ""
            #expect(token.hasPrefix(Self.prefix) && token.count >= Self.prefix.count + 32, "\(key): \(token)",
                    sourceLocation: sourceLocation)
        }
        #expect(result.headers["content-type"]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
    }

    @Test func completeFlowWithQueryParametersThenRefreshRotates() async throws {
        try await SandboxHarness.with { sandbox in

            // Authorize: 302 to the redirect URI with code, state, client_id, team_id.
            let (authorize, items) = try await sandbox.authorize(state: "st ate+/&=", teamID: "3458764500000000001")
            #expect(authorize.status == 302)
            let location = try #require(authorize.headers["location"])
            #expect(location.hasPrefix("http://127.0.0.1:8765/callback?code=\(Self.prefix)"))
            #expect(items["state"] == "st ate+/&=")
            #expect(items["client_id"] == SandboxApp.demo.clientID)
            #expect(items["team_id"] == "3458764500000000001")
            let code = try #require(items["code"])
            #expect(code.count >= Self.prefix.count + 32)
            #expect(code.dropFirst(Self.prefix.count).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })

            // Exchange with everything in the query string of an empty-bodied POST.
            let exchange = try await sandbox.exchangeInQuery(code: code)
            expectTokenBody(exchange)
            #expect(exchange.json["team_id"] as? String == "3458764500000000001")
            let access = try #require(exchange.json["access_token"] as? String)
            let refresh = try #require(exchange.json["refresh_token"] as? String)

            // REST call.
            let boards = try await sandbox.boards(access)
            #expect(boards.status == 200)
            #expect(boards.json["type"] as? String == "list")
            #expect((boards.json["data"] as? [[String: Any]])?.count == 2)
            #expect(boards.json["total"] as? Int == 2)
            #expect(boards.json["size"] as? Int == 2)
            #expect(boards.json["offset"] as? Int == 0)
            #expect(boards.headers["x-ratelimit-limit"] == "100000")
            #expect(boards.headers["x-ratelimit-remaining"] == "99999")
            let reset = try #require(boards.headers["x-ratelimit-reset"].flatMap(Double.init))
            #expect(reset > sandbox.server.now && reset <= sandbox.server.now + 61)

            // Token context.
            let context = try await sandbox.curl(["-H", "Authorization: Bearer \(access)", "\(sandbox.api)/v1/oauth-token"])
            #expect(context.status == 200)
            #expect(context.json["type"] as? String == "user")
            #expect(context.json["scopes"] as? [String] == ["boards:read", "boards:write"])
            #expect((context.json["team"] as? [String: Any])?["id"] as? String == "3458764500000000001")

            // Refresh (form body + Basic): new pair, both different.
            let refreshed = try await sandbox.refresh(refresh)
            expectTokenBody(refreshed)
            let newAccess = try #require(refreshed.json["access_token"] as? String)
            let newRefresh = try #require(refreshed.json["refresh_token"] as? String)
            #expect(newAccess != access && newRefresh != refresh)

            // The new token works; the old one stopped working at once.
            #expect(try await sandbox.boards(newAccess).status == 200)
            expectEnvelope(try await sandbox.boards(access), status: 401, code: "tokenRevoked")
            let oldContext = try await sandbox.curl(["\(sandbox.api)/v1/oauth-token?access_token=\(access)"])
            expectEnvelope(oldContext, status: 400, code: "invalidToken", message: "Invalid token provided")
            let newContext = try await sandbox.curl(["\(sandbox.api)/v1/oauth-token?access_token=\(newAccess)"])
            #expect(newContext.status == 200)
        }
    }

    @Test func exchangeWithFormBodyAndBasicAuthentication() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            let app = SandboxApp.demo
            let result = try await sandbox.curl([
                "-u", "\(app.clientID):\(app.clientSecret)",
                "--data-urlencode", "grant_type=authorization_code", "--data-urlencode", "code=\(code)",
                "--data-urlencode", "redirect_uri=\(app.redirectURI)", "\(sandbox.api)/v1/oauth/token",
            ])
            expectTokenBody(result)
            let access = try #require(result.json["access_token"] as? String)
            #expect(try await sandbox.boards(access).status == 200)
        }
    }

    @Test func basicCredentialsAreFormDecodedPerRFC6749() async throws {
        // RFC 6749 §2.3.1: Basic carries form-urlencoded id and secret; `+` and `%` must be encoded.
        let app = SandboxApp(clientID: "3074457363680401096", clientSecret: "s+cr%t:x", redirectURI: "https://app.example/cb")
        try await SandboxHarness.with({ $0.apps.append(app) }) { sandbox in
            let code = try await sandbox.code(app: app)
            let encoded = Data("3074457363680401096:s%2Bcr%25t%3Ax".utf8).base64EncodedString()
            let result = try await sandbox.curl([
                "-H", "Authorization: Basic \(encoded)",
                "-d", "grant_type=authorization_code&code=\(code)&redirect_uri=\(SandboxHarness.enc(app.redirectURI))",
                "\(sandbox.api)/v1/oauth/token",
            ])
            expectTokenBody(result)

            // The same secret sent unencoded is a different secret.
            let code2 = try await sandbox.code(app: app)
            let raw = Data("3074457363680401096:s+cr%t:x".utf8).base64EncodedString()
            let wrong = try await sandbox.curl([
                "-H", "Authorization: Basic \(raw)",
                "-d", "grant_type=authorization_code&code=\(code2)&redirect_uri=\(SandboxHarness.enc(app.redirectURI))",
                "\(sandbox.api)/v1/oauth/token",
            ])
            expectEnvelope(wrong, status: 401, code: "oauthError", message: "Malformed Basic authorization header.")
        }
    }

    @Test func malformedBasicHeaderIs401() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            for header in ["Basic !!!not-base64", "Basic \(Data("no-colon-here".utf8).base64EncodedString())", "Basic"] {
                let result = try await sandbox.curl([
                    "-H", "Authorization: \(header)",
                    "-d", "grant_type=authorization_code&code=\(code)&redirect_uri=\(SandboxHarness.enc(SandboxApp.demo.redirectURI))",
                    "\(sandbox.api)/v1/oauth/token",
                ])
                expectEnvelope(result, status: 401, code: "oauthError", message: "Malformed Basic authorization header.")
                #expect(result.headers["www-authenticate"]?.hasPrefix("Basic") == true)
            }
        }
    }

    @Test func parametersSplitBetweenQueryAndBodyAndConflicts() async throws {
        try await SandboxHarness.with { sandbox in
            let app = SandboxApp.demo
            // Grant in the query, the rest in the form body (Miro's current refresh page mixes both).
            let code = try await sandbox.code()
            let split = try await sandbox.curl([
                "--data-urlencode", "client_id=\(app.clientID)", "--data-urlencode", "client_secret=\(app.clientSecret)",
                "--data-urlencode", "code=\(code)", "--data-urlencode", "redirect_uri=\(app.redirectURI)",
                "\(sandbox.api)/v1/oauth/token?grant_type=authorization_code",
            ])
            expectTokenBody(split)

            // The same parameter with the same value in both places is fine; different values are not.
            let code2 = try await sandbox.code()
            let conflict = try await sandbox.curl([
                "--data-urlencode", "client_id=\(app.clientID)", "--data-urlencode", "client_secret=\(app.clientSecret)",
                "--data-urlencode", "code=\(code2)", "--data-urlencode", "redirect_uri=\(app.redirectURI)",
                "\(sandbox.api)/v1/oauth/token?grant_type=authorization_code&code=somethingelse",
            ])
            expectEnvelope(conflict, status: 400, code: "invalidParameters",
                           message: "Parameter code was sent more than once with different values.")
            let same = try await sandbox.curl([
                "--data-urlencode", "client_id=\(app.clientID)", "--data-urlencode", "client_secret=\(app.clientSecret)",
                "--data-urlencode", "code=\(code2)", "--data-urlencode", "redirect_uri=\(app.redirectURI)",
                "\(sandbox.api)/v1/oauth/token?grant_type=authorization_code&code=\(code2)",
            ])
            expectTokenBody(same)
        }
    }

    @Test func reusedCodeIs401() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            expectTokenBody(try await sandbox.exchangeInQuery(code: code))
            expectEnvelope(try await sandbox.exchangeInQuery(code: code), status: 401, code: "oauthError",
                           message: "Authorization code has already been used.")
        }
    }

    @Test func expiredCodeIs401() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            let before = sandbox.server.now
            let advanced = try await sandbox.advance(601)
            #expect(advanced.status == 200)
            #expect(advanced.json["advanced"] as? Double == 601)
            let now = try #require(advanced.json["now"] as? Double)
            #expect(now >= before + 601)
            expectEnvelope(try await sandbox.exchangeInQuery(code: code), status: 401, code: "oauthError",
                           message: "Authorization code has expired.")
        }
    }

    @Test func codeStillValidJustBeforeItsTTL() async throws {
        try await SandboxHarness.with({ $0.codeTTL = 600 }) { sandbox in
            let code = try await sandbox.code()
            _ = try await sandbox.advance(300)
            expectTokenBody(try await sandbox.exchangeInQuery(code: code))
        }
    }

    @Test func redirectMismatchIsMirosDocumentedError() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            // Trailing slash at the token endpoint.
            let mismatch = try await sandbox.exchangeInQuery(code: code, redirectURI: SandboxApp.demo.redirectURI + "/")
            expectEnvelope(mismatch, status: 401, code: "oauthError", message: "Redirect URI mismatch.")
            // A failed exchange does not consume the code (assumption): the right URI still works.
            expectTokenBody(try await sandbox.exchangeInQuery(code: code))

            // Trailing slash at the authorize endpoint: refused, no redirect.
            let (authorize, _) = try await sandbox.authorize(redirectURI: SandboxApp.demo.redirectURI + "/")
            expectEnvelope(authorize, status: 400, code: "oauthError", message: "Redirect URI mismatch.")
            #expect(authorize.headers["location"] == nil)
        }
    }

    @Test func wrongSecretIs401() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            expectEnvelope(try await sandbox.exchangeInQuery(code: code, secret: "not-the-secret"), status: 401,
                           code: "oauthError", message: "Invalid client_secret.")
            let other = SandboxApp(clientID: "999", clientSecret: "x", redirectURI: SandboxApp.demo.redirectURI)
            expectEnvelope(try await sandbox.exchangeInQuery(code: code, app: other), status: 401, code: "oauthError",
                           message: "Unknown client_id.")
        }
    }

    @Test func staleRefreshTokenAfterRotationIs401() async throws {
        try await SandboxHarness.with { sandbox in
            let exchange = try await sandbox.exchangeInQuery(code: try await sandbox.code())
            let refresh = try #require(exchange.json["refresh_token"] as? String)
            expectTokenBody(try await sandbox.refresh(refresh))
            expectEnvelope(try await sandbox.refresh(refresh), status: 401, code: "oauthError",
                           message: "Refresh token has already been used: refresh tokens rotate on every refresh.")
            expectEnvelope(try await sandbox.refresh("\(Self.prefix)unknown"), status: 401, code: "oauthError",
                           message: "Invalid refresh token.")
        }
    }

    @Test func expiredAccessTokenIs401AndRefreshStillWorks() async throws {
        try await SandboxHarness.with { sandbox in
            let exchange = try await sandbox.exchangeInQuery(code: try await sandbox.code())
            let access = try #require(exchange.json["access_token"] as? String)
            let refresh = try #require(exchange.json["refresh_token"] as? String)
            _ = try await sandbox.advance(3600)
            expectEnvelope(try await sandbox.boards(access), status: 401, code: "tokenExpired")
            let refreshed = try await sandbox.refresh(refresh)
            expectTokenBody(refreshed)
            #expect(try await sandbox.boards(try #require(refreshed.json["access_token"] as? String)).status == 200)

            // Refresh tokens expire after refreshTTL.
            _ = try await sandbox.advance(60 * 86_400)
            expectEnvelope(try await sandbox.refresh(try #require(refreshed.json["refresh_token"] as? String)),
                           status: 401, code: "oauthError", message: "Refresh token has expired.")
        }
    }

    @Test func missingOrUnknownBearerIs401() async throws {
        try await SandboxHarness.with { sandbox in
            expectEnvelope(try await sandbox.boards(nil), status: 401, code: "tokenNotProvided")
            let empty = try await sandbox.curl(["-H", "Authorization;", "\(sandbox.api)/v2/boards"])
            expectEnvelope(empty, status: 401, code: "tokenNotProvided")
            let bearerOnly = try await sandbox.curl(["-H", "Authorization: Bearer ", "\(sandbox.api)/v2/boards"])
            expectEnvelope(bearerOnly, status: 401, code: "tokenNotProvided")
            expectEnvelope(try await sandbox.boards("\(Self.prefix)nope"), status: 401, code: "tokenNotFound")
            #expect(try await sandbox.boards(nil).headers["x-ratelimit-limit"] == nil)
        }
    }

    @Test func rateLimitGives429WhenTheBudgetIsSpent() async throws {
        try await SandboxHarness.with({ $0.rateBudget = 2 }) { sandbox in
            let exchange = try await sandbox.exchangeInQuery(code: try await sandbox.code())
            let access = try #require(exchange.json["access_token"] as? String)
            let first = try await sandbox.boards(access)
            let second = try await sandbox.boards(access)
            let third = try await sandbox.boards(access)
            #expect(first.status == 200 && first.headers["x-ratelimit-remaining"] == "1")
            #expect(second.status == 200 && second.headers["x-ratelimit-remaining"] == "0")
            expectEnvelope(third, status: 429, code: "tooManyRequests")
            #expect(third.headers["x-ratelimit-limit"] == "2")
            #expect(third.headers["x-ratelimit-remaining"] == "0")
            let reset = try #require(third.headers["x-ratelimit-reset"].flatMap(Double.init))
            // Next minute: budget restored.
            _ = try await sandbox.advance(60)
            let later = try await sandbox.boards(access)
            #expect(later.status == 200 && later.headers["x-ratelimit-remaining"] == "1")
            #expect(try #require(Double(later.headers["x-ratelimit-reset"] ?? "")) >= reset + 60)
        }
    }

    @Test func jsonBodyIsRejected() async throws {
        try await SandboxHarness.with { sandbox in
            let code = try await sandbox.code()
            let app = SandboxApp.demo
            let body = "{\"grant_type\":\"authorization_code\",\"client_id\":\"\(app.clientID)\",\"client_secret\":\"\(app.clientSecret)\",\"code\":\"\(code)\",\"redirect_uri\":\"\(app.redirectURI)\"}"
            let result = try await sandbox.curl(["-H", "Content-Type: application/json", "--data-binary", body,
                                                 "\(sandbox.api)/v1/oauth/token"])
            expectEnvelope(result, status: 400, code: "oauthError",
                           message: "JSON request bodies are not accepted: send application/x-www-form-urlencoded parameters.")
            // The code was not consumed.
            expectTokenBody(try await sandbox.exchangeInQuery(code: code))
        }
    }

    @Test func authorizeChecksItsParameters() async throws {
        try await SandboxHarness.with { sandbox in
            let app = SandboxApp.demo
            let redirect = SandboxHarness.enc(app.redirectURI)
            let wrongType = try await sandbox.curl(["\(sandbox.web)/oauth/authorize?response_type=token&client_id=\(app.clientID)&redirect_uri=\(redirect)"])
            expectEnvelope(wrongType, status: 400, code: "oauthError", message: "Unsupported response_type: only \"code\" is supported.")
            let unknown = try await sandbox.curl(["\(sandbox.web)/oauth/authorize?response_type=code&client_id=42&redirect_uri=\(redirect)"])
            expectEnvelope(unknown, status: 400, code: "oauthError", message: "Unknown client_id.")
            let noRedirect = try await sandbox.curl(["\(sandbox.web)/oauth/authorize?response_type=code&client_id=\(app.clientID)"])
            expectEnvelope(noRedirect, status: 400, code: "oauthError", message: "Missing required parameter: redirect_uri.")
            // No state given: none echoed.
            let (plain, items) = try await sandbox.authorize(state: nil)
            #expect(plain.status == 302)
            #expect(items["state"] == nil && items["code"] != nil && items["team_id"] == SandboxRouter.defaultTeamID)
        }
    }

    @Test func routingByHostUnknownPathsAndMalformedRequests() async throws {
        try await SandboxHarness.with { sandbox in
            expectEnvelope(try await sandbox.curl(["\(sandbox.api)/v2/nothing"]), status: 404, code: "notFound")
            // The authorize endpoint lives on miro.com, the REST API on api.miro.com.
            let app = SandboxApp.demo
            expectEnvelope(try await sandbox.curl(["\(sandbox.api)/oauth/authorize?response_type=code&client_id=\(app.clientID)"]),
                           status: 404, code: "notFound")
            expectEnvelope(try await sandbox.curl(["\(sandbox.web)/v2/boards"]), status: 404, code: "notFound")
            // Bad percent-encoding.
            let bad = try await sandbox.curl(["-X", "POST", "\(sandbox.api)/v1/oauth/token?grant_type=%zz"])
            expectEnvelope(bad, status: 400, code: "invalidParameters")
            // Wrong method.
            let get = try await sandbox.curl(["\(sandbox.api)/v1/oauth/token"])
            expectEnvelope(get, status: 405, code: "methodNotAllowed")
            #expect(get.headers["allow"] == "POST")
            // A negative advance is refused and leaves the clock alone.
            expectEnvelope(try await sandbox.advance(-5), status: 400, code: "invalidParameters")
            // localhost serves every route (no Host-based split for names other than Miro's).
            let local = try await sandbox.curl(["--resolve", "localhost:\(sandbox.port):127.0.0.1",
                                                "https://localhost:\(sandbox.port)/v2/boards"])
            expectEnvelope(local, status: 401, code: "tokenNotProvided")
            // A raw IP (no SNI) gets the 127.0.0.1 leaf.
            let ip = try await sandbox.curl(["https://127.0.0.1:\(sandbox.port)/v2/boards"])
            expectEnvelope(ip, status: 401, code: "tokenNotProvided")
            // The server survived all of the above.
            #expect(try await sandbox.code().hasPrefix(Self.prefix))
        }
    }

    @Test func garbageAndOversizedRequestsGet4xxAndTheServerLivesOn() async throws {
        try await SandboxHarness.with { sandbox in
            // Not HTTP at all, over real TLS: NIOHTTP1's error handling answers 400 and closes.
            let (code, stdout, stderr) = try await SandboxHarness.run("/bin/sh", ["-c",
                "printf 'NOT HTTP AT ALL\\r\\n\\r\\n' | /usr/bin/openssl s_client -quiet -connect 127.0.0.1:\(sandbox.port) "
                + "-servername api.miro.com -CAfile '\(sandbox.server.caCertificatePath)' -verify_return_error 2>/dev/null"])
            #expect(stdout.hasPrefix("HTTP/1.1 400"), "exit \(code): \(stdout) \(stderr)")

            // A body over 1 MiB: 413 with the envelope.
            let big = sandbox.directory.appendingPathComponent("big-body")
            try Data(repeating: UInt8(ascii: "a"), count: (1 << 20) + 1).write(to: big)
            let oversized = try await sandbox.curl(["--data-binary", "@\(big.path)", "\(sandbox.api)/v1/oauth/token"])
            expectEnvelope(oversized, status: 413, code: "payloadTooLarge")

            #expect(try await sandbox.code().hasPrefix(Self.prefix))
        }
    }

    @Test func caFilesAreWrittenToTheCertsFolder() async throws {
        try await SandboxHarness.with { sandbox in
            let certs = sandbox.directory.appendingPathComponent("certs")
            #expect(sandbox.server.caCertificatePath == certs.appendingPathComponent("sandbox-ca.pem").path)
            #expect(FileManager.default.fileExists(atPath: certs.appendingPathComponent("sandbox-ca-key.pem").path))
            #expect((try? String(contentsOf: certs.appendingPathComponent(".gitignore"), encoding: .utf8)) == "*\n")
            // A second server on the same folder reuses the same CA.
            let again = try SandboxServer(configuration: SandboxConfiguration(), certificatesDirectory: certs, group: sandbox.group)
            #expect(again.authority.certificatePEM == sandbox.server.authority.certificatePEM)
        }
    }
}

@Suite struct SandboxAppParsingTests {
    @Test func splitsAtTheFirstTwoColons() throws {
        let app = try SandboxApp(parsing: "3074457363680401096:se:cret:http://127.0.0.1:8765/cb?x=1")
        #expect(app.clientID == "3074457363680401096")
        #expect(app.clientSecret == "se")
        #expect(app.redirectURI == "cret:http://127.0.0.1:8765/cb?x=1")

        let plain = try SandboxApp(parsing: "1:secret:https://app.example:8443/oauth/callback")
        #expect(plain == SandboxApp(clientID: "1", clientSecret: "secret", redirectURI: "https://app.example:8443/oauth/callback"))
        let custom = try SandboxApp(parsing: "1:s:com.example.app:/oauth")
        #expect(custom.redirectURI == "com.example.app:/oauth")
    }

    @Test(arguments: [
        ("nocolons", "expected CLIENT_ID:CLIENT_SECRET:REDIRECT_URI"),
        ("1:onlyone", "expected CLIENT_ID:CLIENT_SECRET:REDIRECT_URI"),
        (":s:http://x/cb", "CLIENT_ID is empty"),
        ("1::http://x/cb", "CLIENT_SECRET is empty"),
        ("1:s:", "REDIRECT_URI is empty"),
        ("1:s s:http://x/cb", "CLIENT_SECRET contains white space"),
        ("1:s:/relative/cb", "is not an absolute URI"),
        ("1:s:http:///nohost", "is not an absolute URI"),
        ("1:s:http://x/cb#frag", "has a fragment"),
    ])
    func refusesMalformedValues(input: String, expected: String) {
        do {
            _ = try SandboxApp(parsing: input)
            Issue.record("accepted \(input)")
        } catch {
            #expect(String(describing: error).contains(expected), "\(error)")
        }
    }

    @Test func demoAppIsFixed() {
        #expect(SandboxApp.demo.clientID == "3458764513820540928")
        #expect(SandboxApp.demo.clientSecret == "sandbox-demo-secret-0123456789abcdef")
        #expect(SandboxApp.demo.redirectURI == "http://127.0.0.1:8765/callback")
    }
}

@Suite struct SandboxUnitTests {
    @Test func formDecodingTreatsPlusAsSpaceAndPercentEscapes() throws {
        let params = try FormParameters(decoding: "a=x+y&b=%2B%26%3D&c&&d=caf%C3%A9&e=")
        #expect(params.pairs.map(\.name) == ["a", "b", "c", "d", "e"])
        #expect(params.pairs.map(\.value) == ["x y", "+&=", "", "café", ""])
        #expect(throws: SandboxRequestError.self) { try FormParameters(decoding: "a=%zz") }
        #expect(throws: SandboxRequestError.self) { try FormParameters(decoding: "a=%FF") }
    }

    @Test func mergedParametersRefuseConflictsByteForByte() throws {
        let query = try FormParameters(decoding: "a=1&b=2")
        let body = try FormParameters(decoding: "b=2&c=3")
        let merged = try MergedParameters([query, body])
        #expect(merged["a"] == "1" && merged["b"] == "2" && merged["c"] == "3")
        // "é" precomposed vs decomposed: equal as Swift strings, different bytes.
        let composed = try FormParameters(decoding: "r=%C3%A9")
        let decomposed = try FormParameters(decoding: "r=e%CC%81")
        #expect(throws: SandboxRequestError.conflictingParameter("r")) { try MergedParameters([composed, decomposed]) }
    }

    @Test func basicCredentials() throws {
        let header = "basic " + Data("a%3Ab:c%2Bd:e".utf8).base64EncodedString()
        #expect(try BasicCredentials.parse(header) == BasicCredentials(clientID: "a:b", clientSecret: "c+d:e"))
        #expect(try BasicCredentials.parse("Bearer abc") == nil)
        #expect(throws: BasicCredentialsError.self) { try BasicCredentials.parse("Basic %%%") }
    }

    @Test func redirectLocationKeepsExistingQueryAndFragment() {
        #expect(SandboxRouter.append(query: "code=1", to: "https://a.example/cb") == "https://a.example/cb?code=1")
        #expect(SandboxRouter.append(query: "code=1", to: "https://a.example/cb?x=2") == "https://a.example/cb?x=2&code=1")
        #expect(SandboxRouter.append(query: "code=1", to: "myapp:/cb#f") == "myapp:/cb?code=1#f")
    }

    @Test func hostNameIgnoresPortAndCase() {
        func host(_ value: String) -> String? {
            SandboxRequest(method: "GET", uri: "/", headers: [("Host", value)], body: []).hostName
        }
        #expect(host("API.miro.com:8443") == "api.miro.com")
        #expect(host("miro.com") == "miro.com")
        #expect(host("[::1]:443") == "::1")
        #expect(SandboxRequest(method: "GET", uri: "/", headers: [], body: []).hostName == nil)
    }

    @Test func missingHostIs400() {
        let router = SandboxRouter(configuration: SandboxConfiguration())
        let response = router.handle(SandboxRequest(method: "GET", uri: "/v2/boards", headers: [], body: []))
        #expect(response.status == 400)
    }

    @Test func tokensAreMiroShapedAndDistinct() {
        let a = MiroToken.make(), b = MiroToken.make()
        #expect(a != b)
        #expect(a.hasPrefix("eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_") && a.count == 31 + 43)
        #expect(Data(base64Encoded: "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ==").map { String(decoding: $0, as: UTF8.self) } == "{\"miro.origin\":\"eu01\"}")
    }
}
