import CertificateAuthority
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TokentapCore

@testable import ProxyServer

/// ``HTTPRelayHandler`` carrying out the state machine's actions on `EmbeddedChannel`s: the client
/// side built as the proxy builds it behind TLS (`configureHTTPServerPipeline` + relay), the
/// upstream an embedded channel handed to the relay through the pool.
@Suite("Relay adapter")
struct RelayAdapterTests {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let upstream: EmbeddedChannel
    let upstreamHandler: UpstreamHandler
    let env: ProxyEnvironment
    let sink = CollectingSink()
    static let key = UpstreamKey(scheme: "https", host: "api.miro.com", port: 443, target: HostPort(host: "api.miro.com", port: 443))

    init() throws {
        client = EmbeddedChannel(loop: loop)
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "test CA")
        let authority = try CertificateAuthority(certificate: cert, privateKey: key)
        var config = ProxyConfiguration()
        config.session = "unit"
        let tls = try TLSProvider(authority: authority, upstreamCAs: [], insecureUpstream: false)
        env = ProxyEnvironment(configuration: config, tls: tls, sink: sink, logger: Logger(label: "test"), loops: [loop])
        try client.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
        try client.pipeline.syncOperations.addHandler(HTTPRelayHandler(env: env, origin: HostPort(host: "api.miro.com", port: 443)))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        upstreamHandler = UpstreamHandler(handshake: loop.makePromise())
        upstream = EmbeddedChannel(handler: upstreamHandler, loop: loop)
        try upstream.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        upstreamHandler.handshake.succeed(())
        env.pool(for: loop).checkin(UpstreamConnection(key: Self.key, channel: upstream, handler: upstreamHandler))
    }

    func clientOutput() throws -> String {
        var text = ""
        while let buffer = try client.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func sentUpstream() throws -> [HTTPClientRequestPart] {
        var parts: [HTTPClientRequestPart] = []
        while let part = try upstream.readOutbound(as: HTTPClientRequestPart.self) { parts.append(part) }
        return parts
    }

    func respond(_ status: HTTPResponseStatus, _ headers: [(String, String)], body: String? = nil) throws {
        try upstream.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))))
        if let body { try upstream.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: body))) }
        try upstream.writeInbound(HTTPClientResponsePart.end(nil))
        upstream.pipeline.fireChannelReadComplete()
    }

    @Test func aHEADAnsweredWithChunkedFramingGetsNoBodyBytesAndTheConnectionGoesOn() throws {
        try client.writeInbound(ByteBuffer(string: "HEAD /file HTTP/1.1\r\nHost: api.miro.com\r\nProxy-Authorization: Basic eA==\r\n\r\n"))
        let parts = try sentUpstream()
        guard case .head(let head) = parts.first else { Issue.record("\(parts)"); return }
        #expect(head.method == .HEAD && head.uri == "/file")
        #expect(head.headers.map(\.name) == ["Host"])
        #expect(parts.last == .end(nil))
        try respond(.ok, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")])
        #expect(try clientOutput() == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(client.isActive)
        // Back in the pool, and the next request on the connection goes through it.
        try client.writeInbound(ByteBuffer(string: "GET /next HTTP/1.1\r\nHost: api.miro.com\r\n\r\n"))
        #expect(try sentUpstream().count == 2)
        try respond(.noContent, [("Content-Length", "7")])
        #expect(try clientOutput() == "HTTP/1.1 204 No Content\r\n\r\n")
        let rows = sink.exchanges.withLockedValue { $0 }
        #expect(rows.map(\.method) == ["HEAD", "GET"])
        #expect(rows.map(\.status) == [200, 204])
        #expect(rows.allSatisfy { $0.error == nil })
        _ = try? client.finish()
        _ = try? upstream.finish()
    }

    @Test func aResetMidResponseClosesTheClientAndRecordsTheError() throws {
        try client.writeInbound(ByteBuffer(string: "GET /big HTTP/1.1\r\nHost: api.miro.com\r\n\r\n"))
        _ = try sentUpstream()
        try upstream.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                                                               headers: HTTPHeaders([("Content-Length", "100")]))))
        try upstream.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "first part")))
        upstream.pipeline.fireChannelReadComplete()
        #expect(try clientOutput().hasSuffix("\r\n\r\nfirst part"))
        upstream.pipeline.fireChannelInactive()
        loop.run()
        #expect(!client.isActive)
        let row = try #require(sink.exchanges.withLockedValue { $0.first })
        #expect(row.status == 200)
        #expect(row.error?.contains("closed the connection") == true)
        #expect(row.response.body == Data("first part".utf8))
    }

    @Test func theClientGoneMidResponseClosesTheUpstreamAndRecords() throws {
        try client.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: api.miro.com\r\n\r\n"))
        _ = try sentUpstream()
        try client.close().wait()
        loop.run()
        #expect(!upstream.isActive)
        let row = try #require(sink.exchanges.withLockedValue { $0.first })
        #expect(row.error == "client closed the connection before the response completed")
    }

    @Test func aMalformedRequestIsAnsweredWith400InOnePlace() throws {
        try? client.writeInbound(ByteBuffer(string: "GET /x HTTP/1.1\r\nBad Header\r\n\r\n"))
        loop.run()
        let out = try clientOutput()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(out.contains("Connection: close\r\n"))
        #expect(out.contains("tokentap: malformed HTTP request"))
        #expect(!client.isActive)
        #expect(sink.exchanges.withLockedValue { $0.first?.kind } == .clientError)
    }

    @Test func aPooledConnectionClosedByTheServerIsReplacedOnceForAGET() throws {
        let second = EmbeddedChannel(loop: loop)
        let secondHandler = UpstreamHandler(handshake: loop.makePromise())
        try second.pipeline.syncOperations.addHandler(secondHandler)
        try second.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        secondHandler.handshake.succeed(())
        let asked = NIOLockedValueBox(0)
        env.upstreamConnector = { key, loop in
            asked.withLockedValue { $0 += 1 }
            return loop.makeSucceededFuture(UpstreamConnection(key: key, channel: second, handler: secondHandler))
        }
        try client.writeInbound(ByteBuffer(string: "GET /again HTTP/1.1\r\nHost: api.miro.com\r\n\r\n"))
        #expect(try sentUpstream().count == 2)
        // The server had closed the idle connection: nothing came back.
        upstream.pipeline.fireChannelInactive()
        loop.run()
        #expect(asked.withLockedValue { $0 } == 1)
        var resent: [HTTPClientRequestPart] = []
        while let part = try second.readOutbound(as: HTTPClientRequestPart.self) { resent.append(part) }
        guard case .head(let head) = resent.first else { Issue.record("\(resent)"); return }
        #expect(head.uri == "/again" && resent.count == 2)
        try second.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                                                              headers: HTTPHeaders([("Content-Length", "2")]))))
        try second.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "ok")))
        try second.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(try clientOutput() == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(sink.exchanges.withLockedValue { $0.first?.error } == nil)
        #expect(sink.exchanges.withLockedValue { $0.count } == 1)
    }

    @Test func anUpstreamThatRefusesIsAnswered502WithTheCause() throws {
        _ = env.pool(for: loop).checkout(Self.key)  // no pooled connection
        env.upstreamConnector = { _, loop in loop.makeFailedFuture(IOError(errnoCode: ECONNREFUSED, reason: "connect")) }
        try client.writeInbound(ByteBuffer(string: "POST /token HTTP/1.1\r\nHost: api.miro.com\r\nContent-Length: 3\r\n\r\nabc"))
        loop.run()
        let out = try clientOutput()
        #expect(out.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(out.contains("X-Tokentap-Error: upstream\r\n"))
        #expect(out.contains("refused"))
        #expect(!client.isActive)
        let row = try #require(sink.exchanges.withLockedValue { $0.first })
        #expect(row.status == 502)
        #expect(row.error?.contains("refused") == true)
        #expect(row.method == "POST" && row.target == "/token")
    }
}
