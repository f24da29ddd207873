import Foundation

/// Everything the sandbox remembers, guarded by `SandboxRouter`'s lock. Times are sandbox-clock
/// epoch seconds (wall clock + `clockOffset` + `advanced`).
struct SandboxState: Sendable {
    /// Seconds added by `POST /__sandbox/advance`.
    var advanced: Double = 0
    var codes: [String: CodeGrant] = [:]
    var accessTokens: [String: AccessGrant] = [:]
    var refreshTokens: [String: RefreshGrant] = [:]
    /// Rate-limit windows keyed by `clientID userID`.
    var rateWindows: [String: RateWindow] = [:]
}

/// An authorization code issued by `GET /oauth/authorize` (RFC 6749 §4.1.2).
struct CodeGrant: Sendable {
    var clientID: String
    /// The `redirect_uri` of the authorize request, which the exchange must repeat (RFC 6749 §4.1.3).
    var redirectURI: String
    var teamID: String
    var userID: String
    var expiresAt: Double
    var used = false
}

/// An issued access token.
struct AccessGrant: Sendable {
    var clientID: String
    var teamID: String
    var userID: String
    var issuedAt: Double
    var expiresAt: Double
    /// Set when a refresh replaced this token (rotation).
    var supersededAt: Double?
}

/// An issued refresh token and the access token issued with it.
struct RefreshGrant: Sendable {
    var clientID: String
    var teamID: String
    var userID: String
    var expiresAt: Double
    var accessToken: String
    var supersededAt: Double?
}

/// One 60-second window of REST requests for one user of one app, opened by its first request.
struct RateWindow: Sendable {
    var start: Double
    var count: Int
}

/// Miro-shaped opaque values.
enum MiroToken {
    /// base64url of `{"miro.origin":"eu01"}` followed by `_`: the prefix Miro's codes and tokens share
    /// (miro-oauth.md).
    static let prefix = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_"

    /// `prefix` + base64url (no padding) of 32 random bytes: 43 random characters.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + base64
    }
}
