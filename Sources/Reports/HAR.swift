import Foundation
import OAuthDiagnosis
import Recording
import TokentapCore

/// HAR 1.2 (HTTP Archive, http://www.softwareishard.com/blog/har-12-spec/) export and import.
///
/// Export writes one `log` with `version "1.2"`, `creator {name: "tokentap", version}` and one entry
/// per exchange; tokentap's own fields go into the entry's `_tokentap` object (HAR's `_` convention
/// for custom fields): `{id, session, kind, findings: [finding objects], error?, verdict?}`.
///
/// Import reads what Chrome and Firefox DevTools, mitmproxy and HTTP Toolkit write: their other
/// `_`-prefixed fields are ignored, HTTP/2 pseudo-headers (`:authority`…) are dropped,
/// `content.encoding == "base64"` bodies are decoded, and a request body given only as
/// `postData.params` becomes a form body. Import validates every entry before returning any.
public enum HAR {
    /// A HAR that cannot be imported: the entry (0-based index into `log.entries`, `nil` for the
    /// log itself), the field (JSON path inside the entry, e.g. `request.url`) and what is wrong.
    public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
        public var entry: Int?
        public var field: String
        public var problem: String

        public init(entry: Int?, field: String, problem: String) {
            self.entry = entry
            self.field = field
            self.problem = problem
        }

        /// `malformed HAR: entry 2 (log.entries[2].request.url): expected an absolute URL`.
        public var description: String {
            if let entry {
                return "malformed HAR: entry \(entry) (log.entries[\(entry)].\(field)): \(problem)"
            }
            return "malformed HAR: \(field): \(problem)"
        }
    }

    /// One imported entry: the exchange (raw as the file has it, `id == nil`) and the findings the
    /// file carried in `_tokentap.findings` (already in `exchange.findings` too).
    public struct ImportedEntry: Sendable {
        public var exchange: Exchange
        public var findings: [Finding]
        /// `_tokentap.id` when the file was written by tokentap.
        public var originalID: Int64?
    }

    // MARK: - Export

    /// The HAR 1.2 document for `exchanges` (in the order given), pretty-printed JSON with sorted keys.
    /// Times: `startedDateTime` ISO 8601 UTC with microseconds; `time` and `timings` in ms, with
    /// `blocked`/`dns` (and `connect`/`ssl` when unknown) -1; `connect` includes `ssl` (HAR 1.2).
    /// Bodies: UTF-8 text as is; anything else base64 with `encoding: "base64"`.
    /// `verdicts`: the doctor's verdict on each failed OAuth exchange, written as the entry's
    /// `_tokentap.verdict` (``VerdictDocument``: `{exchange, step, status, cause, confidence,
    /// summary, fix, consequences, alternatives}`).
    public static func export(_ exchanges: [Exchange], creatorVersion: String, verdicts: [Verdict] = []) -> Data {
        let byExchange = Dictionary(verdicts.map { ($0.exchange, $0) }, uniquingKeysWith: { first, _ in first })
        let log = Document(log: Log(creator: Creator(version: creatorVersion), entries: exchanges.map { e in
            Entry(e, verdict: e.id.flatMap { byExchange[$0] })
        }))
        return JSONDocument.encode(log)
    }

    /// The HAR file: `{log: {version: "1.2", creator: {name: "tokentap", version}, entries}}`.
    public struct Document: Encodable, Sendable {
        public var log: Log
    }

    public struct Log: Encodable, Sendable {
        public var version = "1.2"
        public var creator: Creator
        public var entries: [Entry]
    }

    public struct Creator: Encodable, Sendable {
        public var name = "tokentap"
        public var version: String
    }

    /// One HAR entry for an exchange (see `export`): `startedDateTime`, `time`, `request`,
    /// `response`, `cache`, `timings`, `_tokentap` (`{id, session, kind, findings, error?,
    /// websocket?, verdict?}`); a WebSocket row adds Chrome's `_resourceType` and
    /// `_webSocketMessages` (type, time in seconds since 1970, opcode, empty `data`, `_length`:
    /// payloads are never kept).
    public struct Entry: Encodable, Sendable {
        public var exchange: Exchange
        public var verdict: Verdict?

        public init(_ exchange: Exchange, verdict: Verdict? = nil) {
            self.exchange = exchange
            self.verdict = verdict
        }

        enum CodingKeys: String, CodingKey {
            case startedDateTime, time, request, response, cache, timings
            case tokentap = "_tokentap", resourceType = "_resourceType", webSocketMessages = "_webSocketMessages"
        }
        enum TimingKeys: String, CodingKey { case blocked, dns, ssl, connect, send, wait, receive }
        enum TokentapKeys: String, CodingKey { case id, session, kind, findings, error, errorKind = "error_kind", websocket, verdict }
        enum MessageKeys: String, CodingKey { case type, time, opcode, data, length = "_length" }

        public func encode(to encoder: Encoder) throws {
            let e = exchange
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(e.started, forKey: .startedDateTime)
            try c.encode(Milliseconds(e.timings.total), forKey: .time)
            try c.encode(Request(e), forKey: .request)
            try c.encode(Response(e), forKey: .response)
            try c.encode([String: String](), forKey: .cache)

            let t = e.timings
            var timings = c.nestedContainer(keyedBy: TimingKeys.self, forKey: .timings)
            try timings.encode(Milliseconds(-1), forKey: .blocked)
            try timings.encode(Milliseconds(-1), forKey: .dns)
            try timings.encode(Milliseconds(t.tls ?? -1), forKey: .ssl)
            try timings.encode(Milliseconds(t.connect.map { $0 + (t.tls ?? 0) } ?? t.tls ?? -1), forKey: .connect)
            if t.send == nil && t.wait == nil && t.receive == nil {
                // Unknown phases: the whole time is waiting, so the phases still add up to `time`.
                try timings.encode(Milliseconds(0), forKey: .send)
                try timings.encode(Milliseconds(max(0, t.total - (t.connect ?? 0) - (t.tls ?? 0))), forKey: .wait)
                try timings.encode(Milliseconds(0), forKey: .receive)
            } else {
                try timings.encode(Milliseconds(t.send ?? 0), forKey: .send)
                try timings.encode(Milliseconds(t.wait ?? 0), forKey: .wait)
                try timings.encode(Milliseconds(t.receive ?? 0), forKey: .receive)
            }

            var tokentap = c.nestedContainer(keyedBy: TokentapKeys.self, forKey: .tokentap)
            try tokentap.encode(e.id, forKey: .id)
            try tokentap.encode(e.session, forKey: .session)
            try tokentap.encode(e.kind.rawValue, forKey: .kind)
            try tokentap.encode(e.findings.map(FindingDocument.init), forKey: .findings)
            try tokentap.encodeIfPresent(e.error, forKey: .error)
            try tokentap.encodeIfPresent(e.errorKind?.rawValue, forKey: .errorKind)
            try tokentap.encodeIfPresent(verdict.map(VerdictDocument.init), forKey: .verdict)
            if let ws = e.websocket {
                try c.encode("websocket", forKey: .resourceType)
                var messages = c.nestedUnkeyedContainer(forKey: .webSocketMessages)
                for m in ws.messages {
                    var o = messages.nestedContainer(keyedBy: MessageKeys.self)
                    try o.encode(m.type, forKey: .type)
                    try o.encode(m.time.timeIntervalSince1970, forKey: .time)
                    try o.encode(m.opcode, forKey: .opcode)
                    try o.encode("", forKey: .data)
                    try o.encode(m.length, forKey: .length)
                }
                try tokentap.encode(WebSocketDocument(ws, forHAR: true), forKey: .websocket)
            }
        }
    }

    /// HAR's `request`: `method` (`CONNECT` for a tunnel), `url`, `httpVersion`, `headers`,
    /// `queryString`, `cookies` (empty), `headersSize` -1, `bodySize`, and `postData` (`mimeType`,
    /// `text`, `encoding` when base64, `params` for a form) when there is a body.
    struct Request: Encodable {
        var e: Exchange
        init(_ e: Exchange) { self.e = e }

        enum CodingKeys: String, CodingKey { case method, url, httpVersion, headers, queryString, cookies, headersSize, bodySize, postData }
        enum PostKeys: String, CodingKey { case mimeType, text, encoding, params }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(e.method.isEmpty ? "CONNECT" : e.method, forKey: .method)
            try c.encode(e.kind == .tunnel ? "\(e.scheme)://\(hostPortText(e.host, e.port))" : e.url, forKey: .url)
            try c.encode(e.request.httpVersion, forKey: .httpVersion)
            try c.encode(e.request.headers, forKey: .headers)
            try c.encode(formPairs(e.query ?? ""), forKey: .queryString)
            try c.encode([String](), forKey: .cookies)
            try c.encode(-1, forKey: .headersSize)
            try c.encode(e.request.body.isEmpty && e.request.wireSize == 0 ? 0 : max(e.request.wireSize, e.request.body.count), forKey: .bodySize)
            guard !e.request.body.isEmpty else { return }
            let mime = e.request.headers.first(named: "Content-Type") ?? "application/octet-stream"
            var post = c.nestedContainer(keyedBy: PostKeys.self, forKey: .postData)
            try post.encode(mime, forKey: .mimeType)
            let body = BodyText(e.request.body)
            try post.encode(body.text, forKey: .text)
            if body.isBase64 {
                try post.encode(body.encoding, forKey: .encoding)
            } else if mime.lowercased().hasPrefix("application/x-www-form-urlencoded") {
                try post.encode(formPairs(body.text), forKey: .params)
            }
        }
    }

    /// HAR's `response`: `status` (0 when none), `statusText`, `httpVersion`, `headers`, `cookies`,
    /// `content` (`size`, `mimeType`, `text`/`encoding` when there is a body, `compression` when it
    /// was decoded), `redirectURL`, `headersSize` -1, `bodySize` (-1 when there was no response).
    struct Response: Encodable {
        var e: Exchange
        init(_ e: Exchange) { self.e = e }

        enum CodingKeys: String, CodingKey { case status, statusText, httpVersion, headers, cookies, content, redirectURL, headersSize, bodySize }
        enum ContentKeys: String, CodingKey { case size, mimeType, text, encoding, compression }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            let body = e.response.body
            try c.encode(e.status ?? 0, forKey: .status)
            try c.encode(e.reason ?? "", forKey: .statusText)
            try c.encode(e.response.httpVersion, forKey: .httpVersion)
            try c.encode(e.response.headers, forKey: .headers)
            try c.encode([String](), forKey: .cookies)
            var content = c.nestedContainer(keyedBy: ContentKeys.self, forKey: .content)
            try content.encode(body.count, forKey: .size)
            try content.encode(e.response.headers.first(named: "Content-Type") ?? "", forKey: .mimeType)
            if !body.isEmpty {
                let text = BodyText(body)
                try content.encode(text.text, forKey: .text)
                if text.isBase64 { try content.encode(text.encoding, forKey: .encoding) }
            }
            if e.response.decodedFrom != nil { try content.encode(max(0, body.count - e.response.wireSize), forKey: .compression) }
            let redirect = e.status.map { (300..<400).contains($0) } ?? false
            try c.encode(redirect ? e.response.headers.first(named: "Location") ?? "" : "", forKey: .redirectURL)
            try c.encode(-1, forKey: .headersSize)
            try c.encode(e.status == nil ? -1 : e.response.wireSize, forKey: .bodySize)
        }
    }

    /// `a=1&b=x%20y` → `[{a, 1}, {b, "x y"}]` (``FormCoding``: `+` is a space), as HAR's
    /// `{name, value}` objects (the shape of a ``HeaderField``).
    static func formPairs(_ text: String) -> [HeaderField] {
        FormCoding.pairs(text).map { HeaderField(name: $0.name, value: $0.value) }
    }

    // MARK: - Import

    /// Parses a HAR file into exchanges of `session`, in file order (sort them by `started` to
    /// replay them). Every entry is checked before anything is returned: the first problem throws
    /// `FormatError` naming the entry index and the field. Non-JSON input throws a `FormatError`
    /// with field `(file)`.
    public static func parse(_ data: Data, session: String) throws -> [ImportedEntry] {
        try parseReportingSkips(data, session: session).entries
    }

    /// `parse`, also naming the entries left out: those whose URL is not a network request
    /// (`data:`, `blob:`, `about:`, browser-extension schemes), which DevTools may list; they are not
    /// malformed, just nothing to record. `skipped` holds their indexes and URLs.
    public static func parseReportingSkips(_ data: Data, session: String) throws -> (entries: [ImportedEntry], skipped: [(index: Int, url: String)]) {
        let file: ImportFile
        let decoder = JSONDecoder()
        decoder.userInfo[HAR.sessionKey] = session
        do {
            file = try decoder.decode(ImportFile.self, from: data)
        } catch let error as FormatError {
            throw error
        } catch {
            throw FormatError(entry: nil, field: "(file)", problem: "not JSON (\(error.localizedDescription))")
        }
        var imported: [ImportedEntry] = []
        var skipped: [(index: Int, url: String)] = []
        for slot in file.entries {
            switch slot.content {
            case .entry(let entry): imported.append(entry)
            case .skipped(let url): skipped.append((slot.index, url))
            }
        }
        return (imported, skipped)
    }

    /// The session the file is being imported into, for ``ImportFile``'s entries.
    static let sessionKey = CodingUserInfoKey(rawValue: "tokentap.har.session")!

    /// Escapes what a browser would escape before sending the URL: characters outside RFC 3986
    /// (spaces, `|`, non-ASCII) anywhere, and `[`/`]` after the authority (they are only allowed
    /// around an IPv6 host), keeping `%XX` as is. Some exporters (and har-sanitizer's
    /// `[state redacted]`) leave them raw; Foundation's parser would otherwise reject the URL, or
    /// escape its existing `%XX` once more, so the same value would read differently here and in a
    /// `Location` header.
    static func escapingInvalidURLCharacters(_ text: String) -> String {
        let keep = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
        // Where the path starts: after `scheme://authority`.
        var pathStart = text.unicodeScalars.endIndex
        if let sep = text.range(of: "://") {
            pathStart = text[sep.upperBound...].unicodeScalars.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? text.unicodeScalars.endIndex
        }
        var out = ""
        for index in text.unicodeScalars.indices {
            let scalar = text.unicodeScalars[index]
            let bracketInPath = (scalar == "[" || scalar == "]") && index >= pathStart
            if keep.contains(scalar) && !bracketInPath {
                out.unicodeScalars.append(scalar)
            } else {
                for byte in String(scalar).utf8 { out += String(format: "%%%02X", byte) }
            }
        }
        return out
    }

    /// Schemes of requests that travel on the network (anything else is skipped on import).
    static let networkSchemes: Set<String> = ["http", "https", "ws", "wss"]

    /// A HAR file as `Decodable` reads it, leniently: every optional HAR field may be missing or
    /// `null`, unknown fields (other tools' `_` extensions) are ignored, negative sizes (Chrome's
    /// `-1`) read as unknown, a header value may be a number. The first problem throws
    /// ``FormatError`` naming the entry and the field (a JSON path inside the entry).
    struct ImportFile: Decodable {
        var entries: [Slot]

        init(from decoder: Decoder) throws {
            guard let top = try? decoder.container(keyedBy: Key.self) else {
                throw FormatError(entry: nil, field: "(file)", problem: "expected a JSON object with `log`")
            }
            guard let log = try? top.nestedContainer(keyedBy: Key.self, forKey: Key("log")) else {
                throw FormatError(entry: nil, field: "log", problem: "missing or not an object")
            }
            guard var list = try? log.nestedUnkeyedContainer(forKey: Key("entries")) else {
                throw FormatError(entry: nil, field: "log.entries", problem: "missing or not an array")
            }
            let session = decoder.userInfo[HAR.sessionKey] as? String ?? ""
            entries = []
            while !list.isAtEnd {
                let index = list.currentIndex
                let entryDecoder = try list.superDecoder()
                guard let object = try? entryDecoder.container(keyedBy: Key.self) else {
                    throw FormatError(entry: index, field: "(entry)", problem: "not an object")
                }
                let reader = EntryReader(index: index, session: session)
                entries.append(Slot(index: index, content: try reader.read(Object(container: object, path: "", reader: reader))))
            }
        }
    }

    /// One entry of ``ImportFile``: imported, or left out (not a network request) with its URL.
    struct Slot {
        enum Content { case entry(ImportedEntry), skipped(url: String) }
        var index: Int
        var content: Content
    }

    /// Any JSON object key.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// A JSON object of the entry being read, at `path` (`""` for the entry itself, `request`, …).
    struct Object {
        let container: KeyedDecodingContainer<Key>
        let path: String
        let reader: EntryReader

        func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        /// Present and not `null`.
        func has(_ key: String) -> Bool {
            container.contains(Key(key)) && !((try? container.decodeNil(forKey: Key(key))) ?? true)
        }

        func object(_ key: String, required: Bool = true) throws -> Object? {
            guard container.contains(Key(key)) else {
                if required { throw reader.fail(at(key), "missing") }
                return nil
            }
            guard let nested = try? container.nestedContainer(keyedBy: Key.self, forKey: Key(key)) else {
                if !required && !has(key) { return nil }
                throw reader.fail(at(key), "expected an object")
            }
            return Object(container: nested, path: at(key), reader: reader)
        }

        func string(_ key: String, required: Bool = true) throws -> String? {
            guard has(key) else {
                if required { throw reader.fail(at(key), "missing") }
                return nil
            }
            guard let s = try? container.decode(String.self, forKey: Key(key)) else { throw reader.fail(at(key), "expected a string") }
            return s
        }

        func number(_ key: String) throws -> Double? {
            guard has(key) else { return nil }
            if let n = try? container.decode(Double.self, forKey: Key(key)) { return n }
            if let b = try? container.decode(Bool.self, forKey: Key(key)) { return b ? 1 : 0 }
            throw reader.fail(at(key), "expected a number")
        }

        /// A whole number (a size, an id): ``number(_:)``, and a `FormatError` when it is not
        /// finite or beyond ±2^53 (what a JSON number holds exactly), instead of trapping in `Int(_:)`.
        func integer(_ key: String) throws -> Int? {
            guard let n = try number(key) else { return nil }
            guard n.isFinite, abs(n) <= 9_007_199_254_740_992 else { throw reader.fail(at(key), "not a whole number in range: \(n)") }
            return Int(n)
        }

        /// A string, a number (as its text) or nothing (`null`, missing: empty).
        func text(_ key: String) throws -> String {
            guard has(key) else { return "" }
            if let s = try? container.decode(String.self, forKey: Key(key)) { return s }
            if let i = try? container.decode(Int.self, forKey: Key(key)) { return String(i) }
            if let d = try? container.decode(Double.self, forKey: Key(key)) { return String(d) }
            throw reader.fail(at(key), "expected a string")
        }

        /// The objects of an array (`nil` when the key is missing or `null`).
        func objects(_ key: String, itemProblem: String) throws -> [Object]? {
            guard has(key) else { return nil }
            guard var list = try? container.nestedUnkeyedContainer(forKey: Key(key)) else { throw reader.fail(at(key), "expected an array") }
            var out: [Object] = []
            while !list.isAtEnd {
                let i = list.currentIndex
                guard let item = try? list.nestedContainer(keyedBy: Key.self) else {
                    throw reader.fail("\(at(key))[\(i)]", itemProblem)
                }
                out.append(Object(container: item, path: "\(at(key))[\(i)]", reader: reader))
            }
            return out
        }

        /// The strings of an array (`[]` when missing or `null`).
        func strings(_ key: String) throws -> [String] {
            guard has(key) else { return [] }
            guard var list = try? container.nestedUnkeyedContainer(forKey: Key(key)) else { throw reader.fail(at(key), "expected an array of strings") }
            var out: [String] = []
            while !list.isAtEnd {
                let i = list.currentIndex
                guard let s = try? list.decode(String.self) else { throw reader.fail("\(at(key))[\(i)]", "expected a string") }
                out.append(s)
            }
            return out
        }
    }

    struct EntryReader {
        let index: Int
        let session: String

        func fail(_ field: String, _ problem: String) -> FormatError { FormatError(entry: index, field: field, problem: problem) }

        func headers(_ parent: Object) throws -> [HeaderField] {
            var out: [HeaderField] = []
            for h in try parent.objects("headers", itemProblem: "expected an object with name and value") ?? [] {
                guard let name = try h.string("name") else { continue }
                let value = try h.text("value")
                if name.hasPrefix(":") { continue }  // HTTP/2 pseudo-headers are not header fields
                out.append(HeaderField(name: name, value: value))
            }
            return out
        }

        /// Body text of `content`/`postData`, honouring `encoding: "base64"`.
        func body(_ container: Object) throws -> Data? {
            guard let text = try container.string("text", required: false) else { return nil }
            let encoding = try container.string("encoding", required: false)
            if let encoding, encoding.lowercased() == "base64" {
                let cleaned = text.filter { !$0.isWhitespace }
                guard let data = Data(base64Encoded: cleaned) ?? Data(base64Encoded: cleaned + String(repeating: "=", count: (4 - cleaned.count % 4) % 4)) else {
                    throw fail(container.at("text"), "invalid base64 (encoding is \"base64\")")
                }
                return data
            }
            if let encoding, !encoding.isEmpty, encoding.lowercased() != "utf8", encoding.lowercased() != "utf-8" {
                throw fail(container.at("encoding"), "unsupported encoding '\(encoding)' (expected base64)")
            }
            return Data(text.utf8)
        }

        static func httpVersion(_ raw: String?) -> String {
            guard let raw, !raw.isEmpty, raw.lowercased() != "unknown" else { return "HTTP/1.1" }
            switch raw.lowercased() {
            case "h2", "http/2", "http/2.0": return "HTTP/2"
            case "h3", "http/3", "http/3.0": return "HTTP/3"
            default: return raw.uppercased()
            }
        }

        /// A body that the headers say is compressed but that the file holds decoded (HAR
        /// `content.text` is the decoded body) gets `decodedFrom` so it is not decoded again.
        static func message(version: String?, headers: [HeaderField], body: Data, wireSize: Int?, truncated: Bool) -> MessageRecord {
            var decodedFrom: String?
            if !body.isEmpty, let enc = headers.first(named: "Content-Encoding")?.trimmingCharacters(in: .whitespaces).lowercased(),
               !enc.isEmpty, enc != "identity" {
                let stillEncoded = ["gzip", "x-gzip", "deflate"].contains(enc) && contentEncodingMagicMatches(body, encoding: enc)
                if !stillEncoded { decodedFrom = enc }
            }
            return MessageRecord(httpVersion: httpVersion(version), headers: headers, body: body, truncated: truncated,
                                 wireSize: wireSize.map { max(0, $0) } ?? body.count, decodedFrom: decodedFrom)
        }

        /// The entry as an exchange; `nil` for a request that never went on the network (`data:` URL…).
        /// The entry as an exchange; `.skipped` for a request that never went on the network (`data:` URL…).
        func read(_ entry: Object) throws -> Slot.Content {
            // When
            guard let startedText = try entry.string("startedDateTime") else { throw fail("startedDateTime", "missing") }
            guard let started = parseISO8601(startedText) else { throw fail("startedDateTime", "not an ISO 8601 date-time: '\(startedText)'") }
            let total = try entry.number("time") ?? 0

            // Request
            let request = try entry.object("request")!
            guard let method = try request.string("method"), !method.isEmpty else { throw fail("request.method", "empty") }
            guard let urlText = try request.string("url") else { throw fail("request.url", "missing") }
            if let colon = urlText.firstIndex(of: ":"), !urlText[..<colon].isEmpty,
               urlText[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
               !HAR.networkSchemes.contains(urlText[..<colon].lowercased()) {
                return .skipped(url: urlText)
            }
            // Some exporters leave characters unescaped (spaces, `|`): escape them, keeping `%XX` as is.
            guard let url = URLComponents(string: HAR.escapingInvalidURLCharacters(urlText)) ?? URLComponents(string: urlText),
                  let scheme = url.scheme?.lowercased(), let rawHost = url.host, !rawHost.isEmpty else {
                throw fail("request.url", "expected an absolute URL, got '\(urlText)'")
            }
            let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
            var target = url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath
            if let q = url.percentEncodedQuery { target += "?" + q }
            let requestHeaders = try headers(request)
            var requestBody = Data()
            if let post = try request.object("postData", required: false) {
                if let data = try body(post) {
                    requestBody = data
                } else if let params = try post.objects("params", itemProblem: "expected an object") {
                    var pairs: [String] = []
                    for p in params {
                        guard let name = try p.string("name") else { continue }
                        let value = try p.string("value", required: false) ?? ""
                        pairs.append(formEncode(name) + "=" + formEncode(value))
                    }
                    requestBody = Data(pairs.joined(separator: "&").utf8)
                }
            }
            let requestBodySize = try request.integer("bodySize").flatMap { $0 >= 0 ? $0 : nil }

            // Response
            let response = try entry.object("response")!
            guard let statusNumber = try response.number("status") else { throw fail("response.status", "missing") }
            guard statusNumber >= 0, statusNumber < 1000, statusNumber == statusNumber.rounded() else {
                throw fail("response.status", "not an HTTP status: \(statusNumber)")
            }
            let status = Int(statusNumber)
            let reason = try response.string("statusText", required: false)
            let responseHeaders = try headers(response)
            var responseBody = Data()
            var truncated = false
            if let content = try response.object("content", required: false) {
                if let data = try body(content) { responseBody = data }
                let size = try content.integer("size") ?? 0
                // DevTools leave `text` out of large or unavailable bodies.
                if !content.container.contains(Key("text")) && size > 0 { truncated = true }
            }
            let responseBodySize = try response.integer("bodySize").flatMap { $0 >= 0 ? $0 : nil }

            // Timings
            var timings = Timings(total: max(0, total))
            if let t = try entry.object("timings", required: false) {
                func phase(_ key: String) throws -> Double? {
                    try t.number(key).flatMap { $0 >= 0 ? $0 : nil }
                }
                let ssl = try phase("ssl")
                let connect = try phase("connect")
                timings.tls = ssl
                timings.connect = connect.map { c in ssl.map { max(0, c - $0) } ?? c }
                timings.send = try phase("send")
                timings.wait = try phase("wait")
                timings.receive = try phase("receive")
            }

            // tokentap's own fields
            var kind = ExchangeKind.http
            var findings: [Finding] = []
            var originalID: Int64?
            var error: String?
            var errorKind: ErrorKind?
            if let ext = try entry.object("_tokentap", required: false) {
                if let k = try ext.string("kind", required: false) {
                    guard let parsed = ExchangeKind(rawValue: k) else { throw fail("_tokentap.kind", "unknown kind '\(k)'") }
                    kind = parsed
                }
                originalID = try ext.integer("id").map { Int64($0) }
                error = try ext.string("error", required: false)
                if let k = try ext.string("error_kind", required: false) {
                    guard let parsed = ErrorKind(rawValue: k) else { throw fail("_tokentap.error_kind", "unknown error kind '\(k)'") }
                    errorKind = parsed
                }
                for item in try ext.objects("findings", itemProblem: "expected a finding object") ?? [] {
                    findings.append(try finding(item))
                }
            }
            if status == 0 && error == nil { error = "no response recorded (HAR status 0)" }

            let defaultPort = scheme == "http" ? 80 : 443
            let exchange = Exchange(
                session: session, kind: kind, started: started, timings: timings, scheme: scheme, host: host,
                port: url.port ?? defaultPort, method: method, target: target,
                request: Self.message(version: try request.string("httpVersion", required: false),
                                      headers: requestHeaders, body: requestBody, wireSize: requestBodySize, truncated: false),
                status: status == 0 ? nil : status, reason: reason?.isEmpty == false ? reason : nil,
                response: Self.message(version: try response.string("httpVersion", required: false),
                                       headers: responseHeaders, body: responseBody, wireSize: responseBodySize, truncated: truncated),
                error: error, errorKind: errorKind, findings: findings)
            return .entry(ImportedEntry(exchange: exchange, findings: findings, originalID: originalID))
        }

        func finding(_ o: Object) throws -> Finding {
            guard let rule = try o.string("rule") else { throw fail(o.at("rule"), "missing") }
            let sev = try o.string("severity", required: false) ?? "info"
            guard let severity = Severity(rawValue: sev) else { throw fail(o.at("severity"), "unknown severity '\(sev)'") }
            let conf = try o.string("confidence", required: false) ?? "possible"
            guard let confidence = Confidence(rawValue: conf) else { throw fail(o.at("confidence"), "unknown confidence '\(conf)'") }
            return Finding(rule: rule, severity: severity, confidence: confidence,
                           exchange: try o.integer("exchange").map { Int64($0) } ?? 0,
                           title: try o.string("title", required: false) ?? rule,
                           evidence: try o.strings("evidence"),
                           fix: try o.string("fix", required: false) ?? "",
                           reference: try o.string("reference", required: false) ?? "")
        }
    }

    /// Form-encodes a name or value: RFC 3986 unreserved characters kept, the rest percent-encoded.
    static func formEncode(_ s: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }

    /// `imported` merged with `computed`, de-duplicated by rule and title (the computed one wins),
    /// most severe first (the order `Render` and `doctor` use is applied by the caller).
    public static func mergeFindings(computed: [Finding], imported: [Finding]) -> [Finding] {
        var seen = Set(computed.map { "\($0.rule)\u{0}\($0.title)" })
        var out = computed
        for f in imported where seen.insert("\(f.rule)\u{0}\(f.title)").inserted {
            out.append(f)
        }
        return out
    }
}
