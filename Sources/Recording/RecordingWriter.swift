import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TokentapCore

/// A value behind a lock (NIO's `NIOLockedValueBox`), shared by reference.
final class Locked<Value: Sendable>: Sendable {
    private let box: NIOLockedValueBox<Value>
    init(_ value: Value) { box = NIOLockedValueBox(value) }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try box.withLockedValue(body)
    }
}

/// Batches exchanges into the store off the event loop (design.md, "Data on disk").
///
/// `submit` never blocks and never waits for SQLite: it appends to a queue under a lock and wakes a
/// background task. The task writes whatever is queued, up to `batchSize` (500) exchanges per
/// transaction, as soon as it wakes; exchanges that arrive while a transaction runs go into the
/// next one, so under load transactions grow and in quiet times an exchange is on disk within a few
/// milliseconds (well within the second design.md allows). A failed write is retried three times,
/// 250 ms apart, then dropped with an error log. `close()` writes what is queued and waits.
///
/// The backlog (exchanges submitted and not yet written) is bounded by back-pressure, not by loss:
/// once it holds ``Limits/high`` exchanges or ``Limits/highBytes`` body bytes, ``isFull`` turns true
/// and the proxy stops reading new requests (``whenRoom(_:)``) until the writer has brought it back
/// to three quarters of that (a short pause, not a long stall). A flood of traffic is slowed to the speed of recording instead of growing memory
/// without bound or dropping what the user came to record.
///
/// Redaction slots in before `submit`: the writer stores what it is given.
public final class RecordingWriter: Sendable {
    /// Most exchanges written in one transaction. Under load a commit (WAL frames of every index's
    /// changed pages) cost as much as 20 row inserts at 100 rows a transaction; 500 spreads it
    /// thinner. A live line is printed only once its transaction is committed.
    public static let batchSize = 500

    /// Backlog sizes: full at `high` exchanges or `highBytes` bytes of bodies, room again at three quarters.
    public struct Limits: Sendable {
        public var high: Int
        public var highBytes: Int
        public init(high: Int = 2_000, highBytes: Int = 32 << 20) {
            self.high = max(1, high)
            self.highBytes = max(1, highBytes)
        }
    }

    private struct State {
        var pending: [Exchange] = []
        var closed = false
        var onStored: (@Sendable ([Exchange]) -> Void)?
        var prepare: (@Sendable ([Exchange]) -> [Exchange])?
        var written = 0
        var dropped = 0
        /// Submitted and not yet written (queued or being written), and their body bytes.
        var backlog = 0
        var backlogBytes = 0
        var full = false
        var lastFullNotice = NIODeadline.uptimeNanoseconds(0)
        /// Called once when the backlog is back under the low-water mark.
        var waiters: [@Sendable () -> Void] = []
    }

    private let store: ExchangeStore
    private let logger: Logger
    private let state: Locked<State>
    private let wakeups: AsyncStream<Void>.Continuation
    private let worker: Task<Void, Never>
    public let limits: Limits

    /// - Parameters:
    ///   - store: a store opened for writing.
    ///   - logger: where write failures are reported.
    ///   - onStored: called (on the writer's task, never on an event loop) with each batch once it
    ///     is committed, ids set; e.g. to print one line per exchange.
    ///   - prepare: called (on the writer's task) with each batch before it is written, in order,
    ///     never concurrently with itself or `onStored`: where the capture pipeline decodes,
    ///     diagnoses and redacts. The batch `prepare` returns is what is stored.
    ///   - limits: backlog sizes for back-pressure.
    public init(store: ExchangeStore, logger: Logger, limits: Limits = Limits(),
                prepare: (@Sendable ([Exchange]) -> [Exchange])? = nil,
                onStored: (@Sendable ([Exchange]) -> Void)? = nil) {
        self.store = store
        self.logger = logger
        self.limits = limits
        let state = Locked(State(onStored: onStored, prepare: prepare))
        self.state = state
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wakeups = continuation
        self.worker = Task.detached {
            for await _ in stream {
                await Self.flush(store: store, state: state, limits: limits, logger: logger)
            }
            await Self.flush(store: store, state: state, limits: limits, logger: logger)
        }
    }

    deinit {
        // Lets the background task write what is queued and end.
        wakeups.finish()
    }

    /// Called with each committed batch (ids set); may be set at any time.
    public var onStored: (@Sendable ([Exchange]) -> Void)? {
        get { state.withLock { $0.onStored } }
        set { state.withLock { $0.onStored = newValue } }
    }

    /// How many exchanges have been committed so far, and how many were given up on.
    public var counts: (written: Int, dropped: Int) {
        state.withLock { ($0.written, $0.dropped) }
    }

    /// Exchanges submitted and not yet written.
    public var backlog: Int { state.withLock { $0.backlog } }

    /// Whether the backlog has reached the high-water mark (callers should stop producing).
    public var isFull: Bool { state.withLock { $0.full } }

    /// When the backlog is full: keeps `callback` to call (once, on the writer's task) when it is back
    /// under the low-water mark, and returns true. Otherwise returns false and never calls it.
    public func whenRoom(_ callback: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            guard s.full else { return false }
            s.waiters.append(callback)
            return true
        }
    }

    /// Queues `exchange` for writing. Never blocks; safe from an event loop. After `close()` the
    /// exchange is dropped with a warning. Producers that can wait should honour ``isFull``; the
    /// queue itself takes everything it is given.
    public func submit(_ exchange: Exchange) {
        let size = Self.bodyBytes(exchange)
        let limits = self.limits
        let (accepted, announce) = state.withLock { s -> (Bool, Int?) in
            if s.closed { return (false, nil) }
            s.pending.append(exchange)
            s.backlog += 1
            s.backlogBytes += size
            guard !s.full, s.backlog >= limits.high || s.backlogBytes >= limits.highBytes else { return (true, nil) }
            s.full = true
            // Say so at most every 10 s: a flood can fill and drain the backlog many times a second.
            let now = NIODeadline.now()
            guard now - s.lastFullNotice >= .seconds(10) else { return (true, nil) }
            s.lastFullNotice = now
            return (true, s.backlog)
        }
        if let announce {
            logger.notice("recording is \(announce) exchanges behind the traffic: new requests wait until it catches up (nothing is dropped)")
        }
        if accepted {
            wakeups.yield(())
        } else {
            logger.warning("recording writer is closed; exchange not stored", metadata: ["url": "\(exchange.url)"])
        }
    }

    /// Writes everything queued, then stops the background task. Idempotent.
    public func close() async {
        state.withLock { $0.closed = true }
        wakeups.finish()
        await worker.value
    }

    private static func flush(store: ExchangeStore, state: Locked<State>, limits: Limits, logger: Logger) async {
        while true {
            // Take the whole queue at once (O(1)), then write it in transactions of `batchSize`.
            let (queued, prepare) = state.withLock { s in
                let queued = s.pending
                s.pending = []
                return (queued, s.prepare)
            }
            if queued.isEmpty { return }
            for start in stride(from: 0, to: queued.count, by: batchSize) {
                let taken = Array(queued[start..<min(start + batchSize, queued.count)])
                await write(prepare?(taken) ?? taken, store: store, state: state, logger: logger)
                let size = taken.reduce(0) { $0 + bodyBytes($1) }
                let waiters = state.withLock { s -> [@Sendable () -> Void] in
                    s.backlog -= taken.count
                    s.backlogBytes -= size
                    guard s.full, s.backlog <= limits.high * 3 / 4, s.backlogBytes <= limits.highBytes * 3 / 4 else { return [] }
                    s.full = false
                    defer { s.waiters = [] }
                    return s.waiters
                }
                for waiter in waiters { waiter() }
            }
        }
    }

    /// What an exchange weighs in the backlog's byte count.
    private static func bodyBytes(_ e: Exchange) -> Int { e.request.body.count + e.response.body.count }

    /// Writes one batch (one transaction), retrying three times 250 ms apart before giving up on it.
    private static func write(_ batch: [Exchange], store: ExchangeStore, state: Locked<State>, logger: Logger) async {
        var attempt = 0
        while true {
            do {
                let stored = try await store.insert(batch)
                let callback = state.withLock { s -> (@Sendable ([Exchange]) -> Void)? in
                    s.written += stored.count
                    return s.onStored
                }
                callback?(stored)
                return
            } catch {
                attempt += 1
                if attempt > 3 {
                    state.withLock { $0.dropped += batch.count }
                    logger.error("could not store \(batch.count) exchange(s): \(error)",
                                 metadata: ["path": "\(store.path.path)"])
                    return
                }
                logger.warning("storing exchanges failed (attempt \(attempt)), retrying: \(error)")
                try? await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }
}
