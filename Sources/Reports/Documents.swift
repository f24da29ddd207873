import Foundation
import OAuthDiagnosis
import Recording
import TokentapCore

// The JSON documents of `list`, `show`, `sessions`, `doctor` and `tail` (design.md, "Command
// line"), as `Encodable` types written by `JSONEncoder` (the HAR document is in `HAR.swift`).
//
// Every document writes each of its keys explicitly in `encode(to:)`: an absent value is `null`
// (synthesized conformances would drop the key), so the shapes stay those of design.md. Dates are
// ISO 8601 UTC with microseconds (`iso8601Microseconds`), durations in milliseconds
// (``Milliseconds``). To add a field (as `error_kind` was), add a stored property, a case
// to the type's `CodingKeys` and one `encode` line.

/// Encodes the documents the way the CLI prints them.
public enum JSONDocument {
    /// `value` as JSON text: sorted keys; pretty-printed (two-space indent) unless `compact`;
    /// slashes unescaped.
    public static func encode<T: Encodable>(_ value: T, compact: Bool = false) -> Data {
        let encoder = JSONEncoder()
        var format: JSONEncoder.OutputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if !compact { format.insert(.prettyPrinted) }
        encoder.outputFormatting = format
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(iso8601Microseconds(date))
        }
        // Every value here is a string, number, bool, array or object: encoding cannot fail.
        return (try? encoder.encode(value)) ?? Data("null".utf8)
    }

    /// `encode` as a `String`.
    public static func string<T: Encodable>(_ value: T, compact: Bool = false) -> String {
        String(decoding: encode(value, compact: compact), as: UTF8.self)
    }
}

/// A duration in milliseconds, rounded to the microsecond (so `12.3` does not print as
/// `12.300000000000001`), written as an integer when whole (`0`, `-1`, `12.5`).
public struct Milliseconds: Encodable, Sendable, Hashable {
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        let rounded = (value * 1000).rounded() / 1000
        if rounded == rounded.rounded(), abs(rounded) < 1e15 {
            try c.encode(Int(rounded))
        } else {
            try c.encode(rounded)
        }
    }
}

/// A finding as `show --json`, `doctor --json` and HAR's `_tokentap.findings` write it:
/// `{rule, severity, confidence, exchange, title, evidence: [str], fix, reference}`.
public struct FindingDocument: Encodable, Sendable {
    public var finding: Finding

    public init(_ finding: Finding) { self.finding = finding }

    enum CodingKeys: String, CodingKey { case rule, severity, confidence, exchange, title, evidence, fix, reference }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(finding.rule, forKey: .rule)
        try c.encode(finding.severity.rawValue, forKey: .severity)
        try c.encode(finding.confidence.rawValue, forKey: .confidence)
        try c.encode(finding.exchange, forKey: .exchange)
        try c.encode(finding.title, forKey: .title)
        try c.encode(finding.evidence, forKey: .evidence)
        try c.encode(finding.fix, forKey: .fix)
        try c.encode(finding.reference, forKey: .reference)
    }
}

/// `show --json`'s `websocket` object: `{frames_client, frames_server, bytes_client, bytes_server,
/// close_code, closed_by}`, `null` frame counts when counting failed. HAR's
/// `_tokentap.websocket` adds `messages_not_listed` and, when counting failed, `counting_error`.
public struct WebSocketDocument: Encodable, Sendable {
    public var summary: WebSocketSummary
    /// Adds HAR's two keys.
    public var forHAR: Bool

    public init(_ summary: WebSocketSummary, forHAR: Bool = false) {
        self.summary = summary
        self.forHAR = forHAR
    }

    enum CodingKeys: String, CodingKey {
        case framesClient = "frames_client", framesServer = "frames_server", bytesClient = "bytes_client"
        case bytesServer = "bytes_server", closeCode = "close_code", closedBy = "closed_by"
        case messagesNotListed = "messages_not_listed", countingError = "counting_error"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(summary.framesClient, forKey: .framesClient)
        try c.encode(summary.framesServer, forKey: .framesServer)
        try c.encode(summary.bytesClient, forKey: .bytesClient)
        try c.encode(summary.bytesServer, forKey: .bytesServer)
        try c.encode(summary.closeCode, forKey: .closeCode)
        try c.encode(summary.closedBy, forKey: .closedBy)
        if forHAR {
            try c.encode(summary.messagesDropped, forKey: .messagesNotListed)
            try c.encodeIfPresent(summary.countingError, forKey: .countingError)
        }
    }
}

/// One exchange as `list --json` (an array of these) and `tail --json` (one per line) write it:
/// `{id, session, kind, started, duration_ms, method, url, status, error, error_kind, findings: [rule id]}`
/// (`error_kind`: ``ErrorKind``'s raw value or `null`);
/// with `detail` (`show --json`): `findings` as ``FindingDocument``s, plus `request`, `response`
/// (``MessageDocument``), `timings` (ms, `null` when unknown) and, on a WebSocket row, `websocket`.
public struct ExchangeDocument: Encodable, Sendable {
    public var exchange: Exchange
    public var detail: Bool

    public init(_ exchange: Exchange, detail: Bool = false) {
        self.exchange = exchange
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case id, session, kind, started, durationMs = "duration_ms", method, url, status, error, errorKind = "error_kind", findings
        case request, response, timings, websocket
    }

    enum TimingKeys: String, CodingKey { case connect, tls, send, wait, receive, total }

    public func encode(to encoder: Encoder) throws {
        let e = exchange
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(e.id, forKey: .id)
        try c.encode(e.session, forKey: .session)
        try c.encode(e.kind.rawValue, forKey: .kind)
        try c.encode(e.started, forKey: .started)
        try c.encode(Milliseconds(e.timings.total), forKey: .durationMs)
        try c.encode(e.method, forKey: .method)
        try c.encode(e.url, forKey: .url)
        try c.encode(e.status, forKey: .status)
        try c.encode(e.error, forKey: .error)
        try c.encode(e.errorKind?.rawValue, forKey: .errorKind)
        guard detail else {
            try c.encode(e.findings.map(\.rule), forKey: .findings)
            return
        }
        try c.encode(e.findings.map(FindingDocument.init), forKey: .findings)
        try c.encode(MessageDocument(e.request), forKey: .request)
        try c.encode(MessageDocument(e.response, reason: .some(e.reason)), forKey: .response)
        var t = c.nestedContainer(keyedBy: TimingKeys.self, forKey: .timings)
        let timings = e.timings
        try t.encode(timings.connect.map(Milliseconds.init), forKey: .connect)
        try t.encode(timings.tls.map(Milliseconds.init), forKey: .tls)
        try t.encode(timings.send.map(Milliseconds.init), forKey: .send)
        try t.encode(timings.wait.map(Milliseconds.init), forKey: .wait)
        try t.encode(timings.receive.map(Milliseconds.init), forKey: .receive)
        try t.encode(Milliseconds(timings.total), forKey: .total)
        if let ws = e.websocket { try c.encode(WebSocketDocument(ws), forKey: .websocket) }
    }
}

/// A request or response of `show --json`: `{headers: [{name, value}] (``HeaderField``), body, body_encoding:
/// "utf8"|"base64", truncated, http_version}`, and on the response `reason` (str or null).
public struct MessageDocument: Encodable, Sendable {
    public var message: MessageRecord
    /// `.some(reason)` writes `reason` (the response); `nil` leaves it out (the request).
    public var reason: String??

    public init(_ message: MessageRecord, reason: String?? = nil) {
        self.message = message
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case headers, body, bodyEncoding = "body_encoding", truncated, httpVersion = "http_version", reason }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let body = BodyText(message.body)
        try c.encode(message.headers, forKey: .headers)
        try c.encode(body.text, forKey: .body)
        try c.encode(body.encoding, forKey: .bodyEncoding)
        try c.encode(message.truncated, forKey: .truncated)
        try c.encode(message.httpVersion, forKey: .httpVersion)
        if let reason { try c.encode(reason, forKey: .reason) }
    }
}

/// A body as JSON text: `utf8` when it is valid UTF-8, else `base64`.
public struct BodyText: Sendable, Hashable {
    public var text: String
    /// `utf8` or `base64`.
    public var encoding: String

    public init(_ body: Data) {
        if let text = String(data: body, encoding: .utf8) {
            self.text = text
            encoding = "utf8"
        } else {
            text = body.base64EncodedString()
            encoding = "base64"
        }
    }

    public var isBase64: Bool { encoding == "base64" }
}

/// One row of `sessions --json`: `{name, first_started, last_started, count, http_count, failures}`.
public struct SessionDocument: Encodable, Sendable {
    public var session: SessionSummary

    public init(_ session: SessionSummary) { self.session = session }

    enum CodingKeys: String, CodingKey {
        case name, firstStarted = "first_started", lastStarted = "last_started", count, httpCount = "http_count", failures
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(session.name, forKey: .name)
        try c.encode(session.firstStarted, forKey: .firstStarted)
        try c.encode(session.lastStarted, forKey: .lastStarted)
        try c.encode(session.count, forKey: .count)
        try c.encode(session.httpCount, forKey: .httpCount)
        try c.encode(session.failures, forKey: .failures)
    }
}

/// A verdict as `doctor --json` and HAR's `_tokentap.verdict` write it: `{exchange, step, status
/// (int or null), cause, confidence, summary, fix, consequences: [rule id], alternatives: [rule id]}`.
public struct VerdictDocument: Encodable, Sendable {
    public var verdict: Verdict

    public init(_ verdict: Verdict) { self.verdict = verdict }

    enum CodingKeys: String, CodingKey { case exchange, step, status, cause, confidence, summary, fix, consequences, alternatives }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(verdict.exchange, forKey: .exchange)
        try c.encode(verdict.step, forKey: .step)
        try c.encode(verdict.status, forKey: .status)
        try c.encode(verdict.cause, forKey: .cause)
        try c.encode(verdict.confidence.rawValue, forKey: .confidence)
        try c.encode(verdict.summary, forKey: .summary)
        try c.encode(verdict.fix, forKey: .fix)
        try c.encode(verdict.consequences, forKey: .consequences)
        try c.encode(verdict.alternatives, forKey: .alternatives)
    }
}

/// `doctor --json`: `{session, verdicts: [VerdictDocument], timeline: [{exchange, at, step,
/// summary}], findings: [FindingDocument]}` (design.md). Written with slashes escaped, as it
/// always was.
public struct DoctorDocument: Encodable, Sendable {
    public var session: String
    public var verdicts: [Verdict]
    public var timeline: [TimelineStep]
    public var findings: [Finding]

    public init(session: String, verdicts: [Verdict], timeline: [TimelineStep], findings: [Finding]) {
        self.session = session
        self.verdicts = verdicts
        self.timeline = timeline
        self.findings = findings
    }

    enum CodingKeys: String, CodingKey { case session, verdicts, timeline, findings }
    enum StepKeys: String, CodingKey { case exchange, at, step, summary }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(session, forKey: .session)
        try c.encode(verdicts.map(VerdictDocument.init), forKey: .verdicts)
        var steps = c.nestedUnkeyedContainer(forKey: .timeline)
        for step in timeline {
            var s = steps.nestedContainer(keyedBy: StepKeys.self)
            try s.encode(step.exchange, forKey: .exchange)
            try s.encode(step.at, forKey: .at)
            try s.encode(step.step, forKey: .step)
            try s.encode(step.summary, forKey: .summary)
        }
        try c.encode(findings.map(FindingDocument.init), forKey: .findings)
    }

    /// The text `doctor --json` prints.
    public var json: String { JSONDocument.string(self) }
}
