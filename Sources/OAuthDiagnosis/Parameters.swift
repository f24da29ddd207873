import Foundation
import Redaction
import TokentapCore

/// Where a request parameter travelled.
public enum ParameterPlace: String, Sendable, Hashable, Codable {
    case query = "query"
    case form = "form body"
    case json = "JSON body"
    case multipart = "multipart body"
    case basic = "Basic header"
}

/// One parameter occurrence: `value` is what the server sees (after one form-decoding for query and
/// form, unescaped for JSON, base64-decoded for Basic); `wire` is the encoded text as sent.
public struct Parameter: Sendable, Hashable {
    public var name: String
    public var value: String
    public var wire: String
    public var place: ParameterPlace
}

/// What the request body actually is (sniffed from its bytes, not from its Content-Type).
public enum BodyKind: String, Sendable, Hashable {
    case empty, form, json, multipart, text, binary
}

/// A parsed `Authorization` header (RFC 9110 §11.6.2; Basic: RFC 7617, RFC 6749 §2.3.1).
public struct AuthorizationHeader: Sendable, Hashable {
    /// The header value exactly as recorded.
    public var raw: String
    /// The scheme as sent (`Basic`, `bearer`), or `nil` when the value has no scheme.
    public var scheme: String?
    /// Everything after the scheme and its single separating space, untrimmed.
    public var credentials: String
    /// Basic: the decoded `user` part (client id), when base64 decoding and the `:` split worked.
    public var basicUser: String?
    /// Basic: the decoded password part (client secret).
    public var basicPassword: String?
    /// Basic: the whole decoded text (when decodable at all).
    public var basicDecoded: String?
    /// Problems with the header's construction, in plain words (empty when well formed).
    public var problems: [String]

    var isBasic: Bool { scheme?.lowercased() == "basic" }
    var isBearer: Bool { scheme?.lowercased() == "bearer" }

    /// Parses an `Authorization` header value as recorded (any text: a value that is not
    /// `SCHEME credentials` has no scheme; Basic credentials are base64-decoded and split at the
    /// first `:`, RFC 7617 §2). Never fails: what is wrong with the value is listed in `problems`.
    public init(raw: String) {
        self.raw = raw
        problems = []
        let trimmedLead = raw.drop(while: { $0 == " " || $0 == "\t" })
        if let sp = trimmedLead.firstIndex(where: { $0 == " " || $0 == "\t" }) {
            scheme = String(trimmedLead[..<sp])
            credentials = String(trimmedLead[trimmedLead.index(after: sp)...])
        } else if ["basic", "bearer"].contains(trimmedLead.lowercased()) {
            scheme = String(trimmedLead)
            credentials = ""
        } else {
            scheme = nil
            credentials = String(trimmedLead)
        }
        if let s = scheme, s.lowercased() != "basic", s.lowercased() != "bearer",
           s.range(of: "^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*$", options: .regularExpression) == nil {
            // "Basic" missing: the value is e.g. "abc def" — treat the whole as credentials without scheme.
            scheme = nil
            credentials = String(trimmedLead)
        }
        if scheme == nil || isBasic { decodeBasic() }
    }

    private mutating func decodeBasic() {
        var b64 = credentials
        if scheme == nil { problems.append("no `Basic` scheme before the credentials") }
        if b64.isEmpty {
            problems.append("no credentials after the scheme")
            return
        }
        if let ph = Placeholder(parsing: b64.trimmingCharacters(in: .whitespacesAndNewlines)) {
            // A stored (redacted) header whose credentials could not be decoded when recorded.
            if ph.flags.contains(.lineBreak) { problems.append("a line break inside or after the base64 text (Python `base64.encodebytes`)") }
            else if ph.flags.contains(.trailingWhitespace) || ph.flags.contains(.leadingWhitespace) { problems.append("whitespace inside or after the base64 text") }
            else { problems.append("not valid base64 text, or no `:` between client id and secret") }
            return
        }
        if b64.hasPrefix(" ") || b64.hasPrefix("\t") { problems.append("extra whitespace after the scheme") }
        if hasLineBreak(b64) {
            problems.append("a line break inside or after the base64 text (Python `base64.encodebytes`)")
        } else if b64.trimmingCharacters(in: .whitespaces) != b64 || b64.contains(" ") {
            problems.append("whitespace inside or after the base64 text")
        }
        b64 = String(b64.filter { !$0.isWhitespace })
        if b64.contains("-") || b64.contains("_") {
            problems.append("base64url alphabet (`-`/`_`) instead of standard base64 (`+`/`/`)")
            b64 = b64.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        }
        if b64.count % 4 != 0 {
            if !b64.contains("=") { problems.append("base64 without `=` padding") }
            b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        }
        guard let data = Data(base64Encoded: b64), let text = String(data: data, encoding: .utf8) else {
            problems.append("not valid base64 text")
            return
        }
        basicDecoded = text
        guard let credentials = BasicCredentials(base64: b64) else {
            problems.append("no `:` between client id and secret after decoding")
            return
        }
        let (user, pass) = (credentials.user, credentials.password)
        basicUser = user
        basicPassword = pass
        if user.isEmpty { problems.append("empty client id before the `:`") }
        if pass.isEmpty { problems.append("empty client secret after the `:`") }
        let storedFlags = Placeholder(parsing: pass)?.flags ?? []
        if hasLineBreak(pass) || hasLineBreak(user) || storedFlags.contains(.lineBreak) {
            problems.append("a line break inside the encoded credentials (`echo \"$ID:$SECRET\" | base64` adds one; use `echo -n` or `printf %s`)")
        } else if pass.trimmingCharacters(in: .whitespaces) != pass || user.trimmingCharacters(in: .whitespaces) != user
                    || storedFlags.contains(.leadingWhitespace) || storedFlags.contains(.trailingWhitespace) {
            problems.append("whitespace around the client id or secret inside the encoded credentials")
        }
    }
}

/// Every parameter of a request, from every place it can travel: URL query, form body, JSON body,
/// multipart body and the Basic header (RFC 6749 §2.3.1, §4.1.3). One parser used by every rule.
public struct RequestParameters: Sendable, Hashable {
    public var items: [Parameter]
    public var bodyKind: BodyKind
    /// The request's Content-Type header, as sent.
    public var contentType: String?
    public var authorization: AuthorizationHeader?
    /// Names of parameters whose names appear in the body text when the body is not a form (e.g. a
    /// text/plain body `grant_type=…`), for evidence.
    public var bodyText: String?

    /// Parses query, body and Authorization of `exchange`'s request.
    public init(_ exchange: Exchange) {
        items = []
        contentType = exchange.request.headers.first(named: "Content-Type")
        if let q = exchange.query, !q.isEmpty {
            items += RequestParameters.formPairs(q).map { Parameter(name: $0.0, value: $0.1, wire: $0.2, place: .query) }
        }
        let body = exchange.request.body
        let ct = (contentType ?? "").lowercased()
        let text = String(data: body, encoding: .utf8)
        bodyText = text
        if body.isEmpty {
            bodyKind = .empty
        } else if let text, ct.hasPrefix("multipart/") || text.hasPrefix("--") {
            bodyKind = .multipart
            items += RequestParameters.multipartPairs(text, contentType: contentType ?? "").map {
                Parameter(name: $0.0, value: $0.1, wire: $0.1, place: .multipart)
            }
        } else if let text, let first = text.first(where: { !$0.isWhitespace }), first == "{" || first == "[",
                  body.count <= 1_048_576, let obj = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) {
            bodyKind = .json
            if let dict = obj as? [String: Any] {
                for key in dict.keys.sorted() {
                    let v = dict[key]!
                    let s: String
                    if let str = v as? String { s = str } else if let n = v as? NSNumber { s = n.stringValue } else { s = "\(v)" }
                    items.append(Parameter(name: key, value: s, wire: s, place: .json))
                }
            }
        } else if let text, ct.contains("x-www-form-urlencoded") || FormCoding.looksLikeForm(text) {
            bodyKind = .form
            items += RequestParameters.formPairs(text).map { Parameter(name: $0.0, value: $0.1, wire: $0.2, place: .form) }
        } else if text != nil {
            bodyKind = .text
        } else {
            bodyKind = .binary
        }
        if let a = exchange.request.headers.first(named: "Authorization") {
            let h = AuthorizationHeader(raw: a)
            authorization = h
            if h.isBasic || h.scheme == nil {
                // RFC 6749 §2.3.1: both halves are form-urlencoded before they are joined and encoded.
                if let u = h.basicUser { items.append(Parameter(name: "client_id", value: FormCoding.decode(u), wire: u, place: .basic)) }
                if let p = h.basicPassword { items.append(Parameter(name: "client_secret", value: FormCoding.decode(p), wire: p, place: .basic)) }
            }
        }
    }

    /// Every occurrence of `name`.
    public func all(_ name: String) -> [Parameter] { items.filter { $0.name == name } }
    /// The first occurrence of `name` (query, then body, then Basic).
    public func first(_ name: String) -> Parameter? { items.first { $0.name == name } }
    /// The first value of `name`.
    public func value(_ name: String) -> String? { first(name)?.value }
    /// True when some occurrence of `name` exists.
    public func has(_ name: String) -> Bool { items.contains { $0.name == name } }
    /// Places used by parameters other than the Basic header.
    var nonBasicPlaces: Set<ParameterPlace> { Set(items.filter { $0.place != .basic }.map(\.place)) }
    var bearerToken: String? {
        guard let a = authorization, a.isBearer else { return nil }
        return a.credentials
    }

    /// Form decoding (HTML/URL form: `+` is space, then percent-decoding): (name, value, wire value).
    static func formPairs(_ s: String) -> [(String, String, String)] {
        FormCoding.pairs(s).map { ($0.name, $0.value, $0.wire) }
    }

    /// One level of form decoding, exactly as redaction fingerprints it (`FormCoding.decode`).
    static func formDecode(_ s: String) -> String {
        FormCoding.decode(s)
    }

    static func multipartPairs(_ text: String, contentType: String) -> [(String, String)] {
        var boundary: String?
        if let r = contentType.range(of: "boundary=", options: .caseInsensitive) {
            boundary = String(contentType[r.upperBound...]).trimmingCharacters(in: CharacterSet(charactersIn: "\" ;"))
        } else if let firstLine = text.split(separator: "\r\n").first ?? text.split(separator: "\n").first, firstLine.hasPrefix("--") {
            boundary = String(firstLine.dropFirst(2))
        }
        guard let b = boundary, !b.isEmpty else { return [] }
        var out: [(String, String)] = []
        for part in text.components(separatedBy: "--" + b) {
            guard let nameRange = part.range(of: "name=\"") else { continue }
            let afterName = part[nameRange.upperBound...]
            guard let endQuote = afterName.firstIndex(of: "\"") else { continue }
            let name = String(afterName[..<endQuote])
            let sep = part.range(of: "\r\n\r\n") ?? part.range(of: "\n\n")
            guard let s = sep else { continue }
            var value = String(part[s.upperBound...])
            if value.hasSuffix("\r\n") { value.removeLast(1) } else if value.hasSuffix("\n") { value.removeLast() }
            out.append((name, value))
        }
        return out
    }
}

// MARK: - Display helpers (never show a raw secret)

/// A non-secret value shown quoted with its invisible characters escaped:
/// `"authorization_code\r\n"` (``visibleText(_:quoted:)``).
func escaped(_ s: String) -> String { visibleText(s, quoted: true) }

/// Elapsed time as `50 ms`, `42s`, `11m 04s`, `1h 15m 00s`, `61d 3h`; beyond a million days
/// (a JWT claim of `1e300`: attacker-controlled) `1.2e+295d`, never a trap in `Int(_:)`.
func elapsed(_ t: TimeInterval) -> String {
    let neg = t < 0
    let a = abs(t)
    let s: String
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    guard a < 86_400e6 else { return (neg ? "-" : "") + String(format: "%.2gd", a / 86_400) }
    let i = Int(a)
    if a < 1 { s = "\(Int((a * 1000).rounded())) ms" }
    else if a < 60 { s = "\(i)s" }
    else if a < 3600 { s = "\(i / 60)m \(two(i % 60))s" }
    else if a < 86_400 { s = "\(i / 3600)h \(two((i % 3600) / 60))m \(two(i % 60))s" }
    else { s = "\(i / 86_400)d \((i % 86_400) / 3600)h" }
    return neg ? "-" + s : s
}

/// ISO 8601 UTC with milliseconds, for evidence lines.
func isoTime(_ d: Date) -> String {
    d.formatted(isoStyle)
}

/// `2025-06-15T12:00:00.000Z` (a value type: no formatter built per call).
private let isoStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)

/// True when `s` holds CR or LF anywhere (by scalar: "\r\n" is one Character in Swift).
func hasLineBreak(_ s: String) -> Bool {
    s.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }
}
