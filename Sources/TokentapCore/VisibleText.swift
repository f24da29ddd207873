import Foundation

/// `text` with what a reader cannot see made visible, for `show`, the HTML report and a finding's
/// evidence (a trailing line break or a zero-width space inside a value is often the bug):
/// `\r`, `\n`, `\t`; other C0 controls, DEL and Unicode format characters (zero-width space, BOM,
/// bidirectional marks: general category Cf) as `\u{X}` (hexadecimal code point). With `quoted`,
/// the result is wrapped in `"` and `"` and `\` inside are escaped: `"authorization_code\r\n"`.
public func visibleText(_ text: String, quoted: Bool = false) -> String {
    var out = quoted ? "\"" : ""
    for u in text.unicodeScalars {
        switch u {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\"" where quoted: out += "\\\""
        case "\\" where quoted: out += "\\\\"
        default:
            if u.value < 0x20 || u.value == 0x7F || (u.value >= 0x80 && u.properties.generalCategory == .format) {
                out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return quoted ? out + "\"" : out
}
