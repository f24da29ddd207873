import Foundation

/// The built-in provider profiles, as JSON in the format users write (``ProviderProfile``),
/// compiled into the binary as string literals and decoded at start (no `Bundle.module`, which
/// aborts when the binary is moved).
///
/// Facts: Miro from miro-oauth.md; the others from the provider facts table of oauth-rules.md
/// ("add no facts that are not there"): where the table says nothing, a field has RFC 6749's
/// value, as in the generic profile.
public enum BuiltInProfiles {
    /// Every built-in provider profile's JSON, in the order hosts are matched.
    public static let providers: [String] = [miro, atlassian, github, slack, google, entra, okta]

    /// Decodes a built-in profile: Miro and generic are complete; the other providers' JSON gives
    /// only what differs from the generic profile and is read as a user's file is read
    /// (``ProfileLoader/merge(_:over:)``). A built-in that does not decode is a programming error
    /// caught by the test suite (`ProfileTests`), so this traps rather than run without a provider.
    static func decode(_ json: String) -> ProviderProfile {
        do {
            let data = Data(json.utf8)
            if let full = try? JSONDecoder().decode(ProviderProfile.self, from: data) { return full }
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                preconditionFailure("built-in profile is not a JSON object")
            }
            return try ProfileLoader.merge(object, over: ProviderProfile.generic)
        } catch {
            preconditionFailure("built-in profile does not decode: \(error)")
        }
    }

    /// RFC 6749 §5.2's error body, plus Slack's `{"ok": false}` (oauth-rules.md).
    static let rfcEnvelope = """
        {"fields": ["ok", "error", "error_description", "error_uri", "message"], "whenPresent": ["error"], "whenEquals": {"ok": "false"}}
        """
    /// A `status`/`code`/`message` JSON body (Miro's envelope, miro-oauth.md "Errors").
    static let statusCodeMessageEnvelope = """
        {"fields": ["status", "code", "message", "type"], "whenPresent": ["code", "message", "status"], "whenEquals": {"type": "error"}}
        """
    /// Grant types of RFC 6749 and its extensions.
    static let rfcGrants = """
        ["authorization_code", "refresh_token", "client_credentials", "password",
         "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
         "urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"]
        """
    static let rfcPathHints = """
        ["/token", "/oauth/token", "/oauth2/token", "/oauth2/v4/token", "/login/oauth/access_token",
         "/oauth/access_token", "/access_token", "oauth.v2.access", "oauth.access"]
        """

    /// Every other host: RFC 6749 only. Token endpoints are recognised by `grant_type` and path hints;
    /// rotation and accepted shapes are learned from the session. Code lifetime: RFC 6749 §4.1.2's
    /// recommended maximum (10 minutes). Both error envelopes are recognised (a provider unknown to
    /// tokentap may use either).
    public static let generic = """
        {
          "name": "generic OAuth 2.0",
          "hosts": [], "authorizeEndpoints": [], "tokenEndpoints": [],
          "tokenPathHints": \(rfcPathHints),
          "apiHosts": [], "apiPathPrefixes": [],
          "codeLifetime": 600, "accessTokenLifetime": null, "refreshTokenLifetime": null,
          "rotatesRefreshTokens": false, "refreshTokenRequirement": null,
          "queryParameters": "discouraged", "splitParameters": "discouraged",
          "acceptsJSONBody": false, "requiresGrantType": true, "requiresClientSecret": false, "requiresRedirectURI": false,
          "supportsPKCE": true, "decimalClientIDs": false, "rejectsMultipleClientAuth": false,
          "grantTypes": \(rfcGrants),
          "extraParameters": "discouraged", "tokenParameters": [],
          "errorEnvelopes": [\(statusCodeMessageEnvelope), \(rfcEnvelope)],
          "errorsWithHTTP200": false, "errorCodes": [], "scopeRules": [], "docs": {}
        }
        """

    /// Miro (miro-oauth.md): authorize `GET https://miro.com/oauth/authorize`, token
    /// `POST https://api.miro.com/v1/oauth/token`, REST `https://api.miro.com/v2/…`; code 10 min single use;
    /// access token 3599 s; refresh token 60 days, rotated; parameters in query, body or split; no JSON body;
    /// apps without expiring tokens get no refresh token.
    public static let miro = """
        {
          "name": "Miro",
          "hosts": ["miro.com", "*.miro.com"],
          "authorizeEndpoints": ["https://miro.com/oauth/authorize"],
          "tokenEndpoints": ["https://api.miro.com/v1/oauth/token"],
          "tokenPathHints": ["/oauth/token", "/oauth/access_token", "/oauth2/token", "/token"],
          "apiHosts": ["api.miro.com"],
          "apiPathPrefixes": ["/v1/", "/v2/", "/v2-experimental/"],
          "codeLifetime": 600, "accessTokenLifetime": 3599, "refreshTokenLifetime": 5184000,
          "rotatesRefreshTokens": true,
          "refreshTokenRequirement": "expiring access tokens turned on for the app (apps without them get no refresh_token)",
          "queryParameters": "accepted", "splitParameters": "accepted",
          "acceptsJSONBody": false, "requiresGrantType": true, "requiresClientSecret": true, "requiresRedirectURI": true,
          "supportsPKCE": false, "decimalClientIDs": true, "rejectsMultipleClientAuth": false,
          "grantTypes": ["authorization_code", "refresh_token"],
          "extraParameters": "accepted", "tokenParameters": [],
          "errorEnvelopes": [\(statusCodeMessageEnvelope), \(rfcEnvelope)],
          "errorsWithHTTP200": false, "errorCodes": [],
          "scopeRules": [
            {"method": "GET", "pathPrefix": "/v2/boards", "scope": "boards:read"},
            {"method": "!GET", "pathPrefix": "/v2/boards", "scope": "boards:write"},
            {"method": "GET", "pathPrefix": "/v2/orgs", "scope": "organizations:read"},
            {"method": "GET", "pathPrefix": "/v2/users/me", "scope": "identity:read"}
          ],
          "docs": {
            "token": "https://developers.miro.com/docs/getting-started-with-oauth",
            "authorize": "https://developers.miro.com/reference/request-user-for-authorization",
            "refresh": "https://developers.miro.com/reference/get-new-access-token-using-refresh-token",
            "errors": "https://developers.miro.com/docs/troubleshooting-oauth20",
            "rateLimit": "https://developers.miro.com/docs/rate-limiting",
            "scopes": "https://developers.miro.com/docs/scopes",
            "api": "https://developers.miro.com/reference/api-reference"
          }
        }
        """

    /// The fields the named providers share that differ from the generic profile: code lifetime
    /// unknown (the facts table gives none), RFC 6749's error envelope only.
    static let providerDefaults = """
        "codeLifetime": null, "errorEnvelopes": [\(rfcEnvelope)]
        """

    /// Atlassian (`auth.atlassian.com`): JSON body accepted at `/oauth/token`; refresh tokens rotate;
    /// `offline_access` scope needed for a refresh token. (The named providers' profiles give only
    /// what differs from the generic profile, as a user's file does.)
    public static let atlassian = """
        {
          "name": "Atlassian", "hosts": ["auth.atlassian.com"],
          "tokenEndpoints": ["https://auth.atlassian.com/oauth/token"], "tokenPathHints": ["/oauth/token"],
          "acceptsJSONBody": true, "rotatesRefreshTokens": true, "refreshTokenRequirement": "the offline_access scope",
          \(providerDefaults)
        }
        """

    /// GitHub (`github.com/login/oauth/access_token`): `grant_type` not required; errors come with
    /// HTTP 200 (`error=bad_verification_code`, form or JSON by `Accept`).
    public static let github = """
        {
          "name": "GitHub", "hosts": ["github.com"],
          "tokenEndpoints": ["https://github.com/login/oauth/access_token"], "tokenPathHints": ["/login/oauth/access_token"],
          "requiresGrantType": false, "errorsWithHTTP200": true,
          "errorCodes": [{"code": "bad_verification_code", "meaning": "the code is wrong or expired", "cause": null}],
          \(providerDefaults)
        }
        """

    /// Slack (`slack.com/api/oauth.v2.access`): credentials in the body or Basic (as RFC 6749); errors
    /// with HTTP 200 `{"ok":false,"error":…}` (`invalid_code`, `bad_redirect_uri`, `code_already_used`).
    public static let slack = """
        {
          "name": "Slack", "hosts": ["slack.com"],
          "tokenEndpoints": ["https://slack.com/api/oauth.v2.access"], "tokenPathHints": ["oauth.v2.access"],
          "errorsWithHTTP200": true,
          "errorCodes": [
            {"code": "invalid_code", "meaning": "the code is not valid", "cause": null},
            {"code": "bad_redirect_uri", "meaning": "the redirect_uri does not match", "cause": "redirect-uri-mismatch"},
            {"code": "code_already_used", "meaning": "the code was already exchanged", "cause": "code-reused"}
          ],
          \(providerDefaults)
        }
        """

    /// Google (`oauth2.googleapis.com/token`): refresh token only with `access_type=offline` (and
    /// `prompt=consent` to get it again); `invalid_grant` covers expired, reused and revoked.
    /// (7-day refresh tokens apply to apps in testing only, which the wire does not show: not a lifetime here.)
    public static let google = """
        {
          "name": "Google", "hosts": ["oauth2.googleapis.com"],
          "tokenEndpoints": ["https://oauth2.googleapis.com/token"], "tokenPathHints": ["/token"],
          "refreshTokenRequirement": "access_type=offline on the authorize request (and prompt=consent to get it again)",
          "errorCodes": [{"code": "invalid_grant", "meaning": "the code or refresh token is expired, already used or revoked (7-day refresh tokens for apps in testing)", "cause": null}],
          \(providerDefaults)
        }
        """

    /// Microsoft Entra (`login.microsoftonline.com/*/oauth2/v2.0/token`): AADSTS codes in
    /// `error_description`; v1 (`/oauth2/token`, `resource`) and v2.0 (`scope`) endpoints;
    /// `offline_access` for refresh tokens.
    public static let entra = """
        {
          "name": "Microsoft Entra", "hosts": ["login.microsoftonline.com"],
          "tokenEndpoints": ["https://login.microsoftonline.com/*/oauth2/v2.0/token", "https://login.microsoftonline.com/*/oauth2/token"],
          "tokenPathHints": ["/oauth2/v2.0/token", "/oauth2/token"],
          "refreshTokenRequirement": "the offline_access scope", "tokenParameters": ["scope"],
          "errorCodes": [
            {"code": "AADSTS50011", "meaning": "the redirect URI does not match", "cause": "redirect-uri-mismatch"},
            {"code": "AADSTS54005", "meaning": "the code was already redeemed", "cause": "code-reused"},
            {"code": "AADSTS70008", "meaning": "the code or refresh token expired", "cause": null},
            {"code": "AADSTS7000215", "meaning": "the client secret is invalid", "cause": "server-rejected-credentials"},
            {"code": "AADSTS50148", "meaning": "the PKCE code_verifier does not match the code_challenge", "cause": "pkce-verifier-mismatch"},
            {"code": "AADSTS501481", "meaning": "the PKCE code_verifier does not match the code_challenge", "cause": "pkce-verifier-mismatch"},
            {"code": "AADSTS9002327", "meaning": "a code issued to a single-page-application redirect URI must be redeemed with an Origin header", "cause": "spa-origin-required", "originHeader": "required"},
            {"code": "AADSTS9002326", "meaning": "a code issued to a Web redirect URI must be redeemed without an Origin header (cross-origin redemption of a SPA code)", "cause": "spa-origin-required", "originHeader": "forbidden"},
            {"code": "AADSTS700082", "meaning": "the refresh token expired", "cause": "refresh-token-expired"}
          ],
          \(providerDefaults)
        }
        """

    /// Okta: exactly one client authentication method per request ("Cannot supply multiple client
    /// credentials"). The table names no host: `*.okta.com` (Okta's org domains) is assumed; token
    /// endpoints are recognised as on generic hosts, and so is the code lifetime (RFC 6749's 10 minutes).
    public static let okta = """
        {
          "name": "Okta", "hosts": ["*.okta.com"], "rejectsMultipleClientAuth": true,
          "errorEnvelopes": [\(rfcEnvelope)]
        }
        """
}
