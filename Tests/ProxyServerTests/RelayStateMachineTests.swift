import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TokentapCore

@testable import ProxyServer

/// ``RelayStateMachine`` on plain values: events in, actions out, no channel.
@Suite("Relay state machine")
struct RelayStateMachineTests {
    typealias Machine = RelayStateMachine
    typealias Action = RelayStateMachine.Action

    static let origin = HostPort(host: "api.miro.com", port: 443)
    static let key = UpstreamKey(scheme: "https", host: "api.miro.com", port: 443, target: HostPort(host: "api.miro.com", port: 443))

    func machine(origin: HostPort? = origin, _ configure: (inout ProxyConfiguration) -> Void = { _ in }) -> Machine {
        var config = ProxyConfiguration()
        configure(&config)
        return Machine(origin: origin, configuration: config, listenDescription: "127.0.0.1:8877")
    }

    func head(_ method: HTTPMethod = .GET, _ uri: String = "/v1/x", version: HTTPVersion = .http1_1,
              _ headers: [(String, String)] = [("Host", "api.miro.com")]) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    func response(_ status: HTTPResponseStatus = .ok, version: HTTPVersion = .http1_1,
                  _ headers: [(String, String)] = [("Content-Length", "2")]) -> HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(headers))
    }

    /// Request head → pool miss → connected → request end: the machine in `streamingRequest`.
    func sent(_ m: inout Machine, _ h: HTTPRequestHead? = nil, reused: Bool = false) -> Int {
        let (actions, _) = m.requestHead(h ?? head())
        guard case .checkOut(_, let id) = actions.first else { Issue.record("no checkOut: \(actions)"); return 0 }
        if !reused { _ = m.checkOutMissed(flight: id) }
        _ = m.upstreamReady(flight: id, reused: reused)
        _ = m.requestEnd(nil)
        return id
    }

    func isState(_ m: Machine, _ name: String) -> Bool {
        switch m.state {
        case .idle: return name == "idle"
        case .waitingForUpstream: return name == "waitingForUpstream"
        case .streamingRequest: return name == "streamingRequest"
        case .streamingResponse: return name == "streamingResponse"
        case .upgraded: return name == "upgraded"
        case .closing: return name == "closing"
        }
    }

    // MARK: the happy path, state by state

    @Test func aRequestGoesThroughEveryStateAndTheConnectionIsPooled() {
        var m = machine()
        #expect(isState(m, "idle"))
        let (actions, outgoing) = m.requestHead(head())
        #expect(actions == [.checkOut(Self.key, flight: 1)])
        #expect(outgoing?.capture == true)
        #expect(isState(m, "waitingForUpstream"))
        #expect(m.checkOutMissed(flight: 1) == [.connect(Self.key, flight: 1)])
        // Parts that arrive before the upstream are buffered, then forwarded in order.
        #expect(m.requestBody(ByteBuffer(string: "ab")) == [])
        let ready = m.upstreamReady(flight: 1, reused: false)
        #expect(ready == [.useUpstream, .forward([.head(outgoing!.head), .body(.byteBuffer(ByteBuffer(string: "ab")))])])
        #expect(isState(m, "streamingRequest"))
        #expect(m.requestEnd(nil) == [.forward([.end(nil)]), .startTimeout(flight: 1)])
        let r = response()
        #expect(m.responseHead(r) == [.cancelTimeout, .sendHead(r)])
        #expect(isState(m, "streamingResponse"))
        #expect(m.responseBody(ByteBuffer(string: "ok")) == [.sendBody(ByteBuffer(string: "ok"))])
        #expect(m.responseEnd(nil) == [.returnUpstream, .finishCapture(error: nil), .sendEnd(nil)])
        #expect(isState(m, "idle"))
    }

    @Test func aPooledConnectionIsUsedWithoutConnecting() {
        var m = machine()
        _ = m.requestHead(head())
        let ready = m.upstreamReady(flight: 1, reused: true)
        #expect(ready.first == .useUpstream)
        #expect(!ready.contains { if case .connect = $0 { return true } else { return false } })
    }

    @Test func stalePartsAndCallbacksAreIgnored() {
        var m = machine()
        #expect(m.requestBody(ByteBuffer(string: "x")) == [])
        #expect(m.requestEnd(nil) == [])
        #expect(m.responseHead(response()) == [])
        #expect(m.responseEnd(nil) == [])
        #expect(m.upstreamClosed() == [])
        #expect(m.responseTimeout(flight: 7) == [])
        // A connection that completes for a flight that is over is closed, not used.
        _ = m.requestHead(head())
        #expect(m.upstreamReady(flight: 99, reused: false) == [.discardUpstream])
    }

    // MARK: requests as they go upstream

    @Test func proxyFieldsAreNeverForwardedInEitherMode() {
        let fields = [("Host", "example.com"), ("Proxy-Authorization", "Basic eA=="), ("proxy-connection", "keep-alive"),
                      ("Proxy-Foo", "1"), ("Accept", "*/*")]
        let plain = Machine.outgoing(for: head(.GET, "http://example.com/a?b", fields), origin: nil, configuration: ProxyConfiguration())
        let tunnelled = Machine.outgoing(for: head(.GET, "/a?b", fields), origin: Self.origin, configuration: ProxyConfiguration())
        for out in [plain, tunnelled] {
            let names = out!.head.headers.map(\.name)
            #expect(names == ["Host", "Accept"])
            #expect(out!.head.uri == "/a?b")
        }
        #expect(plain!.capture == false)
        #expect(plain!.key.scheme == "http" && plain!.key.port == 80)
    }

    @Test func absoluteFormGetsAHostFieldAndOriginFormTarget() {
        let out = Machine.outgoing(for: head(.GET, "http://127.0.0.1:9/cb?code=1", []), origin: nil, configuration: ProxyConfiguration())
        #expect(out?.head.headers["Host"] == ["127.0.0.1:9"])
        #expect(out?.target == "/cb?code=1")
        #expect(out?.capture == true)  // a loopback host: the app's callback
    }

    @Test("plain HTTP to loopback hosts is recorded (the OAuth callback); other plain-proxy hosts and HTTPS to loopback are not")
    func loopbackCallbacksAreRecorded() {
        func captured(_ uri: String, _ configure: (inout ProxyConfiguration) -> Void = { _ in }) -> Bool? {
            var config = ProxyConfiguration()
            configure(&config)
            return Machine.outgoing(for: head(.GET, uri, []), origin: nil, configuration: config)?.capture
        }
        for uri in ["http://127.0.0.1:8765/callback?code=x", "http://127.1.2.3/cb", "http://localhost:3000/cb",
                    "http://LOCALHOST./cb", "http://[::1]:8080/cb", "http://[0:0:0:0:0:0:0:1]/cb", "http://[::ffff:127.0.0.1]/cb"] {
            #expect(captured(uri) == true, "\(uri)")
        }
        for uri in ["http://example.com/cb?code=x", "http://128.0.0.1/cb", "http://10.0.0.1/cb", "http://[::2]/cb",
                    "http://localhost.example.com/cb", "https://127.0.0.1:8443/cb"] {
            #expect(captured(uri) == false, "\(uri)")
        }
        // HTTPS callback hosts are recorded when intercepted (CONNECT + TLS), or in absolute form when added.
        #expect(captured("https://127.0.0.1:8443/cb") { $0.intercept = [try! HostPattern(parsing: "127.0.0.1")] } == true)
        #expect(captured("http://miro.com/x") == true)
    }

    @Test func originFormToThePlainProxyIsAnsweredWith400AndRecorded() {
        var m = machine(origin: nil)
        let (actions, outgoing) = m.requestHead(head(.GET, "/hello"))
        #expect(outgoing == nil)
        guard case .recordClientError(let reason, nil, "GET", "/hello") = actions.first else { Issue.record("\(actions)"); return }
        #expect(reason.contains("HTTP_PROXY"))
        guard case .answer(let answer) = actions[1] else { Issue.record("\(actions)"); return }
        #expect(answer.status == .badRequest && !answer.upstreamError)
        #expect(actions.last == .closeClient)
        #expect(isState(m, "closing"))
    }

    // MARK: interim responses (Expect: 100-continue)

    @Test func interimResponsesArePassedOnAndTheFinalOneFollows() {
        var m = machine()
        let (_, _) = m.requestHead(head(.POST, "/echo", [("Host", "a"), ("Expect", "100-continue"), ("Content-Length", "3")]))
        _ = m.checkOutMissed(flight: 1)
        _ = m.upstreamReady(flight: 1, reused: false)
        let interim = HTTPResponseHead(version: .http1_1, status: .continue)
        #expect(m.responseHead(interim) == [.sendInterim(interim)])
        #expect(isState(m, "streamingRequest"))
        #expect(m.requestBody(ByteBuffer(string: "abc")) == [.forward([.body(.byteBuffer(ByteBuffer(string: "abc")))])])
        #expect(m.requestEnd(nil) == [.forward([.end(nil)]), .startTimeout(flight: 1)])
        #expect(m.responseHead(response()) == [.cancelTimeout, .sendHead(response())])
        #expect(m.responseEnd(nil).contains(.returnUpstream))
    }

    // MARK: HTTP/1.0 and close-delimited responses

    @Test func anHTTP10ClientIsClosedAfterItsResponseAndTheUpstreamNotPooled() {
        var m = machine()
        _ = sent(&m, head(.GET, "/", version: .http1_0))
        _ = m.responseHead(response())
        #expect(m.responseEnd(nil) == [.closeUpstream, .finishCapture(error: nil), .sendEnd(nil), .closeClient])
        #expect(isState(m, "closing"))
    }

    @Test func aCloseDelimitedResponseClosesBothSides() {
        var m = machine()
        _ = sent(&m)
        _ = m.responseHead(response(version: .http1_0, []))
        #expect(m.responseBody(ByteBuffer(string: "until close")) == [.sendBody(ByteBuffer(string: "until close"))])
        #expect(m.responseEnd(nil) == [.closeUpstream, .finishCapture(error: nil), .sendEnd(nil), .closeClient])
        // The EOF that delimited it comes after: nothing more to do.
        #expect(m.upstreamClosed() == [])
    }

    @Test func aResponseWithConnectionCloseClosesTheClientToo() {
        var m = machine()
        _ = sent(&m)
        _ = m.responseHead(response(.ok, [("Content-Length", "0"), ("Connection", "close")]))
        #expect(m.responseEnd(nil).last == .closeClient)
    }

    // MARK: pipelining

    @Test func pipelinedRequestsAreAnsweredOneAfterTheOtherOnTheSameMachine() {
        var m = machine()
        for n in 1...3 {
            let (actions, _) = m.requestHead(head(.GET, "/r\(n)"))
            #expect(actions == [.checkOut(Self.key, flight: n)])
            _ = m.upstreamReady(flight: n, reused: n > 1)
            _ = m.requestEnd(nil)
            _ = m.responseHead(response())
            #expect(m.responseEnd(nil).first == .returnUpstream)
            #expect(isState(m, "idle"))
        }
    }

    // MARK: a pooled connection the server closed while idle

    @Test func anIdempotentRequestIsRetriedOnceOnANewConnection() {
        var m = machine()
        _ = m.requestHead(head(.PUT, "/item", [("Host", "a"), ("Content-Length", "2")]))
        _ = m.upstreamReady(flight: 1, reused: true)
        _ = m.requestBody(ByteBuffer(string: "hi"))
        _ = m.requestEnd(nil)
        #expect(m.upstreamClosed() == [.cancelTimeout, .closeUpstream, .connect(Self.key, flight: 1)])
        #expect(isState(m, "waitingForUpstream"))
        let again = m.upstreamReady(flight: 1, reused: false)
        guard case .forward(let parts) = again[1] else { Issue.record("\(again)"); return }
        #expect(parts.count == 3)
        #expect(parts[1] == .body(.byteBuffer(ByteBuffer(string: "hi"))) && parts[2] == .end(nil))
        #expect(again.last == .startTimeout(flight: 1))
        // A second failure is not retried: 502.
        let failed = m.upstreamClosed()
        #expect(failed.contains { if case .answer(let a) = $0 { return a.status == .badGateway } else { return false } })
        #expect(failed.last == .closeClient)
    }

    @Test func aPOSTOrAFreshConnectionOrAStartedResponseIsNotRetried() {
        var post = machine()
        _ = post.requestHead(head(.POST, "/token"))
        _ = post.upstreamReady(flight: 1, reused: true)
        _ = post.requestEnd(nil)
        #expect(!post.upstreamClosed().contains(.connect(Self.key, flight: 1)))

        var fresh = machine()
        _ = sent(&fresh)
        #expect(!fresh.upstreamClosed().contains(.connect(Self.key, flight: 1)))

        var started = machine()
        _ = sent(&started, reused: true)
        _ = started.responseHead(HTTPResponseHead(version: .http1_1, status: .continue))
        #expect(!started.upstreamClosed().contains(.connect(Self.key, flight: 1)))
    }

    // MARK: back-pressure

    @Test func theClientIsNotReadWhileTheUpstreamConnectsOrIsNotWritable() {
        var m = machine()
        #expect(m.readRequested() == .askRecorder)
        _ = m.requestHead(head())
        #expect(m.readRequested() == .withhold)
        #expect(m.upstreamReady(flight: 1, reused: false).last == .readClient)
        #expect(m.upstreamWritabilityChanged(false) == [])
        #expect(m.readRequested() == .withhold)
        #expect(m.upstreamWritabilityChanged(true) == [.readClient])
    }

    @Test func theClientIsNotReadWhileTheRecorderIsFull() {
        var m = machine()
        #expect(m.readRequested() == .askRecorder)
        m.recorderFull()
        #expect(m.readRequested() == .withhold)
        #expect(m.recorderHasRoom() == [.readClient])
        #expect(m.recorderHasRoom() == [])
        #expect(m.readRequested() == .askRecorder)
    }

    // MARK: failures

    @Test func anUpstreamThatRefusesGets502NamingTheCause() {
        var m = machine()
        _ = m.requestHead(head())
        _ = m.checkOutMissed(flight: 1)
        let error = IOError(errnoCode: ECONNREFUSED, reason: "connect")
        let actions = m.upstreamConnectFailed(flight: 1, error)
        guard case .answer(let answer) = actions.first(where: { if case .answer = $0 { return true } else { return false } }) else {
            Issue.record("\(actions)"); return
        }
        #expect(answer.status == .badGateway && answer.upstreamError)
        #expect(answer.message.contains("refused") && answer.message.contains("api.miro.com"))
        #expect(actions.contains { if case .finishCapture(let e?, .connect) = $0 { return e.contains("refused") } else { return false } })
        #expect(actions.contains { if case .warn(let w) = $0 { return w.hasPrefix("GET https://api.miro.com/v1/x: ") } else { return false } })
        #expect(actions.last == .closeClient)
        #expect(isState(m, "closing"))
    }

    @Test func noResponseHeadInTimeGives504() {
        var m = machine()
        let id = sent(&m)
        #expect(m.responseTimeout(flight: id + 1) == [])
        let actions = m.responseTimeout(flight: id)
        #expect(actions.first == .closeUpstream)
        #expect(actions.contains { if case .answer(let a) = $0 { return a.status == .gatewayTimeout } else { return false } })
        #expect(actions.last == .closeClient)
        // Once the head arrived, the timer is cancelled and a late firing does nothing.
        var n = machine()
        let id2 = sent(&n)
        _ = n.responseHead(response())
        #expect(n.responseTimeout(flight: id2) == [])
    }

    @Test func insecureUpstreamIsNamedInTheVerdict() {
        var m = machine { $0.insecureUpstream = true }
        let id = sent(&m)
        let actions = m.responseTimeout(flight: id)
        #expect(actions.contains { if case .finishCapture(let e?, .timeout) = $0 { return e.contains("--insecure-upstream") } else { return false } })
    }

    @Test func aResetMidResponseCutsTheClientOffAndRecordsTheError() {
        var m = machine()
        _ = sent(&m)
        _ = m.responseHead(response(.ok, [("Content-Length", "100")]))
        _ = m.responseBody(ByteBuffer(string: "part"))
        let actions = m.upstreamFailed(IOError(errnoCode: ECONNRESET, reason: "read"))
        #expect(actions.first == .closeUpstream)
        #expect(!actions.contains { if case .answer = $0 { return true } else { return false } })
        // The head went out: the client's response is cut off, and the row says so (not "failed").
        #expect(actions.contains { if case .finishCapture(let e?, .truncated) = $0 { return e.contains("reset the connection before the response was complete") } else { return false } })
        #expect(actions.last == .closeClient)
    }

    @Test func theClientGoneMidRequestOrMidResponseClosesTheUpstreamAndRecords() {
        for stage in 0..<3 {
            var m = machine()
            _ = m.requestHead(head())
            if stage >= 1 { _ = m.upstreamReady(flight: 1, reused: false) }
            if stage == 2 { _ = m.requestEnd(nil); _ = m.responseHead(response()) }
            let actions = m.clientClosed()
            #expect(actions.contains(.finishCapture(error: "client closed the connection before the response completed")))
            #expect(actions.contains(.closeUpstream) == (stage >= 1))
            #expect(isState(m, "closing"))
            // What the upstream does afterwards is ignored; a connection that completes is closed.
            #expect(m.responseEnd(nil) == [])
            #expect(m.upstreamReady(flight: 1, reused: false) == [.discardUpstream])
        }
        var idle = machine()
        #expect(idle.clientClosed() == [])
    }

    @Test func aMalformedRequestGets400UnlessAResponseIsUnderWay() {
        var idle = machine()
        #expect(idle.malformedRequest("invalid header").last == .closeClient)
        var waiting = machine()
        _ = waiting.requestHead(head())
        let actions = waiting.malformedRequest("invalid chunk size")
        // The head was read: its row is kept with the reason, and no proxy-side kind (the client's fault).
        #expect(actions.first == .finishCapture(error: "client sent a malformed request part: malformed HTTP request (invalid chunk size)"))
        #expect(actions.contains { if case .answer(let a) = $0 { return a.status == .badRequest } else { return false } })
        var streaming = machine()
        _ = sent(&streaming)
        _ = streaming.responseHead(response())
        let cut = streaming.malformedRequest("x")
        #expect(!cut.contains { if case .answer = $0 { return true } else { return false } })
        #expect(cut.last == .closeClient)
    }

    @Test func closeRequestsWaitForTheRequestInFlight() {
        var idle = machine()
        #expect(idle.closeRequested() == [.closeClient])
        var busy = machine()
        _ = sent(&busy)
        #expect(busy.closeRequested() == [])
        #expect(busy.clientIdle() == [])
        _ = busy.responseHead(response())
        #expect(busy.responseEnd(nil).last == .closeClient)
        var timedOut = machine()
        #expect(timedOut.clientIdle() == [.closeClient])
    }

    @Test func theResponseEndingBeforeTheRequestClosesTheClient() {
        var m = machine()
        _ = m.requestHead(head(.POST, "/upload"))
        _ = m.upstreamReady(flight: 1, reused: false)
        _ = m.responseHead(response(.unauthorized))
        #expect(m.responseEnd(nil) == [.closeUpstream, .finishCapture(error: nil), .sendEnd(nil), .closeClient])
    }

    // MARK: upgrades

    @Test func anUpgradeRequestIsForwardedAndItsResponseClosesTheConnection() {
        var m = machine()
        let ws = head(.GET, "/socket", [("Host", "a"), ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k")])
        let (_, outgoing) = m.requestHead(ws)
        #expect(outgoing?.head.headers["Upgrade"] == ["websocket"])
        #expect(outgoing?.head.headers["Connection"] == ["Upgrade"])
        _ = m.upstreamReady(flight: 1, reused: false)
        _ = m.requestEnd(nil)
        let actions = m.responseHead(response(.unauthorized, [("Content-Length", "2")]))
        guard case .sendHead(let sent) = actions.last else { Issue.record("\(actions)"); return }
        #expect(sent.headers["Connection"] == ["close"])
        #expect(m.responseEnd(nil) == [.closeUpstream, .finishCapture(error: nil), .sendEnd(nil), .closeClient])
    }

    @Test func h2cIsForwardedWithoutTheUpgradeFields() {
        let h2c = head(.GET, "/", [("Host", "a"), ("Connection", "Upgrade, HTTP2-Settings, keep-alive"), ("Upgrade", "h2c"),
                                   ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        #expect(Machine.asksForUpgrade(h2c.headers))
        let out = Machine.outgoing(for: h2c, origin: Self.origin, configuration: ProxyConfiguration())
        #expect(out?.head.headers.map(\.name) == ["Host", "Connection"])
        #expect(out?.head.headers["Connection"] == ["keep-alive"])
        #expect(!Machine.asksForUpgrade(head(.GET, "/", [("Upgrade", "websocket")]).headers))
    }

    // MARK: the upgraded state

    static let wsFields = [("Host", "api.miro.com"), ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k"),
                           ("Sec-WebSocket-Version", "13")]
    let switching = HTTPResponseHead(version: .http1_1, status: .switchingProtocols,
                                     headers: HTTPHeaders([("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "a")]))

    /// A WebSocket handshake on an intercepted host, up to the 101's end: the machine is `upgraded`.
    func upgraded(_ m: inout Machine) {
        _ = sent(&m, head(.GET, "/socket", Self.wsFields))
        #expect(m.responseHead(switching) == [.cancelTimeout, .sendHead(switching)])
        #expect(isState(m, "streamingResponse"))
        #expect(m.responseEnd(nil) == [.sendEnd(nil), .recordUpgrade, .startUpgradedRelay])
        #expect(isState(m, "upgraded"))
    }

    @Test func a101ToAnUpgradeRequestOnAnInterceptedHostSwitchesWithoutPoolingTheUpstream() {
        var m = machine()
        upgraded(&m)
        // No returnUpstream/closeUpstream: the glue owns the upstream now; the client is not closed.
    }

    @Test func theFirstSideToCloseAnUpgradedConnectionFinishesItsRowOnce() {
        for side in [Machine.Side.client, .server] {
            var m = machine()
            upgraded(&m)
            #expect(m.upgradedClosed(by: side, error: nil) == [.finishUpgrade(closedBy: side, error: nil)])
            #expect(isState(m, "closing"))
            #expect(m.upgradedClosed(by: side == .client ? .server : .client, error: nil) == [])
            #expect(m.clientClosed() == [])
        }
    }

    @Test func clientAndUpstreamCloseEventsInTheUpgradedStateFinishTheRow() {
        var m = machine()
        upgraded(&m)
        #expect(m.clientClosed() == [.finishUpgrade(closedBy: .client, error: nil)])
        var n = machine()
        upgraded(&n)
        #expect(n.upstreamClosed() == [.finishUpgrade(closedBy: .server, error: nil)])
        var o = machine()
        upgraded(&o)
        guard case .finishUpgrade(.server, let error?) = o.upstreamFailed(ChannelError.ioOnClosedChannel).first else {
            Issue.record("no finishUpgrade with an error"); return
        }
        #expect(error.contains("upstream failed"))
    }

    @Test func theUpgradedStateIgnoresHTTPEventsAndWithholdsClientReads() {
        var m = machine()
        upgraded(&m)
        #expect(m.responseHead(response()) == [])
        #expect(m.responseBody(ByteBuffer(string: "x")) == [])
        #expect(m.responseEnd(nil) == [])
        #expect(m.requestBody(ByteBuffer(string: "x")) == [])
        #expect(m.requestEnd(nil) == [])
        #expect(m.responseTimeout(flight: 1) == [])
        #expect(m.closeRequested() == [])
        #expect(m.clientIdle() == [])
        #expect(m.malformedRequest("x") == [])
        #expect(m.readRequested() == .withhold, "the glue reads, not the relay")
        #expect(isState(m, "upgraded"))
    }

    @Test func a101ToAHostThatIsNotRecordedStillClosesTheConnection() {
        var m = machine(origin: nil)
        let h = head(.GET, "http://example.org/socket", [("Host", "example.org"), ("Connection", "Upgrade"), ("Upgrade", "websocket")])
        let (_, outgoing) = m.requestHead(h)
        #expect(outgoing?.capture == false)
        _ = m.checkOutMissed(flight: 1)
        _ = m.upstreamReady(flight: 1, reused: false)
        _ = m.requestEnd(nil)
        let actions = m.responseHead(switching)
        guard case .sendHead(let sent) = actions.last else { Issue.record("\(actions)"); return }
        #expect(sent.headers["Connection"] == ["close"])
        #expect(m.responseEnd(nil) == [.closeUpstream, .finishCapture(error: nil), .sendEnd(nil), .closeClient])
    }

    @Test func anH2CUpgradeIsNeverSwitched() {
        var m = machine()
        let h2c = head(.GET, "/", [("Host", "api.miro.com"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AA")])
        _ = sent(&m, h2c)
        let actions = m.responseHead(switching)
        guard case .sendHead(let sent) = actions.last else { Issue.record("\(actions)"); return }
        #expect(sent.headers["Connection"] == ["close"])
        #expect(m.responseEnd(nil).last == .closeClient)
    }

    @Test func a101BeforeTheRequestEndedIsNotSwitched() {
        var m = machine()
        let (actions, _) = m.requestHead(head(.GET, "/socket", Self.wsFields))
        guard case .checkOut(_, let id) = actions.first else { Issue.record("\(actions)"); return }
        _ = m.checkOutMissed(flight: id)
        _ = m.upstreamReady(flight: id, reused: false)
        let sent = m.responseHead(switching)
        guard case .sendHead(let head) = sent.last else { Issue.record("\(sent)"); return }
        #expect(head.headers["Connection"] == ["close"])
    }
}
