import Foundation
import NIOCore
import NIOHTTP1
import TokentapCore

/// Collects what one relayed request produces (heads, bodies up to `--max-body`, timings) and
/// makes the captured ``Exchange`` from it. A value: the relay handler feeds it times and parts.
struct ExchangeBuilder {
    let session: String
    let clientAddress: String?
    let key: UpstreamKey
    /// The request head as the client sent it.
    let head: HTTPRequestHead
    /// Origin-form target as sent upstream.
    let target: String
    let started: Date
    let t0: NIODeadline
    private(set) var requestBody: BodyCollector
    private(set) var responseBody: BodyCollector
    private(set) var responseHead: HTTPResponseHead?
    private(set) var connectMs: Double?
    private(set) var tlsMs: Double?
    private(set) var tRequestSent: NIODeadline?
    private(set) var tFirstByte: NIODeadline?

    init(session: String, clientAddress: String?, key: UpstreamKey, head: HTTPRequestHead, target: String,
         maxBody: Int, started: Date, t0: NIODeadline) {
        self.session = session
        self.clientAddress = clientAddress
        self.key = key
        self.head = head
        self.target = target
        self.started = started
        self.t0 = t0
        requestBody = BodyCollector(limit: maxBody)
        responseBody = BodyCollector(limit: maxBody)
    }

    mutating func upstreamAttached(connectMs: Double?, tlsMs: Double?) {
        self.connectMs = connectMs
        self.tlsMs = tlsMs
    }

    mutating func requestBodyPart(_ buffer: ByteBuffer) { requestBody.append(buffer) }

    /// The request's end went upstream (the first time: a retry does not move it).
    mutating func requestSent(at time: NIODeadline) {
        if tRequestSent == nil { tRequestSent = time }
    }

    mutating func responseHead(_ head: HTTPResponseHead, at time: NIODeadline) {
        responseHead = head
        tFirstByte = time
    }

    mutating func responseBodyPart(_ buffer: ByteBuffer) { responseBody.append(buffer) }

    /// The proxy answered for itself: its head and body are what the client got.
    mutating func answered(_ head: HTTPResponseHead, body: ByteBuffer) {
        responseHead = head
        responseBody.append(body)
    }

    /// The captured exchange (raw values), ending at `end`.
    func exchange(error: String?, errorKind: ErrorKind? = nil, end: NIODeadline) -> Exchange {
        var timings = Timings(total: milliseconds(t0, end))
        timings.connect = connectMs
        timings.tls = tlsMs
        if let sent = tRequestSent {
            timings.send = milliseconds(t0, sent)
            if let first = tFirstByte {
                timings.wait = milliseconds(sent, first)
                timings.receive = milliseconds(first, end)
            }
        }
        let response = responseHead
        return Exchange(
            session: session, kind: .http, started: started, timings: timings,
            clientAddress: clientAddress, scheme: key.scheme, host: key.host, port: key.port,
            method: head.method.rawValue, target: target,
            request: MessageRecord(httpVersion: head.version.text, headers: head.headers.fields,
                                   body: requestBody.data, truncated: requestBody.truncated, wireSize: requestBody.wireSize),
            status: response.map { Int($0.status.code) }, reason: response?.status.reasonPhrase,
            response: MessageRecord(httpVersion: response?.version.text ?? "HTTP/1.1", headers: response?.headers.fields ?? [],
                                    body: responseBody.data, truncated: responseBody.truncated, wireSize: responseBody.wireSize),
            error: error, errorKind: errorKind, keepsSecrets: true)
    }
}
