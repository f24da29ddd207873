import Foundation

extension Redactor {
    /// Redacts an XML document (`application/xml`, `text/xml`, `*+xml`; SAML, SOAP, WS-Trust)
    /// without re-serializing it: a tolerant token scanner (XML 1.0 §2–3: tags, attributes,
    /// comments, CDATA sections, processing instructions, declarations) finds
    ///
    /// - attribute values whose local name is a secret (`<cred password="…">`,
    ///   `<x:Key ns:api_key='…'>`), and
    /// - the text of elements whose local name is a secret and that hold no child element
    ///   (`<ns:client_secret>…</ns:client_secret>`; a CDATA section's content is replaced inside
    ///   its markers; a value in several sections, or around a comment, is replaced whole; the
    ///   text of an element cut by truncation up to the end).
    ///
    /// Values are fingerprinted after entity decoding (`&amp;`, `&#x41;`, …: what the server's
    /// parser sees). Every other byte is kept. Broken or truncated XML is scanned as far as it
    /// goes; the caller scans the result as text too. `xmlns` declarations are never secrets.
    func redactXML(_ b: [UInt8]) -> [UInt8] {
        struct Open {
            var role: String?
            var contentStart: Int
            var hasChild = false
        }
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/")
        let cdataOpen = Array("<![CDATA[".utf8), cdataClose = Array("]]>".utf8)
        var edits: [(Range<Int>, [UInt8])] = []
        var stack: [Open] = []
        var i = 0

        func skip(past end: [UInt8], from: Int) -> Int {
            ByteScan.find(end, in: b, from: from).map { $0 + end.count } ?? b.count
        }
        func localRole(_ range: Range<Int>) -> String? {
            let name = String(decoding: b[range], as: UTF8.self)
            let local = name.split(separator: ":").last.map(String.init) ?? name
            if name == "xmlns" || name.hasPrefix("xmlns:") { return nil }
            return SecretClassifier.role(forName: local)
        }
        func isNameByte(_ c: UInt8) -> Bool {
            !(ByteScan.isSpace(c) || c == gt || c == slash || c == UInt8(ascii: "=") || c == lt
              || c == ByteScan.quote || c == UInt8(ascii: "'"))
        }

        /// The content of an element whose name is a secret and that holds no child element,
        /// `start..<end` (up to its end tag, or to the end of a truncated document). Plain text is
        /// replaced after entity decoding; one CDATA section between whitespace is replaced inside
        /// its markers; anything else (a value split in two CDATA sections, as a `]]>` inside it
        /// forces; text around a comment) is the concatenation the parser sees, and the whole
        /// content becomes one placeholder.
        func redactContent(role: String, _ start: Int, _ end: Int) {
            guard start < end else { return }
            if !b[start..<end].contains(lt) {
                let value = Coding.xmlUnescape(String(decoding: b[start..<end], as: UTF8.self))
                if let r = replacement(role: role, value: value) { edits.append((start..<end, Array(r.utf8))) }
                return
            }
            var value = ""
            var sections: [Range<Int>] = []
            var plain = true  // nothing but whitespace and CDATA sections
            var p = start
            while p < end {
                if ByteScan.has(cdataOpen, in: b, at: p) {
                    let close = min(ByteScan.find(cdataClose, in: b, from: p + cdataOpen.count) ?? end, end)
                    sections.append((p + cdataOpen.count)..<close)
                    value += String(decoding: b[(p + cdataOpen.count)..<close], as: UTF8.self)
                    p = close + cdataClose.count
                } else if ByteScan.has(Array("<!--".utf8), in: b, at: p) {
                    plain = false
                    p = skip(past: Array("-->".utf8), from: p + 4)
                } else if ByteScan.has(Array("<?".utf8), in: b, at: p) {
                    plain = false
                    p = skip(past: Array("?>".utf8), from: p + 2)
                } else if b[p] == lt {
                    return  // markup the scanner did not expect: leave it to the text scan
                } else {
                    let q = b[p..<end].firstIndex(of: lt) ?? end
                    if !b[p..<q].allSatisfy(ByteScan.isSpace) { plain = false }
                    value += Coding.xmlUnescape(String(decoding: b[p..<q], as: UTF8.self))
                    p = q
                }
            }
            if plain, sections.count == 1, let content = sections.first {
                let inner = String(decoding: b[content], as: UTF8.self)
                if let r = replacement(role: role, value: inner) { edits.append((content, Array(r.utf8))) }
            } else if let r = replacement(role: role, value: value) {
                edits.append((start..<end, Array(r.utf8)))
            }
        }

        while i < b.count {
            guard let open = b[i...].firstIndex(of: lt) else { break }
            if ByteScan.has(Array("<!--".utf8), in: b, at: open) {
                i = skip(past: Array("-->".utf8), from: open + 4)
                continue
            }
            if ByteScan.has(cdataOpen, in: b, at: open) {
                i = skip(past: cdataClose, from: open + cdataOpen.count)
                continue
            }
            if ByteScan.has(Array("<?".utf8), in: b, at: open) {
                i = skip(past: Array("?>".utf8), from: open + 2)
                continue
            }
            if ByteScan.has(Array("<!".utf8), in: b, at: open) {
                i = skip(past: [gt], from: open + 2)
                continue
            }
            if open + 1 < b.count, b[open + 1] == slash {
                // End tag: the innermost open element closes (names are not matched: tolerant).
                let end = b[open...].firstIndex(of: gt) ?? b.count
                if let top = stack.popLast(), let role = top.role, !top.hasChild {
                    redactContent(role: role, top.contentStart, open)
                }
                i = min(end + 1, b.count)
                continue
            }
            // Start tag: name, attributes, `>` or `/>`.
            var p = open + 1
            let nameStart = p
            while p < b.count, isNameByte(b[p]) { p += 1 }
            guard p > nameStart else { i = open + 1; continue }
            let role = localRole(nameStart..<p)
            var selfClosing = false
            while p < b.count {
                while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
                guard p < b.count else { break }
                if b[p] == gt { p += 1; break }
                if b[p] == slash { selfClosing = true; p += 1; continue }
                let attrStart = p
                while p < b.count, isNameByte(b[p]) { p += 1 }
                let attrName = attrStart..<p
                if attrName.isEmpty { p += 1; continue }
                while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
                guard p < b.count, b[p] == UInt8(ascii: "=") else { continue }
                p += 1
                while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
                guard p < b.count, b[p] == ByteScan.quote || b[p] == UInt8(ascii: "'") else { continue }
                let q = b[p]
                let valueStart = p + 1
                var valueEnd = valueStart
                while valueEnd < b.count, b[valueEnd] != q { valueEnd += 1 }
                if let attrRole = localRole(attrName) {
                    let value = Coding.xmlUnescape(String(decoding: b[valueStart..<valueEnd], as: UTF8.self))
                    if let r = replacement(role: attrRole, value: value) { edits.append((valueStart..<valueEnd, Array(r.utf8))) }
                }
                p = min(valueEnd + 1, b.count)
            }
            if !selfClosing {
                if !stack.isEmpty { stack[stack.count - 1].hasChild = true }
                stack.append(Open(role: role, contentStart: p))
            } else if !stack.isEmpty {
                stack[stack.count - 1].hasChild = true
            }
            i = p
        }
        // A truncated document: the innermost open element's text runs to the end.
        if let top = stack.last, let role = top.role, !top.hasChild {
            redactContent(role: role, top.contentStart, b.count)
        }
        return ByteScan.apply(edits.sorted { $0.0.lowerBound < $1.0.lowerBound }, to: b)
    }
}
