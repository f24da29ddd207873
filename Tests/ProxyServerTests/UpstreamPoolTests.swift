import NIOCore
import NIOEmbedded
import Testing

@testable import ProxyServer

/// ``UpstreamPool``: the close of a kept connection is watched once however often it is checked in,
/// a closed connection leaves the pool, and at most ``UpstreamPool/perKeyLimit`` idle connections
/// are kept per key (the rest are closed).
@Suite("Upstream pool")
struct UpstreamPoolTests {
    let loop = EmbeddedEventLoop()
    static let key = UpstreamKey(scheme: "https", host: "api.miro.com", port: 443, target: HostPort(host: "127.0.0.1", port: 8443))

    func connection() throws -> (UpstreamConnection, EmbeddedChannel) {
        let handler = UpstreamHandler(handshake: loop.makePromise())
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        handler.handshake.succeed(())
        return (UpstreamConnection(key: Self.key, channel: channel, handler: handler), channel)
    }

    @Test func aConnectionCheckedInManyTimesIsWatchedOnceAndLeavesThePoolWhenClosed() throws {
        let pool = UpstreamPool()
        let (conn, channel) = try connection()
        for _ in 0..<100 {
            pool.checkin(conn)
            #expect(pool.checkout(Self.key) === conn)
        }
        pool.checkin(conn)
        #expect(pool.closeWatches == 1)
        #expect(pool.idleCount(Self.key) == 1)
        try channel.close().wait()
        loop.run()
        #expect(pool.idleCount(Self.key) == 0)
        #expect(pool.checkout(Self.key) == nil)
    }

    @Test func atMostPerKeyLimitIdleConnectionsAreKeptTheNextIsClosed() throws {
        let pool = UpstreamPool()
        var channels: [EmbeddedChannel] = []
        for _ in 0..<pool.perKeyLimit {
            let (conn, channel) = try connection()
            channels.append(channel)
            pool.checkin(conn)
        }
        #expect(pool.idleCount(Self.key) == pool.perKeyLimit)
        let (extra, extraChannel) = try connection()
        pool.checkin(extra)
        loop.run()
        #expect(pool.idleCount(Self.key) == pool.perKeyLimit)
        #expect(!extraChannel.isActive)
        #expect(channels.allSatisfy { $0.isActive })
        #expect(pool.closeWatches == pool.perKeyLimit)
    }
}
