import Foundation
import Synchronization
import TokentapCore

/// A raw secret found again in an exchange after redaction: a classifier bug to fix, caught by
/// the last check before a row is written or exported (issue 14, "Findings are redacted with the
/// exchange").
public struct RedactionFallback: Sendable, Hashable, CustomStringConvertible {
    /// The placeholder role of the value (`client_secret`, `device_code`).
    public var role: String
    /// Where it was found: `target`, `request header X-Foo`, `request body`, `response body`,
    /// `reason`, `error`, `finding extra-params`.
    public var field: String

    public init(role: String, field: String) {
        self.role = role
        self.field = field
    }

    /// The stderr line: `redaction fallback: <role> in <field>`.
    public var description: String { "redaction fallback: \(role) in \(field)" }
}

/// The raw values one `redactChecked` call replaced, with their placeholders. Made and read by
/// that one call (the lock only satisfies `Sendable`, as `Redactor` holds it).
final class ReplacementLog: Sendable {
    struct Entry: Hashable {
        var raw: String
        var placeholder: String
        var role: String
    }
    private let entries = Mutex<[Entry]>([])

    func add(raw: String, placeholder: String, role: String) {
        entries.withLock { $0.append(Entry(raw: raw, placeholder: placeholder, role: role)) }
    }

    var all: [Entry] { entries.withLock { $0 } }
}

extension Redactor {
    /// The shortest replaced value the check looks for again (shorter ones match too much
    /// ordinary text).
    public static let fallbackMinimumLength = 8

    /// Redacts `exchange` (`redact(_:)`), then searches the result for every raw value that
    /// redaction replaced in it, at least `fallbackMinimumLength` characters long, in its raw,
    /// percent-encoded, form-encoded, JSON-escaped and base64 forms: in the target, every header
    /// value, both bodies, `reason`, `error` and the findings' title, evidence and fix (not inside
    /// a placeholder, nor, for a value spelled like a secret name such as the password `password`,
    /// as a JSON key or a form name). A hit is
    /// replaced with the value's placeholder and reported; the caller prints each report on stderr.
    ///
    /// - Returns: the redacted exchange, and one `RedactionFallback` per (role, field) hit (empty
    ///   when the classifier did its job).
    public func redactChecked(_ exchange: Exchange) -> (exchange: Exchange, fallbacks: [RedactionFallback]) {
        let log = ReplacementLog()
        var logging = self
        logging.log = log
        var e = logging.redact(exchange)
        // A value spelled like a secret name (the password `password`) may be found again as that
        // name: a JSON key or a form name (`{"password": …}`) is then no hit. Any other value found
        // as a key (`{"<session id>": …}`) is one.
        var needles: [(form: [UInt8], placeholder: [UInt8], role: String, nameLike: Bool)] = []
        var seen = Set<[UInt8]>()
        for entry in log.all where entry.raw.unicodeScalars.count >= Self.fallbackMinimumLength {
            for form in Self.leakForms(of: entry.raw) where seen.insert(form).inserted {
                needles.append((form, Array(entry.placeholder.utf8), entry.role, SecretClassifier.isSecret(entry.raw)))
            }
        }
        guard !needles.isEmpty else { return (e, []) }
        // Longest first, so that a value inside another is not replaced half.
        needles.sort { $0.form.count > $1.form.count }
        var hits: [RedactionFallback] = []
        func check(_ text: String, _ field: String) -> String {
            var bytes = Array(text.utf8)
            if check(&bytes, field) { return String(decoding: bytes, as: UTF8.self) }
            return text
        }
        func check(_ bytes: inout [UInt8], _ field: String) -> Bool {
            var changed = false
            // A raw value may also be spelled inside a placeholder (the password `password` in
            // `redacted.password.…`): that is no leak, and replacing it would break the placeholder.
            // The placeholders' spans are found when a needle first hits, again after an edit.
            var kept: [Range<Int>]?
            for n in needles {
                var from = 0
                var found = false
                var edits: [(Range<Int>, [UInt8])] = []
                while let at = ByteScan.find(n.form, in: bytes, from: from) {
                    let hit = at..<(at + n.form.count)
                    let spans = kept ?? (ByteScan.find(Self.placeholderPrefix, in: bytes, from: 0) == nil ? [] : Self.placeholderSpans(bytes))
                    kept = spans
                    if let span = spans.first(where: { $0.overlaps(hit) }) {
                        from = max(at + 1, span.upperBound)
                        continue
                    }
                    // Nor is a secret-like value as a name (`{"password": …}`, `?password=…`):
                    // replacing it would break the body's structure.
                    if n.nameLike, Self.isName(hit, in: bytes) {
                        from = at + 1
                        continue
                    }
                    edits.append((hit, n.placeholder))
                    from = hit.upperBound
                    found = true
                }
                if found {
                    bytes = ByteScan.apply(edits, to: bytes)
                    kept = nil
                    changed = true
                    let hit = RedactionFallback(role: n.role, field: field)
                    if !hits.contains(hit) { hits.append(hit) }
                }
            }
            return changed
        }
        func check(_ message: inout MessageRecord, _ side: String) {
            message.headers = message.headers.map { HeaderField(name: $0.name, value: check($0.value, "\(side) header \($0.name)")) }
            var body = [UInt8](message.body)
            if check(&body, "\(side) body") { message.body = Data(body) }
        }
        e.target = check(e.target, "target")
        check(&e.request, "request")
        check(&e.response, "response")
        e.reason = e.reason.map { check($0, "reason") }
        e.error = e.error.map { check($0, "error") }
        e.findings = e.findings.map { f in f.mappingText { check($0, "finding \(f.rule)") } }
        return (e, hits)
    }

    static let placeholderPrefix = Array("redacted.".utf8)

    /// True when `r` is a JSON key (`"…"` then `:`) or a form or query name (after the start,
    /// `&` or `?`, before `=`).
    static func isName(_ r: Range<Int>, in b: [UInt8]) -> Bool {
        let before: UInt8? = r.lowerBound > 0 ? b[r.lowerBound - 1] : nil
        let after: UInt8? = r.upperBound < b.count ? b[r.upperBound] : nil
        if before == ByteScan.quote, after == ByteScan.quote {
            var p = r.upperBound + 1
            while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
            return p < b.count && b[p] == UInt8(ascii: ":")
        }
        return after == ByteScan.equals && (before == nil || before == UInt8(ascii: "&") || before == UInt8(ascii: "?"))
    }

    /// The byte ranges of the placeholders in `b` (`Placeholder`'s grammar: role, 12 hex digits,
    /// length, flags).
    static func placeholderSpans(_ b: [UInt8]) -> [Range<Int>] {
        func isRoleByte(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7A) || ByteScan.isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
        let dot = UInt8(ascii: ".")
        let flags = ShapeFlag.allCases.map { Array(("." + $0.rawValue).utf8) }
        var spans: [Range<Int>] = []
        var i = 0
        while let start = ByteScan.find(placeholderPrefix, in: b, from: i) {
            i = start + 1
            if start > 0, isRoleByte(b[start - 1]) || b[start - 1] == dot { continue }
            var p = start + placeholderPrefix.count
            let roleStart = p
            while p < b.count, isRoleByte(b[p]) { p += 1 }
            guard p > roleStart, p < b.count, b[p] == dot else { continue }
            p += 1
            let fp = p
            while p < b.count, p - fp < 12, ByteScan.isDigit(b[p]) || (b[p] >= 0x61 && b[p] <= 0x66) { p += 1 }
            guard p - fp == 12, p < b.count, b[p] == dot else { continue }
            p += 1
            let len = p
            while p < b.count, ByteScan.isDigit(b[p]) { p += 1 }
            guard p > len else { continue }
            while let flag = flags.first(where: { ByteScan.has($0, in: b, at: p) }) { p += flag.count }
            spans.append(start..<p)
            i = p
        }
        return spans
    }

    private static let encodedSpace = Array("%20".utf8)

    /// The forms a raw value can take in a recorded text: as is, percent-encoded (RFC 3986),
    /// form-encoded (`+` for space), JSON-escaped (with and without `\/`), and base64 (RFC 4648).
    static func leakForms(of raw: String) -> [[UInt8]] {
        // Each form once; Foundation's replacingOccurrences only where there is something to
        // replace (it cost as much as the rest of the check on tokens without `%20` or `/`).
        let json = Array(Coding.jsonEscape(raw).utf8)
        let percent = Array(Coding.percentEncode(raw).utf8)
        let forms: [[UInt8]] = [
            Array(raw.utf8),
            percent,
            ByteScan.find(Self.encodedSpace, in: percent, from: 0) == nil
                ? percent : Array(String(decoding: percent, as: UTF8.self).replacingOccurrences(of: "%20", with: "+").utf8),
            json,
            json.contains(UInt8(ascii: "/"))
                ? Array(String(decoding: json, as: UTF8.self).replacingOccurrences(of: "/", with: "\\/").utf8) : json,
            Array(Data(raw.utf8).base64EncodedString().utf8),
        ]
        var out: [[UInt8]] = []
        for f in forms where !out.contains(f) { out.append(f) }
        return out
    }
}
