import Foundation

extension Redactor {
    /// Redacts a JSON text without re-serializing it: a tolerant tokenizer finds every string,
    /// tells keys from values, and replaces only the contents of string values under a secret key
    /// (at any depth, including strings in an array under a secret key). Numbers, whitespace, key
    /// order and escapes elsewhere stay byte for byte (big integers such as Miro team ids > 2^53
    /// survive). Truncated JSON works: an unterminated string value under a secret key is replaced
    /// up to the end. The `value` of `{"name": "DB_PASSWORD", "value": "…"}` is judged by the `name`. A non-secret string that is itself JSON, a URL or a form is redacted inside.
    public func redactJSON(_ text: String) -> String {
        redactJSON(text, depth: 0)
    }

    /// An error identifier such as Miro's `oauthError`, `tokenNotProvided` or `tooManyRequests`:
    /// at most 64 characters, a letter first, then letters and digits in groups joined by `.`, `_`
    /// or `-`; made of words, not of random characters: no digit between two letters (`S6W` of
    /// RFC 6749's example code `SplxlOBeZQQYbYS6WxSbIA`, hex codes), and a camelCase word boundary
    /// (a lower-case letter, then an upper-case one) at most once every 5 letters.
    static func isErrorCode(_ value: String) -> Bool {
        let b = Array(value.utf8)
        guard (1...64).contains(b.count), ByteScan.isLetter(b[0]) else { return false }
        func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
        func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
        var previousWasSeparator = false
        var letters = 1, boundaries = 0
        for (i, c) in b.enumerated().dropFirst() {
            if ByteScan.isLetter(c) {
                letters += 1
                if isUpper(c), isLower(b[i - 1]) { boundaries += 1 }
                if i >= 2, ByteScan.isDigit(b[i - 1]), ByteScan.isLetter(b[i - 2]) { return false }
                previousWasSeparator = false
            } else if ByteScan.isDigit(c) {
                previousWasSeparator = false
            } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") {
                if previousWasSeparator { return false }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator && boundaries * 5 <= letters
    }

    private enum Frame {
        case object(id: Int)
        case array(key: String?)
    }

    private struct StringValue {
        var content: Range<Int>
        var key: String?
        var objectID: Int?
        /// A key (never a value).
        var isKey = false
    }

    func redactJSON(_ text: String, depth: Int) -> String {
        let b = Array(text.utf8)
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
        func decode(_ r: Range<Int>) -> String { Coding.jsonUnescape(String(decoding: b[r], as: UTF8.self)) }

        var stack: [Frame] = []
        var keysByObject: [Int: Set<String>] = [:]
        var emptyKeysByObject: [Int: Set<String>] = [:]
        var values: [StringValue] = []
        var pendingKey: String?
        var nextID = 0
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == quote {
                let start = i + 1
                var j = start
                while j < b.count, b[j] != quote {
                    j += b[j] == backslash ? 2 : 1
                }
                let end = min(j, b.count)
                i = end + 1
                var k = i
                while k < b.count, isSpace(b[k]) { k += 1 }
                // A key is followed by `:` (or Ruby's `=>`: `{"access_token"=>"…"}`, a Hash's `inspect`).
                let arrow = k + 1 < b.count && b[k] == UInt8(ascii: "=") && b[k + 1] == UInt8(ascii: ">")
                if k < b.count, b[k] == UInt8(ascii: ":") || arrow, case let .object(id)? = stack.last {
                    let key = decode(start..<end)
                    pendingKey = key
                    keysByObject[id, default: []].insert(SecretClassifier.words(key).joined())
                    values.append(StringValue(content: start..<end, key: nil, objectID: id, isKey: true))
                    i = k + (arrow ? 2 : 1)
                    continue
                }
                switch stack.last {
                case let .object(id)?:
                    values.append(StringValue(content: start..<end, key: pendingKey, objectID: id))
                case let .array(key)?:
                    values.append(StringValue(content: start..<end, key: key, objectID: nil))
                case nil:
                    values.append(StringValue(content: start..<end, key: nil, objectID: nil))
                }
                pendingKey = nil
                continue
            }
            switch c {
            case UInt8(ascii: "{"):
                stack.append(.object(id: nextID))
                nextID += 1
                pendingKey = nil
            case UInt8(ascii: "["):
                if case let .array(key)? = stack.last, pendingKey == nil {
                    stack.append(.array(key: key))
                } else {
                    stack.append(.array(key: pendingKey))
                }
                pendingKey = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                pendingKey = nil
            case UInt8(ascii: ","), UInt8(ascii: ":"):
                break
            default:
                if !isSpace(c) {
                    // `"error": null` (or `false`) says there is no error: no envelope key.
                    if let key = pendingKey, c == UInt8(ascii: "n") || c == UInt8(ascii: "f"), case let .object(id)? = stack.last {
                        emptyKeysByObject[id, default: []].insert(SecretClassifier.words(key).joined())
                    }
                    pendingKey = nil  // number or literal
                }
            }
            i += 1
        }

        // Each string value is judged by its key; every other byte (keys, numbers, punctuation, the
        // tail of broken JSON) is scanned as text. A value under `error_uri` is a link to the
        // provider's documentation, not a credential: only shapes are redacted in it.
        let envelopeKeys: Set<String> = ["message", "error", "errordescription", "errormessage", "errors"]
        // A field described by name (`{"name": "CLIENT_SECRET", "value": "…"}`: Kubernetes and ECS
        // environments, Postman variables, HAR parameters): the `value` of an object whose `name`
        // or `key` is a secret name is judged by that name.
        var fieldRoles: [Int: String] = [:]
        for v in values where !v.isKey {
            guard let id = v.objectID, let key = v.key, ["name", "key"].contains(SecretClassifier.words(key).joined()),
                  let role = SecretClassifier.role(forName: decode(v.content)) else { continue }
            fieldRoles[id] = role
        }
        var replacements: [(Range<Int>, [UInt8])] = []
        var gapStart = 0
        func scanGap(upTo end: Int) {
            if gapStart < end, b[gapStart..<end].contains(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "'") }) {
                let gap = Array(b[gapStart..<end])
                let out = scanBytes(gap, binary: false, jsonPairs: false)
                if out != gap { replacements.append((gapStart..<end, out)) }
            }
        }
        for v in values {
            scanGap(upTo: max(gapStart, v.content.lowerBound))
            gapStart = max(gapStart, v.content.upperBound)
            if v.isKey { continue }
            if let id = v.objectID, let role = fieldRoles[id], let key = v.key, SecretClassifier.words(key) == ["value"] {
                if let r = replacement(role: role, value: decode(v.content)) { replacements.append((v.content, Array(r.utf8))) }
            } else if let key = v.key, let role = SecretClassifier.role(forName: key) {
                let value = decode(v.content)
                if role == "code", let id = v.objectID,
                   !(keysByObject[id] ?? []).subtracting(emptyKeysByObject[id] ?? []).isDisjoint(with: envelopeKeys),
                   Self.isErrorCode(value) {
                    continue
                }
                if let r = replacement(role: role, value: value) { replacements.append((v.content, Array(r.utf8))) }
            } else if let key = v.key, SecretClassifier.isErrorReference(key) {
                let value = decode(v.content)
                let inner = redactErrorReference(value)
                if inner != value { replacements.append((v.content, Array(Coding.jsonEscape(inner).utf8))) }
            } else if depth < 3, let first = v.content.first.map({ b[$0] }),
                      first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || b[v.content].contains(UInt8(ascii: "=")) {
                let value = decode(v.content)
                let inner = redactNested(value, depth: depth + 1)
                if inner != value { replacements.append((v.content, Array(Coding.jsonEscape(inner).utf8))) }
            } else if depth < 3, b[v.content].contains(UInt8(ascii: "%")), let inner = redactEncoded(decode(v.content), depth: depth) {
                // A percent-encoded URL or form (`"next":"%2Fcb%3Fcode%3D…"`).
                replacements.append((v.content, Array(Coding.jsonEscape(inner).utf8)))
            } else if b[v.content].contains(where: { $0 == UInt8(ascii: "=") || $0 == ByteScan.backslash || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "@") })
                        || (b[v.content].contains(UInt8(ascii: ":")) && ByteScan.authorizationLabel(in: b[v.content], from: 0) != nil) {
                let raw = Array(b[v.content])
                let out = scanBytes(raw, binary: false, jsonPairs: false)
                if out != raw { replacements.append((v.content, out)) }
            }
        }
        scanGap(upTo: b.count)
        let out = ByteScan.apply(replacements.sorted(by: { $0.0.lowerBound < $1.0.lowerBound }), to: b)
        let shaped = replaceShapes(out)
        return shaped == b ? text : String(decoding: shaped, as: UTF8.self)
    }
}
