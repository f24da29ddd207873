import Foundation
import TokentapCore

extension Redactor {
    /// Redacts secrets found by shape in free text: JWTs (role `jwt`) and Miro-shaped codes and
    /// tokens (role `miro_token`). Nothing else is changed.
    public func redactShapes(in text: String) -> String {
        String(decoding: replaceShapes(Array(text.utf8)), as: UTF8.self)
    }

    /// Redacts every secret recognizable in free text (an error string, a log line, a finding's
    /// evidence, an HTML page): `"name": "value"` pairs (also backslash- or `&quot;`-escaped) and
    /// `name=value` pairs whose name is a secret parameter (`SecretClassifier.role(forName:)`),
    /// then JWTs and Miro-shaped tokens.
    public func redactText(_ text: String) -> String {
        redactText(text, jsonPairs: true)
    }

    /// Renders one named value for quoting (a finding's evidence, a timeline line): the
    /// placeholder when `SecretClassifier` calls `name` a secret, shapes only for `error_uri`,
    /// otherwise the text scan. A value that is already a placeholder stays as it is.
    /// `errorEnvelope`: the value is a field of a provider's error response, where a `code` that
    /// looks like an error identifier (Miro's `oauthError`) is not an authorization code.
    public func redactValue(_ value: String, named name: String, errorEnvelope: Bool = false) -> String {
        if let role = SecretClassifier.role(forName: name) {
            if errorEnvelope, role == "code", Self.isErrorCode(value) { return value }
            return replacement(role: role, value: value) ?? value
        }
        if SecretClassifier.isErrorReference(name) { return redactErrorReference(value) }
        return redactText(value)
    }

    /// Redacts a URL or request target: the userinfo password, the values of secret query
    /// parameters (fingerprinted after one level of form decoding), secret parameters in the
    /// fragment when `fragmentAware` (`#access_token=…` of the implicit grant, `#/cb?code=…` of a
    /// hash-routed app), then everything
    /// by shape. Non-secret bytes are unchanged. Use it for the proxy's live lines too.
    public func redactURL(_ url: String, fragmentAware: Bool = true) -> String {
        redactURL(url, fragmentAware: fragmentAware, depth: 0)
    }

    /// Redacts an `application/x-www-form-urlencoded` string (a form body or a query without `?`):
    /// the values of secret fields are replaced, order and every other byte are kept.
    public func redactForm(_ form: String) -> String {
        redactShapes(in: redactParams(form, depth: 0, jsonPairs: false))
    }

    // MARK: - Internals

    func redactText(_ text: String, jsonPairs: Bool) -> String {
        let bytes = Array(text.utf8)
        let out = scanBytes(bytes, binary: false, jsonPairs: jsonPairs)
        return out == bytes ? text : String(decoding: out, as: UTF8.self)
    }

    /// `k=v(&k=v)*`: values of secret keys replaced by placeholders of their form-decoded value;
    /// a non-secret value that decodes to a URL, form or JSON string carrying secrets is redacted
    /// inside and re-encoded; any other value is scanned as text (`jsonPairs`: also `"name":"value"`
    /// pairs). An `error_uri` value keeps its error number (`redactErrorReference`);
    /// `errorReference`: `s` is the query of one, whose `code` is an error number.
    /// Shapes (JWTs, Miro tokens) are the caller's last pass.
    func redactParams(_ s: String, depth: Int, jsonPairs: Bool, errorReference: Bool = false) -> String {
        guard s.unicodeScalars.contains("=") else { return scanText(s, jsonPairs: jsonPairs) }
        return s.splitScalars("&").map { part -> String in
            guard let (rawKey, rawValue) = part.splitOnce("=") else { return scanText(part, jsonPairs: jsonPairs) }
            let key = Coding.formDecode(Array(rawKey.utf8))
            if let role = SecretClassifier.role(forName: key), !(errorReference && role == "code") {
                guard let r = replacement(role: role, value: Coding.formDecode(Array(rawValue.utf8))) else { return part }
                return rawKey + "=" + r
            }
            if SecretClassifier.isErrorReference(key) {
                let value = Coding.formDecode(Array(rawValue.utf8))
                let inner = redactErrorReference(value)
                return inner == value ? part : rawKey + "=" + Coding.percentEncode(inner)
            }
            if let inner = redactEncoded(rawValue, depth: depth) { return rawKey + "=" + inner }
            return rawKey + "=" + scanText(rawValue, jsonPairs: jsonPairs)
        }.joined(separator: "&")
    }

    /// A percent- or form-encoded value that decodes to a URL, form or JSON string carrying
    /// secrets (`next=%2Fcb%3Fcode%3D…`): redacted inside and re-encoded. A value encoded twice
    /// (`next=%252Fcb%253Fcode%253D…`, a return URL inside a return URL) is decoded again, up to
    /// the nesting limit. Nil when nothing inside is a secret.
    func redactEncoded(_ raw: String, depth: Int) -> String? {
        guard depth < 3, raw.unicodeScalars.contains("%") || raw.unicodeScalars.contains("+") else { return nil }
        let value = Coding.formDecode(Array(raw.utf8))
        if value.unicodeScalars.contains("=") || value.hasPrefix("{") || value.hasPrefix("[") {
            let inner = redactNested(value, depth: depth + 1)
            return inner != value ? Coding.percentEncode(inner) : nil
        }
        if value.unicodeScalars.contains("%"), let inner = redactEncoded(value, depth: depth + 1) {
            return Coding.percentEncode(inner)
        }
        return nil
    }

    /// The text scan without shapes (`name=value`, quoted pairs).
    private func scanText(_ text: String, jsonPairs: Bool) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(where: ByteScan.mayStartPair) || ByteScan.authorizationLabel(in: bytes, from: 0) != nil
        else { return text }
        let out = scanPairs(bytes, binary: false, jsonPairs: jsonPairs)
        return out == bytes ? text : String(decoding: out, as: UTF8.self)
    }

    /// An `error_uri` (RFC 6749 §5.2): a link to the provider's page about the error. Its `code`
    /// parameter is an error number (Microsoft's `…/error?code=9002327`), kept; everything else in
    /// it is judged as in any URL.
    func redactErrorReference(_ url: String) -> String {
        redactURL(url, fragmentAware: true, depth: 0, errorReference: true)
    }

    func redactURL(_ url: String, fragmentAware: Bool, depth: Int, errorReference: Bool = false) -> String {
        var rest = url
        var fragment: String?
        if fragmentAware, let (before, after) = url.splitOnce("#") {
            rest = before
            fragment = after
        }
        var query: String?
        if let (before, after) = rest.splitOnce("?") {
            rest = before
            query = after
        }
        var out = scanText(redactUserinfo(rest), jsonPairs: false)
        if let query { out += "?" + redactParams(query, depth: depth, jsonPairs: false, errorReference: errorReference) }
        if let fragment {
            // `#/callback?code=…`: a hash-routed single-page app keeps a path and a query there.
            let scalars = fragment.unicodeScalars
            if let q = scalars.firstIndex(of: "?"), !scalars[..<q].contains("=") {
                out += "#" + redactURL(fragment, fragmentAware: false, depth: depth)
            } else {
                out += "#" + redactParams(fragment, depth: depth, jsonPairs: false)
            }
        }
        return redactShapes(in: out)
    }

    /// `scheme://user:password@host/…`: the password becomes a placeholder (role `password`).
    private func redactUserinfo(_ s: String) -> String {
        guard let schemeEnd = s.range(of: "://") else { return s }
        let authorityStart = schemeEnd.upperBound
        let afterScheme = s.unicodeScalars[authorityStart...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? s.endIndex
        let authority = s.scalarSlice(authorityStart..<authorityEnd)
        guard let at = authority.unicodeScalars.lastIndex(of: "@") else { return s }
        let userinfo = authority.scalarSlice(authority.startIndex..<at)
        guard let (user, rawPassword) = userinfo.splitOnce(":"),
              let r = replacement(role: "password", value: Coding.formDecode(Array(rawPassword.utf8), plusAsSpace: false))
        else { return s }
        return s.scalarSlice(s.startIndex..<authorityStart) + user + ":" + r
            + authority.scalarSlice(at..<authority.endIndex) + s.scalarSlice(authorityEnd..<s.endIndex)
    }

    /// A decoded string value (JSON string, form value) that may itself be JSON, a URL or a form.
    func redactNested(_ value: String, depth: Int) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            return redactJSON(value, depth: depth)
        }
        if value.contains("://") || value.hasPrefix("/") || value.hasPrefix("?") {
            return redactURL(value, fragmentAware: true, depth: depth)
        }
        if FormCoding.looksLikeForm(value) {
            return redactShapes(in: redactParams(value, depth: depth, jsonPairs: true))
        }
        return redactText(value, jsonPairs: true)
    }

}
