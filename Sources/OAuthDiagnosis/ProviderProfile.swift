import Foundation
import TokentapCore

/// What one OAuth provider accepts and how long its credentials live, as data.
///
/// Adding a provider is adding a value of this type (oauth-rules.md, "Provider facts ... live in
/// provider profiles, as data"). Every host without a profile of its own is judged with
/// ``ProviderProfile/generic`` (RFC 6749 only, no provider quirks).
public struct ProviderProfile: Sendable, Hashable {
    /// How a provider wraps its error responses.
    public enum ErrorEnvelope: String, Sendable, Hashable {
        /// Miro: `{"status":401,"code":"oauthError","message":"…","type":"error"}`.
        case miro
        /// RFC 6749 §5.2: `error`, `error_description`, `error_uri` (JSON or form), also Slack's
        /// `{"ok":false,"error":…}` with HTTP 200.
        case rfc6749
    }

    /// How severe a shape finding is for this provider (info when the provider documents the shape).
    public enum Tolerance: String, Sendable, Hashable {
        /// The provider documents and accepts it: `info`.
        case accepted
        /// RFC 6749 discourages it and the provider is unknown: `warning`.
        case discouraged
    }

    /// Short name shown in evidence (`Miro`, `generic OAuth 2.0`).
    public var name: String
    /// Hosts (lower-case) served by this provider; `*.example.com` matches every subdomain.
    /// Empty for the generic profile (it matches every other host).
    public var hosts: [String]
    /// Absolute authorize endpoint URLs (RFC 6749 §3.1), e.g. `https://miro.com/oauth/authorize`.
    public var authorizeEndpoints: [String]
    /// Absolute token endpoint URLs (RFC 6749 §3.2), e.g. `https://api.miro.com/v1/oauth/token`.
    /// Empty for the generic profile, which recognises token requests by ``tokenPathHints`` and `grant_type`.
    public var tokenEndpoints: [String]
    /// Path endings that identify a token endpoint on hosts without a known endpoint
    /// (`/token`, `/oauth/token`, `/login/oauth/access_token`, `oauth.v2.access`).
    public var tokenPathHints: [String]
    /// Hosts serving the provider's REST API (Bearer calls), e.g. `api.miro.com`.
    public var apiHosts: [String]
    /// Path prefixes of REST calls (`/v1/`, `/v2/`), used to spot an API call sent to a non-API host.
    public var apiPathPrefixes: [String]
    /// Authorization code lifetime in seconds (Miro: 600); `nil` when unknown.
    public var codeLifetime: TimeInterval?
    /// Whether a code can be exchanged only once (RFC 6749 §4.1.2: MUST NOT be used more than once).
    public var singleUseCode: Bool
    /// Access token lifetime in seconds when a token response carries no `expires_in` (Miro: 3599).
    public var accessTokenLifetime: TimeInterval?
    /// Refresh token lifetime in seconds (Miro: 60 days); `nil` when unknown.
    public var refreshTokenLifetime: TimeInterval?
    /// Whether every refresh returns a new refresh token and invalidates the old pair (Miro: yes).
    /// For the generic profile, rotation is learned from the session (a refresh that returned a different token).
    public var rotatesRefreshTokens: Bool
    /// Token parameters in the URL query of a POST.
    public var queryParameters: Tolerance
    /// Token parameters split between query string and body.
    public var splitParameters: Tolerance
    /// Whether a JSON request body is accepted at the token endpoint (RFC 6749 §4.1.3 wants form encoding).
    public var acceptsJSONBody: Bool
    /// Whether HTTP Basic client authentication (RFC 6749 §2.3.1) is known to be accepted; `nil` when unverified.
    public var acceptsBasic: Bool?
    /// Whether the profile requires `client_secret` on every token request (confidential clients only).
    public var requiresClientSecret: Bool
    /// Whether an `authorization_code` exchange must carry `redirect_uri` even if the authorize request had none.
    public var requiresRedirectURI: Bool
    /// Whether PKCE (RFC 7636) is documented; when false PKCE findings drop to `info`.
    public var supportsPKCE: Bool
    /// Whether client ids are decimal numbers (Miro: `3074457363680401096`).
    public var decimalClientIDs: Bool
    /// Grant types the token endpoint serves.
    public var grantTypes: [String]
    /// Severity of token parameters the grant does not define.
    public var extraParameters: Tolerance
    /// Error body format.
    public var errorEnvelope: ErrorEnvelope
    /// Scope needed per REST call: (method or `*`, path prefix, scope). Used by `scope-mismatch`.
    public var scopeRules: [ScopeRule]
    /// Documentation URLs by topic: `token`, `authorize`, `refresh`, `errors`, `rateLimit`, `scopes`, `api`.
    public var docs: [String: String]

    /// One REST call pattern and the scope it needs.
    public struct ScopeRule: Sendable, Hashable {
        /// `GET`, `POST`, … or `*` (any method); `!GET` means every method but GET.
        public var method: String
        /// Path prefix, e.g. `/v2/boards`.
        public var pathPrefix: String
        /// The scope the call needs, e.g. `boards:write`.
        public var scope: String
        public init(method: String, pathPrefix: String, scope: String) {
            self.method = method; self.pathPrefix = pathPrefix; self.scope = scope
        }
    }

    public init(name: String, hosts: [String], authorizeEndpoints: [String], tokenEndpoints: [String],
                tokenPathHints: [String], apiHosts: [String], apiPathPrefixes: [String],
                codeLifetime: TimeInterval?, singleUseCode: Bool, accessTokenLifetime: TimeInterval?,
                refreshTokenLifetime: TimeInterval?, rotatesRefreshTokens: Bool, queryParameters: Tolerance,
                splitParameters: Tolerance, acceptsJSONBody: Bool, acceptsBasic: Bool?, requiresClientSecret: Bool,
                requiresRedirectURI: Bool, supportsPKCE: Bool, decimalClientIDs: Bool, grantTypes: [String],
                extraParameters: Tolerance, errorEnvelope: ErrorEnvelope, scopeRules: [ScopeRule],
                docs: [String: String]) {
        self.name = name; self.hosts = hosts; self.authorizeEndpoints = authorizeEndpoints
        self.tokenEndpoints = tokenEndpoints; self.tokenPathHints = tokenPathHints; self.apiHosts = apiHosts
        self.apiPathPrefixes = apiPathPrefixes; self.codeLifetime = codeLifetime; self.singleUseCode = singleUseCode
        self.accessTokenLifetime = accessTokenLifetime; self.refreshTokenLifetime = refreshTokenLifetime
        self.rotatesRefreshTokens = rotatesRefreshTokens; self.queryParameters = queryParameters
        self.splitParameters = splitParameters; self.acceptsJSONBody = acceptsJSONBody; self.acceptsBasic = acceptsBasic
        self.requiresClientSecret = requiresClientSecret; self.requiresRedirectURI = requiresRedirectURI
        self.supportsPKCE = supportsPKCE; self.decimalClientIDs = decimalClientIDs; self.grantTypes = grantTypes
        self.extraParameters = extraParameters; self.errorEnvelope = errorEnvelope; self.scopeRules = scopeRules
        self.docs = docs
    }

    /// Miro (miro-oauth.md): authorize `GET https://miro.com/oauth/authorize`, token
    /// `POST https://api.miro.com/v1/oauth/token`, REST `https://api.miro.com/v2/…`; code 10 min single use;
    /// access token 3599 s; refresh token 60 days, rotated; parameters in query, body or split; no JSON body.
    public static let miro = ProviderProfile(
        name: "Miro",
        hosts: ["miro.com", "*.miro.com"],
        authorizeEndpoints: ["https://miro.com/oauth/authorize"],
        tokenEndpoints: ["https://api.miro.com/v1/oauth/token"],
        tokenPathHints: ["/oauth/token", "/oauth/access_token", "/oauth2/token", "/token"],
        apiHosts: ["api.miro.com"],
        apiPathPrefixes: ["/v1/", "/v2/", "/v2-experimental/"],
        codeLifetime: 600,
        singleUseCode: true,
        accessTokenLifetime: 3599,
        refreshTokenLifetime: 60 * 86_400,
        rotatesRefreshTokens: true,
        queryParameters: .accepted,
        splitParameters: .accepted,
        acceptsJSONBody: false,
        acceptsBasic: nil,
        requiresClientSecret: true,
        requiresRedirectURI: true,
        supportsPKCE: false,
        decimalClientIDs: true,
        grantTypes: ["authorization_code", "refresh_token"],
        extraParameters: .accepted,
        errorEnvelope: .miro,
        scopeRules: [
            ScopeRule(method: "GET", pathPrefix: "/v2/boards", scope: "boards:read"),
            ScopeRule(method: "!GET", pathPrefix: "/v2/boards", scope: "boards:write"),
            ScopeRule(method: "GET", pathPrefix: "/v2/orgs", scope: "organizations:read"),
            ScopeRule(method: "GET", pathPrefix: "/v2/users/me", scope: "identity:read"),
        ],
        docs: [
            "token": "https://developers.miro.com/docs/getting-started-with-oauth",
            "authorize": "https://developers.miro.com/reference/request-user-for-authorization",
            "refresh": "https://developers.miro.com/reference/get-new-access-token-using-refresh-token",
            "errors": "https://developers.miro.com/docs/troubleshooting-oauth20",
            "rateLimit": "https://developers.miro.com/docs/rate-limiting",
            "scopes": "https://developers.miro.com/docs/scopes",
            "api": "https://developers.miro.com/reference/api-reference",
        ])

    /// Every other host: RFC 6749 only. Token endpoints are recognised by `grant_type` and path hints;
    /// rotation and accepted shapes are learned from the session.
    public static let generic = ProviderProfile(
        name: "generic OAuth 2.0",
        hosts: [],
        authorizeEndpoints: [],
        tokenEndpoints: [],
        tokenPathHints: ["/token", "/oauth/token", "/oauth2/token", "/oauth2/v4/token", "/login/oauth/access_token",
                         "/oauth/access_token", "/access_token", "oauth.v2.access", "oauth.access"],
        apiHosts: [],
        apiPathPrefixes: [],
        codeLifetime: 600,
        singleUseCode: true,
        accessTokenLifetime: nil,
        refreshTokenLifetime: nil,
        rotatesRefreshTokens: false,
        queryParameters: .discouraged,
        splitParameters: .discouraged,
        acceptsJSONBody: false,
        acceptsBasic: true,
        requiresClientSecret: false,
        requiresRedirectURI: false,
        supportsPKCE: true,
        decimalClientIDs: false,
        grantTypes: ["authorization_code", "refresh_token", "client_credentials", "password",
                     "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                     "urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"],
        extraParameters: .discouraged,
        errorEnvelope: .rfc6749,
        scopeRules: [],
        docs: [:])

    /// True when `host` (lower-case) is one of ``hosts``.
    public func serves(host: String) -> Bool {
        hosts.contains { hostMatches(host, pattern: $0) }
    }

    /// The documentation URL for `topic`, else the RFC section given.
    func reference(_ topic: String, else rfc: String) -> String { docs[topic] ?? rfc }
}
