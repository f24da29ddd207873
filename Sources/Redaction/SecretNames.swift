import Foundation

/// Which names and header names denote secrets (issue 5, "What is secret").
public enum SecretNames {
    /// Canonical form of a parameter or JSON key: lower-cased, `-` and `_` removed, so
    /// `client_secret`, `client-secret`, `clientSecret` and `CLIENT_SECRET` compare equal.
    public static func canonical(_ name: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        for c in name.utf8 where c != UInt8(ascii: "-") && c != UInt8(ascii: "_") {
            if c >= 0x80 { return String(name.lowercased().unicodeScalars.filter { $0 != "-" && $0 != "_" }.map(Character.init)) }
            out.append(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Canonical name → role (the snake_case name used in placeholders).
    static let parameterRoles: [String: String] = {
        let roles = ["client_secret", "code", "code_verifier", "access_token", "refresh_token", "id_token",
                     "token", "assertion", "client_assertion", "password", "api_key", "secret",
                     // RFC 8628 / RFC 8693 credentials, same nature.
                     "device_code", "subject_token", "actor_token"]
        return Dictionary(uniqueKeysWithValues: roles.map { (canonical($0), $0) })
    }()

    /// The placeholder role of a URL query parameter, form field or JSON key whose value is a
    /// secret (`clientSecret` → `client_secret`), or `nil` when the name is not a secret
    /// (`state`, `client_id`, `redirect_uri`, `scope`, `team_id`, `code_challenge`, `grant_type`…).
    public static func role(forParameter name: String) -> String? {
        parameterRoles[canonical(name)]
    }

    /// True for a header whose whole value is a secret by its name alone: the name contains
    /// `token`, `secret`, `key`, `session`, `signature`, `auth`, `password` or `credential`
    /// (`X-Api-Key`, `X-Auth-Token`, `X-Session-Id`, `Sec-WebSocket-Key`), except `Content-*`,
    /// `X-RateLimit-*`/`RateLimit-*`, `WWW-Authenticate`, `Proxy-Authenticate` and
    /// `Access-Control-*` and tokentap's own `X-Tokentap-*`, whose values are not credentials. `Authorization`,
    /// `Proxy-Authorization`, `Cookie` and `Set-Cookie` have their own rules and are not matched here.
    public static func isSecretHeader(_ name: String) -> Bool {
        // Header names are ASCII tokens (RFC 9110 §5.1): compare bytes. (Foundation's `contains` and
        // `replacingOccurrences` bridge to NSString on Linux, and the generic `firstRange(of:)` that
        // resolves on byte arrays is Foundation's slow `DataProtocol` one; this runs for every header.)
        let n = Array(name.lowercased().utf8)
        if exemptHeaders.contains(n) { return false }
        if exemptHeaderPrefixes.contains(where: { n.starts(with: $0) }) { return false }
        var stripped = n
        while let at = ByteScan.find(tokentap, in: stripped, from: 0) { stripped.removeSubrange(at..<(at + tokentap.count)) }
        return secretHeaderWords.contains { ByteScan.find($0, in: stripped, from: 0) != nil }
    }

    private static let exemptHeaders: Set<[UInt8]> = Set(
        ["authorization", "proxy-authorization", "cookie", "set-cookie", "set-cookie2",
         "www-authenticate", "proxy-authenticate"].map { Array($0.utf8) })
    private static let exemptHeaderPrefixes: [[UInt8]] =
        ["content-", "x-ratelimit", "ratelimit", "access-control-", "x-tokentap-"].map { Array($0.utf8) }
    private static let tokentap = Array("tokentap".utf8)
    private static let secretHeaderWords: [[UInt8]] =
        ["token", "secret", "key", "session", "signature", "auth", "password", "credential"].map { Array($0.utf8) }
}
