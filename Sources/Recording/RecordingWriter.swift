import Foundation
import Logging
import TokentapCore

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Batches exchanges into the store off the event loop (design.md, "Data on disk").
///
/// `submit` never blocks and never waits for SQLite: it appends to a queue under a lock and wakes a
/// background task. The task writes whatever is queued, up to `batchSize` (100) exchanges per
/// transaction, as soon as it wakes; exchanges that arrive while a transaction runs go into the
/// next one, so under load transactions grow and in quiet times an exchange is on disk within a few
/// milliseconds (well within the second design.md allows). A failed write is retried three times,
/// 250 ms apart, then dropped with an error log. `close()` writes what is queued and waits.
///
/// Redaction slots in before `submit`: the writer stores what it is given.
public final class RecordingWriter: Sendable {
    /// Most exchanges written in one transaction.
    public static let batchSize = 100

    private struct State {
        var pending: [Exchange] = []
        var closed = false
        var onStored: (@Sendable ([Exchange]) -> Void)?
        var prepare: (@Sendable ([Exchange]) -> [Exchange])?
        var written = 0
        var dropped = 0
    }

    private let store: ExchangeStore
    private let logger: Logger
    private let state: Locked<State>
    private let wakeups: AsyncStream<Void>.Continuation
    private let worker: Task<Void, Never>

    /// - Parameters:
    ///   - store: a store opened for writing.
    ///   - logger: where write failures are reported.
    ///   - onStored: called (on the writer's task, never on an event loop) with each batch once it
    ///     is committed, ids set; e.g. to print one line per exchange.
    ///   - prepare: called (on the writer's task) with each batch before it is written, in order,
    ///     never concurrently with itself or `onStored`: where the capture pipeline decodes,
    ///     diagnoses and redacts. The batch `prepare` returns is what is stored.
    public init(store: ExchangeStore, logger: Logger,
                prepare: (@Sendable ([Exchange]) -> [Exchange])? = nil,
                onStored: (@Sendable ([Exchange]) -> Void)? = nil) {
        self.store = store
        self.logger = logger
        let state = Locked(State(onStored: onStored, prepare: prepare))
        self.state = state
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wakeups = continuation
        self.worker = Task.detached {
            for await _ in stream {
                await Self.flush(store: store, state: state, logger: logger)
            }
            await Self.flush(store: store, state: state, logger: logger)
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

    /// Queues `exchange` for writing. Never blocks; safe from an event loop. After `close()` the
    /// exchange is dropped with a warning.
    public func submit(_ exchange: Exchange) {
        let accepted = state.withLock { s -> Bool in
            if s.closed { return false }
            s.pending.append(exchange)
            return true
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

    private static func flush(store: ExchangeStore, state: Locked<State>, logger: Logger) async {
        while true {
            let (taken, prepare) = state.withLock { s in
                let n = min(batchSize, s.pending.count)
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return (batch, s.prepare)
            }
            if taken.isEmpty { return }
            let batch = prepare?(taken) ?? taken
            var attempt = 0
            while true {
                do {
                    let stored = try await store.insert(batch)
                    let callback = state.withLock { s -> (@Sendable ([Exchange]) -> Void)? in
                        s.written += stored.count
                        return s.onStored
                    }
                    callback?(stored)
                    break
                } catch {
                    attempt += 1
                    if attempt > 3 {
                        state.withLock { $0.dropped += batch.count }
                        logger.error("could not store \(batch.count) exchange(s): \(error)",
                                     metadata: ["path": "\(store.path.path)"])
                        break
                    }
                    logger.warning("storing exchanges failed (attempt \(attempt)), retrying: \(error)")
                    try? await Task.sleep(nanoseconds: 250_000_000)
                }
            }
        }
    }
}
