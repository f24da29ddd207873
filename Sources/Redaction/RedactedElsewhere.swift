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
        if !utf8.contains(UInt8(ascii: "%")),
           utf8.contains(where: { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }) { return false }
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

    private static func decodedPercent(_ s: String) -> String {
        s.removingPercentEncoding ?? s
    }
}
