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

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
