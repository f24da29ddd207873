import Foundation

/// `application/x-www-form-urlencoded` decoding (WHATWG URL, "application/x-www-form-urlencoded
/// parsing"; RFC 6749 Appendix B), the one implementation every module uses, so that redaction's
/// fingerprints and the diagnosis's comparisons see exactly the same decoded values.
public enum FormCoding {
    /// One level of form decoding: `+` → space (unless `plusAsSpace` is false), `%XX` → byte;
    /// malformed escapes are kept literally; the bytes are then read as UTF-8 (invalid sequences
    /// become U+FFFD).
    public static func decode<Bytes: Sequence>(_ bytes: Bytes, plusAsSpace: Bool = true) -> String where Bytes.Element == UInt8 {
        let bytes = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "+"), plusAsSpace {
                out.append(0x20)
            } else if b == UInt8(ascii: "%"), i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
                out.append(h << 4 | l)
                i += 2
            } else {
                out.append(b)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `decode` of a string's UTF-8 bytes.
    public static func decode(_ text: some StringProtocol, plusAsSpace: Bool = true) -> String {
        decode(text.utf8, plusAsSpace: plusAsSpace)
    }

    /// The `name=value` pairs of a form string, in order: decoded name, decoded value, and the
    /// value as it was on the wire. Empty pieces (`a=1&&b=2`) are skipped.
    public static func pairs(_ text: some StringProtocol) -> [(name: String, value: String, wire: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let wire = kv.count > 1 ? String(kv[1]) : ""
            return (decode(kv[0]), decode(wire), wire)
        }
    }

    /// True when `text` has the shape `k=v(&k=v)*` (empty pieces allowed; keys made of URL
    /// characters; values anything but `&`) on one line: a form carries its line breaks as `%0A`
    /// (a trailing one, the last byte of a body file, is tolerated), while `A=1\nSECRET="a b"` is a
    /// `.env` text whose lines are read one by one. The one test of "a body without a form
    /// Content-Type that is a form anyway" (redaction, diagnosis and `show` agree on it).
    public static func looksLikeForm(_ text: String) -> Bool {
        if let inner = text.utf8.lastIndex(where: { $0 != 0x0A && $0 != 0x0D }),
           text.utf8[...inner].contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            return false
        }
        var sawPair = false
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            guard let eq = part.firstIndex(of: "="), eq != part.startIndex,
                  part[..<eq].unicodeScalars.allSatisfy({ s in
                      s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s)
                          || "._-[]%+*~:".unicodeScalars.contains(s))
                  })
            else { return false }
            sawPair = true
        }
        return sawPair
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
