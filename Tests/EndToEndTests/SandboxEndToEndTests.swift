import Foundation
import Testing

/// A running `tokentap sandbox` in a temporary home, and the proxies (one per session) that reach
/// it through `--map-remote` (miro.com and api.miro.com → the sandbox) trusting its CA with
/// `--upstream-ca`. Clients reach the proxy with curl (`--proxy`, `--cacert` tokentap's CA) or with
/// Python (`HTTPS_PROXY`, `REQUESTS_CA_BUNDLE`). Shared by the sandbox and doctor suites.
final class SandboxRig: @unchecked Sendable {
    let dir: URL
    let home: String
    let sandbox: ServerProcess
    /// The sandbox's demo app, as printed on its `demo app:` line.
    let clientID: String
    let clientSecret: String
    let redirectURI: String
    /// The sandbox CA's absolute path, as printed on its `sandbox CA:` line.
    let sandboxCA: String

    static let authorizeURL = "https://miro.com/oauth/authorize"
    static let tokenURL = "https://api.miro.com/v1/oauth/token"
    static let boardsURL = "https://api.miro.com/v2/boards"
    static let advanceURL = "https://api.miro.com/__sandbox/advance"
    /// base64url of `{"miro.origin":"eu01"}` + `_`: how Miro's codes and tokens start (miro-oauth.md).
    static let miroTokenPrefix = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_"

    init(sandboxArguments: [String] = [], homeName: String = "home") throws {
        dir = try makeTemporaryDirectory("tokentap-sandbox-e2e")
        home = dir.appendingPathComponent(homeName).path
        sandbox = try ServerProcess(["sandbox", "--home", home, "--listen", "127.0.0.1:0"] + sandboxArguments)
        guard let demo = sandbox.line(startingWith: "demo app: ")?.split(separator: " ").map(String.init), demo.count == 3 else {
            throw ProcessFailure(message: "sandbox printed no 'demo app: CLIENT_ID CLIENT_SECRET REDIRECT_URI' line: \(sandbox.lines.withLockedValue { $0 })")
        }
        (clientID, clientSecret, redirectURI) = (demo[0], demo[1], demo[2])
        guard let ca = sandbox.line(startingWith: "sandbox CA: "), FileManager.default.fileExists(atPath: ca) else {
            throw ProcessFailure(message: "sandbox printed no 'sandbox CA: PATH' line naming an existing file: \(sandbox.lines.withLockedValue { $0 })")
        }
        sandboxCA = ca
    }

    deinit { stop() }

    func stop() {
        sandbox.stop()
    }

    /// tokentap's CA (created by the first proxy started in this home).
    var proxyCA: String { home + "/certs/tokentap-ca.pem" }

    /// Starts `tokentap proxy` recording into `session`, reaching the sandbox for both Miro hosts.
    func startProxy(session: String) throws -> ServerProcess {
        try ServerProcess(["proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", session,
                           "--map-remote", "miro.com=127.0.0.1:\(sandbox.port)",
                           "--map-remote", "api.miro.com=127.0.0.1:\(sandbox.port)",
                           "--upstream-ca", sandboxCA])
    }

    // MARK: - curl

    /// One HTTP answer as a client saw it.
    struct Reply {
        var status: Int
        /// Header names lower-cased; the last value wins.
        var headers: [String: String]
        var body: String
        var location: String? { headers["location"] }
        /// The body as a JSON object (nil when it is not one).
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// curl through `proxy`, trusting tokentap's CA, never following redirects. Throws when curl
    /// itself fails (no HTTP answer).
    func curl(_ proxy: ServerProcess, _ arguments: [String]) throws -> Reply {
        let headerFile = dir.appendingPathComponent("headers-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: headerFile) }
        let result = try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", proxyCA, "--max-time", "30",
                                                      "-D", headerFile.path, "-w", "\n%{http_code}"] + arguments)
        guard result.status == 0 else {
            throw ProcessFailure(message: "curl \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        var text = result.text
        guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]) else {
            throw ProcessFailure(message: "curl printed no status: \(text)")
        }
        text = String(text[..<newline])
        // The header dump holds the proxy's CONNECT answer first; keep the last response's headers.
        let dump = (try? String(contentsOf: headerFile, encoding: .utf8)) ?? ""
        var headers: [String: String] = [:]
        for line in dump.components(separatedBy: "\r\n") {
            if line.hasPrefix("HTTP/") { headers = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: text)
    }

    /// `application/x-www-form-urlencoded` (RFC 6749 Appendix B): unreserved characters kept,
    /// everything else percent-encoded.
    static func form(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
    }

    /// `GET /oauth/authorize` (auto-consent) without following the redirect.
    func authorize(_ proxy: ServerProcess, redirectURI: String? = nil, state: String = "state-42") throws -> Reply {
        let query = Self.form([("response_type", "code"), ("client_id", clientID),
                               ("redirect_uri", redirectURI ?? self.redirectURI), ("state", state)])
        return try curl(proxy, ["\(Self.authorizeURL)?\(query)"])
    }

    /// The `code` query parameter of a redirect's Location.
    static func code(in reply: Reply) -> String? {
        guard let location = reply.location, let items = URLComponents(string: location)?.queryItems else { return nil }
        return items.first { $0.name == "code" }?.value
    }

    /// An `authorization_code` exchange with every parameter in the form body.
    func exchange(_ proxy: ServerProcess, code: String, redirectURI: String? = nil, secret: String? = nil) throws -> Reply {
        let body = Self.form([("grant_type", "authorization_code"), ("client_id", clientID),
                              ("client_secret", secret ?? clientSecret), ("code", code),
                              ("redirect_uri", redirectURI ?? self.redirectURI)])
        return try curl(proxy, ["-d", body, Self.tokenURL])
    }

    /// A `refresh_token` grant in the query-string style of Miro's docs (POST, empty body).
    func refresh(_ proxy: ServerProcess, refreshToken: String) throws -> Reply {
        let query = Self.form([("grant_type", "refresh_token"), ("refresh_token", refreshToken),
                               ("client_id", clientID), ("client_secret", clientSecret)])
        return try curl(proxy, ["-X", "POST", "-d", "", "\(Self.tokenURL)?\(query)"])
    }

    /// `GET /v2/boards`, with `Authorization: Bearer TOKEN` when a token is given.
    func boards(_ proxy: ServerProcess, token: String?) throws -> Reply {
        try curl(proxy, (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? []) + [Self.boardsURL])
    }

    /// Moves the sandbox clock forward (`POST /__sandbox/advance?seconds=N`), through the proxy so
    /// the recording (and the diagnosis's session clock) sees it.
    func advance(_ proxy: ServerProcess, seconds: Int) throws -> Reply {
        try curl(proxy, ["-X", "POST", "-d", "", "\(Self.advanceURL)?seconds=\(seconds)"])
    }

    /// A full code exchange: authorize, then exchange. Returns the token response body.
    func obtainTokens(_ proxy: ServerProcess) throws -> [String: Any] {
        let redirect = try authorize(proxy)
        guard let code = Self.code(in: redirect) else { throw ProcessFailure(message: "authorize gave no code: \(redirect)") }
        let reply = try exchange(proxy, code: code)
        guard reply.status == 200, let json = reply.json else { throw ProcessFailure(message: "exchange failed: \(reply.status) \(reply.body)") }
        return json
    }

    // MARK: - Python

    /// `TOKENTAP_PYTHON`: the interpreter with `requests` and `requests-oauthlib` (scripts/test sets
    /// it to the checkout's `.venv`). Throws, so the test fails, when it is not set or not there.
    static func pythonInterpreter() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["TOKENTAP_PYTHON"], !path.isEmpty else {
            throw ProcessFailure(message: "TOKENTAP_PYTHON is not set: this test drives real Python clients. Run scripts/test "
                + "(it creates .venv with requests and requests-oauthlib and sets TOKENTAP_PYTHON), or set "
                + "TOKENTAP_PYTHON to a python that has them.")
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProcessFailure(message: "TOKENTAP_PYTHON=\(path) is not an executable file: run scripts/test to create .venv")
        }
        return path
    }

    /// Runs `Tests/EndToEndTests/Python/SCRIPT ARGS` through `proxy` and parses the JSON document it prints.
    func python(_ proxy: ServerProcess, script: String, _ arguments: [String]) throws -> [String: Any] {
        let interpreter = try Self.pythonInterpreter()
        let path = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/\(script)").path
        var environment = ProcessInfo.processInfo.environment
        for name in ["NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE", "SSL_CERT_FILE"] {
            environment[name] = nil
        }
        environment["HTTPS_PROXY"] = proxy.proxyURL
        environment["https_proxy"] = proxy.proxyURL
        environment["REQUESTS_CA_BUNDLE"] = proxyCA
        let result = try runCommand(interpreter, [path] + arguments, environment: environment)
        guard result.status == 0 else {
            throw ProcessFailure(message: "\(script) \(arguments.joined(separator: " ")) exited \(result.status)\nstdout: \(result.text)\nstderr: \(result.stderr)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] else {
            throw ProcessFailure(message: "\(script) printed no JSON object: \(result.text)\nstderr: \(result.stderr)")
        }
        return json
    }

    // MARK: - tokentap list / doctor

    /// `tokentap list --session S --json` (`--all`: every kind of row, not only `http`).
    func list(session: String, all: Bool = false) throws -> [[String: Any]] {
        let result = try tokentap(["list", "--home", home, "--session", session, "--json"] + (all ? ["--all"] : []))
        guard result.status == 0, let array = try? JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]] else {
            throw ProcessFailure(message: "tokentap list failed (\(result.status)): \(result.text) \(result.stderr)")
        }
        return array
    }

    /// `tokentap doctor --session S --json`.
    func doctor(session: String) throws -> [String: Any] {
        let result = try tokentap(["doctor", "--home", home, "--session", session, "--json"])
        guard result.status == 0, let object = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] else {
            throw ProcessFailure(message: "tokentap doctor failed (\(result.status)): \(result.text) \(result.stderr)")
        }
        return object
    }
}

/// Checks a Miro error envelope: `{"status":S,"code":C,"message":M,"type":"error"}`.
func expectMiroError(_ reply: SandboxRig.Reply, status: Int, code: String, message: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "HTTP status; body: \(reply.body)", sourceLocation: sourceLocation)
    let json = reply.json
    #expect(json?["status"] as? Int == status, "envelope status in \(reply.body)", sourceLocation: sourceLocation)
    #expect(json?["code"] as? String == code, "envelope code in \(reply.body)", sourceLocation: sourceLocation)
    #expect(json?["message"] as? String == message, "envelope message in \(reply.body)", sourceLocation: sourceLocation)
    #expect(json?["type"] as? String == "error", "envelope type in \(reply.body)", sourceLocation: sourceLocation)
}

/// Checks a token endpoint success body (miro-oauth.md, "Token exchange").
func expectMiroTokens(_ json: [String: Any]?, sourceLocation: SourceLocation = #_sourceLocation) {
    let access = json?["access_token"] as? String ?? ""
    let refresh = json?["refresh_token"] as? String ?? ""
    #expect(access.hasPrefix(SandboxRig.miroTokenPrefix), "access_token is Miro-shaped", sourceLocation: sourceLocation)
    #expect(refresh.hasPrefix(SandboxRig.miroTokenPrefix), "refresh_token is Miro-shaped", sourceLocation: sourceLocation)
    #expect(access != refresh, sourceLocation: sourceLocation)
    #expect((json?["expires_in"] as? NSNumber)?.intValue == 3599, sourceLocation: sourceLocation)
    #expect((json?["token_type"] as? String)?.lowercased() == "bearer", sourceLocation: sourceLocation)
    #expect(json?["scope"] as? String == "boards:read boards:write", sourceLocation: sourceLocation)
    #expect(json?["team_id"] != nil, sourceLocation: sourceLocation)
    #expect(json?["user_id"] != nil, sourceLocation: sourceLocation)
}

/// The sandbox through the real proxy, driven by curl and Python `requests-oauthlib`: the complete
/// flow and every failure the sandbox imitates (issue 6). Serialized; each test has its own
/// sandbox, home and proxy on `:0` ports.
@Suite("Sandbox end to end", .serialized)
final class SandboxEndToEndTests {
    let rig: SandboxRig

    init() throws {
        rig = try SandboxRig()
    }

    deinit { rig.stop() }

    @Test("curl: authorize → 302 → exchange → REST → refresh → REST with the new token; the old one is revoked")
    func curlFlow() throws {
        let proxy = try rig.startProxy(session: "curl-flow")
        defer { #expect(proxy.stop() == 0) }

        let redirect = try rig.authorize(proxy, state: "xyz-1")
        #expect(redirect.status == 302, "\(redirect.body)")
        let location = try #require(redirect.location)
        #expect(location.hasPrefix(rig.redirectURI + "?code=" + SandboxRig.miroTokenPrefix))
        let items = try #require(URLComponents(string: location)?.queryItems)
        #expect(items.first { $0.name == "state" }?.value == "xyz-1")
        #expect(items.first { $0.name == "client_id" }?.value == rig.clientID)
        #expect(items.first { $0.name == "team_id" }?.value?.isEmpty == false)
        let code = try #require(SandboxRig.code(in: redirect))

        let exchange = try rig.exchange(proxy, code: code)
        #expect(exchange.status == 200, "\(exchange.body)")
        #expect(exchange.headers["content-type"]?.hasPrefix("application/json") == true)
        #expect(exchange.headers["cache-control"] == "no-store")
        expectMiroTokens(exchange.json)
        let access = try #require(exchange.json?["access_token"] as? String)
        let refreshToken = try #require(exchange.json?["refresh_token"] as? String)

        let boards = try rig.boards(proxy, token: access)
        #expect(boards.status == 200, "\(boards.body)")
        let list = try #require(boards.json)
        #expect(list["type"] as? String == "list")
        #expect((list["data"] as? [[String: Any]])?.count == 2)
        #expect(boards.headers["x-ratelimit-limit"] == "100000")
        #expect(boards.headers["x-ratelimit-remaining"] == "99999")
        #expect(boards.headers["x-ratelimit-reset"].flatMap { Int($0) } != nil)

        let refreshed = try rig.refresh(proxy, refreshToken: refreshToken)
        #expect(refreshed.status == 200, "\(refreshed.body)")
        expectMiroTokens(refreshed.json)
        let newAccess = try #require(refreshed.json?["access_token"] as? String)
        #expect(newAccess != access)
        #expect(refreshed.json?["refresh_token"] as? String != refreshToken)

        let again = try rig.boards(proxy, token: newAccess)
        #expect(again.status == 200, "\(again.body)")
        #expect((again.json?["data"] as? [[String: Any]])?.count == 2)
        // Rotation: the access token of the replaced pair stops working at once.
        expectMiroError(try rig.boards(proxy, token: access), status: 401, code: "tokenRevoked",
                        message: "Access token was revoked: a refresh replaced it.")

        // The proxy recorded the six exchanges of the session, in order.
        #expect(proxy.stop() == 0)
        let recorded = try rig.list(session: "curl-flow")
        #expect(recorded.map { $0["status"] as? Int } == [302, 200, 200, 200, 200, 401])
        #expect(recorded.map { $0["method"] as? String } == ["GET", "POST", "GET", "POST", "GET", "GET"])
    }

    @Test("requests-oauthlib: authorization_url → 302 → fetch_token → REST → refresh_token → REST", arguments: ["basic", "body"])
    func oauthlibFlow(clientAuth: String) throws {
        let proxy = try rig.startProxy(session: "oauthlib-\(clientAuth)")
        defer { #expect(proxy.stop() == 0) }
        let result = try rig.python(proxy, script: "oauthlib_flow.py", [rig.clientID, rig.clientSecret, rig.redirectURI, clientAuth])

        let authorize = try #require(result["authorize"] as? [String: Any])
        #expect(authorize["status"] as? Int == 302, "\(authorize)")
        let location = try #require(authorize["location"] as? String)
        #expect(location.hasPrefix(rig.redirectURI + "?code=" + SandboxRig.miroTokenPrefix))
        #expect(location.contains("state=\(authorize["state"] as? String ?? "-")"))

        // The bodies as the sandbox sent them (oauthlib's token dict turns `scope` into a list).
        func body(_ step: String) -> [String: Any]? {
            ((result[step] as? [String: Any])?["body"] as? String).flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let token = body("token")
        expectMiroTokens(token)
        // oauthlib parsed the response into the session's token.
        let parsed = (result["token"] as? [String: Any])?["token"] as? [String: Any]
        #expect(parsed?["access_token"] as? String == token?["access_token"] as? String)
        #expect(parsed?["scope"] as? [String] == ["boards:read", "boards:write"])
        let boards = try #require(result["boards"] as? [String: Any])
        #expect(boards["status"] as? Int == 200, "\(boards)")
        #expect(boards["ratelimit_limit"] as? String == "100000")
        #expect((boards["body"] as? String)?.contains("\"Sandbox board 1\"") == true)

        let refreshed = body("refresh")
        expectMiroTokens(refreshed)
        #expect(refreshed?["access_token"] as? String != token?["access_token"] as? String)
        #expect(refreshed?["refresh_token"] as? String != token?["refresh_token"] as? String)
        let boardsNew = try #require(result["boards_new"] as? [String: Any])
        #expect(boardsNew["status"] as? Int == 200, "\(boardsNew)")
        let boardsOld = try #require(result["boards_old"] as? [String: Any])
        #expect(boardsOld["status"] as? Int == 401, "\(boardsOld)")
        #expect((boardsOld["body"] as? String)?.contains("\"code\":\"tokenRevoked\"") == true)

        // The token requests went as requests-oauthlib sends them: form bodies, with Basic or body credentials.
        #expect(proxy.stop() == 0)
        let recorded = try rig.list(session: "oauthlib-\(clientAuth)")
        let tokenCalls = recorded.filter { ($0["url"] as? String)?.hasPrefix(SandboxRig.tokenURL) == true }
        #expect(tokenCalls.count == 2)
        #expect(tokenCalls.allSatisfy { $0["method"] as? String == "POST" && $0["status"] as? Int == 200 })
    }

    @Test("a code exchanged twice: the second exchange gets 401 'already been used'")
    func reusedCode() throws {
        let proxy = try rig.startProxy(session: "reused-code")
        defer { proxy.stop() }
        let code = try #require(SandboxRig.code(in: try rig.authorize(proxy)))
        let first = try rig.exchange(proxy, code: code)
        #expect(first.status == 200, "\(first.body)")
        expectMiroError(try rig.exchange(proxy, code: code), status: 401, code: "oauthError",
                        message: "Authorization code has already been used.")
    }

    @Test("a code exchanged after its 10 minutes (sandbox clock advanced) gets 401 'expired'; before, it works")
    func expiredCode() throws {
        let proxy = try rig.startProxy(session: "expired-code")
        defer { proxy.stop() }
        let code = try #require(SandboxRig.code(in: try rig.authorize(proxy)))
        let advanced = try rig.advance(proxy, seconds: 601)
        #expect(advanced.status == 200, "\(advanced.body)")
        #expect((advanced.json?["advanced"] as? NSNumber)?.doubleValue == 601)
        expectMiroError(try rig.exchange(proxy, code: code), status: 401, code: "oauthError",
                        message: "Authorization code has expired.")

        // A code issued after the advance is fresh on the moved clock: 599 s later it still works.
        let fresh = try #require(SandboxRig.code(in: try rig.authorize(proxy)))
        #expect(try rig.advance(proxy, seconds: 599).status == 200)
        let ok = try rig.exchange(proxy, code: fresh)
        #expect(ok.status == 200, "\(ok.body)")
        expectMiroTokens(ok.json)
    }

    @Test("redirect_uri with a trailing slash: 400 at authorize, 401 at the exchange, both 'Redirect URI mismatch.'")
    func redirectMismatch() throws {
        let proxy = try rig.startProxy(session: "redirect-mismatch")
        defer { proxy.stop() }
        let atAuthorize = try rig.authorize(proxy, redirectURI: rig.redirectURI + "/")
        expectMiroError(atAuthorize, status: 400, code: "oauthError", message: "Redirect URI mismatch.")
        #expect(atAuthorize.location == nil)

        let code = try #require(SandboxRig.code(in: try rig.authorize(proxy)))
        expectMiroError(try rig.exchange(proxy, code: code, redirectURI: rig.redirectURI + "/"), status: 401, code: "oauthError",
                        message: "Redirect URI mismatch.")
        // The failed exchange did not consume the code: the right redirect_uri still gets tokens.
        let ok = try rig.exchange(proxy, code: code)
        #expect(ok.status == 200, "\(ok.body)")
    }

    @Test("a wrong client secret gets 401 'Invalid client_secret.', in the body and in a Basic header")
    func wrongSecret() throws {
        let proxy = try rig.startProxy(session: "wrong-secret")
        defer { proxy.stop() }
        let code = try #require(SandboxRig.code(in: try rig.authorize(proxy)))
        expectMiroError(try rig.exchange(proxy, code: code, secret: "not-the-apps-secret"), status: 401, code: "oauthError",
                        message: "Invalid client_secret.")

        let body = SandboxRig.form([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", rig.redirectURI)])
        let basic = try rig.curl(proxy, ["-u", "\(rig.clientID):not-the-apps-secret", "-d", body, SandboxRig.tokenURL])
        expectMiroError(basic, status: 401, code: "oauthError", message: "Invalid client_secret.")
        #expect(basic.headers["www-authenticate"]?.hasPrefix("Basic") == true)
        // The right secret in a Basic header works (RFC 6749 §2.3.1).
        let ok = try rig.curl(proxy, ["-u", "\(rig.clientID):\(rig.clientSecret)", "-d", body, SandboxRig.tokenURL])
        #expect(ok.status == 200, "\(ok.body)")
    }

    @Test("a refresh token presented again after a refresh rotated it gets 401; the new one works")
    func staleRefreshToken() throws {
        let proxy = try rig.startProxy(session: "stale-refresh")
        defer { proxy.stop() }
        let tokens = try rig.obtainTokens(proxy)
        let oldRefresh = try #require(tokens["refresh_token"] as? String)
        let first = try rig.refresh(proxy, refreshToken: oldRefresh)
        #expect(first.status == 200, "\(first.body)")
        let newRefresh = try #require(first.json?["refresh_token"] as? String)
        expectMiroError(try rig.refresh(proxy, refreshToken: oldRefresh), status: 401, code: "oauthError",
                        message: "Refresh token has already been used: refresh tokens rotate on every refresh.")
        let second = try rig.refresh(proxy, refreshToken: newRefresh)
        #expect(second.status == 200, "\(second.body)")
        expectMiroTokens(second.json)
    }

    @Test("a REST call without a Bearer token gets 401 tokenNotProvided; an unknown token 401 tokenNotFound")
    func missingBearer() throws {
        let proxy = try rig.startProxy(session: "missing-bearer")
        defer { proxy.stop() }
        expectMiroError(try rig.boards(proxy, token: nil), status: 401, code: "tokenNotProvided",
                        message: "No access token provided: send Authorization: Bearer <access_token>.")
        expectMiroError(try rig.boards(proxy, token: SandboxRig.miroTokenPrefix + "unknown"), status: 401, code: "tokenNotFound",
                        message: "Access token not found.")
        // The token context endpoint answers a bad token with Miro's documented 400.
        let context = try rig.curl(proxy, ["-H", "Authorization: Bearer nope", "https://api.miro.com/v1/oauth-token"])
        #expect(context.status == 400)
        #expect(context.json?["message"] as? String == "Invalid token provided")
    }
}
