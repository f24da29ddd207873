import Foundation
import TokentapCore

/// What a provider's error message is about, read from its words (`error`, `error_description`,
/// `message`). Provider texts are often undocumented or misleading (oauth-rules.md, "Judge from the
/// wire"; Miro's are unverified): a subject is supporting evidence for the cause it names, never a
/// cause on its own.
enum ProviderSubject: String, CaseIterable, Sendable {
    case code, redirect, client, refresh, grantType, body, missing, accessToken, scope, rate, method, pkce

    /// The subjects `text` names (lower-cased keyword match).
    static func named(in text: String) -> Set<ProviderSubject> {
        let t = text.lowercased()
        var out = Set<ProviderSubject>()
        func has(_ words: String...) -> Bool { words.contains { t.contains($0) } }
        if has("code") && !has("status code", "error code", "http code") { out.insert(.code) }
        if has("invalid_grant") { out.formUnion([.code, .refresh]) }
        if has("redirect") { out.insert(.redirect) }
        if has("client", "secret", "credential") { out.insert(.client) }
        if has("refresh") { out.insert(.refresh) }
        if has("grant_type", "grant type", "unsupported_grant") { out.insert(.grantType) }
        if has("json", "content-type", "content type", "form-urlencoded") { out.insert(.body) }
        if has("missing", "required") { out.insert(.missing) }
        if has("access token", "access_token", "tokennotprovided", "token not", "bearer", "invalid_token", "token has expired", "token was revoked") { out.insert(.accessToken) }
        if has("scope", "insufficient", "forbidden") { out.insert(.scope) }
        if has("too many", "rate limit", "toomanyrequests") { out.insert(.rate) }
        if has("method not allowed", "method") { out.insert(.method) }
        if has("verifier", "pkce", "code_challenge") { out.insert(.pkce) }
        return out
    }

    /// The subjects of a provider's error fields (name, value): the values of `error`,
    /// `error_description` and `message` (Miro's `code` is an error identifier, not a subject).
    static func named(inFields fields: [(String, String)]) -> Set<ProviderSubject> {
        named(in: fields.filter { ["error", "error_description", "message"].contains($0.0) }.map(\.1).joined(separator: " "))
    }

    /// The subject of a catalog rule, when it has one a provider could name.
    static func of(rule: String) -> ProviderSubject? {
        switch rule {
        case "code-reused", "code-expired", "code-mangled", "code-unknown", "token-type-confusion": return .code
        case "redirect-uri-mismatch", "redirect-uri-missing", "loopback-redirect-port": return .redirect
        case "server-rejected-credentials", "client-auth-conflict", "client-credentials-swapped", "client-id-mismatch",
             "credential-formatting", "basic-auth-malformed": return .client
        case "refresh-token-rotated", "refresh-token-expired", "refresh-token-not-issued", "refresh-token-client-mismatch": return .refresh
        case "grant-type-invalid": return .grantType
        case "body-not-form-encoded", "content-type-mismatch": return .body
        case "param-missing": return .missing
        case "access-token-missing", "access-token-expired", "access-token-superseded": return .accessToken
        case "scope-mismatch": return .scope
        case "rate-limited": return .rate
        case "token-method-not-post": return .method
        case "pkce-verifier-mismatch", "pkce-verifier-missing", "pkce-verifier-invalid": return .pkce
        default: return nil
        }
    }
}

/// The `provider-error` evidence line for a provider error code the profile knows
/// (``ProviderProfile/ErrorCode``), and the causes such lines name, read back by
/// ``Verdict/decide(_:)`` from the stored findings (a verdict is computed from findings only).
enum ProviderErrorCodeEvidence {
    static let prefix = "provider code "
    static let names = " names "

    /// `provider code AADSTS54005 names code-reused: the code was already redeemed (Microsoft Entra profile, built-in)`.
    static func line(code: ProviderProfile.ErrorCode, source: String) -> String {
        prefix + code.code + (code.cause.map { names + $0 } ?? "") + ": \(code.meaning) (\(source))"
    }

    /// The rule ids the `provider-error` finding among `findings` names through provider codes.
    static func causes(in findings: [Finding]) -> Set<String> {
        guard let f = findings.first(where: { $0.rule == "provider-error" }) else { return [] }
        var out = Set<String>()
        for line in f.evidence where line.hasPrefix(prefix) {
            guard let r = line.range(of: names) else { continue }
            let rest = line[r.upperBound...]
            if let colon = rest.firstIndex(of: ":") { out.insert(String(rest[..<colon])) }
        }
        return out
    }
}
