import CertificateAuthority
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOSSL
import Testing
import TokentapCore

@testable import ProxyServer

/// The front of a client connection as the proxy builds it (`ConnectHandler.addFrontHandlers`):
/// a request decoder paired with a response encoder, on an `EmbeddedChannel`.
@Suite("Front pipeline (paired decoder and encoder)")
struct FrontPipelineTests {
    func harness() throws -> (EmbeddedChannel, CollectingSink) {
        let channel = EmbeddedChannel()
        let sink = CollectingSink()
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "test CA")
        let authority = try CertificateAuthority(certificate: cert, privateKey: key)
        var config = ProxyConfiguration()
        config.session = "unit"
        let tls = try TLSProvider(authority: authority, upstreamCAs: [], insecureUpstream: false)
        let env = ProxyEnvironment(configuration: config, tls: tls, sink: sink, logger: Logger(label: "test"), loops: [channel.eventLoop])
        try ConnectHandler.addFrontHandlers(to: channel.pipeline.syncOperations, env: env)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, sink)
    }

    func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func has<H: ChannelHandler>(_ channel: EmbeddedChannel, _ type: H.Type) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: type)) != nil
    }

    @Test func theFrontHasAPairedEncoderAndNoUpgradeHandler() throws {
        let (channel, _) = try harness()
        #expect(has(channel, HTTPResponseEncoder.self))
        #expect(has(channel, ByteToMessageHandler<HTTPRequestDecoder>.self))
        #expect(!has(channel, HTTPServerUpgradeHandler.self))
        #expect(has(channel, ConnectHandler.self))
    }

    @Test func connectIsAnsweredRawAndTheFrontLeavesForTLS() throws {
        let (channel, _) = try harness()
        try channel.writeInbound(ByteBuffer(string: "CONNECT api.miro.com:443 HTTP/1.1\r\nHost: api.miro.com:443\r\n\r\n"))
        #expect(try output(channel) == "HTTP/1.1 200 Connection Established\r\n\r\n")
        channel.embeddedEventLoop.run()
        #expect(has(channel, NIOSSLServerHandler.self))
        #expect(has(channel, HTTPRelayHandler.self))
        #expect(!has(channel, ConnectHandler.self))
        // Behind TLS: one encoder and one decoder, paired by configureHTTPServerPipeline.
        let pipeline = channel.pipeline.debugDescription
        let tls = try #require(pipeline.range(of: "NIOSSLServerHandler"))
        let encoder = try #require(pipeline.range(of: "HTTPResponseEncoder"))
        #expect(tls.lowerBound < encoder.lowerBound)
        #expect(pipeline.components(separatedBy: "HTTPResponseEncoder").count == 2)
        _ = try? channel.finish()
    }

    @Test func anOriginFormRequestGets400ThroughTheFrontAndCloses() throws {
        let (channel, sink) = try harness()
        try channel.writeInbound(ByteBuffer(string: "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
        let out = try output(channel)
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(!channel.isActive)
        #expect(sink.exchanges.withLockedValue { $0.first?.kind } == .clientError)
    }
}
