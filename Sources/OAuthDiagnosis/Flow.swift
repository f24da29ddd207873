import Foundation
import Synchronization
import Redaction
import TokentapCore

/// A secret-capable value as the diagnosis compares it: a raw value (the exchange being captured, or
/// a `--keep-secrets` recording) is fingerprinted; a redacted history value is parsed from its
/// placeholder. Both compare by fingerprint; shown only as a placeholder.
struct Val: Hashable {
    var fp: String
    var length: Int
    var flags: Set<ShapeFlag>
    /// The raw value when known (never shown).
    var raw: String?
    /// The placeholder text shown in evidence.
    var display: String
    /// The value was replaced by another tool before tokentap saw it (``RedactedElsewhere``): it is
    /// unknown. Its fingerprint is unique, so it equals no other value, and rules that would conclude
    /// from a difference ("never issued", "differs") skip it.
    var unknown = false

    init(_ text: String, role: String, redactor: Redactor) {
        if let p = Placeholder(parsing: text) {
            fp = p.fingerprint; length = p.length; flags = p.flags; raw = nil; display = p.text
        } else if RedactedElsewhere.isMarker(text) {
            fp = "unknown-" + UUID().uuidString; length = text.count; flags = []; raw = nil
            display = escaped(text) + " (replaced before tokentap saw it)"
            unknown = true
        } else {
            // One fingerprint and one shape scan: `redactor.placeholder(role:value:)` spelled out.
            fp = redactor.fingerprint(text); length = text.count; flags = shapeFlags(of: text); raw = text
            display = Placeholder(role: Placeholder.sanitizedRole(role), fingerprint: fp,
                                  length: text.unicodeScalars.count, flags: flags).text
        }
    }
}

/// The OAuth role an exchange plays in the flow.
enum Role: Equatable {
    case authorize
    /// A request to the app's redirect URI carrying `code` or `error` (the callback).
    case callback
    /// Any other exchange answered with a 3xx whose Location delivers `code` or `error` (a consent form's POST).
    case redirect
    case token
    case api
    case tlsError
    case other
}

/// A parsed token endpoint response (RFC 6749 §5.1/§5.2; Miro's envelope; Slack's `ok:false`).
struct TokenResponse: Sendable {
    var status: Int?
    var accessToken: String?
    var refreshToken: String?
    var expiresIn: Double?
    var refreshExpiresIn: Double?
    var scope: String?
    /// Provider error fields in their order: (name, value).
    var errorFields: [(String, String)]
    var success: Bool { (status.map { (200..<300).contains($0) } ?? false) && errorFields.isEmpty && accessToken != nil }

    /// A lifetime in seconds as the response states it (`3599`, `"3599"`); nil unless finite and
    /// within ±10^12 s: the value is the upstream's, and `nan` or `1e300` must not reach `Int(_:)`.
    static func seconds(_ text: String?) -> Double? {
        guard let value = text.flatMap(Double.init), value.isFinite, abs(value) <= 1e12 else { return nil }
        return value
    }
    var failed: Bool {
        guard let s = status else { return false }
        return s >= 400 || !errorFields.isEmpty
    }

    /// Parses `e`'s response body with the provider's error envelopes (``ProviderProfile/errorEnvelopes``,
    /// the first that recognises an error wins); `parseBody: false` skips the body (large API payloads).
    init(_ e: Exchange, envelopes: [ProviderProfile.ErrorEnvelope], parseBody: Bool = true) {
        status = e.status
        errorFields = []
        let body = parseBody ? e.response.body : Data()
        var dict: [String: String] = [:]
        var order: [String] = []
        if let obj = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) as? [String: Any] {
            for k in obj.keys.sorted() {
                let v = obj[k]!
                if let s = v as? String { dict[k] = s }
                else if k == "ok", let b = v as? Bool { dict[k] = b ? "true" : "false" }
                else if let n = v as? NSNumber { dict[k] = n.stringValue }
                else { dict[k] = "\(v)" }
                order.append(k)
            }
        } else if let text = String(data: body, encoding: .utf8), FormCoding.looksLikeForm(text) {
            for (n, v, _) in RequestParameters.formPairs(text) { dict[n] = v; order.append(n) }
        }
        accessToken = dict["access_token"]
        refreshToken = dict["refresh_token"]
        expiresIn = Self.seconds(dict["expires_in"])
        refreshExpiresIn = Self.seconds(dict["refresh_token_expires_in"])
        scope = dict["scope"]
        for envelope in envelopes {
            if let fields = envelope.errorFields(dict) { errorFields = fields; break }
        }
        _ = order
    }
}


/// One exchange as the flow sees it.
///
/// A class: the rules scan the kept history many times per judgement, and passing a reference
/// around costs one retain where copying this struct's dozen fields cost most of the judgement.
/// Mutated only while it is being built or given its id, by the one thread that owns the history.
final class Observation: @unchecked Sendable {
    /// The exchange as recorded (redacted in history; raw for the exchange being judged).
    /// Its id is set late for live history (``FlowHistory/assignID(_:to:)``).
    var exchange: Exchange
    var id: Int64
    /// When the exchange happened on the session's clock: `started`, plus any test-clock advance
    /// recorded earlier in the session (`tokentap sandbox`'s `POST /__sandbox/advance?seconds=N`).
    var at: Date
    let profile: ProviderProfile
    let params: RequestParameters
    let role: Role
    /// Query of the Location header of a 3xx answer, form-decoded.
    let locationParams: [(String, String)]
    let location: String?
    /// Fingerprints of the `code` and `client_secret` parameters sent (set by `FlowIndex.observe`),
    /// so scans of the history compare strings instead of parsing placeholders.
    var codeFingerprints: [String] = []
    var secretFingerprints: [String] = []
    /// Fingerprints of the access and refresh tokens the response issued (set by `FlowIndex.observe`).
    var accessTokenFingerprint: String?
    var refreshTokenFingerprint: String?

    var isRedirectResponse: Bool { (exchange.status.map { (300..<400).contains($0) } ?? false) }

    /// The `code` this exchange delivered to the app: in the Location of an authorize redirect, or
    /// in the query of the callback request.
    var deliveredCode: String? {
        if role == .authorize || role == .redirect { return locationParams.first { $0.0 == "code" }?.1 }
        if role == .callback { return params.all("code").first { $0.place == .query }?.value }
        return nil
    }
    /// The `state` delivered back with the code or error (`nil` when absent).
    var deliveredState: String? {
        if role == .authorize || role == .redirect { return locationParams.first { $0.0 == "state" }?.1 }
        if role == .callback { return params.all("state").first { $0.place == .query }?.value }
        return nil
    }
    var deliversSomething: Bool {
        if role == .authorize || role == .redirect { return locationParams.contains { $0.0 == "code" || $0.0 == "error" } }
        return role == .callback
    }
    var deliveredError: String? {
        if role == .authorize || role == .redirect { return locationParams.first { $0.0 == "error" }?.1 }
        if role == .callback { return params.value("error") }
        return nil
    }

    /// The grant of a token request: `grant_type` trimmed and lower-cased, else inferred from the parameters.
    /// Computed once (role and parameters never change): the rules ask it of every kept token
    /// request, and trimming and lower-casing each time was a visible share of a judgement.
    let grant: String?

    private static func grant(role: Role, params: RequestParameters) -> String? {
        guard role == .token else { return nil }
        if let g = params.value("grant_type") {
            let t = g.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"'"))).lowercased()
            if t == "authorization_code" || t == "refresh_token" { return t }
            if t.contains("refresh") { return "refresh_token" }
            if t.contains("code") || t.contains("authoriz") { return "authorization_code" }
            if !t.isEmpty { return t }
        }
        if params.has("refresh_token") { return "refresh_token" }
        if params.has("code") { return "authorization_code" }
        return nil
    }

    /// The response parsed as a token response (RFC 6749 §5; also error envelopes for any role).
    let tokenResponse: TokenResponse
    /// Set when the proxy itself reported the failure (``UpstreamFailure/classify(_:)``): what was
    /// recorded is not the provider's answer.
    let upstreamFailure: UpstreamFailure?
    /// Whether the provider saw the request: false when the proxy never reached it (no connection,
    /// failed TLS), so the request used nothing up (a code sent in it is not "used").
    var reachedProvider: Bool { upstreamFailure != .connect && upstreamFailure != .tls }

    /// `scheme://host[:port]path` without the query.
    var endpoint: String {
        let e = exchange
        let d = e.scheme == "https" ? 443 : 80
        return "\(e.scheme)://\(e.host)\(e.port == d ? "" : ":\(e.port)")\(e.path)"
    }

    init(_ e: Exchange, profiles: [ProviderProfile]) {
        exchange = e
        id = e.id ?? 0
        at = e.started
        let host = e.host.lowercased()
        profile = profiles.first { $0.serves(host: host) } ?? profiles.first(where: \.isGeneric) ?? .generic
        params = RequestParameters(e)
        let loc = e.response.headers.first(named: "Location")
        location = loc
        if let loc, let q = loc.firstIndex(of: "?") {
            var query = String(loc[loc.index(after: q)...])
            if let hash = query.firstIndex(of: "#") { query = String(query[..<hash]) }
            locationParams = RequestParameters.formPairs(query).map { ($0.0, $0.1) }
        } else {
            locationParams = []
        }
        var r = Observation.classify(e, params: params, profile: profile)
        if r == .other, let s = e.status, (300..<400).contains(s), locationParams.contains(where: { $0.0 == "code" || $0.0 == "error" }) {
            r = .redirect
        }
        role = r
        grant = Observation.grant(role: r, params: params)
        upstreamFailure = UpstreamFailure.classify(e)
        // Token and error bodies are small; a large successful API payload is never parsed.
        tokenResponse = TokenResponse(e, envelopes: profile.errorEnvelopes, parseBody: r == .token || (e.status ?? 0) >= 300 || e.response.body.count <= 65_536)
    }

    static func classify(_ e: Exchange, params p: RequestParameters, profile: ProviderProfile) -> Role {
        if e.kind == .tlsError { return .tlsError }
        guard e.kind == .http || e.kind == .clientError else { return .other }
        // A request the proxy refused before parsing it (no method: e.g. a header line ending in a bare
        // LF) carries no parameters to judge: it is not an API call to the host it was tunnelled to.
        if e.kind == .clientError && e.method.isEmpty { return .other }
        // A head cut off (the client hung up or went silent mid-head) is not judged: what is
        // missing may simply not have been sent yet.
        if e.kind == .clientError && (e.errorKind == .truncated || e.errorKind == .timeout) { return .other }
        let method = e.method.uppercased()
        if method == "OPTIONS" || method == "CONNECT" || e.path == FlowIndex.testClockAdvancePath { return .other }
        // Requests the browser makes on its own (the page's icon): not calls the app wrote.
        if isBrowserOwnRequest(method: method, path: e.path) { return .other }
        let d = e.scheme == "https" ? 443 : 80
        let endpoint = "\(e.scheme)://\(e.host.lowercased())\(e.port == d ? "" : ":\(e.port)")\(e.path)"
        let httpsEndpoint = "https://\(e.host.lowercased())\(e.path)"
        let queryNames = Set(p.items.filter { $0.place == .query }.map(\.name))
        if profile.isAuthorizeEndpoint(endpoint) || profile.isAuthorizeEndpoint(httpsEndpoint) { return .authorize }
        if queryNames.contains("response_type") && queryNames.contains("client_id") { return .authorize }
        if method == "GET", queryNames.contains("client_id"), !queryNames.contains("client_secret"), !p.has("grant_type"),
           e.path.lowercased().hasSuffix("/authorize") {
            return .authorize // GitHub omits response_type
        }
        if profile.isTokenEndpoint(endpoint) || profile.isTokenEndpoint(httpsEndpoint) { return .token }
        if p.has("grant_type") { return .token }
        if p.has("code") && p.has("redirect_uri") { return .token }
        if p.has("refresh_token") && (p.has("client_id") || p.has("client_secret")) { return .token }
        if method == "POST", profile.tokenPathHints.contains(where: { e.path.lowercased().hasSuffix($0) }),
           p.has("code") || p.has("client_secret") || p.has("refresh_token") || p.has("client_id") {
            return .token
        }
        let deliversError = queryNames.contains("error") && (queryNames.contains("state") || queryNames.contains("error_description"))
        if method == "GET", queryNames.contains("code") || deliversError, !profile.serves(host: e.host),
           !p.has("client_secret") {
            return .callback
        }
        if profile.apiHosts.contains(e.host.lowercased()) { return .api }
        if p.bearerToken != nil { return .api }
        if profile.serves(host: e.host), profile.apiPathPrefixes.contains(where: { e.path.hasPrefix($0) }) { return .api }
        return .other
    }
}

/// A request a browser sends by itself, not the app: the site icon Chromium asks for after any page
/// (`GET /favicon.ico`) and Safari's touch icons. (CORS preflights, `OPTIONS`, are left out by method.)
func isBrowserOwnRequest(method: String, path: String) -> Bool {
    guard method == "GET" || method == "HEAD" else { return false }
    let p = path.lowercased()
    return p == "/favicon.ico" || (p.hasPrefix("/apple-touch-icon") && p.hasSuffix(".png"))
}

/// Memo of the ``Val``s of placeholders (the redacted history): the rules compare the current
/// exchange's values with every kept exchange's, and parsing a placeholder each time made a judgement
/// cost grow with the history. A placeholder's `Val` does not depend on the role, so the text is the
/// key. Raw values are never kept here (they live only as long as the exchange being judged).
/// Bounded (cleared past ``placeholderLimit`` entries); locked, so a `FlowIndex` copy may be used from another
/// thread.
///
/// Raw values (the exchange being judged) are memoised too, by role and text, because the rules
/// ask for the same few (`code`, `client_secret`, `client_id`) many times per judgement and each
/// costs an HMAC: that memo is emptied after every judgement (``forgetRawValues()``) and holds at
/// most 256 values meanwhile, so a raw value still lives only as long as its judgement.
final class ValCache: Sendable {
    private struct Memo {
        var placeholders: [String: Val] = [:]
        var raw: [String: Val] = [:]
    }
    private let memo = Mutex(Memo())
    /// Placeholders memoised at most (then the memo starts again): a session's kept history
    /// (``FlowHistory``, 1,250 steps at most) has a few secret values per step, so this holds all of
    /// them with room to spare, in a few MiB.
    static let placeholderLimit = 16_384

    func value(_ text: String, role: String, redactor: Redactor) -> Val {
        if let cached = memo.withLock({ $0.placeholders[text] }) { return cached }
        let rawKey = role + "\u{0}" + text
        if let cached = memo.withLock({ $0.raw[rawKey] }) { return cached }
        let v = Val(text, role: role, redactor: redactor)
        if v.unknown { return v }
        memo.withLock { memo in
            if v.raw != nil {
                if memo.raw.count >= 256 { memo.raw.removeAll(keepingCapacity: true) }
                memo.raw[rawKey] = v
            } else {
                if memo.placeholders.count >= Self.placeholderLimit { memo.placeholders.removeAll(keepingCapacity: true) }
                memo.placeholders[text] = v
            }
        }
        return v
    }

    /// Placeholders memoised now (at most ``placeholderLimit``).
    var placeholderCount: Int { memo.withLock { $0.placeholders.count } }

    /// Drops the memoised raw values (called at the end of each judgement).
    func forgetRawValues() {
        memo.withLock { $0.raw.removeAll(keepingCapacity: true) }
    }
}

/// The session as a linked flow: who issued which code and token, when.
struct FlowIndex: Sendable {
    let redactor: Redactor
    var observations: [Observation]
    private let cache = ValCache()
    /// Seconds the sandbox's test clock has moved forward so far: later exchanges happened that much
    /// later as far as lifetimes go.
    private(set) var clockShift: TimeInterval = 0

    init(redactor: Redactor) {
        self.redactor = redactor
        self.observations = []
    }

    init(_ exchanges: [Exchange], profiles: [ProviderProfile], redactor: Redactor) {
        self.init(redactor: redactor)
        observations.reserveCapacity(exchanges.count)
        for e in exchanges { observations.append(observe(e, profiles: profiles)) }
    }

    /// `e` as an observation on the session clock; a successful test-clock advance moves the clock
    /// for the exchanges observed after it.
    mutating func observe(_ e: Exchange, profiles: [ProviderProfile]) -> Observation {
        let o = Observation(e, profiles: profiles)
        o.at = e.started.addingTimeInterval(clockShift)
        o.codeFingerprints = o.params.items.filter { $0.name == "code" }.map { val($0.value, "code").fp }
        o.secretFingerprints = o.params.items.filter { $0.name == "client_secret" }.map { val($0.value, "client_secret").fp }
        o.accessTokenFingerprint = o.tokenResponse.accessToken.map { val($0, "access_token").fp }
        o.refreshTokenFingerprint = o.tokenResponse.refreshToken.map { val($0, "refresh_token").fp }
        if e.path == FlowIndex.testClockAdvancePath, let s = e.status, (200..<300).contains(s),
           let secs = o.params.all("seconds").first(where: { $0.place == .query }).flatMap({ Double($0.value) }), secs > 0 {
            clockShift += secs
        }
        return o
    }

    /// Puts the test clock back where it was (after judging an exchange that is not kept).
    mutating func restoreClockShift(_ shift: TimeInterval) { clockShift = shift }

    /// Path of `tokentap sandbox`'s clock endpoint (`POST /__sandbox/advance?seconds=N`): a 2xx answer moves
    /// the session's clock forward by N seconds for every later exchange (expiry tests without sleeping).
    static let testClockAdvancePath = "/__sandbox/advance"

    func val(_ s: String, _ role: String) -> Val { cache.value(s, role: role, redactor: redactor) }

    /// Forgets the raw values memoised while judging (see ``ValCache``).
    func forgetRawValues() { cache.forgetRawValues() }

    /// A code issuance: the exchange that delivered it and the code.
    struct Issue { let obs: Observation; let code: Val }

    var issuedCodes: [Issue] {
        observations.compactMap { o in o.deliveredCode.map { Issue(obs: o, code: val($0, "code")) } }
    }

    func issue(of code: Val) -> Issue? {
        for o in observations {
            if let c = o.deliveredCode.map({ val($0, "code") }), c.fp == code.fp { return Issue(obs: o, code: c) }
        }
        return nil
    }

    var authorizes: [Observation] { observations.filter { $0.role == .authorize } }

    /// The authorize request behind a code issuance, or (without one) the latest authorize before `before`
    /// for the same client when known. Returns the authorize and whether the link is proven (by the code).
    func authorize(for issue: Issue?, clientID: String?, before: Date) -> (Observation, proven: Bool)? {
        if let issue {
            if issue.obs.role == .authorize { return (issue.obs, true) }
            let st = issue.obs.deliveredState
            let candidates = authorizes.filter { $0.at <= issue.obs.at }
            if let st, let a = candidates.last(where: { $0.params.value("state") == st }) { return (a, true) }
            if let a = candidates.last { return (a, false) }
        }
        let earlier = authorizes.filter { $0.at <= before }
        if let cid = clientID?.trimmingCharacters(in: .whitespacesAndNewlines),
           let a = earlier.last(where: { $0.params.value("client_id") == cid }) { return (a, false) }
        if let a = earlier.last { return (a, false) }
        return nil
    }

    /// Token requests before `obs` (by order in the list).
    func tokenRequests(before index: Int) -> [Observation] {
        observations[..<index].filter { $0.role == .token }
    }

    /// A token issuance found in a token response: which exchange, the kind, and its lifetime.
    struct TokenIssue {
        let obs: Observation
        let response: TokenResponse
    }

    /// The latest successful token response (before position `before`) that issued access token `v`.
    func issueOfAccessToken(_ v: Val, before: Int? = nil) -> TokenIssue? {
        lastTokenIssue(before: before) { $0.accessTokenFingerprint == v.fp }
    }
    /// The latest successful token response (before position `before`) that issued refresh token `v`.
    func issueOfRefreshToken(_ v: Val, before: Int? = nil) -> TokenIssue? {
        lastTokenIssue(before: before) { $0.refreshTokenFingerprint == v.fp }
    }

    /// The latest successful token response among the first `before` observations matching `test`
    /// (a reverse scan that copies nothing but the match).
    private func lastTokenIssue(before: Int?, _ test: (Observation) -> Bool) -> TokenIssue? {
        let end = min(before ?? observations.count, observations.count)
        guard let o = observations[..<end].last(where: { $0.role == .token && $0.tokenResponse.success && test($0) }) else { return nil }
        return TokenIssue(obs: o, response: o.tokenResponse)
    }
}
