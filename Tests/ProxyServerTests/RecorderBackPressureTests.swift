import CertificateAuthority
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TokentapCore

@testable import ProxyServer

/// A sink whose backlog is full until `release()`.
final class FullSink: ExchangeSink {
    private let state = NIOLockedValueBox<(full: Bool, waiters: [@Sendable () -> Void])>((true, []))
    func capture(_ exchange: Exchange) {}
    func whenRoom(_ resume: @escaping @Sendable () -> Void) -> Bool {
        state.withLockedValue { s in
            guard s.full else { return false }
            s.waiters.append(resume)
            return true
        }
    }
    var waiting: Int { state.withLockedValue { $0.waiters.count } }
    func release() {
        let waiters = state.withLockedValue { s -> [@Sendable () -> Void] in
            s.full = false
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w() }
    }
}

/// Counts the `read()` calls that reach the head of the pipeline (i.e. real socket reads).
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite("Relay back-pressure from the recorder")
struct RecorderBackPressureTests {
    private func relay(sink: ExchangeSink) throws -> (EmbeddedChannel, ReadCounter) {
        let channel = EmbeddedChannel()
        let (cert, key) = try CertificateAuthority.makeCA(commonName: "test CA")
        let authority = try CertificateAuthority(certificate: cert, privateKey: key)
        var config = ProxyConfiguration()
        config.session = "unit"
        let tls = try TLSProvider(authority: authority, upstreamCAs: [], insecureUpstream: false)
        let env = ProxyEnvironment(configuration: config, tls: tls, sink: sink, logger: Logger(label: "test"),
                                   loops: [channel.eventLoop])
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(HTTPRelayHandler(env: env, origin: nil))
        return (channel, counter)
    }

    @Test func noRequestIsReadWhileTheBacklogIsFullAndReadingResumesWhenItDrains() throws {
        let sink = FullSink()
        let (channel, counter) = try relay(sink: sink)
        channel.read()
        channel.read()
        #expect(counter.reads == 0)
        #expect(sink.waiting == 1, "one callback per paused connection, not one per read")
        sink.release()
        try channel.embeddedEventLoop.run()
        #expect(counter.reads == 1)
        channel.read()
        #expect(counter.reads == 2)
        _ = try? channel.finish()
    }

    @Test func readsPassThroughWhenTheSinkHasRoom() throws {
        let (channel, counter) = try relay(sink: CollectingSink())
        channel.read()
        channel.read()
        #expect(counter.reads == 2)
        _ = try? channel.finish()
    }
}
