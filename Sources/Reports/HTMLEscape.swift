/// HTML escaping for the report: the one function every recorded value (URLs, headers, bodies,
/// hosts, findings, verdicts, session names) goes through before it is written into the page,
/// whether as text, as an attribute value (always double-quoted) or inside inline SVG.
public enum HTMLEscape {
    /// `s` made inert in HTML text and in double- or single-quoted attribute values:
    /// - `&`, `<`, `>`, `"` and `'` become character references, so no tag, comment, CDATA section
    ///   (`]]>` becomes `]]&gt;`), end tag (`</details>`) or attribute (`"onload=`) can start;
    /// - control characters other than tab, line feed and carriage return (which HTML does not allow
    ///   in a document) become their visible Control Pictures (U+2400 block: NUL is `␀`, ESC `␛`,
    ///   DEL `␡`), and C1 controls become U+FFFD, so a binary-looking value still shows where it
    ///   was odd;
    /// - everything else (all other Unicode text) is kept as it is: the file is UTF-8.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 {
                    out.unicodeScalars.append(Unicode.Scalar(0x2400 + scalar.value)!)
                } else if scalar.value == 0x7F {
                    out.unicodeScalars.append("\u{2421}")
                } else if (0x80...0x9F).contains(scalar.value) {
                    out.unicodeScalars.append("\u{FFFD}")
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
