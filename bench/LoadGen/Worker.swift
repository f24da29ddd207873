import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What one connection slot measured.
struct WorkerResult: Sendable {
    var latencies: [UInt64]  // nanoseconds, one per completed response
    var errors: Int
    var bytes: Int
    var end: NIODeadline
    /// `--log` lines, one per request, in order.
    var log: [String] = []
}

enum LoadGenError: Error, CustomStringConvertible {
    case connectRefused(String)
    case closedEarly
    case timeout(TimeAmount)
    case serverError(Int)

    var description: String {
        switch self {
        case .connectRefused(let line): "CONNECT refused: \(line)"
        case .closedEarly: "connection closed before the response ended"
        case .timeout(let t): "no complete response within \(Double(t.nanoseconds) / 1e9) s"
        case .serverError(let status): "HTTP \(status)"
        }
    }
}

/// One connection slot: runs requests one after another on its event loop, opening a new
/// connection (TCP, CONNECT, TLS) when it has none. Lives on, and is only touched from, `eventLoop`.
final class Worker {
    private let config: Config
    private let eventLoop: EventLoop
    private let quota: Int?
    private let deadline: NIODeadline?
    private let reporter: ErrorReporter
    private let promise: EventLoopPromise<WorkerResult>

    private var latencies: [UInt64] = []
    private var done = 0    // responses and errors, against the quota
    private var errors = 0
    private var bytes = 0
    private var nextPath: Int
    private let slot: Int
    private var sent = 0    // requests sent on this slot (for --sequence numbers)

    /// Bumped whenever the current connection is given up, so late events from an old channel
    /// (its close, a connect that finished after a timeout) are ignored.
    private var generation = 0
    private var channel: Channel?
    private var handler: ResponseHandler?
    private var inFlight = false
    private var started = NIODeadline.uptimeNanoseconds(0)
    private var finished = false
    private var timer: Scheduled<Void>?
    /// `--log`: this slot's number, its requests so far, the target in flight, the body's length
    /// and FNV-1a 64 hash so far, and the lines.
    private var sequence = 0
    private var target = ""
    private var bodyLength = 0
    private var bodyHash: UInt64 = 0xcbf2_9ce4_8422_2325
    private var log: [String] = []

    init(config: Config, eventLoop: EventLoop, quota: Int?, deadline: NIODeadline?, pathOffset: Int,
         reporter: ErrorReporter) {
        self.config = config
        self.eventLoop = eventLoop
        self.quota = quota
        self.deadline = deadline
        self.reporter = reporter
        self.promise = eventLoop.makePromise(of: WorkerResult.self)
        self.nextPath = pathOffset
        self.slot = pathOffset
        self.latencies.reserveCapacity(quota.map { min($0, 1 << 20) } ?? (1 << 14))
    }

    func start() -> EventLoopFuture<WorkerResult> {
        armTimer()
        next(now: .now())
        return promise.futureResult
    }

    // MARK: request loop

    private func next(now: NIODeadline) {
        guard !finished else { return }
        if let quota, done >= quota { return finish(now: now) }
        if let deadline, now >= deadline { return finish(now: now) }
        if errors > config.maxErrorsPerConnection { return finish(now: now) }
        started = now
        inFlight = true
        if let handler {
            sendNext(handler)
        } else {
            open()
        }
    }

    private func open() {
        generation &+= 1
        let generation = self.generation
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(config.timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        bootstrap.connect(to: config.address).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard generation == self.generation, !self.finished else {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                // One place that notices the connection going away, whichever handlers are in the
                // pipeline at the time (also between the CONNECT answer and TLS). Ignored once the
                // worker has dropped the connection itself (the generation moved on).
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    self.failed(LoadGenError.closedEarly, generation: generation)
                }
                do {
                    if let target = self.config.proxyTarget {
                        try self.addTunnelHandlers(channel, target: target, generation: generation)
                    } else {
                        try self.addRequestHandlers(channel, generation: generation)
                    }
                } catch {
                    self.failed(error, generation: generation)
                }
            case .failure(let error):
                self.failed(error, generation: generation)
            }
        }
    }

    /// Plain HTTP/1.1 codec and the CONNECT handler; the 200 answer removes all three again.
    private func addTunnelHandlers(_ channel: Channel, target: String, generation: Int) throws {
        let sync = channel.pipeline.syncOperations
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
        try sync.addHandler(encoder)
        try sync.addHandler(decoder)
        try sync.addHandler(TunnelHandler(worker: self, generation: generation, target: target,
                                          encoder: encoder, decoder: decoder))
    }

    /// Called by the TunnelHandler on the end of a 200 answer to CONNECT. Same order as
    /// async-http-client: CONNECT handler, then decoder (it defers its removal until its decode
    /// loop unwinds and forwards any bytes it still holds), then encoder; then TLS and HTTP again.
    func tunnelEstablished(_ channel: Channel, generation: Int, tunnel: TunnelHandler,
                           encoder: HTTPRequestEncoder, decoder: ByteToMessageHandler<HTTPResponseDecoder>) {
        guard generation == self.generation else { return }
        let sync = channel.pipeline.syncOperations
        sync.removeHandler(tunnel).assumeIsolated().flatMap {
            sync.removeHandler(decoder)
        }.flatMap {
            sync.removeHandler(encoder)
        }.whenComplete { result in
            guard generation == self.generation else { return }
            do {
                try result.get()
                guard channel.isActive else { throw LoadGenError.closedEarly }
                try self.addRequestHandlers(channel, generation: generation)
            } catch {
                self.failed(error, generation: generation)
            }
        }
    }

    /// TLS (trusting only the given CA, SNI and hostname check against --sni), the HTTP/1.1 client
    /// codec, and the handler that counts responses; then the first request (NIOSSL holds it until
    /// the handshake is done).
    private func addRequestHandlers(_ channel: Channel, generation: Int) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLClientHandler(context: config.sslContext, serverHostname: config.serverName))
        try sync.addHTTPClientHandlers()
        let handler = ResponseHandler(worker: self, generation: generation)
        try sync.addHandler(handler)
        self.handler = handler
        sendNext(handler)
    }

    /// Sends the next request of the cycle, numbered for `--sequence` (and, with `--log`, with a
    /// target of its own).
    private func sendNext(_ handler: ResponseHandler) {
        let request = request()
        nextPath &+= 1
        handler.send(request, body: request.body(sequence: config.runSalt * 100_000_000 + slot + config.connections * sent))
        sent += 1
    }

    // MARK: events from the handlers

    /// The request to send next; with `--log`, its target made unique (`c=SLOT&n=SEQ`).
    private func request() -> PreparedRequest {
        let base = config.requests[nextPath % config.requests.count]
        guard config.log else { return base }
        var head = base.head
        head.uri += (head.uri.contains("?") ? "&" : "?") + "c=\(slot)&n=\(sequence)"
        sequence += 1
        target = head.uri
        bodyLength = 0
        bodyHash = 0xcbf2_9ce4_8422_2325
        return PreparedRequest(head: head, body: base.body, template: base.template)
    }

    func received(_ body: ByteBuffer) {
        bytes &+= body.readableBytes
        guard config.log else { return }
        bodyLength += body.readableBytes
        body.withUnsafeReadableBytes { raw in
            for byte in raw {
                bodyHash = (bodyHash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
    }

    func responseEnded(status: Int, keepAlive: Bool, generation: Int) {
        guard generation == self.generation, inFlight else { return }
        let now = NIODeadline.now()
        inFlight = false
        latencies.append(UInt64(now.uptimeNanoseconds &- started.uptimeNanoseconds))
        done += 1
        if config.log {
            log.append("\(status) \(target) \(bodyLength) \(String(bodyHash, radix: 16))")
            target = ""
        }
        if status >= 500 {
            errors += 1
            reporter.report(LoadGenError.serverError(status))
        }
        if !keepAlive || config.newConnectionPerRequest { dropConnection() }
        next(now: now)
    }

    func failed(_ error: Error, generation: Int) {
        guard generation == self.generation, !finished else { return }
        if config.log, !target.isEmpty {  // a request was sent and got no complete response
            log.append("ERR \(target) \(error)")
            target = ""
        }
        inFlight = false
        errors += 1
        done += 1
        reporter.report(error)
        dropConnection()
        // Carry on with a fresh connection, off this call stack.
        eventLoop.assumeIsolated().execute { self.next(now: .now()) }
    }

    // MARK: helpers

    private func dropConnection() {
        generation &+= 1
        channel?.close(promise: nil)
        channel = nil
        handler = nil
    }

    private func finish(now: NIODeadline) {
        finished = true
        timer?.cancel()
        dropConnection()
        promise.succeed(WorkerResult(latencies: latencies, errors: errors, bytes: bytes, end: now, log: log))
    }

    /// A request that is not done `timeout` after it started (connect, CONNECT and handshake
    /// included when it needed them) counts as an error; checked a few times per timeout.
    private func armTimer() {
        let interval = TimeAmount.nanoseconds(max(config.timeout.nanoseconds / 4, 10_000_000))
        timer = eventLoop.assumeIsolated().scheduleTask(in: min(interval, .seconds(1))) {
            guard !self.finished else { return }
            if self.inFlight, NIODeadline.now() - self.started > self.config.timeout {
                self.failed(LoadGenError.timeout(self.config.timeout), generation: self.generation)
            }
            self.armTimer()
        }
    }
}

/// Prints the first three errors of the whole run to stderr; lives on one event loop.
final class ErrorReporter: Sendable {
    private let count: NIOLoopBoundBox<Int>
    private let eventLoop: EventLoop

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.count = .makeBoxSendingValue(0, as: Int.self, eventLoop: eventLoop)
    }

    func report(_ error: Error) {
        let text = "tokentap-loadgen: \(String(reflecting: type(of: error))): \(error)\n"
        eventLoop.execute {
            self.count.value += 1
            if self.count.value <= 3 { writeStderr(text) }
        }
    }
}
