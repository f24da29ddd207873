import Foundation
import TokentapCore

/// What one OAuth provider accepts and how long its credentials live, as data (oauth-rules.md,
/// "Provider facts ... live in provider profiles, as data").
///
/// The format is JSON (``ProviderProfile/CodingKeys`` are its field names); the built-in profiles
/// (``BuiltInProfiles``) are JSON compiled into the binary, and users add or override profiles with
/// files (``ProfileLoader``). Every field is read by a rule; which one is named in its doc comment.
/// Every host without a profile of its own is judged with ``ProviderProfile/generic`` (RFC 6749
/// only, no provider quirks).
public struct ProviderProfile: Codable, Sendable, Hashable {
    /// How severe a shape finding is for this provider (info when the provider documents the shape).
    public enum Tolerance: String, Codable, Sendable, Hashable {
        /// The provider documents and accepts it: `info`.
        case accepted
        /// RFC 6749 discourages it and the provider is unknown: `warning`.
        case discouraged
    }

    /// How a provider's error body is recognised and quoted: a JSON object (or form body) is an
    /// error when every name of ``whenPresent`` is present (if any are given) or one field of
    /// ``whenEquals`` has the value given. Read when parsing every response (`TokenResponse`), so
    /// by every rule that asks whether an exchange failed, and quoted by `provider-error`.
    public struct ErrorEnvelope: Codable, Sendable, Hashable {
        /// Field names quoted in evidence, in this order, when present
        /// (RFC 6749 §5.2: `error`, `error_description`, `error_uri`).
        public var fields: [String]
        /// The body is an error when all of these are present (empty: this test is not used).
        public var whenPresent: [String]
        /// The body is an error when one of these fields has this value (`{"ok": "false"}`: Slack).
        public var whenEquals: [String: String]

        public init(fields: [String], whenPresent: [String] = [], whenEquals: [String: String] = [:]) {
            self.fields = fields; self.whenPresent = whenPresent; self.whenEquals = whenEquals
        }

        /// The quoted fields of `body` (names and values as strings) when it is an error in this envelope.
        func errorFields(_ body: [String: String]) -> [(String, String)]? {
            let present = !whenPresent.isEmpty && whenPresent.allSatisfy { body[$0] != nil }
            let equals = whenEquals.contains { body[$0.key] == $0.value }
            guard present || equals else { return nil }
            return fields.compactMap { f in body[f].map { (f, $0) } }
        }
    }

    /// A provider error code and the catalog rule it names (Entra's `AADSTS54005` → `code-reused`).
    /// Read by `provider-error` (evidence), `spa-origin-required`, and ``Verdict/decide(_:)`` (a cause
    /// the provider's code names is supported by it, as a cause its words name).
    public struct ErrorCode: Codable, Sendable, Hashable {
        /// The code as it appears in `error`, `error_description` or `message` (`AADSTS54005`,
        /// `code_already_used`); matched as a whole word.
        public var code: String
        /// What the provider means by it, in plain words.
        public var meaning: String
        /// The catalog rule id it points at; `null` when it names no single cause
        /// (Google's `invalid_grant`: expired, reused or revoked).
        public var cause: String?
        /// For `spa-origin-required`: whether the code says the redemption needed an `Origin` header
        /// (`required`: a single-page-application redirect URI) or must not carry one (`forbidden`:
        /// a Web redirect URI). Absent for other codes. Read by `spa-origin-required`.
        public var originHeader: OriginHeader?

        public enum OriginHeader: String, Codable, Sendable, Hashable { case required, forbidden }

        public init(code: String, meaning: String, cause: String?, originHeader: OriginHeader? = nil) {
            self.code = code; self.meaning = meaning; self.cause = cause; self.originHeader = originHeader
        }
    }

    /// One REST call pattern and the scope it needs. Read by `scope-mismatch`.
    public struct ScopeRule: Codable, Sendable, Hashable {
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

    /// Short name shown in evidence (`Miro`, `generic OAuth 2.0`); a profile file with the name of a
    /// loaded profile overrides that profile's fields.
    public var name: String
    /// Hosts (lower-case) served by this provider; `*.example.com` matches every subdomain.
    /// Empty for the generic profile (it matches every other host). Read by the role classification
    /// and `api-wrong-host`.
    public var hosts: [String]
    /// Absolute authorize endpoint URLs (RFC 6749 §3.1), e.g. `https://miro.com/oauth/authorize`;
    /// a `*` path segment matches any one segment (a tenant). Read by the role classification.
    public var authorizeEndpoints: [String]
    /// Absolute token endpoint URLs (RFC 6749 §3.2), e.g. `https://api.miro.com/v1/oauth/token`;
    /// a `*` path segment matches any one segment (Entra's tenant). Empty for the generic profile,
    /// which recognises token requests by ``tokenPathHints`` and `grant_type`. Read by the role
    /// classification, `token-endpoint-wrong`, `grant-type-invalid`, `code-expired` (confidence).
    public var tokenEndpoints: [String]
    /// Path endings that identify a token endpoint on hosts without a known endpoint
    /// (`/token`, `/login/oauth/access_token`, `oauth.v2.access`). Read by the role classification.
    public var tokenPathHints: [String]
    /// Hosts serving the provider's REST API (Bearer calls), e.g. `api.miro.com`. Read by the role
    /// classification, `api-wrong-host`, `access-token-missing`.
    public var apiHosts: [String]
    /// Path prefixes of REST calls (`/v1/`, `/v2/`), used to spot an API call sent to a non-API host.
    /// Read by the role classification and `api-wrong-host`.
    public var apiPathPrefixes: [String]
    /// Authorization code lifetime in seconds (Miro: 600); `null` when unknown. Read by `code-expired`.
    public var codeLifetime: TimeInterval?
    /// Access token lifetime in seconds when a token response carries no `expires_in` (Miro: 3599).
    /// Read by `access-token-expired`.
    public var accessTokenLifetime: TimeInterval?
    /// Refresh token lifetime in seconds (Miro: 60 days); `null` when unknown. Read by `refresh-token-expired`.
    public var refreshTokenLifetime: TimeInterval?
    /// Whether every refresh returns a new refresh token and invalidates the old pair (Miro, Atlassian).
    /// Without it, rotation is learned from the session (a refresh that returned a different token).
    /// Read by `refresh-token-rotated` and `access-token-superseded`.
    public var rotatesRefreshTokens: Bool
    /// How a client gets a refresh token from this provider (Atlassian: the `offline_access` scope);
    /// `null` when the provider says nothing beyond RFC 6749. Read by `refresh-token-not-issued`.
    public var refreshTokenRequirement: String?
    /// Token parameters in the URL query of a POST. Read by `params-in-query`.
    public var queryParameters: Tolerance
    /// Token parameters split between query string and body. Read by `param-split`.
    public var splitParameters: Tolerance
    /// Whether a JSON request body is accepted at the token endpoint (RFC 6749 §4.1.3 wants form
    /// encoding; Atlassian accepts JSON). Read by `body-not-form-encoded`.
    public var acceptsJSONBody: Bool
    /// Whether a token request must carry `grant_type` (RFC 6749 §4.1.3; GitHub does not need it).
    /// Read by `grant-type-invalid`.
    public var requiresGrantType: Bool
    /// Whether the profile requires `client_secret` on every token request (confidential clients only).
    /// Read by `param-missing`.
    public var requiresClientSecret: Bool
    /// Whether an `authorization_code` exchange must carry `redirect_uri` even if the authorize request
    /// had none. Read by `redirect-uri-missing`.
    public var requiresRedirectURI: Bool
    /// Whether PKCE (RFC 7636) is documented; when false PKCE findings drop to `info`. Read by the `pkce-*` rules.
    public var supportsPKCE: Bool
    /// Whether client ids are decimal numbers (Miro: `3074457363680401096`). Read by `client-credentials-swapped`.
    public var decimalClientIDs: Bool
    /// Whether the provider rejects a request that authenticates the client in more than one way
    /// (Okta: "Cannot supply multiple client credentials"). Read by `client-auth-conflict`.
    public var rejectsMultipleClientAuth: Bool
    /// Grant types the token endpoint serves. Read by `grant-type-invalid`.
    public var grantTypes: [String]
    /// Severity of token parameters the grant does not define. Read by `extra-params`.
    public var extraParameters: Tolerance
    /// Token request parameters the provider defines beyond RFC 6749's for the grant (Entra v2.0:
    /// `scope` on a code exchange). Read by `extra-params`.
    public var tokenParameters: [String]
    /// Error body formats, tried in order (see ``ErrorEnvelope``).
    public var errorEnvelopes: [ErrorEnvelope]
    /// Whether the provider answers errors with HTTP 200 (GitHub, Slack). Read by `provider-error`.
    public var errorsWithHTTP200: Bool
    /// Provider error codes and the causes they name (see ``ErrorCode``).
    public var errorCodes: [ErrorCode]
    /// Scope needed per REST call. Read by `scope-mismatch`.
    public var scopeRules: [ScopeRule]
    /// Documentation URLs by topic: `token`, `authorize`, `refresh`, `errors`, `rateLimit`, `scopes`,
    /// `api`. Read by every rule that cites a reference.
    public var docs: [String: String]

    /// Where the profile came from: `built-in`, or the path of the file that defined it.
    public var origin: String = "built-in"
    /// Fields a later file overrode, with that file's path (field name → path).
    public var overrides: [String: String] = [:]

    public enum CodingKeys: String, CodingKey, CaseIterable, Sendable {
        case name, hosts, authorizeEndpoints, tokenEndpoints, tokenPathHints, apiHosts, apiPathPrefixes
        case codeLifetime, accessTokenLifetime, refreshTokenLifetime, rotatesRefreshTokens, refreshTokenRequirement
        case queryParameters, splitParameters, acceptsJSONBody, requiresGrantType, requiresClientSecret
        case requiresRedirectURI, supportsPKCE, decimalClientIDs, rejectsMultipleClientAuth, grantTypes
        case extraParameters, tokenParameters, errorEnvelopes, errorsWithHTTP200, errorCodes, scopeRules, docs
    }

    /// Miro (miro-oauth.md), decoded from ``BuiltInProfiles/miro``.
    public static let miro = BuiltInProfiles.decode(BuiltInProfiles.miro)
    /// Every other host: RFC 6749 only, decoded from ``BuiltInProfiles/generic``.
    public static let generic = BuiltInProfiles.decode(BuiltInProfiles.generic)
    /// Every built-in provider profile (not the generic one), in the order hosts are matched.
    public static let builtIn: [ProviderProfile] = BuiltInProfiles.providers.map(BuiltInProfiles.decode)

    /// True for the generic profile (it serves no host of its own).
    public var isGeneric: Bool { hosts.isEmpty }

    /// True when `host` (lower-case) is one of ``hosts``.
    public func serves(host: String) -> Bool {
        hosts.contains { hostMatches(host, pattern: $0) }
    }

    /// Whether `url` (`scheme://host[:port]/path`, or `host/path`) is one of ``tokenEndpoints``.
    public func isTokenEndpoint(_ url: String) -> Bool { tokenEndpoints.contains { Self.endpoint($0, matches: url) } }
    /// Whether `url` is one of ``authorizeEndpoints``.
    public func isAuthorizeEndpoint(_ url: String) -> Bool { authorizeEndpoints.contains { Self.endpoint($0, matches: url) } }

    /// Compares an endpoint pattern with a URL, scheme-less when the URL has no scheme; a `*` path
    /// segment of the pattern matches any one non-empty segment.
    static func endpoint(_ pattern: String, matches url: String) -> Bool {
        func strip(_ s: String) -> String {
            s.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
        }
        let hasScheme = url.contains("://")
        let p = hasScheme ? pattern.lowercased() : strip(pattern).lowercased()
        let u = url.lowercased()
        guard p.contains("*") else { return p == u }
        let ps = p.split(separator: "/", omittingEmptySubsequences: false)
        let us = u.split(separator: "/", omittingEmptySubsequences: false)
        guard ps.count == us.count else { return false }
        return zip(ps, us).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
    }

    /// Where a field's value came from, for evidence: `Miro profile, built-in` or
    /// `Miro profile, /home/me/.tokentap/profiles/miro.json`.
    public func source(of field: CodingKeys) -> String {
        "\(name) profile, \(overrides[field.rawValue] ?? origin)"
    }

    /// The documentation URL for `topic`, else the RFC section given.
    func reference(_ topic: String, else rfc: String) -> String { docs[topic] ?? rfc }

    /// The error codes named in a provider's error fields (`error`, `error_description`, `message`),
    /// each matched as a whole word.
    func errorCodes(in fields: [(String, String)]) -> [ErrorCode] {
        let text = fields.filter { ["error", "error_description", "message", "code"].contains($0.0) }.map(\.1).joined(separator: " ")
        let words = Set(text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init))
        return errorCodes.filter { words.contains($0.code) }
    }
}
