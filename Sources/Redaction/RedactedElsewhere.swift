import Foundation

/// Values that another tool already replaced before tokentap saw them: Cloudflare's har-sanitizer
/// (`[state redacted]`), loggers and support desks (`REDACTED`, `***`, `<hidden>`, `[FILTERED]`).
///
/// Such a value is unknown, not a value: it is never fingerprinted (the redactor keeps it as it is,
/// it hides nothing) and the diagnosis never takes two of them as equal or different (no
/// `state-mismatch`, `code-reused` or `code-unknown` from them).
public enum RedactedElsewhere {
    /// Words that mark a replaced value.
    static let markerWords: Set<String> = ["redacted", "hidden", "removed", "filtered", "masked", "sanitized",
                                           "scrubbed", "omitted", "censored", "secret_removed"]

    /// True when `value` (as the server would read it, i.e. after one form- or percent-decoding;
    /// a raw or `%20`-encoded space reads the same) is a replacement marker: only `*` or `•`
    /// (three or more), or one to three words, one of them a marker word, optionally wrapped in one
    /// pair of `[]`, `<>`, `()` or `{}`. tokentap's own placeholders are not markers.
    public static func isMarker(_ value: String) -> Bool {
        // Fast answer for tokens, codes and JWTs (this runs for every value redaction replaces):
        // with nothing to percent-decode, a digit or a `.` can be in no marker (stars only, or
        // words of letters).
        let utf8 = value.utf8
        if !utf8.contains(UInt8(ascii: "%")) {
            if utf8.contains(where: { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }) { return false }
            // Starting and ending with a printable ASCII character other than a space, nothing is
            // trimmed: longer than 64 characters is no marker (a long token of letters only).
            if let f = utf8.first, let l = utf8.last, f > 0x20, f < 0x7F, l > 0x20, l < 0x7F, value.count > 64 { return false }
        } else if hasDigitOrDotOutsideEscapes(utf8) {
            // A digit or `.` that is no part of a `%XX` escape is still there once decoded.
            return false
        }
        var text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.contains("%") { text = decodedPercent(text) }
        guard !text.isEmpty, text.count <= 64 else { return false }
        if text.count >= 3, text.allSatisfy({ $0 == "*" || $0 == "•" }) { return true }
        let pairs: [(Character, Character)] = [("[", "]"), ("<", ">"), ("(", ")"), ("{", "}")]
        for (open, close) in pairs where text.first == open && text.last == close && text.count >= 2 {
            text = String(text.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
            break
        }
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "_" || $0 == "-" || $0 == "+" }).map(String.init)
        guard (1...3).contains(words.count), words.allSatisfy({ $0.allSatisfy(\.isLetter) }) else { return false }
        return words.contains { markerWords.contains($0) }
    }

    /// Whether `utf8` has a digit or `.` outside its `%XX` escapes (two hex digits after `%`).
    static func hasDigitOrDotOutsideEscapes(_ utf8: String.UTF8View) -> Bool {
        func isHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let b = utf8[i]
            if b == UInt8(ascii: "%") {
                let h1 = utf8.index(after: i)
                if h1 != utf8.endIndex, isHex(utf8[h1]) {
                    let h2 = utf8.index(after: h1)
                    if h2 != utf8.endIndex, isHex(utf8[h2]) {
                        i = utf8.index(after: h2)
                        continue
                    }
                }
            } else if (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: ".") {
                return true
            }
            i = utf8.index(after: i)
        }
        return false
    }

    private static func decodedPercent(_ s: String) -> String {
        s.removingPercentEncoding ?? s
    }
}
