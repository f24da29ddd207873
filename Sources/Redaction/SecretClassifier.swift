import Foundation

/// The one place that decides whether a name denotes a secret (issue 14): the redactor, the
/// diagnosis's evidence (`RuleContext.show`), rendering and every export ask it, and no other list
/// of secret names exists in the code base.
///
/// A name (query or form parameter, JSON key, XML element or attribute, `name: value` text line)
/// is split into lower-case words at every character that is not a letter or a digit and at
/// camelCase boundaries (`clientSecret`, `client-secret`, `CLIENT_SECRET`, `client.secret`,
/// `data[client_secret]`, `client_secret[]` → `client`, `secret`), then judged by these rules, in
/// order, each word without a trailing counter (`new_password2`, `token2`, `api_key_2`):
///
/// 1. An allowlisted name (`allowlistedNames`: `token_type`, `expires_in`, `grant_type`, `scope`,
///    `state`, `client_id`, `redirect_uri`, `code_challenge`, `kid`, `key_id`, …) is not a secret:
///    the diagnosis needs these and users must see them.
/// 2. A name whose **last** word is a metadata word (`metadataWords`: `type`, `hint`, `id`, `kid`,
///    `endpoint`, `url`, `uri`, `method`, `expires`, `in`, `at`, `ttl`, …) is not a secret
///    (`refresh_token_expires_in`, `token_endpoint`, `key_id`), except `session_id`.
/// 3. `code` is a secret as the whole name and as the last word after `authorization`, `auth`,
///    `device`, `user` (RFC 6749 §4.1.2, RFC 8628 §3.2) or a one-time code's word (`verification`,
///    `mfa`, `oob`, `binding`, `recovery`, `backup`, `reset`, …: `codeQualifiers`); never as a word
///    inside another name (`status_code`, `error_code`, `country_code`); inside an error envelope the redactor keeps Miro's
///    `{"code": "oauthError"}` readable (`Redactor.isErrorCode`).
/// 4. `key` is a secret as the whole name and as the last word after `api`, `private`, `secret`,
///    `access`, `signing`, `master`, `encryption` (`api_key`, `privateKey`, `x-api-key`; `keys`
///    after these too: `api_keys`), not in `public_key`, `idempotency_key`, `cache_key`.
/// 5. Any word that is a secret word (`secretWords`: `secret`, `token`, `password`, `passwd`,
///    `pwd`, `passphrase`, `signature`, `sig`, `session`, `credential(s)`, `assertion`, `otp`,
///    `cookie`, `verifier`, `authorization`, …), or a single word that ends in `token`, `secret`,
///    `password`, `passwd`, `sessionid` or `sessid` (`accesstoken`, `clientsecret`, `jsessionid`),
///    makes the name a secret.
///
/// Only string values are ever secrets (numbers, booleans and null never are): the callers apply
/// that. Header names follow `isSecretHeader`.
public enum SecretClassifier {
    /// The placeholder role of a secret name, or `nil` when the name is not a secret.
    ///
    /// The role is the name's words joined by `_` (`clientSecret` → `client_secret`,
    /// `X-Webhook-Secret` → `x_webhook_secret`), with the RFC names kept as they are spelled in
    /// RFC 6749/7636 when a name glues their words (`ACCESSTOKEN` → `access_token`).
    public static func role(forName name: String) -> String? {
        // Pure in `name`, and asked for every header, parameter and JSON key of every exchange,
        // mostly the same few dozen names: answered from a memo after the first time.
        if let known = roleMemo.value(name) { return known }
        let role = computeRole(forName: name)
        roleMemo.store(role, for: name)
        return role
    }

    /// Memos of the two pure name judgements (bounded: emptied past 4,096 names).
    private static let roleMemo = NameMemo<String?>()
    private static let secretHeaderMemo = NameMemo<Bool>()

    private static func computeRole(forName name: String) -> String? {
        let spelled = words(name)
        let joined = spelled.joined(separator: "_")
        // Words are judged without a trailing counter (`new_password1`, `token2`, `api_key_2`:
        // Django's `new_password2`, a second key); a word of digits only is no word.
        let w = spelled.compactMap { word -> String? in
            guard let last = word.utf8.last, ByteScan.isDigit(last) else { return word }
            let core = String(decoding: word.utf8.reversed().drop(while: ByteScan.isDigit).reversed(), as: UTF8.self)
            return core.isEmpty ? nil : core
        }
        guard !w.isEmpty else { return nil }
        let glued = w.joined()
        if allowlistedNames.contains(glued) { return nil }
        let last = w[w.count - 1]
        if metadataWords.contains(last) {
            // `session_id` names a session, and the session is the credential.
            guard last == "id", w.count >= 2, w[w.count - 2] == "session" else { return nil }
            return joined
        }
        if let known = knownRoles[glued] { return known }
        // Rule 3: `code` only as the whole name or one of the OAuth codes.
        if last == "code" {
            return w.count == 1 || codeQualifiers.contains(w[w.count - 2]) ? joined : nil
        }
        // Rule 4: `key` only as key material.
        if last == "key" {
            return w.count == 1 || keyQualifiers.contains(w[w.count - 2]) ? joined : nil
        }
        // … and its plural after a qualifier (`api_keys`); a lone `keys` is a JWKS.
        if last == "keys", w.count >= 2, keyQualifiers.contains(w[w.count - 2]) { return joined }
        if gluedKeys.contains(last) { return joined }
        // Rule 5: secret words anywhere.
        for word in w {
            if secretWords.contains(word) { return joined }
            if word.count > 5, gluedSecretSuffixes.contains(where: { word.hasSuffix($0) }) { return joined }
        }
        return nil
    }

    /// True for `error_uri` (RFC 6749 §5.2): a link to the provider's documentation of an error.
    /// Its query parameters (Microsoft's `…/error?code=9002327`) are error numbers, not
    /// credentials, so the redactor does not judge them by name.
    public static func isErrorReference(_ name: String) -> Bool {
        words(name) == ["error", "uri"]
    }

    /// True when `name` denotes a secret (`role(forName:) != nil`).
    public static func isSecret(_ name: String) -> Bool { role(forName: name) != nil }

    /// True for a header whose whole value is a secret by its name alone. `Authorization`,
    /// `Proxy-Authorization`, `Cookie` and `Set-Cookie` have their own rules in the redactor and
    /// are not matched here.
    ///
    /// Fail closed: an unknown header name containing `auth`, `key`, `token`, `secret`,
    /// `session`, `signature`, `password` or `credential` (`X-Auth-Token`, `X-Session-Id`,
    /// `Sec-WebSocket-Key`) is a secret unless allowlisted (`Content-*`, `X-RateLimit-*`,
    /// `RateLimit-*`, `Access-Control-*`, `X-Tokentap-*`, `WWW-Authenticate`,
    /// `Proxy-Authenticate`, `X-OAuth-Scopes`, `X-Accepted-OAuth-Scopes`, `Authentication-Info`);
    /// any other name that `role(forName:)` calls a secret (`X-Otp`, `X-Passwd`) is one too.
    public static func isSecretHeader(_ name: String) -> Bool {
        if let known = secretHeaderMemo.value(name) { return known }
        let secret = computeIsSecretHeader(name)
        secretHeaderMemo.store(secret, for: name)
        return secret
    }

    private static func computeIsSecretHeader(_ name: String) -> Bool {
        // Header names are ASCII tokens (RFC 9110 §5.1): compare bytes (this runs for every header).
        let n = Array(name.lowercased().utf8)
        if exemptHeaders.contains(n) { return false }
        if exemptHeaderPrefixes.contains(where: { n.starts(with: $0) }) { return false }
        if secretHeaderWords.contains(where: { ByteScan.find($0, in: n, from: 0) != nil }) { return true }
        return role(forName: name) != nil
    }

    /// The words of a name, lower-cased: split at every character that is not a letter or a digit
    /// (`_`, `-`, `.`, `:`, `/`, whitespace, and the brackets of `data[client_secret]` and
    /// `client_secret[]` as PHP and Rails send form fields), and at camelCase boundaries (`clientSecret` → `client`, `secret`; `XMLToken` → `xml`, `token`: a
    /// run of capitals followed by a lower-case letter keeps its last capital with that word).
    public static func words(_ name: String) -> [String] {
        // Names are almost always ASCII (this runs for every parameter and JSON key): bytes.
        let bytes = Array(name.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return unicodeWords(name) }
        func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
        func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        var out: [String] = []
        var current: [UInt8] = []
        func flush() {
            if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for (i, c) in bytes.enumerated() {
            guard isUpper(c) || isLower(c) || isDigit(c) else {
                flush()
                continue
            }
            if isUpper(c), let prev = current.last {
                let nextIsLower = i + 1 < bytes.count && isLower(bytes[i + 1])
                // fooBar → foo|bar; FOOBar → foo|bar; foo2Bar → foo2|bar (`prev` is stored lower-cased).
                let prevWasUpper = isUpper(bytes[i - 1])
                if (isLower(prev) && !prevWasUpper) || isDigit(prev) || (prevWasUpper && nextIsLower) { flush() }
            }
            current.append(isUpper(c) ? c | 0x20 : c)
        }
        flush()
        return out
    }

    /// `words` for names with non-ASCII characters, by `Character`.
    private static func unicodeWords(_ name: String) -> [String] {
        var out: [String] = []
        var current: [Character] = []
        let chars = Array(name)
        func flush() {
            if !current.isEmpty { out.append(String(current).lowercased()) }
            current = []
        }
        for (i, c) in chars.enumerated() {
            if !(c.isLetter || c.isNumber) {
                flush()
                continue
            }
            if c.isUppercase, let prev = current.last {
                let next = i + 1 < chars.count ? chars[i + 1] : nil
                if prev.isLowercase || prev.isNumber || (prev.isUppercase && (next?.isLowercase ?? false)) {
                    flush()
                }
            }
            current.append(c)
        }
        flush()
        return out
    }

    // MARK: - The lists (documented in README, "Secrets")

    /// Names that are never secrets (compared with their words glued: `token_type`, `tokenType`,
    /// `TOKEN-TYPE` all match `tokentype`).
    public static let allowlistedNames: Set<String> = [
        "tokentype", "tokentypehint", "expiresin", "granttype", "scope", "state", "clientid", "redirecturi",
        "codechallenge", "codechallengemethod", "responsetype", "responsemode", "kid", "keyid", "errorcode",
        "statuscode", "xoauthscopes", "xacceptedoauthscopes",
    ]

    /// Last words that make a name metadata about a secret rather than the secret itself.
    public static let metadataWords: Set<String> = [
        "type", "hint", "id", "kid", "endpoint", "url", "uri", "method", "expires", "in", "at", "ttl", "lifetime",
        "length", "count", "scope", "scopes", "policy", "name",
    ]

    /// Words that make a name a secret wherever they stand in it.
    public static let secretWords: Set<String> = [
        "secret", "secrets", "token", "tokens", "password", "passwords", "passwd", "pwd", "passphrase", "signature",
        "sig", "session", "credential", "credentials", "assertion", "otp", "cookie", "cookies", "verifier",
        "authorization", "apikey", "privatekey",
    ]

    /// The OAuth codes (RFC 6749, RFC 8628), then the one-time codes of verification and MFA
    /// (`verification_code`, `mfa_code`, Auth0's `oob_code` and `binding_code`, `recovery_code`).
    static let codeQualifiers: Set<String> = ["authorization", "auth", "device", "user", "verification", "mfa", "oob",
                                              "binding", "recovery", "backup", "reset", "activation", "sms", "totp",
                                              "hotp", "confirmation", "security"]
    /// The words before a last `key` that make it key material.
    static let keyQualifiers: Set<String> = ["api", "private", "secret", "access", "signing", "master", "encryption"]
    /// The same, glued into one word (`apikey`, `privatekey`).
    static let gluedKeys: Set<String> = Set(keyQualifiers.map { $0 + "key" })
    /// Endings that make one glued word a secret (`accesstoken`, `clientsecret`, and the session
    /// ids of servlet and PHP URLs and cookies: `jsessionid`, `PHPSESSID`).
    static let gluedSecretSuffixes = ["token", "secret", "password", "passwd", "sessionid", "sessid"]

    /// Roles of RFC parameter names whose words may arrive glued (`ACCESSTOKEN`, `clientsecret`).
    static let knownRoles: [String: String] = {
        let roles = ["client_secret", "code_verifier", "access_token", "refresh_token", "id_token", "client_assertion",
                     "api_key", "device_code", "subject_token", "actor_token", "authorization_code"]
        return Dictionary(uniqueKeysWithValues: roles.map { ($0.replacingOccurrences(of: "_", with: ""), $0) })
    }()

    private static let exemptHeaders: Set<[UInt8]> = Set(
        ["authorization", "proxy-authorization", "cookie", "set-cookie", "set-cookie2", "www-authenticate",
         "proxy-authenticate", "x-oauth-scopes", "x-accepted-oauth-scopes", "authentication-info"].map { Array($0.utf8) })
    private static let exemptHeaderPrefixes: [[UInt8]] =
        ["content-", "x-ratelimit", "ratelimit", "access-control-", "x-tokentap-"].map { Array($0.utf8) }
    private static let secretHeaderWords: [[UInt8]] =
        ["auth", "key", "token", "secret", "session", "signature", "password", "credential"].map { Array($0.utf8) }
}

/// A memo of a pure function of a name, shared by every thread (locked). Bounded: emptied when it
/// holds `limit` names, so names an attacker makes up cannot grow it without end.
final class NameMemo<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Value] = [:]
    private let limit: Int

    init(limit: Int = 4_096) { self.limit = limit }

    /// The stored value for `name` (`.some(nil)` is a stored nil for an optional `Value`).
    func value(_ name: String) -> Value? {
        lock.withLock { values[name] }
    }

    func store(_ value: Value, for name: String) {
        lock.withLock {
            if values.count >= limit { values.removeAll(keepingCapacity: true) }
            values[name] = value
        }
    }
}
