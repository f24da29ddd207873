import Foundation

/// One HTTP header field as it travelled on the wire: original case, original order.
public struct HeaderField: Codable, Sendable, Hashable {
    /// The field name, case preserved (`Authorization`, `content-type`).
    public var name: String
    /// The field value, untrimmed.
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

extension HeaderField {
    /// Whether the field's name is `other`, compared ASCII case-insensitively: field names are
    /// tokens (RFC 9110 §5.1), so no Unicode folding (and no NSString bridging) is needed.
    public func hasName(_ other: String) -> Bool {
        let a = name.utf8, b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            guard x | 0x20 == y | 0x20, (0x61...0x7A).contains(x | 0x20) else { return false }
        }
        return true
    }
}

extension Array where Element == HeaderField {
    /// The first value of the header `name`, compared case-insensitively (RFC 9110 §5.1).
    public func first(named name: String) -> String? {
        first { $0.hasName(name) }?.value
    }

    /// Every value of the header `name`, in order, compared case-insensitively.
    public func all(named name: String) -> [String] {
        filter { $0.hasName(name) }.map(\.value)
    }
}

/// What a recorded row is (design.md, "Data on disk").
public enum ExchangeKind: String, Codable, Sendable, CaseIterable {
    /// An intercepted (or plain-HTTP forwarded) request/response pair.
    case http
    /// A blind CONNECT tunnel to a host that is not intercepted: host, port, bytes each way.
    case tunnel
    /// A TLS handshake that failed, with the client or with the upstream.
    case tlsError = "tls-error"
    /// A malformed client request that the proxy answered with a 4xx.
    case clientError = "client-error"
    /// An upgraded connection (WebSocket): the handshake, then bytes and frames each way.
    case websocket
}

/// What kind of failure the proxy itself reported for a row (design.md, `error_kind`): set where
/// the failure happens (the upstream bootstrap, the relay's error states, the CONNECT handler, the
/// client's TLS handshake, the request parser), so no module reads another's error text.
/// Stored in the `error_kind` column; `error` holds the sentence for people.
public enum ErrorKind: String, Codable, Sendable, CaseIterable {
    /// No connection: refused, unresolvable, reset or closed before any response byte.
    case connect
    /// A TLS handshake failed: with the upstream (unknown CA, wrong name, expired, not TLS) or
    /// with the client (it rejected tokentap's certificate).
    case tls
    /// Nothing within the time allowed: connect/TLS or response head after `--upstream-timeout`
    /// (the proxy answered 504), or a client that stopped sending within `--client-timeout`.
    case timeout
    /// A response (or a client's request or handshake) that started, then was cut off: a close or
    /// reset before the declared end, a TLS close without `close_notify`.
    case truncated
    /// Bytes that are not valid HTTP/1.1 (or not TLS where TLS was due): the parser refused them.
    case malformed
}

/// What an upgraded (WebSocket) connection carried, counted on a copy of its bytes. Written with
/// the handshake at the `101` (``open`` true) and updated when the connection ends.
public struct WebSocketSummary: Codable, Sendable, Hashable {
    /// Identifies the connection's row across its two writes (at the 101, at close).
    public var key: String
    /// Still open (the row was written at the 101; a crash leaves it so).
    public var open: Bool
    /// Frames client → server and server → client; nil when counting failed (``countingError``).
    public var framesClient: Int?
    public var framesServer: Int?
    /// Bytes relayed each way (after the 101), always exact.
    public var bytesClient: Int
    public var bytesServer: Int
    /// The status code of the first close frame, if any.
    public var closeCode: Int?
    /// Who ended it: the sender of the first close frame, else the side that closed its connection
    /// first (`client`, `server`, `proxy`); nil while open.
    public var closedBy: String?
    /// Why frames are not counted (a frame the decoder refused); the relay went on.
    public var countingError: String?
    /// Messages (data messages and control frames) after the first ``messageLimit``: counted only.
    public var messagesDropped: Int
    /// The first ``messageLimit`` messages' metadata (no payload), for HAR's `_webSocketMessages`.
    public var messages: [WebSocketMessage]

    public static let messageLimit = 1000

    public init(key: String, open: Bool = true, framesClient: Int? = 0, framesServer: Int? = 0, bytesClient: Int = 0,
                bytesServer: Int = 0, closeCode: Int? = nil, closedBy: String? = nil, countingError: String? = nil,
                messagesDropped: Int = 0, messages: [WebSocketMessage] = []) {
        self.key = key
        self.open = open
        self.framesClient = framesClient
        self.framesServer = framesServer
        self.bytesClient = bytesClient
        self.bytesServer = bytesServer
        self.closeCode = closeCode
        self.closedBy = closedBy
        self.countingError = countingError
        self.messagesDropped = messagesDropped
        self.messages = messages
    }
}

/// One WebSocket message's metadata: when, which way, its opcode and payload length.
public struct WebSocketMessage: Codable, Sendable, Hashable {
    public var time: Date
    /// `send` (client → server) or `receive` (server → client), as HAR's `_webSocketMessages`.
    public var type: String
    /// RFC 6455 opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    public var opcode: Int
    /// Payload bytes (a fragmented message: all its frames).
    public var length: Int

    public init(time: Date, type: String, opcode: Int, length: Int) {
        self.time = time
        self.type = type
        self.opcode = opcode
        self.length = length
    }
}

/// Phase durations of one exchange, in milliseconds. `nil` when a phase did not happen
/// (a reused upstream connection has no `connect` or `tls`).
public struct Timings: Codable, Sendable, Hashable {
    /// TCP connect to the upstream.
    public var connect: Double?
    /// TLS handshake with the upstream.
    public var tls: Double?
    /// From the request head arriving to the request being fully sent upstream.
    public var send: Double?
    /// From the request being sent to the first byte of the response head (HAR's `wait`).
    public var wait: Double?
    /// From the first response byte to the end of the response (HAR's `receive`).
    public var receive: Double?
    /// From the request head arriving to the response completing (or failing).
    public var total: Double

    public init(connect: Double? = nil, tls: Double? = nil, send: Double? = nil, wait: Double? = nil,
                receive: Double? = nil, total: Double = 0) {
        self.connect = connect
        self.tls = tls
        self.send = send
        self.wait = wait
        self.receive = receive
        self.total = total
    }
}

/// One side (request or response) of an exchange: head fields and body as recorded.
public struct MessageRecord: Codable, Sendable, Hashable {
    /// `HTTP/1.1`, `HTTP/1.0`.
    public var httpVersion: String
    /// Header fields in wire order with original case.
    public var headers: [HeaderField]
    /// The body as recorded: at most `--max-body` bytes, decoded from gzip/deflate when
    /// `contentEncoding` is set (then `truncated` refers to the decoded copy).
    public var body: Data
    /// True when `body` is shorter than what travelled.
    public var truncated: Bool
    /// Bytes of body that travelled on the wire (before any decoding; after de-chunking).
    public var wireSize: Int
    /// The `Content-Encoding` the body had on the wire when the recorded `body` is its decoded
    /// form (`gzip`, `deflate`); `nil` when the body is stored as sent; `notEncoded` when the
    /// headers declared an encoding the body did not have (stored as sent, scanned as any body).
    public var decodedFrom: String?

    /// Names of the header fields whose value holds U+FFFD: NIOHTTP1 decodes header bytes as
    /// UTF-8, so octets that are not valid UTF-8 (obs-text, RFC 9110 §5.5, e.g. a Latin-1 realm)
    /// were relayed and recorded as U+FFFD. Derived from the values, in wire order, once per name.
    public var headersNotUTF8: [String] {
        var names: [String] = []
        for field in headers where field.value.unicodeScalars.contains("\u{FFFD}") {
            if !names.contains(where: { $0.lowercased() == field.name.lowercased() }) { names.append(field.name) }
        }
        return names
    }

    /// `decodedFrom` of a body whose declared `Content-Encoding` is wrong: it does not start with
    /// that encoding's magic bytes (gzip `1f 8b`, a zlib header), so it was sent as is.
    public static let notEncoded = "identity"

    public init(httpVersion: String = "HTTP/1.1", headers: [HeaderField] = [], body: Data = Data(),
                truncated: Bool = false, wireSize: Int = 0, decodedFrom: String? = nil) {
        self.httpVersion = httpVersion
        self.headers = headers
        self.body = body
        self.truncated = truncated
        self.wireSize = wireSize
        self.decodedFrom = decodedFrom
    }
}

/// How sure a finding is (oauth-rules.md).
public enum Confidence: String, Codable, Sendable, Comparable, CaseIterable {
    case certain, likely, possible

    private var rank: Int { self == .certain ? 0 : self == .likely ? 1 : 2 }
    public static func < (a: Confidence, b: Confidence) -> Bool { a.rank < b.rank }
}

/// How much a finding matters (oauth-rules.md).
public enum Severity: String, Codable, Sendable, Comparable, CaseIterable {
    /// Explains a failure.
    case error
    /// Will fail, or is fragile.
    case warning
    case info

    private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A diagnosis finding attached to one exchange. Shape of design.md's `doctor --json`.
/// Evidence never carries a raw secret: only redaction placeholders/fingerprints.
public struct Finding: Codable, Sendable, Hashable {
    /// Stable rule id from oauth-rules.md, e.g. `redirect-uri-mismatch`.
    public var rule: String
    public var severity: Severity
    public var confidence: Confidence
    /// The id of the exchange the finding is about (0 until the exchange is stored).
    public var exchange: Int64
    /// One line in plain words.
    public var title: String
    /// The fields compared, secrets as fingerprints only.
    public var evidence: [String]
    /// What to change in the client.
    public var fix: String
    /// RFC section or provider documentation URL.
    public var reference: String

    public init(rule: String, severity: Severity, confidence: Confidence, exchange: Int64 = 0,
                title: String, evidence: [String], fix: String, reference: String) {
        self.rule = rule
        self.severity = severity
        self.confidence = confidence
        self.exchange = exchange
        self.title = title
        self.evidence = evidence
        self.fix = fix
        self.reference = reference
    }
}

extension Finding {
    /// The finding with `transform` applied to its free text (title, evidence lines, fix), in that
    /// order; rule, severity, confidence, exchange and reference stay. Redaction and pseudonymization
    /// rewrite findings this way.
    public func mappingText(_ transform: (String) throws -> String) rethrows -> Finding {
        var f = self
        f.title = try transform(title)
        f.evidence = try evidence.map(transform)
        f.fix = try transform(fix)
        return f
    }
}

/// One recorded row: an HTTP request/response pair, a tunnel, or a failed handshake or request.
///
/// Produced by the proxy's capture hook (raw values, in memory), passed through redaction, then
/// stored by `Recording`. Times are absolute (`started`, UTC) plus relative phase `timings` in ms.
public struct Exchange: Codable, Sendable, Hashable {
    /// Database row id; `nil` before the exchange is stored.
    public var id: Int64?
    /// The session name (`YYYYMMDD-HHMMSS` by default).
    public var session: String
    public var kind: ExchangeKind
    /// When the request head arrived (or the tunnel / handshake started), UTC, µs precision.
    public var started: Date
    public var timings: Timings
    /// `IP:port` of the client connection.
    public var clientAddress: String?
    /// `https` for intercepted TLS, `http` for forwarded plain requests.
    public var scheme: String
    /// The host as the client named it (CONNECT authority or Host header), lower-cased.
    public var host: String
    public var port: Int
    /// The request method (`POST`); empty for tunnels.
    public var method: String
    /// The request target in origin form (`/v1/oauth/token?grant_type=…`), as sent.
    public var target: String
    public var request: MessageRecord
    /// Status code of the response; `nil` when no response was received or sent.
    public var status: Int?
    /// The response's reason phrase.
    public var reason: String?
    public var response: MessageRecord
    /// What went wrong (upstream refused, timeout, handshake failure); `nil` on success.
    public var error: String?
    /// The typed kind of the failure the proxy reported (``error``); `nil` on success, for a client
    /// that went away, and for rows recorded before `error_kind` existed or imported from a HAR.
    public var errorKind: ErrorKind?
    /// Findings computed when the exchange was captured (or imported).
    public var findings: [Finding]
    /// True when the stored values are raw (`--keep-secrets`); false when redacted.
    public var keepsSecrets: Bool
    /// Kind `websocket`: what the upgraded connection carried.
    public var websocket: WebSocketSummary?

    public init(id: Int64? = nil, session: String, kind: ExchangeKind = .http, started: Date,
                timings: Timings = Timings(), clientAddress: String? = nil, scheme: String = "https",
                host: String, port: Int = 443, method: String = "GET", target: String = "/",
                request: MessageRecord = MessageRecord(), status: Int? = nil, reason: String? = nil,
                response: MessageRecord = MessageRecord(), error: String? = nil, errorKind: ErrorKind? = nil,
                findings: [Finding] = [], keepsSecrets: Bool = false, websocket: WebSocketSummary? = nil) {
        self.id = id
        self.session = session
        self.kind = kind
        self.started = started
        self.timings = timings
        self.clientAddress = clientAddress
        self.scheme = scheme
        self.host = host
        self.port = port
        self.method = method
        self.target = target
        self.request = request
        self.status = status
        self.reason = reason
        self.response = response
        self.error = error
        self.errorKind = errorKind
        self.findings = findings
        self.keepsSecrets = keepsSecrets
        self.websocket = websocket
    }

    /// The absolute URL: `scheme://host[:port]target`, the port omitted when it is the scheme's default.
    public var url: String {
        let defaultPort = scheme == "https" ? 443 : 80
        let hostPart = hostText(host)
        let portPart = port == defaultPort ? "" : ":\(port)"
        if kind == .tunnel { return "\(hostPart):\(port)" }
        return "\(scheme)://\(hostPart)\(portPart)\(target)"
    }

    /// The path of `target` without its query string.
    public var path: String {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
    }

    /// The raw query string of `target` (without `?`), or `nil` when there is none.
    public var query: String? {
        guard let q = target.firstIndex(of: "?") else { return nil }
        return String(target[target.index(after: q)...])
    }
}
