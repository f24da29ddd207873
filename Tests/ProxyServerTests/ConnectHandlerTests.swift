import CertificateAuthority
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOSSL
import Testing
import TokentapCore

@testable import ProxyServer

/// Collects what the proxy hands to its sink.
final class CollectingSink: ExchangeSink {
    let exchanges = NIOLockedValueBox<[Exchange]>([])
    func capture(_ exchange: Exchange) { exchanges.withLockedValue { $0.append(exchange) } }
}

/// A client connection's pipeline as the proxy builds it, on an `EmbeddedChannel`.
struct Harness {
    let channel = EmbeddedChannel()
    let sink = CollectingSink()
    let env: ProxyEnvironment

    init(intercept: [String] = []) throws {
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "test CA")
        let authority = try CertificateAuthority(certificate: cert, privateKey: key)
        var config = ProxyConfiguration()
        config.session = "unit"
        config.intercept = try intercept.map { try HostPattern(parsing: $0) }
        let tls = try TLSProvider(authority: authority, upstreamCAs: [], insecureUpstream: false)
        env = ProxyEnvironment(configuration: config, tls: tls, sink: sink, logger: Logger(label: "test"), loops: [channel.eventLoop])
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(ConnectHandler(env: env, decoder: decoder))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
    }

    func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the client so far, as text.
    func output() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func has<H: ChannelHandler>(_ type: H.Type) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: type)) != nil
    }
}

@Suite("CONNECT state machine")
struct ConnectHandlerTests {
    @Test("CONNECT to an intercepted host: 200, then TLS server and HTTP relay replace the front handlers")
    func intercepts() throws {
        let h = try Harness()
        try h.send("CONNECT api.miro.com:443 HTTP/1.1\r\nHost: api.miro.com:443\r\n\r\n")
        #expect(try h.output() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        h.channel.embeddedEventLoop.run()
        #expect(h.has(NIOSSLServerHandler.self))
        #expect(h.has(HTTPRelayHandler.self))
        #expect(!h.has(ConnectHandler.self))
        // TLS comes first now: the front request decoder is gone, the only one left is behind TLS.
        let pipeline = h.channel.pipeline.debugDescription
        let tls = try #require(pipeline.range(of: "NIOSSLServerHandler"))
        let decoder = try #require(pipeline.range(of: "ByteToMessageHandler"))
        #expect(tls.lowerBound < decoder.lowerBound)
    }

    @Test("--intercept patterns add to the defaults")
    func extraPattern() throws {
        let h = try Harness(intercept: ["*.example.org"])
        try h.send("CONNECT auth.example.org:8443 HTTP/1.1\r\n\r\n")
        #expect(try h.output().hasPrefix("HTTP/1.1 200"))
        #expect(h.has(NIOSSLServerHandler.self))
    }

    @Test("CONNECT to another host: tunnel joined byte for byte both ways, with half-close")
    func tunnels() throws {
        let h = try Harness()
        let upstream = NIOLockedValueBox<EmbeddedChannel?>(nil)
        let asked = NIOLockedValueBox<HostPort?>(nil)
        let loop = h.channel.embeddedEventLoop
        h.env.tunnelConnector = { target, _, glue in
            asked.withLockedValue { $0 = target }
            let channel = EmbeddedChannel(handler: glue, loop: loop)
            upstream.withLockedValue { $0 = channel }
            return channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 443)).map { channel }
        }
        try h.send("CONNECT example.com:443 HTTP/1.1\r\n\r\n")
        #expect(asked.withLockedValue { $0 } == HostPort(host: "example.com", port: 443))
        #expect(try h.output() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        #expect(!h.has(NIOSSLServerHandler.self))
        #expect(!h.has(ConnectHandler.self))
        let up = try #require(upstream.withLockedValue { $0 })
        h.channel.embeddedEventLoop.run()  // the front decoder leaves the pipeline after its decode loop
        #expect(!h.has(ByteToMessageHandler<HTTPRequestDecoder>.self))
        try h.channel.writeInbound(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0xFF, 0x00]))
        h.channel.pipeline.fireChannelReadComplete()
        #expect(try up.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x16, 0x03, 0x01, 0xFF, 0x00]))
        try up.writeInbound(ByteBuffer(string: "server bytes"))
        up.pipeline.fireChannelReadComplete()
        #expect(try h.output() == "server bytes")
        // The upstream going away closes the client side too, and the tunnel is recorded.
        try up.close().wait()
        h.channel.embeddedEventLoop.run()
        #expect(!h.channel.isActive)
        #expect(h.sink.exchanges.withLockedValue { $0.contains { $0.kind == .tunnel && $0.host == "example.com" } })
    }

    @Test("an origin-form request gets 400 naming the proxy settings, is recorded, and the connection closes")
    func originForm() throws {
        let h = try Harness()
        try h.send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(out.contains("HTTPS_PROXY"))
        #expect(!h.channel.isActive)
        let rows = h.sink.exchanges.withLockedValue { $0 }
        #expect(rows.count == 1)
        #expect(rows.first?.kind == .clientError)
        #expect(rows.first?.clientAddress == "127.0.0.1:9")
    }

    @Test("CONNECT without a valid authority gets 400", arguments: ["nonsense:port", ":443", "a b:1"])
    func badAuthority(_ authority: String) throws {
        let h = try Harness()
        try? h.send("CONNECT \(authority) HTTP/1.1\r\n\r\n")
        #expect(try h.output().hasPrefix("HTTP/1.1 400"))
    }

    @Test("garbage instead of HTTP gets 400 and a closed connection, no crash")
    func garbage() throws {
        let h = try Harness()
        try? h.send("\u{01}\u{02}\u{03} nope\r\n\r\n")
        #expect(try h.output().hasPrefix("HTTP/1.1 400"))
        #expect(!h.channel.isActive)
    }
}

@Suite("Proxy configuration")
struct ProxyConfigurationTests {
    @Test("HOST:PORT parsing", arguments: [
        ("127.0.0.1:8877", "127.0.0.1", 8877), ("[::1]:0", "::1", 0), ("localhost:1", "localhost", 1),
    ])
    func hostPort(_ text: String, _ host: String, _ port: Int) throws {
        let parsed = try HostPort(parsing: text, option: "--listen")
        #expect(parsed.host == host && parsed.port == port)
    }

    @Test("bad listen addresses are refused", arguments: ["nonsense", "1.2.3.4:99999", "::1:80", ":80", "host:"])
    func badListen(_ text: String) {
        #expect(throws: ConfigurationError.self) { try HostPort(parsing: text, option: "--listen") }
    }

    @Test("map-remote rules")
    func mapRemote() throws {
        let rule = try MapRemoteRule(parsing: "api.miro.com=127.0.0.1:9443")
        #expect(rule.applies(to: "API.miro.com", port: 443))
        #expect(rule.target == HostPort(host: "127.0.0.1", port: 9443))
        let withPort = try MapRemoteRule(parsing: "miro.com:443=[::1]:1")
        #expect(withPort.applies(to: "miro.com", port: 443) && !withPort.applies(to: "miro.com", port: 80))
        for bad in ["a=b", "=1.2.3.4:5", "a=", "noequals"] {
            #expect(throws: ConfigurationError.self) { try MapRemoteRule(parsing: bad) }
        }
    }

    @Test("intercept patterns")
    func patterns() throws {
        var config = ProxyConfiguration()
        #expect(config.intercepts("miro.com") && config.intercepts("api.miro.com") && config.intercepts("a.b.miro.com"))
        #expect(!config.intercepts("notmiro.com") && !config.intercepts("example.com"))
        config.intercept = [try HostPattern(parsing: "auth.example.com")]
        #expect(config.intercepts("auth.example.com") && !config.intercepts("x.auth.example.com"))
        #expect(throws: ConfigurationError.self) { try HostPattern(parsing: "a*b") }
    }
}
