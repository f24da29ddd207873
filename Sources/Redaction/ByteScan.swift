import Foundation

/// Free-text scanning on bytes: hand-written matchers for `name=value`, `"name": "value"` (plain,
/// backslash-escaped and `&quot;`-escaped) and secret shapes, linear in the input and without
/// regular expressions (so multi-megabyte bodies stay cheap).
enum ByteScan {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), equals = UInt8(ascii: "=")
    static let plainQuote = Array("\"".utf8), singleQuote = Array("'".utf8), escapedQuote = Array("\\\"".utf8), htmlQuote = Array("&quot;".utf8)
    static let htmlNumericQuote = Array("&#34;".utf8)
    static let eyJ = Array("eyJ".utf8)
    static let xmlnsColon = Array("xmlns:".utf8)
    static let schemeSeparator = Array("://".utf8)
    static let envelopeFields = ["message=", "error=", "error_description=", "error_message="].map { Array($0.utf8) }
    static let pemBegin = Array("-----BEGIN ".utf8), pemEnd = Array("-----END ".utf8), pemDashes = Array("-----".utf8)
    static let privateKeyLabel = Array("PRIVATE KEY".utf8)
    /// base64url of `{"miro.origin":` (miro-oauth.md).
    static let miroPrefix = Array("eyJtaXJvLm9yaWdpbiI6".utf8)

    static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    /// `[A-Za-z0-9_-]`: parameter-name characters, and the base64url alphabet.
    static func isNameByte(_ c: UInt8) -> Bool {
        isLetter(c) || isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }
    /// `[`, `]` and `%`: inside form field names as PHP and Rails send them (`data[password]`,
    /// `data%5Bpassword%5D`).
    static func isBracketOrPercent(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "%")
    }
    /// The authentication schemes of RFC 9110 §11 and the IANA registry that precede credentials.
    static let authorizationSchemes: Set<String> = ["bearer", "basic", "digest", "negotiate", "ntlm", "token", "dpop",
                                                    "mac", "hoba", "mutual", "oauth", "aws4-hmac-sha256"]

    static let authorizationWord = Array("authorization".utf8)

    /// The index of the `:` of the next `authorization:` (any case, optional blanks before the
    /// colon; `Proxy-Authorization:` too) in `b` from `from`, or nil.
    static func authorizationLabel(in b: ArraySlice<UInt8>, from: Int) -> Int? {
        let label = authorizationWord, n = label.count
        var i = max(from, b.startIndex)
        while i + n < b.endIndex {
            // `| 0x20` folds an upper-case letter onto its lower-case one (every label byte is a letter).
            if b[i] | 0x20 == 0x61, i == b.startIndex || !isLetter(b[i - 1]) {
                var k = 1
                while k < n, b[i + k] | 0x20 == label[k] { k += 1 }
                if k == n {
                    var p = i + n
                    while p < b.endIndex, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
                    if p < b.endIndex, b[p] == UInt8(ascii: ":") { return p }
                }
            }
            i += 1
        }
        return nil
    }

    static func authorizationLabel(in b: [UInt8], from: Int) -> Int? { authorizationLabel(in: b[...], from: from) }

    /// A byte without which `scanPairs` finds nothing: `=`, a quote, a backslash, `&`, or the `@`
    /// of a URL's userinfo.
    static func mayStartPair(_ c: UInt8) -> Bool {
        c == equals || c == quote || c == backslash || c == UInt8(ascii: "&") || c == UInt8(ascii: "'") || c == UInt8(ascii: "@")
    }
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    /// Where a `name=value` value ends in free text: `&`, whitespace, a quote, `<`, `>`, `#`, `;`,
    /// a backslash or a control character; in binary data also any byte ≥ 0x80.
    static func endsParamValue(_ c: UInt8, binary: Bool) -> Bool {
        switch c {
        case 0x00...0x20, 0x7F, UInt8(ascii: "&"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "<"),
             UInt8(ascii: ">"), UInt8(ascii: "#"), UInt8(ascii: ";"), UInt8(ascii: "\\"):
            return true
        default:
            return binary && c >= 0x80
        }
    }

    /// Length of the longest prefix of `b` that is well-formed UTF-8 (RFC 3629).
    static func validUTF8Prefix(_ b: [UInt8]) -> Int {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: return i
            }
            guard i + len <= n else { return i }
            guard b[i + 1] >= lo, b[i + 1] <= hi else { return i }
            for k in 2..<len where b[i + k] & 0xC0 != 0x80 { return i }
            i += len
        }
        return n
    }

    static func find(_ needle: [UInt8], in b: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, b.count >= needle.count else { return nil }
        var i = from
        let last = b.count - needle.count
        while i <= last {
            if b[i] == first, has(needle, in: b, at: i) { return i }
            i += 1
        }
        return nil
    }

    static func has(_ needle: [UInt8], in b: [UInt8], at i: Int) -> Bool {
        guard i >= 0, i + needle.count <= b.count else { return false }
        for k in 0..<needle.count where b[i + k] != needle[k] { return false }
        return true
    }

    static func apply(_ edits: [(Range<Int>, String)], to b: [UInt8]) -> [UInt8] {
        apply(edits.map { ($0.0, Array($0.1.utf8)) }, to: b)
    }

    /// `b` with each range replaced, in order; an edit overlapping an earlier one is skipped.
    static func apply(_ edits: [(Range<Int>, [UInt8])], to b: [UInt8]) -> [UInt8] {
        guard !edits.isEmpty else { return b }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var cursor = 0
        for (range, bytes) in edits where range.lowerBound >= cursor {
            out.append(contentsOf: b[cursor..<range.lowerBound])
            out.append(contentsOf: bytes)
            cursor = range.upperBound
        }
        out.append(contentsOf: b[cursor...])
        return out
    }

    /// End of a JWT starting at `p` (JWS: `eyJ[b64url]+\.[b64url]+\.[b64url]*`; JWE, RFC 7516
    /// §7.1: five parts, `eyJ[b64url]+\.[b64url]*\.[b64url]+\.[b64url]+\.[b64url]+`, the encrypted
    /// key empty for `alg: dir`), or nil.
    static func jwtEnd(_ b: [UInt8], at p: Int) -> Int? {
        var q = p + 3
        func run() -> Int { let s = q; while q < b.count, isNameByte(b[q]) { q += 1 }; return q - s }
        func dot() -> Bool { guard q < b.count, b[q] == UInt8(ascii: ".") else { return false }; q += 1; return true }
        guard run() >= 1, dot() else { return nil }
        let second = run()
        guard dot() else { return nil }
        let third = run()
        let jws = q
        if third >= 1, dot(), run() >= 1, dot(), run() >= 1 { return q }
        return second >= 1 ? jws : nil
    }

    /// End of a Miro code or token starting at `p` (`eyJtaXJvLm9yaWdpbiI6[b64url]*_[b64url]+`), or nil.
    static func miroEnd(_ b: [UInt8], at p: Int) -> Int? {
        guard has(miroPrefix, in: b, at: p) else { return nil }
        var q = p + miroPrefix.count
        var lastUnderscore = -1
        while q < b.count, isNameByte(b[q]) {
            if b[q] == UInt8(ascii: "_") { lastUnderscore = q }
            q += 1
        }
        // Greedy match: some `_` followed by at least one more character.
        if lastUnderscore >= 0, lastUnderscore < q - 1 { return q }
        var k = q - 2
        while k >= p + miroPrefix.count, b[k] != UInt8(ascii: "_") { k -= 1 }
        return k >= p + miroPrefix.count ? q : nil
    }
}

extension Redactor {
    /// The free-text scan: JSON pairs (when `jsonPairs`), single-quoted pairs, escaped JSON pairs,
    /// HTML-escaped JSON pairs, `name=value` pairs (the value quoted or not), `name: "value"` pairs
    /// with a bare name, URL userinfo passwords, `Authorization: …` inside a line, then shapes. `binary`: values end at non-ASCII bytes.
    func scanBytes(_ input: [UInt8], binary: Bool, jsonPairs: Bool) -> [UInt8] {
        replaceShapes(scanPairs(input, binary: binary, jsonPairs: jsonPairs))
    }

    /// `scanBytes` without the shapes.
    func scanPairs(_ input: [UInt8], binary: Bool, jsonPairs: Bool) -> [UInt8] {
        var b = input
        if jsonPairs, b.contains(ByteScan.quote) { b = replacePairs(b, quote: ByteScan.plainQuote) }
        // Python's repr of a dict (`{'access_token': '…'}`), as requests-oauthlib logs a token.
        if b.contains(UInt8(ascii: "'")) { b = replacePairs(b, quote: ByteScan.singleQuote) }
        if ByteScan.find(ByteScan.htmlQuote, in: b, from: 0) != nil { b = replacePairs(b, quote: ByteScan.htmlQuote) }
        // Go's html/template writes a quote as `&#34;` (`data-state="{&#34;access_token&#34;:…}"`).
        if ByteScan.find(ByteScan.htmlNumericQuote, in: b, from: 0) != nil { b = replacePairs(b, quote: ByteScan.htmlNumericQuote) }
        if b.contains(ByteScan.backslash) { b = replacePairs(b, quote: ByteScan.escapedQuote) }
        if b.contains(ByteScan.equals) { b = replaceParams(b, binary: binary) }
        if b.contains(UInt8(ascii: ":")) { b = replaceBarePairs(b) }
        if b.contains(UInt8(ascii: "@")) { b = replaceUserinfo(b) }
        if ByteScan.authorizationLabel(in: b, from: 0) != nil { b = replaceAuthorizationLabels(b) }
        return b
    }

    /// `name=value` where `name` is a secret parameter (not preceded by a name character; the
    /// name may carry brackets and percent escapes, `data[password]=…`, and is judged decoded).
    ///
    /// An error envelope written as text (a finding's `this response says: code="oauthError"
    /// message="…"`): a `code` that looks like an error identifier is kept when the text also has a
    /// `message=`, `error=`, `error_description=` or `error_message=` field, as in JSON.
    private func replaceParams(_ b: [UInt8], binary: Bool) -> [UInt8] {
        var edits: [(Range<Int>, String)] = []
        lazy var hasEnvelope: Bool = ByteScan.envelopeFields.contains { field in
            var from = 0
            while let at = ByteScan.find(field, in: b, from: from) {
                if at == 0 || !ByteScan.isNameByte(b[at - 1]) { return true }
                from = at + 1
            }
            return false
        }
        var i = 0
        while i < b.count {
            guard let eq = b[i...].firstIndex(of: ByteScan.equals) else { break }
            var s = eq
            while s > 0, ByteScan.isNameByte(b[s - 1]) || ByteScan.isBracketOrPercent(b[s - 1]) { s -= 1 }
            // `xmlns:token="urn:x"` declares a namespace prefix: never a secret.
            guard s < eq, ByteScan.isLetter(b[s]), !ByteScan.has(ByteScan.xmlnsColon, in: b, at: s - 6),
                  let role = SecretClassifier.role(forName: Coding.formDecode(Array(b[s..<eq]), plusAsSpace: false)) else {
                i = eq + 1  // a non-secret value may carry `code=…` itself (an unencoded nested URL)
                continue
            }
            var e = eq + 1
            if let (inner, end) = Self.quotedValue(b, at: e) {
                // `name="value"`, `name='value'`, `name=\"value\"` (logfmt, shell, `.env`, HTML
                // attributes, the same inside a JSON string): the value between the quotes, as written.
                let value = String(decoding: b[inner], as: UTF8.self)
                if !(role == "code" && Self.isErrorCode(value) && hasEnvelope),
                   let r = replacement(role: role, value: value) {
                    edits.append((inner, r))
                }
                i = max(end, eq + 1)
                continue
            }
            while e < b.count, !ByteScan.endsParamValue(b[e], binary: binary) { e += 1 }
            let value = Coding.formDecode(Array(b[(eq + 1)..<e]))
            if !(role == "code" && Self.isErrorCode(value) && hasEnvelope), let r = replacement(role: role, value: value) {
                edits.append(((eq + 1)..<e, r))
            }
            i = max(e, eq + 1)
        }
        return ByteScan.apply(edits, to: b)
    }

    /// `name: "value"` with a bare name (quoted `"value"`, `'value'` or `\"value\"`): JavaScript
    /// object literals (`{accessToken: "…"}` in a page's script), GraphQL arguments
    /// (`login(email: "…", password: "…")`, also inside a JSON `query` string), YAML flow mappings.
    /// A `code` whose value is an error identifier (`Redactor.isErrorCode`) is kept.
    private func replaceBarePairs(_ b: [UInt8]) -> [UInt8] {
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while i < b.count, let colon = b[i...].firstIndex(of: UInt8(ascii: ":")) {
            i = colon + 1
            var s = colon
            while s > 0, ByteScan.isNameByte(b[s - 1]) { s -= 1 }
            // A quoted name is a JSON pair (`replacePairs`); a name must start with a letter.
            guard s < colon, ByteScan.isLetter(b[s]),
                  s == 0 || !(b[s - 1] == ByteScan.quote || b[s - 1] == UInt8(ascii: "'") || b[s - 1] == ByteScan.backslash)
            else { continue }
            var p = colon + 1
            while p < b.count, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
            guard let (inner, end) = Self.quotedValue(b, at: p),
                  let role = SecretClassifier.role(forName: String(decoding: b[s..<colon], as: UTF8.self)) else { continue }
            let value = String(decoding: b[inner], as: UTF8.self)
            // `code: "oauthError"`: an error identifier (a provider-error finding's evidence line, a
            // JavaScript error object's `code: "ECONNRESET"`), not an authorization code.
            if !(role == "code" && Self.isErrorCode(value)), let r = replacement(role: role, value: value) { edits.append((inner, r)) }
            i = max(i, end)
        }
        return ByteScan.apply(edits, to: b)
    }

    /// `scheme://user:password@host` in free text (`DATABASE_URL=postgres://app:…@db/x`, a JSON
    /// `database_url`): the password becomes a placeholder (role `password`), percent-decoded, as
    /// `redactURL` does for a request target.
    private func replaceUserinfo(_ b: [UInt8]) -> [UInt8] {
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while let sep = ByteScan.find(ByteScan.schemeSeparator, in: b, from: i) {
            var p = sep + 3
            var colon: Int?
            var at: Int?
            while p < b.count {
                let c = b[p]
                if c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#") || ByteScan.isSpace(c)
                    || c == ByteScan.quote || c == UInt8(ascii: "'") || c == UInt8(ascii: "<") || c == UInt8(ascii: ">")
                    || c == ByteScan.backslash || c < 0x20 { break }
                if c == UInt8(ascii: ":"), colon == nil, at == nil { colon = p }
                if c == UInt8(ascii: "@") { at = p }
                p += 1
            }
            if let colon, let at, colon < at,
               let r = replacement(role: "password", value: Coding.formDecode(Array(b[(colon + 1)..<at]), plusAsSpace: false)) {
                edits.append(((colon + 1)..<at, r))
            }
            i = max(p, sep + 3)
        }
        return ByteScan.apply(edits, to: b)
    }

    /// `Authorization: <scheme> <credentials>` inside a line of free text (a logged curl command,
    /// a header dump in an error message or a JSON string): the credentials, as the header's own
    /// rule replaces them (`access_token` for Bearer, the password of Basic).
    private func replaceAuthorizationLabels(_ b: [UInt8]) -> [UInt8] {
        func ends(_ c: UInt8) -> Bool {
            ByteScan.isSpace(c) || c == ByteScan.quote || c == UInt8(ascii: "'") || c == ByteScan.backslash
                || c == UInt8(ascii: "<") || c == UInt8(ascii: ">") || c == UInt8(ascii: ",") || c < 0x20
        }
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while let colon = ByteScan.authorizationLabel(in: b, from: i) {
            var p = colon + 1
            while p < b.count, b[p] == 0x20 || b[p] == 0x09 { p += 1 }
            let start = p
            while p < b.count, !ends(b[p]) { p += 1 }
            var q = p
            while q < b.count, b[q] == 0x20 || b[q] == 0x09 { q += 1 }
            let scheme = String(decoding: b[start..<p], as: UTF8.self).lowercased()
            // Only `<scheme> <credentials>`: in prose, a bare word after the colon is rather a word
            // (`missing Authorization: header`).
            var value = start..<start
            if ByteScan.authorizationSchemes.contains(scheme), q < b.count, q > p, !ends(b[q]) {
                while q < b.count, !ends(b[q]) { q += 1 }
                value = start..<q
            }
            if !value.isEmpty {
                let raw = String(decoding: b[value], as: UTF8.self)
                let out = redactAuthorization(raw, role: "authorization")
                if out != raw { edits.append((value, out)) }
            }
            i = max(value.upperBound, p, colon + 1)
        }
        return ByteScan.apply(edits, to: b)
    }

    /// A value that starts with `"`, `'` or `\"` at `p`: the range between the quotes and the index
    /// after the closing one. An unclosed quote runs to the end of the line (a truncated text).
    static func quotedValue(_ b: [UInt8], at p: Int) -> (inner: Range<Int>, end: Int)? {
        guard p < b.count else { return nil }
        let escaped = b[p] == ByteScan.backslash && p + 1 < b.count && b[p + 1] == ByteScan.quote
        guard escaped || b[p] == ByteScan.quote || b[p] == UInt8(ascii: "'") else { return nil }
        let start = p + (escaped ? 2 : 1)
        var c = start
        while c < b.count, b[c] != 0x0A, b[c] != 0x0D {
            if escaped {
                if b[c] == ByteScan.backslash, c + 1 < b.count, b[c + 1] == ByteScan.quote { return (start..<c, c + 2) }
            } else if b[c] == b[p] {
                return (start..<c, c + 1)
            }
            c += 1
        }
        return (start..<c, c)
    }

    /// `Q name Q ws (:|=>) ws Q value` with the quote token `Q` (`"`, `'`, `\"` or `&quot;`); the value runs
    /// to its closing quote, or to the end of a truncated text.
    private func replacePairs(_ b: [UInt8], quote q: [UInt8]) -> [UInt8] {
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while let start = ByteScan.find(q, in: b, from: i) {
            i = start + 1
            var p = start + q.count
            let nameStart = p
            guard p < b.count, ByteScan.isLetter(b[p]) else { continue }
            while p < b.count, ByteScan.isNameByte(b[p]) { p += 1 }
            let nameEnd = p
            guard ByteScan.has(q, in: b, at: p) else { continue }
            p += q.count
            while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
            // `:`, or Ruby's `=>` (`{"access_token"=>"…"}`, a Hash's `inspect`).
            if p < b.count, b[p] == UInt8(ascii: ":") {
                p += 1
            } else if p + 1 < b.count, b[p] == ByteScan.equals, b[p + 1] == UInt8(ascii: ">") {
                p += 2
            } else {
                continue
            }
            while p < b.count, ByteScan.isSpace(b[p]) { p += 1 }
            guard ByteScan.has(q, in: b, at: p) else { continue }
            p += q.count
            let valueStart = p
            switch q {
            case ByteScan.plainQuote, ByteScan.singleQuote:
                while p < b.count, b[p] != q[0] { p += b[p] == ByteScan.backslash ? 2 : 1 }
            case ByteScan.escapedQuote:
                while p < b.count, b[p] != ByteScan.quote {
                    if b[p] == ByteScan.backslash {
                        if p + 1 < b.count, b[p + 1] != ByteScan.quote { p += 2; continue }
                        break
                    }
                    p += 1
                }
            default:
                while p < b.count, !ByteScan.has(q, in: b, at: p),
                      b[p] != ByteScan.quote, b[p] != UInt8(ascii: "<"), b[p] != UInt8(ascii: ">") { p += 1 }
            }
            let valueEnd = min(p, b.count)
            i = max(valueEnd, start + 1)
            guard let role = SecretClassifier.role(forName: String(decoding: b[nameStart..<nameEnd], as: UTF8.self))
            else { continue }
            var value = String(decoding: b[valueStart..<valueEnd], as: UTF8.self)
            switch q {
            case ByteScan.plainQuote, ByteScan.singleQuote: value = Coding.jsonUnescape(value)
            case ByteScan.escapedQuote: value = Coding.jsonUnescape(Coding.jsonUnescape(value))
            default: value = Coding.jsonUnescape(Coding.xmlUnescape(value))
            }
            if let r = replacement(role: role, value: value) { edits.append((valueStart..<valueEnd, r)) }
        }
        return ByteScan.apply(edits, to: b)
    }

    /// JWTs (role `jwt`), Miro-shaped codes and tokens (role `miro_token`) and the bodies of PEM
    /// private keys (role `private_key`).
    func replaceShapes(_ input: [UInt8]) -> [UInt8] {
        let b = ByteScan.find(ByteScan.pemBegin, in: input, from: 0) == nil ? input : replacePrivateKeys(input)
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while let p = ByteScan.find(ByteScan.eyJ, in: b, from: i) {
            if let end = ByteScan.jwtEnd(b, at: p) ?? ByteScan.miroEnd(b, at: p) {
                let role = ByteScan.jwtEnd(b, at: p) != nil ? "jwt" : "miro_token"
                if let r = replacement(role: role, value: String(decoding: b[p..<end], as: UTF8.self)) {
                    edits.append((p..<end, r))
                }
                i = end
            } else {
                i = p + 3
            }
        }
        return ByteScan.apply(edits, to: b)
    }

    /// `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]PRIVATE KEY[ BLOCK]-----` … `-----END …`: the text between
    /// the two markers (base64 lines, or `\n`-escaped ones inside a JSON string) becomes one
    /// placeholder; the markers stay, so a reader still sees which kind of key travelled. A key cut
    /// by truncation is replaced to the end. Certificates and public keys are not secrets.
    private func replacePrivateKeys(_ b: [UInt8]) -> [UInt8] {
        var edits: [(Range<Int>, String)] = []
        var i = 0
        while let begin = ByteScan.find(ByteScan.pemBegin, in: b, from: i) {
            let labelStart = begin + ByteScan.pemBegin.count
            i = labelStart
            guard let labelEnd = ByteScan.find(ByteScan.pemDashes, in: b, from: labelStart), labelEnd - labelStart <= 40,
                  let label = ByteScan.find(ByteScan.privateKeyLabel, in: b, from: labelStart),
                  label + ByteScan.privateKeyLabel.count <= labelEnd
            else { continue }
            let bodyStart = labelEnd + ByteScan.pemDashes.count
            let bodyEnd = ByteScan.find(ByteScan.pemEnd, in: b, from: bodyStart) ?? b.count
            if let r = replacement(role: "private_key", value: String(decoding: b[bodyStart..<bodyEnd], as: UTF8.self)) {
                edits.append((bodyStart..<bodyEnd, r))
            }
            i = bodyEnd
        }
        return ByteScan.apply(edits, to: b)
    }
}
