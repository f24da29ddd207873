import Foundation
import TokentapCore

/// Small codecs used by redaction: form/percent decoding (WHATWG URL "application/x-www-form-
/// urlencoded parsing"), percent-encoding, JSON string escaping (RFC 8259 §7).
enum Coding {
    /// One level of form decoding (`FormCoding.decode`, shared with the diagnosis).
    static func formDecode(_ bytes: [UInt8], plusAsSpace: Bool = true) -> String {
        FormCoding.decode(bytes, plusAsSpace: plusAsSpace)
    }

    /// Percent-encodes every byte of the UTF-8 form of `s` outside RFC 3986 unreserved characters.
    static func percentEncode(_ s: String) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in s.utf8 {
            if isUnreserved(b) {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isUnreserved(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
    }

    /// Decodes JSON string escapes (`\n`, `\"`, `\/`, `\uXXXX` with surrogate pairs). Invalid
    /// escapes are kept as written; a lone surrogate becomes U+FFFD.
    static func jsonUnescape(_ s: String) -> String {
        guard s.unicodeScalars.contains("\\") else { return s }
        let scalars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= scalars.count else { return nil }
            var v: UInt32 = 0
            for k in at..<(at + 4) {
                guard let d = scalars[k].properties.isASCIIHexDigit ? UInt32(String(scalars[k]), radix: 16) : nil else { return nil }
                v = v << 4 | d
            }
            return v
        }
        while i < scalars.count {
            let c = scalars[i]
            guard c == "\\", i + 1 < scalars.count else { out.append(c); i += 1; continue }
            let e = scalars[i + 1]
            switch e {
            case "\"": out.append("\""); i += 2
            case "\\": out.append("\\"); i += 2
            case "/": out.append("/"); i += 2
            case "b": out.append("\u{08}"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "t": out.append("\t"); i += 2
            case "u":
                guard let v = hex4(i + 2) else { out.append(c); i += 1; continue }
                i += 6
                if (0xD800...0xDBFF).contains(v), i + 1 < scalars.count, scalars[i] == "\\", scalars[i + 1] == "u",
                   let lo = hex4(i + 2), (0xDC00...0xDFFF).contains(lo) {
                    i += 6
                    out.append(Unicode.Scalar(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)) ?? "\u{FFFD}")
                } else {
                    out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                }
            default:
                out.append(c); i += 1
            }
        }
        return String(out)
    }

    /// Decodes the HTML character references that matter in attribute values.
    static func htmlUnescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// Decodes XML's predefined entities and character references (XML 1.0 §4.1, §4.6):
    /// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#N;` `&#xH;`. Unknown or malformed references are
    /// kept as written.
    static func xmlUnescape(_ s: String) -> String {
        guard s.unicodeScalars.contains("&") else { return s }
        let scalars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        let named: [String: Unicode.Scalar] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]
        while i < scalars.count {
            guard scalars[i] == "&", let semi = scalars[(i + 1)...].prefix(12).firstIndex(of: ";") else {
                out.append(scalars[i]); i += 1; continue
            }
            let ref = String(String.UnicodeScalarView(scalars[(i + 1)..<semi]))
            var decoded: Unicode.Scalar?
            if let n = named[ref] {
                decoded = n
            } else if ref.hasPrefix("#x") || ref.hasPrefix("#X") {
                decoded = UInt32(ref.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
            } else if ref.hasPrefix("#") {
                decoded = UInt32(ref.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init)
            }
            if let decoded {
                out.append(decoded)
                i = semi + 1
            } else {
                out.append(scalars[i]); i += 1
            }
        }
        return String(out)
    }

    /// Escapes `s` for use inside a JSON string literal (quotes not included).
    static func jsonEscape(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            switch c {
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            default:
                if c.value < 0x20 {
                    let h = String(c.value, radix: 16)
                    out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - h.count) + h).unicodeScalars)
                } else {
                    out.append(c)
                }
            }
        }
        return String(out)
    }
}

/// Scalar-exact string helpers (never rounding to grapheme boundaries, so `\r\n` can be split).
extension String {
    func scalarSlice(_ r: Range<String.Index>) -> String {
        String(Substring(unicodeScalars[r]))
    }

    /// Splits on a scalar, keeping empty pieces.
    func splitScalars(_ separator: Unicode.Scalar) -> [String] {
        var pieces: [String] = []
        var start = unicodeScalars.startIndex
        var i = start
        while i < unicodeScalars.endIndex {
            if unicodeScalars[i] == separator {
                pieces.append(scalarSlice(start..<i))
                start = unicodeScalars.index(after: i)
            }
            i = unicodeScalars.index(after: i)
        }
        pieces.append(scalarSlice(start..<unicodeScalars.endIndex))
        return pieces
    }

    /// Splits at the first occurrence of `separator`; nil when absent.
    func splitOnce(_ separator: Unicode.Scalar) -> (String, String)? {
        guard let i = unicodeScalars.firstIndex(of: separator) else { return nil }
        return (scalarSlice(unicodeScalars.startIndex..<i),
                scalarSlice(unicodeScalars.index(after: i)..<unicodeScalars.endIndex))
    }
}

/// Regular expressions (NSRegularExpression: thread-safe for matching, per its documentation).
enum Patterns {
    /// A placeholder in text (see `Placeholder`).
    static let placeholder = try! NSRegularExpression(
        pattern: #"(?<![A-Za-z0-9_.-])redacted\.[a-z0-9_-]+\.[0-9a-f]{12}\.(?:0|[1-9][0-9]*)(?:\.(?:lead-ws|trail-ws|newline|quoted|pct|plus))*(?![A-Za-z0-9_-])"#)
}
