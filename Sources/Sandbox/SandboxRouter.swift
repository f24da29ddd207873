import Foundation
import Synchronization

/// A request as the sandbox sees it: NIO-free, so routing is testable without sockets.
struct SandboxRequest: Sendable {
    var method: String
    /// The request target (`/v1/oauth/token?grant_type=…`, or absolute-form).
    var uri: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// The first value of a header (case-insensitive name).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The Host header's name without port, lower-cased; brackets of an IPv6 literal removed.
    var hostName: String? {
        guard let host = header("host")?.trimmingCharacters(in: .whitespaces), !host.isEmpty else { return nil }
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            return String(host[host.index(after: host.startIndex)..<close]).lowercased()
        }
        return String(host.prefix { $0 != ":" }).lowercased()
    }
}

/// A response to write.
struct SandboxResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
}

/// Miro's error envelope: `{"status":401,"code":"oauthError","message":"…","type":"error"}`
/// (miro-oauth.md, "Errors"; developers.miro.com/docs/troubleshooting-oauth20).
struct MiroErrorBody: Codable, Sendable, Equatable {
    var status: Int
    var code: String
    var message: String
    var type = "error"
}

/// The token endpoint's success body (developers.miro.com/docs/getting-started-with-oauth).
struct TokenResponseBody: Codable, Sendable {
    var user_id: String
    var access_token: String
    var refresh_token: String
    var expires_in: Int
    var team_id: String
    var scope: String
    var token_type = "bearer"
}

/// Messages the sandbox answers with. Only `redirectMismatch` is documented by Miro
/// (developers.miro.com/docs/troubleshooting-oauth20); every other text, and the status of every
/// failure other than the REST API's 401 `tokenNotProvided` and 429 `tooManyRequests`, is an
/// **assumption** (miro-oauth.md: "public reports say 401 for most of them").
enum SandboxMessage {
    /// Documented by Miro.
    static let redirectMismatch = "Redirect URI mismatch."
    /// Documented by Miro (GET /v1/oauth-token answers 400 with it for a bad token).
    static let invalidTokenProvided = "Invalid token provided"
    // Assumptions from here on.
    static func missing(_ name: String) -> String { "Missing required parameter: \(name)." }
    static func conflicting(_ name: String) -> String { "Parameter \(name) was sent more than once with different values." }
    static func malformed(_ text: String) -> String { "Malformed percent-encoding in request parameters: \(text)" }
    static let unsupportedResponseType = "Unsupported response_type: only \"code\" is supported."
    static let unknownClient = "Unknown client_id."
    static let invalidSecret = "Invalid client_secret."
    static let malformedBasic = "Malformed Basic authorization header."
    static let credentialConflict = "Client credentials in the Authorization header and in the parameters differ."
    static let unsupportedGrant = "Unsupported grant_type: use authorization_code or refresh_token."
    static let jsonBody = "JSON request bodies are not accepted: send application/x-www-form-urlencoded parameters."
    static func unsupportedContentType(_ type: String) -> String {
        "Unsupported Content-Type \(type): send application/x-www-form-urlencoded parameters."
    }
    static let invalidCode = "Invalid authorization code."
    static let codeOtherClient = "Authorization code was issued to another client."
    static let codeUsed = "Authorization code has already been used."
    static let codeExpired = "Authorization code has expired."
    static let invalidRefresh = "Invalid refresh token."
    static let refreshOtherClient = "Refresh token was issued to another client."
    static let refreshRotated = "Refresh token has already been used: refresh tokens rotate on every refresh."
    static let refreshExpired = "Refresh token has expired."
    static let tokenNotProvided = "No access token provided: send Authorization: Bearer <access_token>."
    static let tokenNotFound = "Access token not found."
    static let tokenExpired = "Access token has expired."
    static let tokenRevoked = "Access token was revoked: a refresh replaced it."
    static let tooManyRequests = "Too many requests: the rate limit budget for this minute is spent."
    static let notFound = "Not found."
    static let missingHost = "Missing Host header."
    static let bodyTooLarge = "Request body too large."
}

/// Routes requests to the imitated endpoints, keyed on the Host header (port ignored):
/// `miro.com` serves the authorize endpoint, `api.miro.com` the token, token-context, REST and
/// `/__sandbox` endpoints; any other host name (`localhost`, `127.0.0.1`) serves all of them.
///
/// Thread-safe: all state sits behind one `Mutex`.
final class SandboxRouter: Sendable {
    let configuration: SandboxConfiguration
    private let state = Mutex(SandboxState())
    /// The team and user every grant belongs to (made-up decimal IDs, Miro-like).
    static let defaultTeamID = "3458764517517818866"
    static let userID = "3458764517517852417"
    static let scope = "boards:read boards:write"
    static let maxBodyBytes = 1 << 20

    init(configuration: SandboxConfiguration) {
        self.configuration = configuration
    }

    /// The sandbox clock now (epoch seconds).
    var now: Double {
        state.withLock { clock($0) }
    }

    private func clock(_ state: SandboxState) -> Double {
        Date().timeIntervalSince1970 + configuration.clockOffset + state.advanced
    }

    private enum HostKind { case web, api, any }

    func handle(_ request: SandboxRequest) -> SandboxResponse {
        guard let host = request.hostName else { return error(400, "invalidParameters", SandboxMessage.missingHost) }
        let kind: HostKind = switch host {
        case "miro.com", "www.miro.com": .web
        case "api.miro.com": .api
        default: .any
        }
        let (path, query) = Self.split(target: request.uri)
        do {
            switch (path, kind) {
            case ("/oauth/authorize", .web), ("/oauth/authorize", .any):
                guard request.method == "GET" else { return methodNotAllowed("GET") }
                return try authorize(query: query)
            case ("/v1/oauth/token", .api), ("/v1/oauth/token", .any):
                guard request.method == "POST" else { return methodNotAllowed("POST") }
                return try token(request, query: query)
            case ("/v1/oauth-token", .api), ("/v1/oauth-token", .any):
                guard request.method == "GET" else { return methodNotAllowed("GET") }
                return try tokenContext(request, query: query)
            case ("/v2/boards", .api), ("/v2/boards", .any):
                guard request.method == "GET" else { return methodNotAllowed("GET") }
                return boards(request)
            case ("/__sandbox/advance", .api), ("/__sandbox/advance", .any):
                guard request.method == "POST" else { return methodNotAllowed("POST") }
                return try advance(query: query)
            default:
                return error(404, "notFound", SandboxMessage.notFound)
            }
        } catch SandboxRequestError.malformedEncoding(let text) {
            return error(400, "invalidParameters", SandboxMessage.malformed(text))
        } catch SandboxRequestError.conflictingParameter(let name) {
            return error(400, "invalidParameters", SandboxMessage.conflicting(name))
        } catch {
            return self.error(400, "invalidParameters", String(describing: error))
        }
    }

    /// Splits an origin-form or absolute-form request target into path and query (without `?`).
    static func split(target: String) -> (path: Substring, query: Substring) {
        var rest = Substring(target)
        if let scheme = rest.range(of: "://"), rest[..<scheme.lowerBound].allSatisfy({ $0.isLetter }) {
            rest = rest[scheme.upperBound...]
            rest = rest[(rest.firstIndex(of: "/") ?? rest.endIndex)...]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        guard let mark = rest.firstIndex(of: "?") else { return (rest.isEmpty ? "/" : rest, "") }
        return (rest[..<mark], rest[rest.index(after: mark)...])
    }

    // MARK: - Authorize (GET https://miro.com/oauth/authorize)

    private func authorize(query: Substring) throws -> SandboxResponse {
        let params = try MergedParameters([FormParameters(decoding: query)])
        guard let responseType = params.nonEmpty("response_type") else {
            return error(400, "oauthError", SandboxMessage.missing("response_type"))
        }
        guard responseType == "code" else { return error(400, "oauthError", SandboxMessage.unsupportedResponseType) }
        guard let clientID = params.nonEmpty("client_id") else {
            return error(400, "oauthError", SandboxMessage.missing("client_id"))
        }
        let apps = configuration.apps.filter { Self.same($0.clientID, clientID) }
        guard !apps.isEmpty else { return error(400, "oauthError", SandboxMessage.unknownClient) }
        guard let redirectURI = params.nonEmpty("redirect_uri") else {
            return error(400, "oauthError", SandboxMessage.missing("redirect_uri"))
        }
        // Byte-for-byte comparison (miro-oauth.md: "trailing slash, www."); Swift's `==` would
        // treat canonically equivalent Unicode as equal.
        guard apps.contains(where: { Self.same($0.redirectURI, redirectURI) }) else {
            return error(400, "oauthError", SandboxMessage.redirectMismatch)
        }
        let teamID = params.nonEmpty("team_id") ?? Self.defaultTeamID
        let code = MiroToken.make()
        state.withLock { state in
            state.codes[code] = CodeGrant(clientID: clientID, redirectURI: redirectURI, teamID: teamID,
                                          userID: Self.userID, expiresAt: clock(state) + configuration.codeTTL)
        }
        var query = "code=\(FormParameters.encode(code))"
        if let stateValue = params["state"] { query += "&state=\(FormParameters.encode(stateValue))" }
        query += "&client_id=\(FormParameters.encode(clientID))&team_id=\(FormParameters.encode(teamID))"
        return SandboxResponse(status: 302, headers: [("Location", Self.append(query: query, to: redirectURI)),
                                                      ("Cache-Control", "no-store")])
    }

    /// Adds `query` to a URI that may already have a query (the fragment, if any, stays last).
    static func append(query: String, to uri: String) -> String {
        var base = Substring(uri), fragment: Substring = ""
        if let hash = base.firstIndex(of: "#") { (base, fragment) = (base[..<hash], base[hash...]) }
        let separator = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return "\(base)\(separator)\(query)\(fragment)"
    }

    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    // MARK: - Token endpoint (POST https://api.miro.com/v1/oauth/token)

    private func token(_ request: SandboxRequest, query: Substring) throws -> SandboxResponse {
        var sources = [try FormParameters(decoding: query)]
        if !request.body.isEmpty {
            let contentType = request.header("content-type") ?? ""
            let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if media == "application/json" || media.hasSuffix("+json") {
                // Assumption: RFC 6749 §4.1.3 requires form encoding; no Miro source says JSON works.
                return error(400, "oauthError", SandboxMessage.jsonBody)
            }
            guard media == "application/x-www-form-urlencoded" else {
                return error(400, "oauthError", SandboxMessage.unsupportedContentType(contentType.isEmpty ? "(none)" : contentType))
            }
            guard let text = String(validating: request.body, as: UTF8.self) else {
                return error(400, "invalidParameters", SandboxMessage.malformed("body is not UTF-8"))
            }
            sources.append(try FormParameters(decoding: Substring(text)))
        }
        let params = try MergedParameters(sources)

        // Client authentication (RFC 6749 §2.3.1): HTTP Basic, or client_id/client_secret parameters.
        var basic: BasicCredentials?
        if let authorization = request.header("authorization") {
            do { basic = try BasicCredentials.parse(authorization) } catch {
                return self.error(401, "oauthError", SandboxMessage.malformedBasic, basicChallenge: true)
            }
        }
        guard let grantType = params.nonEmpty("grant_type") else {
            return error(400, "oauthError", SandboxMessage.missing("grant_type"))
        }
        guard grantType == "authorization_code" || grantType == "refresh_token" else {
            return error(400, "oauthError", SandboxMessage.unsupportedGrant)
        }
        if let basic {
            if let id = params["client_id"], !Self.same(id, basic.clientID) {
                return error(401, "oauthError", SandboxMessage.credentialConflict, basicChallenge: true)
            }
            if let secret = params["client_secret"], !Self.same(secret, basic.clientSecret) {
                return error(401, "oauthError", SandboxMessage.credentialConflict, basicChallenge: true)
            }
        }
        guard let clientID = basic?.clientID ?? params.nonEmpty("client_id") else {
            return error(401, "oauthError", SandboxMessage.missing("client_id"))
        }
        guard let clientSecret = basic?.clientSecret ?? params.nonEmpty("client_secret") else {
            return error(401, "oauthError", SandboxMessage.missing("client_secret"))
        }
        let apps = configuration.apps.filter { Self.same($0.clientID, clientID) }
        guard !apps.isEmpty else { return error(401, "oauthError", SandboxMessage.unknownClient, basicChallenge: basic != nil) }
        guard apps.contains(where: { Self.same($0.clientSecret, clientSecret) }) else {
            return error(401, "oauthError", SandboxMessage.invalidSecret, basicChallenge: basic != nil)
        }

        if grantType == "authorization_code" {
            guard let code = params.nonEmpty("code") else { return error(400, "oauthError", SandboxMessage.missing("code")) }
            return exchange(code: code, clientID: clientID, redirectURI: params["redirect_uri"])
        }
        guard let refresh = params.nonEmpty("refresh_token") else {
            return error(400, "oauthError", SandboxMessage.missing("refresh_token"))
        }
        return refreshGrant(refresh, clientID: clientID)
    }

    private enum GrantOutcome {
        case failure(String)
        case success(TokenResponseBody)
    }

    private func exchange(code: String, clientID: String, redirectURI: String?) -> SandboxResponse {
        let outcome: GrantOutcome = state.withLock { state in
            let now = clock(state)
            guard var grant = state.codes[code] else { return .failure(SandboxMessage.invalidCode) }
            guard Self.same(grant.clientID, clientID) else { return .failure(SandboxMessage.codeOtherClient) }
            guard !grant.used else { return .failure(SandboxMessage.codeUsed) }
            guard now < grant.expiresAt else { return .failure(SandboxMessage.codeExpired) }
            // RFC 6749 §4.1.3: identical to the authorize request's redirect_uri. A missing one is
            // a mismatch too. A failed exchange does not consume the code (assumption).
            guard let redirectURI, Self.same(redirectURI, grant.redirectURI) else {
                return .failure(SandboxMessage.redirectMismatch)
            }
            grant.used = true
            state.codes[code] = grant
            return .success(issue(&state, clientID: clientID, teamID: grant.teamID, userID: grant.userID, now: now))
        }
        return respond(outcome)
    }

    private func refreshGrant(_ refresh: String, clientID: String) -> SandboxResponse {
        let outcome: GrantOutcome = state.withLock { state in
            let now = clock(state)
            guard var grant = state.refreshTokens[refresh] else { return .failure(SandboxMessage.invalidRefresh) }
            guard Self.same(grant.clientID, clientID) else { return .failure(SandboxMessage.refreshOtherClient) }
            guard grant.supersededAt == nil else { return .failure(SandboxMessage.refreshRotated) }
            guard now < grant.expiresAt else { return .failure(SandboxMessage.refreshExpired) }
            // Rotation (documented by Miro): the old refresh and access tokens stop working at once.
            grant.supersededAt = now
            state.refreshTokens[refresh] = grant
            state.accessTokens[grant.accessToken]?.supersededAt = now
            return .success(issue(&state, clientID: clientID, teamID: grant.teamID, userID: grant.userID, now: now))
        }
        return respond(outcome)
    }

    private func issue(_ state: inout SandboxState, clientID: String, teamID: String, userID: String, now: Double) -> TokenResponseBody {
        let access = MiroToken.make(), refresh = MiroToken.make()
        state.accessTokens[access] = AccessGrant(clientID: clientID, teamID: teamID, userID: userID, issuedAt: now,
                                                 expiresAt: now + configuration.accessTTL)
        state.refreshTokens[refresh] = RefreshGrant(clientID: clientID, teamID: teamID, userID: userID,
                                                    expiresAt: now + configuration.refreshTTL, accessToken: access)
        return TokenResponseBody(user_id: userID, access_token: access, refresh_token: refresh,
                                 expires_in: Int(configuration.accessTTL.rounded()), team_id: teamID, scope: Self.scope)
    }

    private func respond(_ outcome: GrantOutcome) -> SandboxResponse {
        switch outcome {
        case .failure(let message): return error(401, "oauthError", message)
        case .success(let body): return json(200, body, extraHeaders: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
        }
    }

    // MARK: - Bearer checks (REST API and token context)

    private enum BearerOutcome {
        case missing
        case invalid(code: String, message: String)
        case valid(AccessGrant)
    }

    /// The access token of `Authorization: Bearer …` (scheme case-insensitive), or nil when absent/empty.
    private static func bearer(_ request: SandboxRequest) -> String? {
        guard let header = request.header("authorization")?.trimmingCharacters(in: .whitespaces) else { return nil }
        let scheme = header.prefix { $0 != " " }
        guard scheme.lowercased() == "bearer" else { return nil }
        let token = header.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    private func check(_ token: String?, state: SandboxState, now: Double) -> BearerOutcome {
        guard let token else { return .missing }
        guard let grant = state.accessTokens[token] else {
            return .invalid(code: "tokenNotFound", message: SandboxMessage.tokenNotFound)
        }
        if grant.supersededAt != nil { return .invalid(code: "tokenRevoked", message: SandboxMessage.tokenRevoked) }
        if now >= grant.expiresAt { return .invalid(code: "tokenExpired", message: SandboxMessage.tokenExpired) }
        return .valid(grant)
    }

    private enum RateOutcome {
        case allowed(headers: [(name: String, value: String)], grant: AccessGrant)
        case limited(headers: [(name: String, value: String)])
        case rejected(BearerOutcome)
    }

    /// Checks the bearer token and spends one request of its user's budget for the current window.
    private func authenticate(_ token: String?) -> RateOutcome {
        state.withLock { state in
            let now = clock(state)
            let outcome = check(token, state: state, now: now)
            guard case .valid(let grant) = outcome else { return .rejected(outcome) }
            let key = "\(grant.clientID) \(grant.userID)"
            // A window opens with the first request and lasts 60 s (assumption: Miro documents a
            // per-minute budget, not how its minute is aligned).
            var window = state.rateWindows[key] ?? RateWindow(start: now, count: 0)
            if now >= window.start + 60 { window = RateWindow(start: now, count: 0) }
            let limit = max(configuration.rateBudget, 0)
            let reset = String(Int((window.start + 60).rounded(.up)))
            guard window.count < limit else {
                return .limited(headers: [("X-RateLimit-Limit", String(limit)), ("X-RateLimit-Remaining", "0"),
                                          ("X-RateLimit-Reset", reset)])
            }
            window.count += 1
            state.rateWindows[key] = window
            return .allowed(headers: [("X-RateLimit-Limit", String(limit)),
                                      ("X-RateLimit-Remaining", String(limit - window.count)),
                                      ("X-RateLimit-Reset", reset)], grant: grant)
        }
    }

    private func boards(_ request: SandboxRequest) -> SandboxResponse {
        switch authenticate(Self.bearer(request)) {
        case .rejected(.missing):
            return error(401, "tokenNotProvided", SandboxMessage.tokenNotProvided)
        case .rejected(.invalid(let code, let message)):
            return error(401, code, message)
        case .rejected(.valid):
            return error(500, "internalError", "unreachable")
        case .limited(let headers):
            var response = error(429, "tooManyRequests", SandboxMessage.tooManyRequests)
            response.headers += headers
            return response
        case .allowed(let headers, let grant):
            let team = BoardList.Team(id: grant.teamID, name: "Sandbox team", type: "team")
            let data = [
                BoardList.Board(id: "uXjVSandbox1=", type: "board", name: "Sandbox board 1", description: "First fixed board",
                                viewLink: "https://miro.com/app/board/uXjVSandbox1=", team: team,
                                createdAt: "2024-01-15T09:00:00Z", modifiedAt: "2024-03-01T12:30:00Z"),
                BoardList.Board(id: "uXjVSandbox2=", type: "board", name: "Sandbox board 2", description: "Second fixed board",
                                viewLink: "https://miro.com/app/board/uXjVSandbox2=", team: team,
                                createdAt: "2024-02-20T10:00:00Z", modifiedAt: "2024-04-02T08:15:00Z"),
            ]
            let body = BoardList(data: data, total: data.count, size: data.count, offset: 0, limit: 20, type: "list")
            return json(200, body, extraHeaders: headers)
        }
    }

    private func tokenContext(_ request: SandboxRequest, query: Substring) throws -> SandboxResponse {
        // Miro documents both `Authorization: Bearer` and an `access_token` query parameter here.
        let params = try MergedParameters([FormParameters(decoding: query)])
        let token = Self.bearer(request) ?? params.nonEmpty("access_token")
        switch authenticate(token) {
        case .rejected:
            // Documented: "400 Invalid token provided"; the envelope's code is an assumption.
            return error(400, "invalidToken", SandboxMessage.invalidTokenProvided)
        case .limited(let headers):
            var response = error(429, "tooManyRequests", SandboxMessage.tooManyRequests)
            response.headers += headers
            return response
        case .allowed(let headers, let grant):
            let iso = ISO8601DateFormatter()
            let body = TokenContext(
                type: "user", scopes: Self.scope.split(separator: " ").map(String.init),
                team: .init(type: "team", id: grant.teamID, name: "Sandbox team"),
                createdBy: .init(type: "user", id: grant.userID, name: "Sandbox User"),
                user: .init(type: "user", id: grant.userID, name: "Sandbox User"),
                organization: .init(type: "organization", id: "3458764517517800001", name: "Sandbox organization"),
                createdAt: iso.string(from: Date(timeIntervalSince1970: grant.issuedAt)))
            return json(200, body, extraHeaders: headers)
        }
    }

    // MARK: - Sandbox control

    private func advance(query: Substring) throws -> SandboxResponse {
        let params = try MergedParameters([FormParameters(decoding: query)])
        guard let text = params.nonEmpty("seconds") else { return error(400, "invalidParameters", SandboxMessage.missing("seconds")) }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            return error(400, "invalidParameters", "seconds must be a non-negative number, got \(text).")
        }
        let (advanced, now) = state.withLock { state in
            state.advanced += seconds
            return (state.advanced, clock(state))
        }
        return json(200, ClockBody(advanced: advanced, now: now), extraHeaders: [])
    }

    // MARK: - Responses

    private func methodNotAllowed(_ allowed: String) -> SandboxResponse {
        var response = error(405, "methodNotAllowed", "Method not allowed: use \(allowed).")
        response.headers.append(("Allow", allowed))
        return response
    }

    func error(_ status: Int, _ code: String, _ message: String, basicChallenge: Bool = false) -> SandboxResponse {
        var response = json(status, MiroErrorBody(status: status, code: code, message: message), extraHeaders: [])
        // RFC 6749 §5.2: a 401 to a client that tried HTTP authentication carries WWW-Authenticate.
        if basicChallenge { response.headers.append(("WWW-Authenticate", "Basic realm=\"tokentap sandbox\"")) }
        return response
    }

    private func json(_ status: Int, _ value: some Encodable, extraHeaders: [(name: String, value: String)]) -> SandboxResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)).map { Array($0) } ?? Array("{}".utf8)
        return SandboxResponse(status: status, headers: [("Content-Type", "application/json;charset=UTF-8")] + extraHeaders, body: body)
    }
}

struct BoardList: Codable, Sendable {
    struct Team: Codable, Sendable { var id, name, type: String }
    struct Board: Codable, Sendable {
        var id, type, name, description, viewLink: String
        var team: Team
        var createdAt, modifiedAt: String
    }
    var data: [Board]
    var total, size, offset, limit: Int
    var type: String
}

struct TokenContext: Codable, Sendable {
    struct Entity: Codable, Sendable { var type, id, name: String }
    var type: String
    var scopes: [String]
    var team: Entity
    var createdBy: Entity
    var user: Entity
    var organization: Entity
    var createdAt: String
}

struct ClockBody: Codable, Sendable {
    /// Total seconds added by `/__sandbox/advance`.
    var advanced: Double
    /// The sandbox clock, epoch seconds.
    var now: Double
}
