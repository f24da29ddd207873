import Crypto
import Foundation
import TokentapCore

/// Replaces every secret of a captured exchange with a `Placeholder` before it is stored, printed
/// or exported (design.md, "Secrets"; issue 5).
///
/// Pure: values in, values out; the same key and input always give the same output, and
/// redacting an already redacted exchange changes nothing (placeholders are left as they are).
/// What is secret:
/// - headers `Authorization`/`Proxy-Authorization` (Bearer token; the password of Basic
///   credentials, the client id staying readable; the credentials of other schemes), `Cookie`
///   values, the `Set-Cookie` value, and headers named like a credential (`SecretClassifier.isSecretHeader`);
/// - the values of secret parameters (`SecretClassifier.role(forName:)`) in the request target's
///   query, `Location`/`Content-Location`/`Referer` URLs, form bodies, multipart fields, JSON keys at
///   any depth, and `name=value` / `"name":"value"` pairs found in any other text;
/// - JWTs (role `jwt`) and Miro-shaped codes and tokens (role `miro_token`) anywhere in text.
///
/// In a JSON object that is an error envelope (it also has a `message`, `error`,
/// `error_description`, `error_message` or `errors` key), a `code` whose value looks like an error
/// identifier (`oauthError`, `tokenNotProvided`) stays readable: it is Miro's error code, not an
/// authorization code (miro-oauth.md, "Errors").
public struct Redactor: Sendable {
    let key: Data
    /// Set by `redactChecked` only: records each replaced raw value for the last check.
    var log: ReplacementLog?

    /// - Parameter key: the per-install fingerprint key (32 random bytes, see `loadOrCreateKey(at:)`).
    public init(key: Data) {
        self.key = key
    }

    /// HMAC-SHA256 (RFC 2104) under the fingerprint key over the UTF-8 bytes of `value`: the first
    /// 12 lower-case hex digits (48 bits).
    public func fingerprint(_ value: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(value.utf8), using: SymmetricKey(data: key))
        let digits = Array("0123456789abcdef".unicodeScalars)
        var out = String.UnicodeScalarView()
        for byte in mac.prefix(6) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(out)
    }

    /// The placeholder for `value` in `role` (the role is sanitized with `Placeholder.sanitizedRole`).
    public func placeholderValue(role: String, value: String) -> Placeholder {
        Placeholder(role: Placeholder.sanitizedRole(role), fingerprint: fingerprint(value),
                    length: value.unicodeScalars.count, flags: shapeFlags(of: value))
    }

    /// The placeholder text for `value` in `role`, e.g. `redacted.code.3f2a9c1b0d4e.43`.
    public func placeholder(role: String, value: String) -> String {
        placeholderValue(role: role, value: value).text
    }

    /// True when `placeholder` stands for `value` (same fingerprint under this key): how the
    /// diagnosis compares a raw value with the redacted history.
    public func matches(_ placeholder: Placeholder, value: String) -> Bool {
        placeholder.fingerprint == fingerprint(value)
    }

    /// The replacement for a secret value, or nil when there is nothing to hide (empty, or
    /// already a placeholder).
    func replacement(role: String, value: String) -> String? {
        if value.isEmpty || (value.hasPrefix("redacted.") && Placeholder(parsing: value) != nil) { return nil }
        // Already replaced by another tool (`[state redacted]`, `***`): nothing to hide, and a
        // fingerprint would make every such value look equal to the others.
        if RedactedElsewhere.isMarker(value) { return nil }
        let text = placeholder(role: role, value: value)
        log?.add(raw: value, placeholder: text, role: role)
        return text
    }

    // MARK: - Exchange

    /// Redacts every secret in a raw exchange: the request target (query parameters by name, the
    /// rest by shape), request and response headers and bodies, `reason`, `error`, and the title,
    /// evidence and fix of findings. Sets `keepsSecrets` to false. Everything that is not a secret
    /// is kept byte for byte (JSON is never re-serialized).
    public func redact(_ exchange: Exchange) -> Exchange {
        var e = exchange
        e.target = redactURL(exchange.target, fragmentAware: false)
        e.request = redact(exchange.request)
        e.response = redact(exchange.response)
        e.reason = exchange.reason.map { redactText($0) }
        e.error = exchange.error.map { redactText($0) }
        e.findings = exchange.findings.map { $0.mappingText { redactText($0) } }
        e.keepsSecrets = false
        return e
    }

    /// Redacts one message: its headers (`redact(header:)`) and its body, parsed by `Content-Type`
    /// or sniffed (`redactBody(_:contentType:)`). A body still compressed (a non-identity
    /// `Content-Encoding` with `decodedFrom == nil`) cannot be scanned: it is dropped (empty,
    /// `truncated = true`).
    public func redact(_ message: MessageRecord) -> MessageRecord {
        var m = message
        m.headers = message.headers.map { redact(header: $0) }
        if message.decodedFrom == nil, !message.body.isEmpty,
           let encoding = message.headers.first(named: "Content-Encoding"),
           !["", "identity"].contains(encoding.trimmingCharacters(in: .whitespaces).lowercased()) {
            m.body = Data()
            m.truncated = true
            return m
        }
        m.body = redactBody(message.body, contentType: message.headers.first(named: "Content-Type"))
        return m
    }

    // MARK: - Headers

    /// Redacts one header field (the name is kept). Role `access_token` for a Bearer token,
    /// `client_secret` for the password of Basic credentials (re-encoded so the header stays valid
    /// base64 of `client_id:<placeholder>`), `basic_credentials` for Basic credentials that do not
    /// decode to `id:secret` (the flags are those of the raw value), otherwise the lower-cased
    /// header name. After that the value is scanned as text (parameters by name, shapes).
    public func redact(header: HeaderField) -> HeaderField {
        let name = header.name.lowercased()
        var value = header.value
        switch name {
        case "authorization", "proxy-authorization":
            value = redactAuthorization(value, role: name)
        case "cookie":
            value = redactCookie(value)
        case "set-cookie", "set-cookie2":
            value = redactSetCookie(value, role: name)
        case "location", "content-location", "referer":
            // The URL scan is complete (parameters by name, then shapes); a text scan on top would
            // judge `code=` inside an `error_uri` again.
            return HeaderField(name: header.name, value: redactURL(value, fragmentAware: true))
        default:
            if SecretClassifier.isSecretHeader(name), let r = replacement(role: name, value: value) {
                value = r
            }
        }
        return HeaderField(name: header.name, value: redactText(value))
    }

    /// An `Authorization` value: `<scheme> <credentials>`, or a bare credential.
    func redactAuthorization(_ value: String, role: String) -> String {
        let s = value.unicodeScalars
        var i = s.startIndex
        while i < s.endIndex, s[i] == " " || s[i] == "\t" { i = s.index(after: i) }
        var schemeEnd = i
        while schemeEnd < s.endIndex, !s[schemeEnd].properties.isWhitespace { schemeEnd = s.index(after: schemeEnd) }
        var credStart = schemeEnd
        while credStart < s.endIndex, s[credStart] == " " || s[credStart] == "\t" { credStart = s.index(after: credStart) }
        let lead = value.scalarSlice(s.startIndex..<schemeEnd)
        let scheme = value.scalarSlice(i..<schemeEnd)
        let sep = value.scalarSlice(schemeEnd..<credStart)
        let cred = value.scalarSlice(credStart..<s.endIndex)
        if cred.isEmpty {
            // No credentials after the scheme: a bare scheme name is not secret; a bare token is.
            let known = ["bearer", "basic", "digest", "negotiate", "ntlm", "token", "hoba", "mutual"]
            if known.contains(scheme.lowercased()) { return value }
            let raw = value.scalarSlice(i..<s.endIndex)
            guard let r = replacement(role: role, value: raw) else { return value }
            return value.scalarSlice(s.startIndex..<i) + r
        }
        switch scheme.lowercased() {
        case "bearer":
            guard let r = replacement(role: "access_token", value: cred) else { return value }
            return lead + sep + r
        case "basic":
            return lead + sep + redactBasic(cred, rawHeader: value)
        default:
            guard let r = replacement(role: role, value: cred) else { return value }
            return lead + sep + r
        }
    }

    /// `cred` is the base64 part of a Basic header (RFC 7617).
    private func redactBasic(_ cred: String, rawHeader: String) -> String {
        if Placeholder(parsing: cred) != nil { return cred }
        if let basic = BasicCredentials(base64: cred), Data(basic.text.utf8) == Data(base64Encoded: cred) {
            let (decoded, id, password) = (basic.text, basic.user, basic.password)
            // RFC 6749 §2.3.1: the secret is form-urlencoded before it is joined and encoded, so
            // the value the server compares is the decoded one (the same placeholder as in a form body).
            guard let r = replacement(role: "client_secret", value: Coding.formDecode(Array(password.utf8))) else { return cred }
            log?.add(raw: decoded, placeholder: r, role: "client_secret")  // its base64 is the header as sent
            return Data((id + ":" + r).utf8).base64EncodedString()
        }
        var p = placeholderValue(role: "basic_credentials", value: cred)
        p.flags.formUnion(shapeFlags(of: rawHeader))
        return p.text
    }

    private func redactCookie(_ value: String) -> String {
        value.splitScalars(";").map { segment -> String in
            if let (name, v) = segment.splitOnce("=") {
                guard let r = replacement(role: "cookie", value: v) else { return segment }
                return name + "=" + r
            }
            // A cookie without a name: the whole (trimmed) segment is the value.
            let trimmed = segment.trimmingCharacters(in: .whitespaces)
            guard let r = replacement(role: "cookie", value: trimmed) else { return segment }
            return segment.replacingOccurrences(of: trimmed, with: r)
        }.joined(separator: ";")
    }

    /// One `Set-Cookie` value, or several folded into one line with commas (a server or a proxy
    /// that joins repeated fields, RFC 9110 §5.3, although RFC 6265 §3 forbids it for this one): a
    /// comma starts another cookie when `name=` follows it; the comma of an `Expires` date does not
    /// (`Expires=Wed, 21 Oct 2015 07:28:00 GMT`).
    private func redactSetCookie(_ value: String, role: String) -> String {
        var cookies: [String] = []
        for piece in value.splitScalars(",") {
            if cookies.isEmpty || Self.startsCookie(piece) {
                cookies.append(piece)
            } else {
                cookies[cookies.count - 1] += "," + piece
            }
        }
        return cookies.map { redactOneSetCookie($0, role: role) }.joined(separator: ",")
    }

    /// `[ws]name=` with `name` an RFC 9110 token.
    private static func startsCookie(_ piece: String) -> Bool {
        let b = Array(piece.utf8)
        var p = 0
        while p < b.count, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
        let start = p
        while p < b.count, b[p] > 0x20, b[p] < 0x7F, !"()<>@,;:\\\"/[]?={}".utf8.contains(b[p]) { p += 1 }
        return p > start && p < b.count && b[p] == ByteScan.equals
    }

    private func redactOneSetCookie(_ value: String, role: String) -> String {
        let (pair, attributes) = value.splitOnce(";").map { ($0.0, ";" + $0.1) } ?? (value, "")
        if let (name, v) = pair.splitOnce("=") {
            guard let r = replacement(role: role, value: v) else { return value }
            return name + "=" + r + attributes
        }
        guard let r = replacement(role: role, value: pair) else { return value }
        return r + attributes
    }
}
