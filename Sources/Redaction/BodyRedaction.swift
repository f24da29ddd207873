import Foundation
import TokentapCore

extension Redactor {
    /// Redacts a message body.
    ///
    /// - UTF-8 text (a trailing incomplete UTF-8 sequence, as left by truncation, is kept as is):
    ///   parsed as JSON when it starts with `{` or with a `[` that opens a JSON array, not an INI
    ///   section (whatever `Content-Type` says: JSON labelled
    ///   form or text is still JSON), else as a form when `Content-Type` is
    ///   `application/x-www-form-urlencoded` or the text looks like `k=v(&k=v)*` (a form labelled
    ///   JSON or text/plain, or no `Content-Type`); then always scanned as text
    ///   (`"name":"value"` and `name=value` pairs, JWTs, Miro tokens), so HTML and plain text are
    ///   covered too; in HTML, `<input name="code" value="…">` fields (`redactFormFields`).
    /// - `multipart/*`: fields whose `name` is a secret parameter (and that are not files) are
    ///   replaced, every other part is redacted as a body of its own `Content-Type` (XML, JSON,
    ///   text lines), then the whole body is scanned as text, byte-wise.
    /// - Other bytes (not UTF-8): scanned as text through a one-byte-per-character view; matches
    ///   are decoded as UTF-8 (lossy) to be fingerprinted and replaced byte-wise. A value ends at a
    ///   byte ≥ 0x80 unless `Content-Type` says text, form, JSON or XML (a Latin-1 form).
    public func redactBody(_ body: Data, contentType: String?) -> Data {
        guard !body.isEmpty else { return body }
        let ct = (contentType ?? "").lowercased()
        let bytes = [UInt8](body)
        if ct.hasPrefix("multipart/"), let boundary = Self.boundary(of: contentType ?? "") {
            return Data(scanBytes(redactMultipart(bytes, boundary: boundary), binary: true, jsonPairs: true))
        }
        // UTF-8 text, possibly cut inside its last character by truncation (that tail is kept as is).
        let valid = ByteScan.validUTF8Prefix(bytes)
        if valid == bytes.count || (bytes.count - valid <= 3 && Self.isIncompleteUTF8Tail(bytes[valid...])) {
            var out = Data(redactText(String(decoding: bytes[..<valid], as: UTF8.self), contentType: ct).utf8)
            out.append(contentsOf: bytes[valid...])
            return out
        }
        // Not UTF-8: text in another charset (a Latin-1 form) keeps its bytes ≥ 0x80 inside values.
        return Data(scanBytes(bytes, binary: !Self.isTextual(contentType: ct), jsonPairs: true))
    }

    /// `text/*`, forms, JSON and XML: a body in one of these that is not UTF-8 is text in another
    /// charset, not binary data.
    static func isTextual(contentType ct: String) -> Bool {
        ct.hasPrefix("text/") || ct.hasPrefix("application/x-www-form-urlencoded") || ct.contains("json") || isXML(contentType: ct)
    }

    private func redactText(_ text: String, contentType ct: String) -> String {
        let start = text.unicodeScalars.first { !$0.properties.isWhitespace && $0 != "\u{FEFF}" }
        if start == "{" || (start == "[" && Self.opensJSONArray(text)) {
            return redactJSON(text, depth: 0)
        }
        if ct.hasPrefix("application/x-www-form-urlencoded") || FormCoding.looksLikeForm(text) {
            return redactShapes(in: redactParams(text, depth: 0, jsonPairs: true))
        }
        var bytes = Array(text.utf8)
        if Self.isXML(contentType: ct) || (start == "<" && text.hasPrefix("<?xml")) {
            bytes = redactXML(bytes)
        }
        if bytes.contains(UInt8(ascii: "<")) { bytes = redactFormFields(bytes) }
        let out = replaceShapes(redactLines(bytes))
        return out == Array(text.utf8) ? text : String(decoding: out, as: UTF8.self)
    }

    /// True when the first `[` of `text` opens a JSON array: what follows it (after whitespace) is
    /// a JSON value or `]`. `[default]` or `[server]` opens an INI or TOML section, whose
    /// `name = value` lines the line scan reads.
    static func opensJSONArray(_ text: String) -> Bool {
        let b = Array(text.utf8.prefix(64))
        guard let open = b.firstIndex(of: UInt8(ascii: "[")) else { return false }
        guard let p = b[(open + 1)...].firstIndex(where: { !ByteScan.isSpace($0) }) else { return true }
        switch b[p] {
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "]"), ByteScan.quote, UInt8(ascii: "-"), 0x30...0x39:
            return true
        default:
            return ["true", "false", "null"].contains { ByteScan.has(Array($0.utf8), in: b, at: p) }
        }
    }

    /// `application/xml`, `text/xml` and `*+xml` (RFC 7303).
    static func isXML(contentType ct: String) -> Bool {
        let mime = ct.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return mime == "application/xml" || mime == "text/xml" || mime.hasSuffix("+xml")
    }

    /// Text, line by line: a `name: value` or `name=value` line (optionally `export name=…` or a
    /// YAML item `- name: …`, the value optionally quoted) whose name is a secret has its value
    /// replaced (up to the end of the line: values in `.env` files and YAML-like dumps contain
    /// spaces; a YAML block scalar `password: |` takes the more indented lines that follow); an
    /// `error_uri` line keeps its error number (`redactErrorReference`); every other line is scanned for `name=value` and
    /// quoted pairs.
    func redactLines(_ b: [UInt8]) -> [UInt8] {
        var edits: [(Range<Int>, [UInt8])] = []
        var ls = 0
        while ls < b.count {
            var le = ls
            while le < b.count, b[le] != 0x0A { le += 1 }
            let next = le + 1
            if le > ls, b[le - 1] == 0x0D { le -= 1 }
            switch Self.namedLine(b, ls, le) {
            case let .secret(role, value) where Self.isBlockScalarIndicator(b[value]):
                // `password: |` (YAML block scalar): the value is the following, more indented lines.
                let block = Self.blockScalar(b, keyLineStart: ls, from: next)
                if !block.lines.isEmpty {
                    let folded = b[value.lowerBound] == UInt8(ascii: ">")
                    let chomp = b[value].contains(UInt8(ascii: "-")) ? "" : "\n"
                    let text = block.lines.map { String(decoding: b[$0], as: UTF8.self) }.joined(separator: folded ? " " : "\n") + chomp
                    if let r = replacement(role: role, value: text) {
                        let first = block.lines[0]
                        edits.append((block.range, Array(b[block.range.lowerBound..<first.lowerBound]) + Array(r.utf8)))
                    }
                    ls = block.range.upperBound
                    continue
                }
            case let .secret(role, value):
                var inner = value
                if inner.count >= 2, b[inner.lowerBound] == b[inner.upperBound - 1],
                   b[inner.lowerBound] == ByteScan.quote || b[inner.lowerBound] == UInt8(ascii: "'") {
                    inner = (inner.lowerBound + 1)..<(inner.upperBound - 1)
                }
                if let r = replacement(role: role, value: String(decoding: b[inner], as: UTF8.self)) {
                    edits.append((inner, Array(r.utf8)))
                }
            case let .errorReference(value):
                let text = String(decoding: b[value], as: UTF8.self)
                let out = redactErrorReference(text)
                if out != text { edits.append((value, Array(out.utf8))) }
            case .other:
                if b[ls..<le].contains(where: ByteScan.mayStartPair) || ByteScan.authorizationLabel(in: b[ls..<le], from: 0) != nil {
                    let line = Array(b[ls..<le])
                    let out = scanPairs(line, binary: false, jsonPairs: true)
                    if out != line { edits.append((ls..<le, out)) }
                }
            }
            ls = next
        }
        return ByteScan.apply(edits, to: b)
    }

    /// `|` or `>` with optional chomping and indentation indicators (YAML 1.2 §8.1.1).
    private static func isBlockScalarIndicator(_ v: ArraySlice<UInt8>) -> Bool {
        var t = v
        while let last = t.last, ByteScan.isSpace(last) { t = t.dropLast() }
        guard let first = t.first, first == UInt8(ascii: "|") || first == UInt8(ascii: ">") else { return false }
        return t.dropFirst().allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") || ByteScan.isDigit($0) }
    }

    /// The lines of a YAML block scalar after the key line that starts at `keyLineStart`: from
    /// `from`, every blank line and every line indented more than the key; `lines` are their
    /// contents without the block's indentation (and without `\r`), `range` runs to the end of the
    /// last content line.
    private static func blockScalar(_ b: [UInt8], keyLineStart: Int, from: Int) -> (range: Range<Int>, lines: [Range<Int>]) {
        func indent(_ at: Int) -> Int { var p = at; while p < b.count, b[p] == 0x20 { p += 1 }; return p - at }
        let keyIndent = indent(keyLineStart)
        var lines: [Range<Int>] = []
        var blockIndent: Int?
        var end = from
        var ls = from
        while ls < b.count {
            var le = ls
            while le < b.count, b[le] != 0x0A { le += 1 }
            var content = le
            if content > ls, b[content - 1] == 0x0D { content -= 1 }
            let n = indent(ls)
            if ls + n == content {
                lines.append(content..<content)  // a blank line belongs to the block
            } else if n > keyIndent {
                let strip = min(n, blockIndent ?? n)
                blockIndent = blockIndent ?? n
                lines.append((ls + strip)..<content)
                end = content
            } else {
                break
            }
            ls = le + 1
        }
        // Trailing blank lines are not the value's.
        while let last = lines.last, last.isEmpty, last.lowerBound >= end { lines.removeLast() }
        return (from..<max(from, end), lines)
    }

    private enum NamedLine {
        case secret(role: String, value: Range<Int>)
        case errorReference(value: Range<Int>)
        case other
    }

    /// `[ws][- ][export ]name[ws](:|=|=>)[ws]value` in `b[ls..<le]`; the name may be bracketed
    /// (`[name] => value`).
    private static func namedLine(_ b: [UInt8], _ ls: Int, _ le: Int) -> NamedLine {
        var p = ls
        while p < le, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
        // A YAML sequence item: `- password: …`.
        if p + 1 < le, b[p] == UInt8(ascii: "-"), b[p + 1] == 0x20 || b[p + 1] == 0x09 {
            p += 1
            while p < le, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
        }
        if ByteScan.has(Array("export ".utf8), in: b, at: p) { p += 7 }
        // PHP's `print_r`: `[access_token] => …`.
        let bracketed = p < le && b[p] == UInt8(ascii: "[")
        if bracketed { p += 1 }
        let nameStart = p
        guard p < le, ByteScan.isLetter(b[p]) else { return .other }
        while p < le, ByteScan.isNameByte(b[p]) || b[p] == UInt8(ascii: ".") { p += 1 }
        let name = String(decoding: b[nameStart..<p], as: UTF8.self)
        if bracketed {
            guard p < le, b[p] == UInt8(ascii: "]") else { return .other }
            p += 1
        }
        while p < le, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
        guard p < le, b[p] == UInt8(ascii: ":") || b[p] == ByteScan.equals else { return .other }
        p += 1
        if p < le, b[p - 1] == ByteScan.equals, b[p] == UInt8(ascii: ">") { p += 1 }  // `name => value`
        while p < le, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
        guard p < le else { return .other }
        if SecretClassifier.isErrorReference(name) { return .errorReference(value: p..<le) }
        guard let role = SecretClassifier.role(forName: name) else { return .other }
        return .secret(role: role, value: p..<le)
    }

    private static func isIncompleteUTF8Tail(_ tail: ArraySlice<UInt8>) -> Bool {
        guard let lead = tail.first else { return false }
        let needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0
        return needed > tail.count && tail.dropFirst().allSatisfy { $0 & 0xC0 == 0x80 }
    }

    /// The `boundary` parameter of a multipart Content-Type (RFC 2046 §5.1.1), unquoted.
    static func boundary(of contentType: String) -> String? {
        for param in contentType.split(separator: ";").dropFirst() {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == "boundary" else { continue }
            var b = kv[1]
            if b.hasPrefix("\""), b.hasSuffix("\""), b.count >= 2 { b = String(b.dropFirst().dropLast()) }
            return b.isEmpty ? nil : b
        }
        return nil
    }

    /// Replaces the content of non-file parts whose `name` is a secret parameter, and redacts
    /// every other part as a body of its own `Content-Type` (`redactBody`). Parts are found on
    /// the bytes (a part may be binary).
    private func redactMultipart(_ b: [UInt8], boundary: String) -> [UInt8] {
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard !needle.isEmpty, b.count >= needle.count, from <= b.count - needle.count else { return nil }
            var i = from
            while i <= b.count - needle.count {
                if b[i] == needle[0], b[i..<(i + needle.count)].elementsEqual(needle) { return i }
                i += 1
            }
            return nil
        }
        let delimiter = Array(("--" + boundary).utf8)
        var out: [UInt8] = []
        var cursor = 0
        var search = 0
        while let d = find(delimiter, from: search) {
            guard let lineEnd = find([0x0A], from: d + delimiter.count) else { break }
            let crlf = find([0x0D, 0x0A, 0x0D, 0x0A], from: lineEnd).map { ($0, $0 + 4) }
            let lf = find([0x0A, 0x0A], from: lineEnd).map { ($0, $0 + 2) }
            guard let (headersEnd, contentStart) = [crlf, lf].compactMap({ $0 }).min(by: { $0.0 < $1.0 }) else { break }
            let next = find([0x0D, 0x0A] + delimiter, from: headersEnd) ?? find([0x0A] + delimiter, from: headersEnd)
            let contentEnd = next ?? b.count
            let headers = String(decoding: b[(lineEnd + 1)..<headersEnd], as: UTF8.self)
            if contentStart <= contentEnd, let name = Self.dispositionName(headers),
               let role = SecretClassifier.role(forName: name),
               let r = replacement(role: role, value: String(decoding: b[contentStart..<contentEnd], as: UTF8.self)) {
                out += b[cursor..<contentStart]
                out += Array(r.utf8)
                cursor = contentEnd
            } else if contentStart < contentEnd {
                // Any other part is a body of its own type: XML in `multipart/related` (SOAP with
                // attachments), a `.env` or JSON file, a batch request's HTTP message.
                let part = Data(b[contentStart..<contentEnd])
                let redacted = redactBody(part, contentType: Self.partContentType(headers))
                if redacted != part {
                    out += b[cursor..<contentStart]
                    out += redacted
                    cursor = contentEnd
                }
            }
            guard let next else { break }
            search = next + 1
        }
        out += b[cursor...]
        return out
    }

    /// The `Content-Type` of a part, nil when the part has none.
    private static func partContentType(_ headers: String) -> String? {
        for line in headers.components(separatedBy: .newlines) where line.lowercased().hasPrefix("content-type:") {
            return line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// The `name` of a `Content-Disposition: form-data` part, nil for files.
    private static func dispositionName(_ headers: String) -> String? {
        for line in headers.components(separatedBy: .newlines) {
            let lower = line.lowercased()
            guard lower.hasPrefix("content-disposition:"), !lower.contains("filename") else { continue }
            guard let r = line.range(of: "name=\"", options: .caseInsensitive) ?? line.range(of: "name=", options: .caseInsensitive) else { return nil }
            let rest = line[r.upperBound...]
            let end = rest.firstIndex(where: { $0 == "\"" || $0 == ";" }) ?? rest.endIndex
            return String(rest[..<end])
        }
        return nil
    }
}
