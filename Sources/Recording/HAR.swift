import Foundation
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
    /// `extensions`: more `_tokentap` fields per exchange id (the CLI adds `verdict`, the doctor's
    /// verdict on a failed OAuth exchange: `{exchange, step, status, cause, confidence, summary, fix,
    /// consequences, alternatives}`).
    public static func export(_ exchanges: [Exchange], creatorVersion: String, extensions: [Int64: [String: Any]] = [:]) -> Data {
        let log: [String: Any] = [
            "log": [
                "version": "1.2",
                "creator": ["name": "tokentap", "version": creatorVersion],
                "entries": exchanges.map { e in
                    var object = entry(e)
                    if let id = e.id, let more = extensions[id], var tokentap = object["_tokentap"] as? [String: Any] {
                        tokentap.merge(more) { current, _ in current }
                        object["_tokentap"] = tokentap
                    }
                    return object
                },
            ] as [String: Any],
        ]
        return (try? JSONSerialization.data(withJSONObject: log, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
    }

    /// One HAR entry object for `e` (see `export`).
    public static func entry(_ e: Exchange) -> [String: Any] {
        let t = e.timings
        var timings: [String: Any] = ["blocked": -1.0, "dns": -1.0]
        timings["ssl"] = t.tls.map(rounded) ?? -1.0
        if let c = t.connect { timings["connect"] = rounded(c + (t.tls ?? 0)) } else { timings["connect"] = t.tls.map(rounded) ?? -1.0 }
        if t.send == nil && t.wait == nil && t.receive == nil {
            // Unknown phases: the whole time is waiting, so the phases still add up to `time`.
            timings["send"] = 0.0; timings["wait"] = rounded(max(0, t.total - (t.connect ?? 0) - (t.tls ?? 0))); timings["receive"] = 0.0
        } else {
            timings["send"] = rounded(t.send ?? 0); timings["wait"] = rounded(t.wait ?? 0); timings["receive"] = rounded(t.receive ?? 0)
        }
        var tokentap: [String: Any] = [
            "id": e.id.map { Int($0) as Any } ?? NSNull(),
            "session": e.session,
            "kind": e.kind.rawValue,
            "findings": e.findings.map(Render.findingObject),
        ]
        if let error = e.error { tokentap["error"] = error }
        var object: [String: Any] = [
            "startedDateTime": iso8601Microseconds(e.started),
            "time": rounded(t.total),
            "request": requestObject(e),
            "response": responseObject(e),
            "cache": [String: Any](),
            "timings": timings,
            "_tokentap": tokentap,
        ]
        if let ws = e.websocket {
            // As Chrome's DevTools export them: `_resourceType` and `_webSocketMessages` (type,
            // time in seconds since 1970, opcode, data). Payloads are never kept: `data` is empty;
            // `_tokentap.websocket` adds the counts and each message's length.
            object["_resourceType"] = "websocket"
            object["_webSocketMessages"] = ws.messages.map { m -> [String: Any] in
                ["type": m.type, "time": m.time.timeIntervalSince1970, "opcode": m.opcode, "data": "", "_length": m.length]
            }
            var summary = Render.webSocketObject(ws)
            summary["messages_not_listed"] = ws.messagesDropped
            if let error = ws.countingError { summary["counting_error"] = error }
            tokentap["websocket"] = summary
            object["_tokentap"] = tokentap
        }
        return object
    }

    private static func requestObject(_ e: Exchange) -> [String: Any] {
        let url = e.kind == .tunnel ? "\(e.scheme)://\(e.host.contains(":") ? "[\(e.host)]" : e.host):\(e.port)" : e.url
        var object: [String: Any] = [
            "method": e.method.isEmpty ? "CONNECT" : e.method,
            "url": url,
            "httpVersion": e.request.httpVersion,
            "headers": e.request.headers.map { ["name": $0.name, "value": $0.value] },
            "queryString": formPairs(e.query ?? "").map { ["name": $0.0, "value": $0.1] },
            "cookies": [Any](),
            "headersSize": -1,
            "bodySize": e.request.body.isEmpty && e.request.wireSize == 0 ? 0 : max(e.request.wireSize, e.request.body.count),
        ]
        if !e.request.body.isEmpty {
            let mime = e.request.headers.first(named: "Content-Type") ?? "application/octet-stream"
            var post: [String: Any] = ["mimeType": mime]
            if let text = String(data: e.request.body, encoding: .utf8) {
                post["text"] = text
                if mime.lowercased().hasPrefix("application/x-www-form-urlencoded") {
                    post["params"] = formPairs(text).map { ["name": $0.0, "value": $0.1] }
                }
            } else {
                post["text"] = e.request.body.base64EncodedString()
                post["encoding"] = "base64"
            }
            object["postData"] = post
        }
        return object
    }

    private static func responseObject(_ e: Exchange) -> [String: Any] {
        let body = e.response.body
        var content: [String: Any] = [
            "size": body.count,
            "mimeType": e.response.headers.first(named: "Content-Type") ?? "",
        ]
        if !body.isEmpty {
            if let text = String(data: body, encoding: .utf8) {
                content["text"] = text
            } else {
                content["text"] = body.base64EncodedString()
                content["encoding"] = "base64"
            }
        }
        if e.response.decodedFrom != nil { content["compression"] = max(0, body.count - e.response.wireSize) }
        let location = e.status.map { (300..<400).contains($0) } ?? false ? e.response.headers.first(named: "Location") ?? "" : ""
        return [
            "status": e.status ?? 0,
            "statusText": e.reason ?? "",
            "httpVersion": e.response.httpVersion,
            "headers": e.response.headers.map { ["name": $0.name, "value": $0.value] },
            "cookies": [Any](),
            "content": content,
            "redirectURL": location,
            "headersSize": -1,
            "bodySize": e.status == nil ? -1 : e.response.wireSize,
        ]
    }

    private static func rounded(_ ms: Double) -> Double { (ms * 1000).rounded() / 1000 }

    /// `a=1&b=x%20y` → `[("a","1"), ("b","x y")]` (form decoding: `+` is a space).
    static func formPairs(_ text: String) -> [(String, String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let plus = s.replacingOccurrences(of: "+", with: " ")
                return plus.removingPercentEncoding ?? plus
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
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
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw FormatError(entry: nil, field: "(file)", problem: "not JSON (\(error.localizedDescription))")
        }
        guard let top = root as? [String: Any] else { throw FormatError(entry: nil, field: "(file)", problem: "expected a JSON object with `log`") }
        guard let log = top["log"] as? [String: Any] else { throw FormatError(entry: nil, field: "log", problem: "missing or not an object") }
        guard let entries = log["entries"] as? [Any] else { throw FormatError(entry: nil, field: "log.entries", problem: "missing or not an array") }
        var imported: [ImportedEntry] = []
        var skipped: [(index: Int, url: String)] = []
        for (index, value) in entries.enumerated() {
            guard let object = value as? [String: Any] else {
                throw FormatError(entry: index, field: "(entry)", problem: "not an object")
            }
            if let entry = try EntryReader(index: index, session: session).read(object) {
                imported.append(entry)
            } else {
                skipped.append((index, ((object["request"] as? [String: Any])?["url"] as? String) ?? ""))
            }
        }
        return (imported, skipped)
    }

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

    private struct EntryReader {
        let index: Int
        let session: String

        func fail(_ field: String, _ problem: String) -> FormatError { FormatError(entry: index, field: field, problem: problem) }

        func object(_ parent: [String: Any], _ key: String, path: String) throws -> [String: Any] {
            guard let value = parent[key] else { throw fail(path, "missing") }
            guard let o = value as? [String: Any] else { throw fail(path, "expected an object") }
            return o
        }

        func string(_ parent: [String: Any], _ key: String, path: String, required: Bool = true) throws -> String? {
            guard let value = parent[key], !(value is NSNull) else {
                if required { throw fail(path, "missing") }
                return nil
            }
            guard let s = value as? String else { throw fail(path, "expected a string") }
            return s
        }

        func number(_ parent: [String: Any], _ key: String, path: String) throws -> Double? {
            guard let value = parent[key], !(value is NSNull) else { return nil }
            if value is String { throw fail(path, "expected a number") }
            guard let n = value as? NSNumber else { throw fail(path, "expected a number") }
            return n.doubleValue
        }

        /// A whole number (a size, an id): `number`, and a `FormatError` when it is not finite or
        /// beyond ±2^53 (what a JSON number holds exactly), instead of trapping in `Int(_:)`.
        func integer(_ parent: [String: Any], _ key: String, path: String) throws -> Int? {
            guard let n = try number(parent, key, path: path) else { return nil }
            guard n.isFinite, abs(n) <= 9_007_199_254_740_992 else { throw fail(path, "not a whole number in range: \(n)") }
            return Int(n)
        }

        func headers(_ parent: [String: Any], path: String) throws -> [HeaderField] {
            guard let value = parent["headers"], !(value is NSNull) else { return [] }
            guard let list = value as? [Any] else { throw fail(path, "expected an array") }
            var out: [HeaderField] = []
            for (i, item) in list.enumerated() {
                guard let h = item as? [String: Any] else { throw fail("\(path)[\(i)]", "expected an object with name and value") }
                guard let name = try string(h, "name", path: "\(path)[\(i)].name") else { continue }
                let v = h["value"]
                let valueText: String
                if let s = v as? String { valueText = s } else if v == nil || v is NSNull { valueText = "" } else if let n = v as? NSNumber { valueText = n.stringValue } else {
                    throw fail("\(path)[\(i)].value", "expected a string")
                }
                if name.hasPrefix(":") { continue }  // HTTP/2 pseudo-headers are not header fields
                out.append(HeaderField(name: name, value: valueText))
            }
            return out
        }

        /// Body text of `content`/`postData`, honouring `encoding: "base64"`.
        func body(_ container: [String: Any], path: String) throws -> Data? {
            guard let text = try string(container, "text", path: "\(path).text", required: false) else { return nil }
            let encoding = try string(container, "encoding", path: "\(path).encoding", required: false)
            if let encoding, encoding.lowercased() == "base64" {
                let cleaned = text.filter { !$0.isWhitespace }
                guard let data = Data(base64Encoded: cleaned) ?? Data(base64Encoded: cleaned + String(repeating: "=", count: (4 - cleaned.count % 4) % 4)) else {
                    throw fail("\(path).text", "invalid base64 (encoding is \"base64\")")
                }
                return data
            }
            if let encoding, !encoding.isEmpty, encoding.lowercased() != "utf8", encoding.lowercased() != "utf-8" {
                throw fail("\(path).encoding", "unsupported encoding '\(encoding)' (expected base64)")
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
        func read(_ entry: [String: Any]) throws -> ImportedEntry? {
            // When
            guard let startedText = try string(entry, "startedDateTime", path: "startedDateTime") else { throw fail("startedDateTime", "missing") }
            guard let started = parseISO8601(startedText) else { throw fail("startedDateTime", "not an ISO 8601 date-time: '\(startedText)'") }
            let total = try number(entry, "time", path: "time") ?? 0

            // Request
            let request = try object(entry, "request", path: "request")
            guard let method = try string(request, "method", path: "request.method"), !method.isEmpty else { throw fail("request.method", "empty") }
            guard let urlText = try string(request, "url", path: "request.url") else { throw fail("request.url", "missing") }
            if let colon = urlText.firstIndex(of: ":"), !urlText[..<colon].isEmpty,
               urlText[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
               !HAR.networkSchemes.contains(urlText[..<colon].lowercased()) {
                return nil
            }
            // Some exporters leave characters unescaped (spaces, `|`): escape them, keeping `%XX` as is.
            guard let url = URLComponents(string: HAR.escapingInvalidURLCharacters(urlText)) ?? URLComponents(string: urlText),
                  let scheme = url.scheme?.lowercased(), let rawHost = url.host, !rawHost.isEmpty else {
                throw fail("request.url", "expected an absolute URL, got '\(urlText)'")
            }
            let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
            var target = url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath
            if let q = url.percentEncodedQuery { target += "?" + q }
            let requestHeaders = try headers(request, path: "request.headers")
            var requestBody = Data()
            if let post = request["postData"], !(post is NSNull) {
                guard let post = post as? [String: Any] else { throw fail("request.postData", "expected an object") }
                if let data = try body(post, path: "request.postData") {
                    requestBody = data
                } else if let params = post["params"], !(params is NSNull) {
                    guard let list = params as? [Any] else { throw fail("request.postData.params", "expected an array") }
                    var pairs: [String] = []
                    for (i, item) in list.enumerated() {
                        guard let p = item as? [String: Any] else { throw fail("request.postData.params[\(i)]", "expected an object") }
                        guard let name = try string(p, "name", path: "request.postData.params[\(i)].name") else { continue }
                        let value = try string(p, "value", path: "request.postData.params[\(i)].value", required: false) ?? ""
                        pairs.append(formEncode(name) + "=" + formEncode(value))
                    }
                    requestBody = Data(pairs.joined(separator: "&").utf8)
                }
            }
            let requestBodySize = try integer(request, "bodySize", path: "request.bodySize").flatMap { $0 >= 0 ? $0 : nil }

            // Response
            let response = try object(entry, "response", path: "response")
            guard let statusNumber = try number(response, "status", path: "response.status") else { throw fail("response.status", "missing") }
            guard statusNumber >= 0, statusNumber < 1000, statusNumber == statusNumber.rounded() else {
                throw fail("response.status", "not an HTTP status: \(statusNumber)")
            }
            let status = Int(statusNumber)
            let reason = try string(response, "statusText", path: "response.statusText", required: false)
            let responseHeaders = try headers(response, path: "response.headers")
            var responseBody = Data()
            var truncated = false
            if let c = response["content"], !(c is NSNull) {
                guard let content = c as? [String: Any] else { throw fail("response.content", "expected an object") }
                if let data = try body(content, path: "response.content") { responseBody = data }
                let size = try integer(content, "size", path: "response.content.size") ?? 0
                // DevTools leave `text` out of large or unavailable bodies.
                if content["text"] == nil && size > 0 { truncated = true }
            }
            let responseBodySize = try integer(response, "bodySize", path: "response.bodySize").flatMap { $0 >= 0 ? $0 : nil }

            // Timings
            var timings = Timings(total: max(0, total))
            if let t = entry["timings"], !(t is NSNull) {
                guard let t = t as? [String: Any] else { throw fail("timings", "expected an object") }
                func phase(_ key: String) throws -> Double? {
                    try number(t, key, path: "timings.\(key)").flatMap { $0 >= 0 ? $0 : nil }
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
            if let ext = entry["_tokentap"], !(ext is NSNull) {
                guard let ext = ext as? [String: Any] else { throw fail("_tokentap", "expected an object") }
                if let k = try string(ext, "kind", path: "_tokentap.kind", required: false) {
                    guard let parsed = ExchangeKind(rawValue: k) else { throw fail("_tokentap.kind", "unknown kind '\(k)'") }
                    kind = parsed
                }
                originalID = try integer(ext, "id", path: "_tokentap.id").map { Int64($0) }
                error = try string(ext, "error", path: "_tokentap.error", required: false)
                if let list = ext["findings"], !(list is NSNull) {
                    guard let list = list as? [Any] else { throw fail("_tokentap.findings", "expected an array") }
                    for (i, item) in list.enumerated() {
                        findings.append(try finding(item, path: "_tokentap.findings[\(i)]"))
                    }
                }
            }
            if status == 0 && error == nil { error = "no response recorded (HAR status 0)" }

            let defaultPort = scheme == "http" ? 80 : 443
            let exchange = Exchange(
                session: session, kind: kind, started: started, timings: timings, scheme: scheme, host: host,
                port: url.port ?? defaultPort, method: method, target: target,
                request: Self.message(version: try string(request, "httpVersion", path: "request.httpVersion", required: false),
                                      headers: requestHeaders, body: requestBody, wireSize: requestBodySize, truncated: false),
                status: status == 0 ? nil : status, reason: reason?.isEmpty == false ? reason : nil,
                response: Self.message(version: try string(response, "httpVersion", path: "response.httpVersion", required: false),
                                       headers: responseHeaders, body: responseBody, wireSize: responseBodySize, truncated: truncated),
                error: error, findings: findings)
            return ImportedEntry(exchange: exchange, findings: findings, originalID: originalID)
        }

        func finding(_ value: Any, path: String) throws -> Finding {
            guard let o = value as? [String: Any] else { throw fail(path, "expected a finding object") }
            guard let rule = try string(o, "rule", path: "\(path).rule") else { throw fail("\(path).rule", "missing") }
            let sev = try string(o, "severity", path: "\(path).severity", required: false) ?? "info"
            guard let severity = Severity(rawValue: sev) else { throw fail("\(path).severity", "unknown severity '\(sev)'") }
            let conf = try string(o, "confidence", path: "\(path).confidence", required: false) ?? "possible"
            guard let confidence = Confidence(rawValue: conf) else { throw fail("\(path).confidence", "unknown confidence '\(conf)'") }
            var evidence: [String] = []
            if let ev = o["evidence"], !(ev is NSNull) {
                guard let list = ev as? [Any] else { throw fail("\(path).evidence", "expected an array of strings") }
                for (i, item) in list.enumerated() {
                    guard let s = item as? String else { throw fail("\(path).evidence[\(i)]", "expected a string") }
                    evidence.append(s)
                }
            }
            return Finding(rule: rule, severity: severity, confidence: confidence,
                           exchange: try integer(o, "exchange", path: "\(path).exchange").map { Int64($0) } ?? 0,
                           title: try string(o, "title", path: "\(path).title", required: false) ?? rule,
                           evidence: evidence,
                           fix: try string(o, "fix", path: "\(path).fix", required: false) ?? "",
                           reference: try string(o, "reference", path: "\(path).reference", required: false) ?? "")
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
