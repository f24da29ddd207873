import Foundation

extension Redactor {
    /// HTML form fields and their kin: in a start tag whose `name` attribute is a secret name
    /// (`SecretClassifier.role(forName:)`), the `value` attribute (or `content`, for
    /// `<meta name="csrf-token" content="…">`) is replaced. That is how the OAuth 2.0 Form Post
    /// Response Mode carries the code and tokens (`<input type="hidden" name="code" value="…">`),
    /// and how login pages carry sessions.
    ///
    /// Attribute names are matched without regard to case; values may be double-quoted,
    /// single-quoted or bare; a value is fingerprinted after character references are decoded
    /// (what the browser submits). Every other byte is kept.
    func redactFormFields(_ b: [UInt8]) -> [UInt8] {
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/"), equals = ByteScan.equals
        func isAttribute(_ r: Range<Int>, _ name: String) -> Bool {
            r.count == name.utf8.count && zip(b[r], name.utf8).allSatisfy { ($0 | 0x20) == $1 }
        }
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while i < b.count, let open = b[i...].firstIndex(of: lt) {
            var p = open + 1
            guard p < b.count, ByteScan.isLetter(b[p]) else { i = p; continue }
            while p < b.count, !ByteScan.isSpace(b[p]), b[p] != gt, b[p] != slash, b[p] != lt { p += 1 }
            var fieldName: String?
            var value: Range<Int>?
            while p < b.count {
                while p < b.count, ByteScan.isSpace(b[p]) || b[p] == slash { p += 1 }
                guard p < b.count, b[p] != gt, b[p] != lt else { break }
                let attrStart = p
                while p < b.count, !ByteScan.isSpace(b[p]), b[p] != gt, b[p] != slash, b[p] != equals, b[p] != lt { p += 1 }
                let attr = attrStart..<p
                if attr.isEmpty { p += 1; continue }
                while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
                guard p < b.count, b[p] == equals else { continue }
                p += 1
                while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
                let v: Range<Int>
                if p < b.count, b[p] == ByteScan.quote || b[p] == UInt8(ascii: "'") {
                    let q = b[p]
                    var e = p + 1
                    while e < b.count, b[e] != q { e += 1 }
                    v = (p + 1)..<e
                    p = min(e + 1, b.count)
                } else {
                    let s = p
                    while p < b.count, !ByteScan.isSpace(b[p]), b[p] != gt { p += 1 }
                    v = s..<p
                }
                if isAttribute(attr, "name") {
                    fieldName = Coding.xmlUnescape(String(decoding: b[v], as: UTF8.self))
                } else if isAttribute(attr, "value") || isAttribute(attr, "content") {
                    value = v
                }
            }
            if let fieldName, let value, let role = SecretClassifier.role(forName: fieldName),
               let r = replacement(role: role, value: Coding.xmlUnescape(String(decoding: b[value], as: UTF8.self))) {
                edits.append((value, r))
            }
            i = max(p, open + 1)
        }
        return ByteScan.apply(edits, to: b)
    }
}
