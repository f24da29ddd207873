import NIOCore
import NIOHTTP1
import TokentapCore

/// What the relay of one client connection does, as a pure state machine: events in, actions out.
///
/// No channel, clock or sink inside: ``HTTPRelayHandler`` feeds it the events of the client and
/// upstream channels and carries out the actions it returns, in order. (The shape of swift-nio's
/// `NIOTypedHTTPServerUpgraderStateMachine`.) Requests arrive one at a time:
/// `HTTPServerPipelineHandler` sits in front and holds pipelined requests back until the previous
/// response has ended.
///
/// | state | event | next state | actions |
/// |---|---|---|---|
/// | idle | requestHead (relayable) | waitingForUpstream | checkOut |
/// | idle | requestHead (origin-form to the plain proxy) | closing | recordClientError, answer 400, closeClient |
/// | waitingForUpstream | checkOutMissed | = | connect |
/// | waitingForUpstream | upstreamReady | streamingRequest | useUpstream, forward (buffered parts), startTimeout if complete, readClient if withheld |
/// | waitingForUpstream | upstreamConnectFailed | closing | answer 502/504, finishCapture (error, kind connect/tls/timeout), closeClient |
/// | streamingRequest | requestBody, requestEnd | = | forward; startTimeout at the end |
/// | streamingRequest | responseHead 1xx (not 101) | = | sendInterim |
/// | streamingRequest | responseHead 101 to an upgrade request to an intercepted host | streamingResponse (switching) | cancelTimeout, sendHead (as received) |
/// | streamingRequest | responseHead | streamingResponse | cancelTimeout, sendHead (`Connection: close` after an upgrade request) |
/// | streamingRequest | upstreamClosed, pooled connection, idempotent, nothing received | waitingForUpstream | closeUpstream, connect (once) |
/// | streamingRequest | upstreamClosed/Failed, responseTimeout | closing | closeUpstream, answer 502/504, finishCapture (error, kind connect/timeout/malformed), closeClient |
/// | streamingResponse | responseBody | = | sendBody |
/// | streamingResponse (switching) | responseEnd | upgraded | sendEnd, recordUpgrade, startUpgradedRelay |
/// | streamingResponse | responseEnd, both sides keep-alive | idle | returnUpstream, finishCapture, sendEnd |
/// | streamingResponse | responseEnd, otherwise | closing | closeUpstream, finishCapture, sendEnd, closeClient |
/// | streamingResponse | upstreamClosed/Failed (reset mid-response) | closing | closeUpstream, finishCapture (error, kind truncated, or malformed for bad framing), closeClient |
/// | in flight | clientClosed | closing | closeUpstream, finishCapture (error) |
/// | upgraded | upgradedClosed (either side, or clientClosed/upstreamClosed/upstreamFailed) | closing | finishUpgrade (closed by, error) |
/// | upgraded | readRequested, responseHead/Body/End, requestBody/End, responseTimeout | = | none (the glue relays bytes) |
/// | idle | closeRequested, clientIdle | closing | closeClient (in flight: once answered) |
/// | idle | malformedRequest | closing | answer 400, closeClient (the handler records the refused head as `client-error`) |
/// | waitingForUpstream, streamingRequest | malformedRequest | closing | closeUpstream, finishCapture (error, no kind: the client's fault), answer 400, closeClient |
/// | streamingResponse | malformedRequest | closing | closeUpstream, finishCapture (error), closeClient |
///
/// Reads from the client are withheld while waiting for the upstream, while it is not writable,
/// and while the recorder's backlog is full (``readRequested()``).
///
/// Upgrades: a `101` answering an upgrade request to an intercepted host (not `h2c`, whose upgrade
/// fields are never forwarded) switches the connection: the `101` and its end are relayed as
/// received, then the adapter removes both HTTP codecs (leftover bytes forwarded on both sides)
/// and joins the two channels with a ``GlueHandler`` pair; the upstream connection is never pooled
/// again. In ``State/upgraded`` the machine only waits for the first side to close and then
/// finishes the row (``Action/finishUpgrade(closedBy:error:)``). A `101` to a request on a host
/// that is not recorded is relayed with `Connection: close`, as every other answer to an upgrade.
struct RelayStateMachine {
    /// The states. Each in-flight state carries the request's ``Flight``.
    enum State: Equatable {
        /// No request in flight; the connection can be closed at once.
        case idle
        /// A request head arrived; its upstream connection is being checked out of the pool or
        /// opened. Request parts are buffered; the client is not read meanwhile.
        case waitingForUpstream(Flight)
        /// The upstream is attached; request parts are forwarded as they come; no final response
        /// head yet (1xx interim responses are passed on in this state).
        case streamingRequest(Flight)
        /// The final response head went to the client; its body is streamed (the request may
        /// still be streaming too).
        case streamingResponse(Flight)
        /// A `101` switched protocols: the HTTP codecs are gone and bytes flow both ways through a
        /// ``GlueHandler`` pair, outside the machine, until either side closes.
        case upgraded(Flight)
        /// The client connection is being closed; nothing more is relayed.
        case closing
    }

    /// One request in flight, as far as the relay's decisions go.
    struct Flight: Equatable {
        /// Distinguishes this request's callbacks (connect completions, timers) from stale ones.
        var id: Int
        var key: UpstreamKey
        var method: HTTPMethod
        /// Origin-form target as sent upstream.
        var target: String
        var clientKeepAlive: Bool
        /// The request asked for a protocol upgrade (`Connection: upgrade` + `Upgrade:`): NIO's
        /// request decoder parses nothing more on this connection, so it closes after the response.
        var upgrade: Bool
        /// The upgrade can be relayed: an upgrade request (not `h2c`) to a host that is recorded.
        var relaysUpgrade = false
        /// A `101` answering a relayed upgrade request went to the client: its end switches.
        var switching = false
        /// Parts received before the upstream was attached.
        var buffered: [HTTPClientRequestPart] = []
        /// Every part sent so far, kept while a retry is possible (idempotent request on a pooled
        /// connection, at most ``retryLimit`` bytes); nil once it is not.
        var retained: [HTTPClientRequestPart]?
        var retainedBytes = 0
        var retried = false
        var reusedUpstream = false
        var requestComplete = false
        var responseKeepAlive = true
        /// Any response byte (interim heads included) reached the client.
        var responseStarted = false
    }

    /// Something the handler must do, in the order given.
    enum Action: Equatable {
        /// Take an idle connection for `key` from the pool; report ``upstreamReady(flight:reused:)`` or
        /// ``checkOutMissed(flight:)``.
        case checkOut(UpstreamKey, flight: Int)
        /// Open a new upstream connection; report ``upstreamReady(flight:reused:)`` or
        /// ``upstreamConnectFailed(flight:_:)``.
        case connect(UpstreamKey, flight: Int)
        /// Keep the connection just reported ready (it becomes the flight's upstream).
        case useUpstream
        /// The connection just reported ready is not wanted any more: close it.
        case discardUpstream
        /// Write these request parts upstream (and flush).
        case forward([HTTPClientRequestPart])
        /// The request was sent: arm the response timeout for this flight.
        case startTimeout(flight: Int)
        case cancelTimeout
        /// Write a 1xx interim response head to the client (flushed).
        case sendInterim(HTTPResponseHead)
        case sendHead(HTTPResponseHead)
        case sendBody(ByteBuffer)
        /// Write the end of the response (flushed).
        case sendEnd(HTTPHeaders?)
        /// The proxy answers for itself (400, 502, 504): a short text body, `Connection: close`.
        case answer(Answer)
        /// Record a refused request (kind `client-error`, with the typed kind of what was wrong).
        case recordClientError(reason: String, kind: ErrorKind?, method: String, target: String)
        /// Log an upstream failure (the message names the request).
        case warn(String)
        /// Give the upstream connection back to the pool.
        case returnUpstream
        /// Close the upstream connection and stop listening to it.
        case closeUpstream
        /// Hand the capture of the request in flight to the sink, with this error (nil: success) and
        /// the typed kind of a proxy-side failure (nil: success, or the client went away).
        case finishCapture(error: String?, kind: ErrorKind? = nil)
        /// Close the client connection once what was written is flushed.
        case closeClient
        /// Issue the client read that was withheld.
        case readClient
        /// Record the upgraded connection now (the handshake; the row is updated at close).
        case recordUpgrade
        /// Remove both HTTP codecs (forwarding their leftover bytes) and join the client and
        /// upstream channels with a ``GlueHandler`` pair; the upstream is never pooled again.
        case startUpgradedRelay
        /// The upgraded connection ended: update its row (who closed, and why if it was not a clean close).
        case finishUpgrade(closedBy: Side, error: String?)
    }

    /// A side of an upgraded connection.
    enum Side: String, Equatable {
        case client, server, proxy
    }

    /// A response the proxy writes itself.
    struct Answer: Equatable {
        var status: HTTPResponseStatus
        /// The body's text (a line, without the newline).
        var message: String
        /// Adds `X-Tokentap-Error: upstream`.
        var upstreamError: Bool
    }

    /// The request as it goes upstream, and whether it is recorded (every request inside an
    /// interception; a plain-proxy request to an intercepted host, or in plain HTTP to a loopback
    /// host: ``ProxyConfiguration/records(scheme:host:)``).
    struct Outgoing: Equatable {
        var key: UpstreamKey
        var head: HTTPRequestHead
        /// Origin-form target as sent upstream.
        var target: String
        var capture: Bool
    }

    /// Largest request (in body bytes) kept for a retry on a fresh connection.
    static let retryLimit = 1 << 20

    private(set) var state: State = .idle
    private let origin: HostPort?
    private let configuration: ProxyConfiguration
    private let listenDescription: String
    private var nextFlight = 0
    /// Close once the request in flight is answered (HTTP/1.0 client, quiesce, client half-closed).
    private(set) var closeWhenDone = false
    private(set) var pendingRead = false
    private var waitingForRecorder = false
    private var upstreamWritable = true

    init(origin: HostPort?, configuration: ProxyConfiguration, listenDescription: String) {
        self.origin = origin
        self.configuration = configuration
        self.listenDescription = listenDescription
    }

    private var flight: Flight? {
        switch state {
        case .waitingForUpstream(let f), .streamingRequest(let f), .streamingResponse(let f): return f
        case .idle, .closing, .upgraded: return nil
        }
    }

    // MARK: the request

    /// A request head arrived. Returns the actions and, when it is relayed, what goes upstream.
    mutating func requestHead(_ head: HTTPRequestHead) -> (actions: [Action], outgoing: Outgoing?) {
        guard case .idle = state else { return ([], nil) }
        guard let outgoing = Self.outgoing(for: head, origin: origin, configuration: configuration) else {
            let reason = head.uri.hasPrefix("/")
                ? "tokentap is a proxy: send absolute-form requests (set HTTP_PROXY/HTTPS_PROXY=http://\(listenDescription)) or use `tokentap run -- COMMAND`"
                : "unsupported request target '\(head.uri.prefix(200))'"
            state = .closing
            // An origin-form request to the plain proxy is valid HTTP sent to the wrong place (no
            // kind); any other target the proxy cannot read is malformed.
            return ([.recordClientError(reason: reason, kind: head.uri.hasPrefix("/") ? nil : .malformed,
                                        method: head.method.rawValue, target: String(head.uri.prefix(2048))),
                     .answer(Answer(status: .badRequest, message: "tokentap: \(reason)", upstreamError: false)),
                     .closeClient], nil)
        }
        nextFlight += 1
        let upgrade = Self.asksForUpgrade(head.headers)
        if !head.isKeepAlive || upgrade { closeWhenDone = true }
        var flight = Flight(id: nextFlight, key: outgoing.key, method: head.method, target: outgoing.target, clientKeepAlive: head.isKeepAlive,
                            upgrade: upgrade)
        flight.relaysUpgrade = upgrade && outgoing.capture && !Self.asksForH2C(head.headers)
        flight.buffered = [.head(outgoing.head)]
        state = .waitingForUpstream(flight)
        return ([.checkOut(outgoing.key, flight: flight.id)], outgoing)
    }

    mutating func requestBody(_ buffer: ByteBuffer) -> [Action] {
        send(.body(.byteBuffer(buffer)))
    }

    mutating func requestEnd(_ trailers: HTTPHeaders?) -> [Action] {
        guard var flight else { return [] }
        flight.requestComplete = true
        let attached: Bool
        if case .waitingForUpstream = state { attached = false } else { attached = true }
        store(flight)
        var actions = send(.end(trailers))
        if attached, case .streamingRequest = state { actions.append(.startTimeout(flight: flight.id)) }
        return actions
    }

    private mutating func send(_ part: HTTPClientRequestPart) -> [Action] {
        guard var flight else { return [] }
        if flight.retained != nil {
            if case .body(.byteBuffer(let b)) = part { flight.retainedBytes += b.readableBytes }
            if flight.retainedBytes > Self.retryLimit { flight.retained = nil } else { flight.retained!.append(part) }
        }
        if case .waitingForUpstream = state {
            flight.buffered.append(part)
            store(flight)
            return []
        }
        store(flight)
        return [.forward([part])]
    }

    // MARK: the upstream connection

    /// The pool had no idle connection for the flight's key.
    mutating func checkOutMissed(flight id: Int) -> [Action] {
        guard case .waitingForUpstream(let flight) = state, flight.id == id else { return [] }
        return [.connect(flight.key, flight: id)]
    }

    /// A connection for flight `id` is ready (from the pool when `reused`).
    mutating func upstreamReady(flight id: Int, reused: Bool) -> [Action] {
        guard case .waitingForUpstream(var flight) = state, flight.id == id else { return [.discardUpstream] }
        flight.reusedUpstream = reused
        // A request that can be sent again (RFC 9110 §9.2.2) on a pooled connection the server may
        // have closed meanwhile is kept, once, for a retry on a new connection.
        if reused, !flight.retried, flight.method.isIdempotent, flight.retained == nil {
            flight.retained = flight.buffered
            flight.retainedBytes = flight.buffered.reduce(0) { n, part in
                if case .body(.byteBuffer(let b)) = part { return n + b.readableBytes }
                return n
            }
            if flight.retainedBytes > Self.retryLimit { flight.retained = nil }
        } else if !reused || flight.retried {
            flight.retained = nil
        }
        let parts = flight.buffered
        flight.buffered = []
        state = .streamingRequest(flight)
        var actions: [Action] = [.useUpstream, .forward(parts)]
        if flight.requestComplete { actions.append(.startTimeout(flight: id)) }
        if pendingRead, mayReadClient {
            pendingRead = false
            actions.append(.readClient)
        }
        return actions
    }

    mutating func upstreamConnectFailed(flight id: Int, _ error: Error) -> [Action] {
        guard case .waitingForUpstream(let flight) = state, flight.id == id else { return [] }
        return fail(error, flight: flight)
    }

    /// No response head within the upstream timeout after the request was sent.
    mutating func responseTimeout(flight id: Int) -> [Action] {
        guard case .streamingRequest(let flight) = state, flight.id == id else { return [] }
        return [.closeUpstream] + fail(UpstreamError.responseTimeout, flight: flight)
    }

    /// The upstream connection closed (EOF or reset) while it served the flight.
    mutating func upstreamClosed() -> [Action] {
        upstreamGone(UpstreamError.closedEarly)
    }

    mutating func upstreamFailed(_ error: Error) -> [Action] {
        upstreamGone(error)
    }

    private mutating func upstreamGone(_ error: Error) -> [Action] {
        switch state {
        case .streamingRequest(var flight):
            if flight.reusedUpstream, !flight.retried, !flight.responseStarted, let parts = flight.retained {
                // The pooled connection was closed by the server while idle: send again, once.
                flight.retried = true
                flight.retained = nil
                flight.buffered = parts
                state = .waitingForUpstream(flight)
                return [.cancelTimeout, .closeUpstream, .connect(flight.key, flight: flight.id)]
            }
            return [.closeUpstream] + fail(error, flight: flight)
        case .streamingResponse(let flight):
            return [.closeUpstream] + fail(error, flight: flight, headSent: true)
        case .upgraded:
            // (Once upgraded the glue reports closes; this covers a close before it is attached.)
            return upgradedClosed(by: .server, error: error is UpstreamError ? nil : "upstream failed: \(error)")
        case .idle, .waitingForUpstream, .closing:
            return []
        }
    }

    mutating func upstreamWritabilityChanged(_ writable: Bool) -> [Action] {
        upstreamWritable = writable
        if writable, pendingRead, mayReadClient {
            pendingRead = false
            return [.readClient]
        }
        return []
    }

    /// Answers 502/504 when nothing was sent to the client yet, otherwise cuts the client off; the
    /// capture carries the reason either way.
    private mutating func fail(_ error: Error, flight: Flight, headSent: Bool = false) -> [Action] {
        let failure = ProxyFailure.upstream(error, host: flight.key.host, port: flight.key.port, target: flight.key.target,
                                            responseStarted: headSent)
        let (status, reason) = (failure.status, failure.reason)
        let verdict = configuration.insecureUpstream ? "\(reason) [--insecure-upstream: upstream certificates are NOT verified]" : reason
        state = .closing
        let key = flight.key
        let port = key.port == 443 || key.port == 80 ? "" : ":\(key.port)"
        var actions: [Action] = [.cancelTimeout, .warn("\(flight.method.rawValue) \(key.scheme)://\(key.host)\(port)\(pathOnly(flight.target)): \(verdict)")]
        if headSent {
            actions += [.finishCapture(error: verdict, kind: failure.kind), .closeClient]
        } else {
            actions += [.answer(Answer(status: HTTPResponseStatus(statusCode: status), message: "tokentap: \(verdict)", upstreamError: true)),
                        .finishCapture(error: verdict, kind: failure.kind), .closeClient]
        }
        return actions
    }

    // MARK: the response

    mutating func responseHead(_ head: HTTPResponseHead) -> [Action] {
        switch state {
        case .streamingRequest(var flight):
            flight.responseStarted = true
            if head.status.code / 100 == 1 && head.status != .switchingProtocols {
                store(flight)
                return [.sendInterim(head)]
            }
            flight.responseKeepAlive = head.isKeepAlive
            var head = head
            if head.status == .switchingProtocols, flight.relaysUpgrade, flight.requestComplete {
                // Relayed as received; its end switches the connection (``responseEnd(_:)``).
                flight.switching = true
                state = .streamingResponse(flight)
                return [.cancelTimeout, .sendHead(head)]
            }
            if flight.upgrade {
                // NIO's request decoder reads nothing after an upgrade request: say so, and close.
                head.headers.replaceOrAdd(name: "Connection", value: "close")
            }
            state = .streamingResponse(flight)
            return [.cancelTimeout, .sendHead(head)]
        default:
            return []
        }
    }

    mutating func responseBody(_ buffer: ByteBuffer) -> [Action] {
        guard case .streamingResponse = state else { return [] }
        return [.sendBody(buffer)]
    }

    mutating func responseEnd(_ trailers: HTTPHeaders?) -> [Action] {
        guard case .streamingResponse(let flight) = state else { return [] }
        if flight.switching {
            state = .upgraded(flight)
            return [.sendEnd(trailers), .recordUpgrade, .startUpgradedRelay]
        }
        let reusable = flight.requestComplete && flight.clientKeepAlive && flight.responseKeepAlive && !flight.upgrade
        // The client connection cannot go on when its request was not read to the end, when it
        // or the server asked for a close, or after an upgrade request.
        let closeAfter = closeWhenDone || !flight.requestComplete || !flight.responseKeepAlive || flight.upgrade
        var actions: [Action] = [reusable ? .returnUpstream : .closeUpstream, .finishCapture(error: nil), .sendEnd(trailers)]
        if closeAfter {
            state = .closing
            actions.append(.closeClient)
        } else {
            state = .idle
            if pendingRead, mayReadClient {
                pendingRead = false
                actions.append(.readClient)
            }
        }
        return actions
    }

    // MARK: the client connection

    /// The client connection closed.
    mutating func clientClosed() -> [Action] {
        let before = state
        state = .closing
        switch before {
        case .waitingForUpstream:
            return [.cancelTimeout, .finishCapture(error: "client closed the connection before the response completed")]
        case .streamingRequest, .streamingResponse:
            return [.cancelTimeout, .closeUpstream,
                    .finishCapture(error: "client closed the connection before the response completed")]
        case .upgraded:
            state = before
            return upgradedClosed(by: .client, error: nil)
        case .idle, .closing:
            return []
        }
    }

    /// A side of an upgraded connection closed (or failed, with `error`); the glue closes the
    /// other. The first report finishes the row; later ones are ignored.
    mutating func upgradedClosed(by side: Side, error: String?) -> [Action] {
        guard case .upgraded = state else { return [] }
        state = .closing
        return [.finishUpgrade(closedBy: side, error: error)]
    }

    /// The client went idle past the timeout, half-closed, or the server is shutting down: close
    /// now when idle, otherwise once the request in flight is answered.
    mutating func closeRequested() -> [Action] {
        switch state {
        case .idle:
            state = .closing
            return [.closeClient]
        case .closing, .upgraded:
            return []
        default:
            closeWhenDone = true
            return []
        }
    }

    /// The client's read timed out: only an idle connection is closed.
    mutating func clientIdle() -> [Action] {
        guard case .idle = state else { return [] }
        state = .closing
        return [.closeClient]
    }

    /// The request could not be parsed: 400 unless a response is under way, then just close.
    mutating func malformedRequest(_ description: String) -> [Action] {
        let before = state
        state = .closing
        let reason = "malformed HTTP request (\(description))"
        let answer: [Action] = [.answer(Answer(status: .badRequest, message: "tokentap: \(reason)", upstreamError: false)), .closeClient]
        switch before {
        case .idle:
            return answer
        // The request's head was read: its row is kept, with what went wrong (the client's fault,
        // so no proxy-side kind).
        case .waitingForUpstream:
            return [.finishCapture(error: "client sent a malformed request part: \(reason)")] + answer
        case .streamingRequest:
            return [.cancelTimeout, .closeUpstream, .finishCapture(error: "client sent a malformed request part: \(reason)")] + answer
        case .streamingResponse:
            return [.closeUpstream, .finishCapture(error: "client sent a malformed request part: \(reason)"), .closeClient]
        case .upgraded:
            state = before
            return []
        case .closing:
            return []
        }
    }

    // MARK: reading from the client

    enum ReadDecision: Equatable {
        /// Withheld; a ``Action/readClient`` follows when it can go.
        case withhold
        /// Allowed as far as the relay goes; ask the recorder whether its backlog has room, and
        /// report ``recorderFull()`` if not.
        case askRecorder
    }

    private var mayReadClient: Bool {
        if case .waitingForUpstream = state { return false }
        if case .upgraded = state { return false }  // the glue reads
        return upstreamWritable && !waitingForRecorder
    }

    /// The channel wants to read from the client. Reads are withheld while the upstream is being
    /// connected or cannot take more, and while the recorder's backlog is full.
    mutating func readRequested() -> ReadDecision {
        guard mayReadClient else {
            pendingRead = true
            return .withhold
        }
        return .askRecorder
    }

    /// The recorder's backlog is full; it promised to call back.
    mutating func recorderFull() {
        waitingForRecorder = true
        pendingRead = true
    }

    /// The recorder has room again.
    mutating func recorderHasRoom() -> [Action] {
        waitingForRecorder = false
        if pendingRead, mayReadClient {
            pendingRead = false
            return [.readClient]
        }
        return []
    }

    private mutating func store(_ flight: Flight) {
        switch state {
        case .waitingForUpstream: state = .waitingForUpstream(flight)
        case .streamingRequest: state = .streamingRequest(flight)
        case .streamingResponse: state = .streamingResponse(flight)
        case .idle, .closing, .upgraded: break
        }
    }

    // MARK: pure helpers

    /// Where a request goes and how it is sent: origin-form target, `Proxy-*` fields removed,
    /// `Host` added when missing, upgrade fields removed for `h2c`. Nil when a plain-proxy request
    /// is not in absolute form.
    static func outgoing(for head: HTTPRequestHead, origin: HostPort?, configuration: ProxyConfiguration) -> Outgoing? {
        let scheme: String, host: String, port: Int
        var target = head.uri
        var upstreamHead = head
        if let origin {
            scheme = "https"
            host = origin.host
            port = origin.port
            if !head.uri.hasPrefix("/") && head.uri != "*", let parsed = AbsoluteURI(head.uri) {
                // An absolute-form URI inside the tunnel: use its path.
                target = parsed.target
            }
        } else {
            guard let parsed = AbsoluteURI(head.uri) else { return nil }
            scheme = parsed.scheme
            host = parsed.host
            port = parsed.port
            target = parsed.target
            if !upstreamHead.headers.contains(name: "Host") {
                upstreamHead.headers.add(name: "Host", value: parsed.authority)
            }
        }
        // Proxy-Authorization, Proxy-Connection, …: meant for this proxy, never for the server.
        let proxyFields = Set(upstreamHead.headers.map(\.name).filter { $0.lowercased().hasPrefix("proxy-") })
        for name in proxyFields { upstreamHead.headers.remove(name: name) }
        if asksForH2C(head.headers) {
            // h2c (RFC 7540 §3.2, removed in RFC 9113): an HTTP/1.1 relay cannot take part in it.
            upstreamHead.headers.remove(name: "Upgrade")
            upstreamHead.headers.remove(name: "HTTP2-Settings")
            let tokens = upstreamHead.headers["Connection"].flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !["upgrade", "http2-settings"].contains($0.lowercased()) && !$0.isEmpty }
            upstreamHead.headers.remove(name: "Connection")
            if !tokens.isEmpty { upstreamHead.headers.add(name: "Connection", value: tokens.joined(separator: ", ")) }
        }
        upstreamHead.uri = target
        let key = UpstreamKey(scheme: scheme, host: host, port: port, target: configuration.connectTarget(host: host, port: port))
        return Outgoing(key: key, head: upstreamHead, target: target, capture: origin != nil || configuration.records(scheme: scheme, host: host))
    }

    /// An upgrade request offering `h2c`.
    static func asksForH2C(_ headers: HTTPHeaders) -> Bool {
        asksForUpgrade(headers)
            && headers["Upgrade"].contains(where: { $0.lowercased().split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "h2c" } })
    }

    /// `Connection: upgrade` together with an `Upgrade` field (RFC 9110 §7.8).
    static func asksForUpgrade(_ headers: HTTPHeaders) -> Bool {
        headers.contains(name: "Upgrade")
            && headers["Connection"].contains { $0.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "upgrade" } }
    }
}

extension HTTPMethod {
    /// RFC 9110 §9.2.2.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }
}
