import Foundation

/// A shape property of a secret value that matters to a diagnosis even when the value is hidden
/// (oauth-rules.md, `credential-formatting` and `basic-auth-malformed`).
///
/// The raw values are the tokens used in the placeholder text; `allCases` is the fixed order in
/// which flags appear in a placeholder.
public enum ShapeFlag: String, Sendable, CaseIterable, Codable {
    /// The value begins with whitespace (space, tab, line break…).
    case leadingWhitespace = "lead-ws"
    /// The value ends with whitespace (a trailing newline from `echo` or a `.env` file).
    case trailingWhitespace = "trail-ws"
    /// The value contains a line break (`\n` or `\r`) anywhere.
    case lineBreak = "newline"
    /// The value, whitespace trimmed, begins or ends with a quote (`"`, `'`, `“`, `”`, `‘`, `’`).
    case quoted = "quoted"
    /// The value contains a percent-escape (`%` and two hex digits): after the one level of
    /// decoding a server applies, it is still encoded (double encoding).
    case percentEncoded = "pct"
    /// The value contains `+` (which form decoding would have turned into a space).
    case plus = "plus"

    /// Position in `allCases`: the order flags are written in a placeholder.
    var order: Int { ShapeFlag.allCases.firstIndex(of: self)! }
}

/// The shape flags of a value, as it is (no decoding is applied here).
///
/// Used by the redactor for every placeholder and by the diagnosis on raw values of the exchange
/// being captured. An empty value has no flags.
public func shapeFlags(of value: String) -> Set<ShapeFlag> {
    var flags = Set<ShapeFlag>()
    let scalars = value.unicodeScalars
    guard let first = scalars.first, let last = scalars.last else { return flags }
    if first.properties.isWhitespace { flags.insert(.leadingWhitespace) }
    if last.properties.isWhitespace { flags.insert(.trailingWhitespace) }
    if scalars.contains(where: { $0 == "\n" || $0 == "\r" }) { flags.insert(.lineBreak) }
    let core = scalars.drop(while: { $0.properties.isWhitespace }).reversed().drop(while: { $0.properties.isWhitespace })
    if let l = core.first, let f = core.last, isQuote(f) || isQuote(l) { flags.insert(.quoted) }
    if containsPercentEscape(scalars) { flags.insert(.percentEncoded) }
    if scalars.contains("+") { flags.insert(.plus) }
    return flags
}

private func isQuote(_ s: Unicode.Scalar) -> Bool {
    s == "\"" || s == "'" || s == "\u{201C}" || s == "\u{201D}" || s == "\u{2018}" || s == "\u{2019}"
}

private func containsPercentEscape(_ scalars: String.UnicodeScalarView) -> Bool {
    let b = Array(scalars.lazy.map { $0.isASCII ? UInt8($0.value) : 0 })
    var i = 0
    while i + 2 < b.count {
        if b[i] == UInt8(ascii: "%"), isHex(b[i + 1]), isHex(b[i + 2]) { return true }
        i += 1
    }
    return false
}

private func isHex(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66)
}

/// The text that replaces a secret value in a redacted exchange.
///
/// Format (fixed; the README documents it):
///
///     redacted.<role>.<fingerprint>.<length>[.<flag>]...
///
/// - `role`: what the value was (`code`, `client_secret`, `access_token`, `refresh_token`, `jwt`,
///   `miro_token`, `cookie`, `x-api-key`…): lower-case letters, digits, `_` and `-`, never `.`.
/// - `fingerprint`: the first 12 lower-case hex digits of HMAC-SHA256 under the per-install key
///   `certs/tokentap-fingerprint.key`, over the UTF-8 bytes of the value the server would see
///   (query and form values after one level of form decoding, JSON strings after unescaping,
///   header values as they are, the password of a Basic header after base64 decoding). It does
///   not depend on the role, so a value reused in another role has the same fingerprint.
/// - `length`: the number of Unicode scalars of that value (its character count for ASCII).
/// - `flag`: zero or more `ShapeFlag` raw values, in the order of `ShapeFlag.allCases`:
///   `lead-ws`, `trail-ws`, `newline`, `quoted`, `pct`, `plus`.
///
/// Example: `redacted.client_secret.3f2a9c1b0d4e.43.trail-ws.newline`. Only RFC 3986 unreserved
/// characters occur, so a placeholder stays valid unencoded in a URL, a form body, a JSON string,
/// a header value or a Bearer token.
public struct Placeholder: Sendable, Hashable, Codable {
    /// The first component of every placeholder.
    public static let prefix = "redacted"

    public var role: String
    /// 12 lower-case hex digits.
    public var fingerprint: String
    /// Unicode scalar count of the redacted value.
    public var length: Int
    public var flags: Set<ShapeFlag>

    public init(role: String, fingerprint: String, length: Int, flags: Set<ShapeFlag>) {
        self.role = role
        self.fingerprint = fingerprint
        self.length = length
        self.flags = flags
    }

    /// Parses `text`; `nil` unless `text` is exactly one placeholder in canonical form
    /// (flags in `ShapeFlag.allCases` order, no duplicates, no surrounding characters).
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == Placeholder.prefix else { return nil }
        let role = parts[1], fp = parts[2], len = parts[3]
        guard !role.isEmpty, role.unicodeScalars.allSatisfy(Placeholder.isRoleScalar) else { return nil }
        guard fp.utf8.count == 12,
              fp.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        else { return nil }
        guard !len.isEmpty, len.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }),
              len == "0" || !len.hasPrefix("0"), let length = Int(len) else { return nil }
        var flags = Set<ShapeFlag>()
        var lastOrder = -1
        for part in parts.dropFirst(4) {
            guard let flag = ShapeFlag(rawValue: String(part)), flag.order > lastOrder else { return nil }
            lastOrder = flag.order
            flags.insert(flag)
        }
        self.init(role: String(role), fingerprint: String(fp), length: length, flags: flags)
    }

    /// The placeholder rendered in canonical form (round-trips through `init(parsing:)`).
    public var text: String {
        var out = "\(Placeholder.prefix).\(role).\(fingerprint).\(length)"
        for flag in ShapeFlag.allCases where flags.contains(flag) {
            out += "." + flag.rawValue
        }
        return out
    }

    /// Every placeholder occurring in `text` (in a URL, a header, a JSON or form body, a finding's
    /// evidence), in order of appearance.
    public static func all(in text: String) -> [Placeholder] {
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return Patterns.placeholder.matches(in: text, range: range).compactMap { match in
            Range(match.range, in: text).flatMap { Placeholder(parsing: String(text[$0])) }
        }
    }

    /// Turns any string into a valid role: lower-cased, every character outside `a-z 0-9 _ -`
    /// replaced by `_` (`X-Api-Key` → `x-api-key`, `my.header` → `my_header`).
    public static func sanitizedRole(_ raw: String) -> String {
        if !raw.isEmpty, raw.unicodeScalars.allSatisfy(isRoleScalar) { return raw }
        let mapped = raw.lowercased().unicodeScalars.map { isRoleScalar($0) ? Character($0) : "_" }
        return mapped.isEmpty ? "secret" : String(mapped)
    }

    static func isRoleScalar(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("0"..."9").contains(s) || s == "_" || s == "-"
    }
}
