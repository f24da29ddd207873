import Foundation
import ProxyServer
import TokentapCore

/// Where captured exchanges go, off the event loop: body decoding, diagnosis (on raw values),
/// redaction, storage, and the live line on stdout.
///
/// `capture` only enqueues (it is called on an event loop); one task drains the queue in order.
final class CapturePipeline: ExchangeSink, Sendable {
    private let continuation: AsyncStream<Exchange>.Continuation
    private let worker: Task<Void, Never>
    /// The session every exchange is recorded in.
    let session: String

    init(home: Home, paths: CertificatePaths, session: String, keepSecrets: Bool, insecureUpstream: Bool, echo: Bool) throws {
        let (stream, continuation) = AsyncStream<Exchange>.makeStream(bufferingPolicy: .unbounded)
        self.continuation = continuation
        self.session = session
        let printer = LivePrinter(echo: echo, insecureUpstream: insecureUpstream)
        worker = Task {
            for await exchange in stream {
                printer.print(exchange)
            }
        }
    }

    func capture(_ exchange: Exchange) {
        continuation.yield(exchange)
    }

    /// Drains what is queued and stops.
    func close() async {
        continuation.finish()
        await worker.value
    }
}

/// The one line per exchange on stdout, plus one short line per finding under it.
struct LivePrinter: Sendable {
    let echo: Bool
    let insecureUpstream: Bool

    func print(_ exchange: Exchange) {
        guard echo, exchange.kind == .http else { return }
        Swift.print(line(for: exchange))
        for finding in exchange.findings where finding.severity != .info {
            Swift.print("    ↳ \(finding.rule): \(finding.title) — fix: \(finding.fix)")
        }
    }

    func line(for exchange: Exchange) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "HH:mm:ss.SSS"
        let time = f.string(from: exchange.started)
        let status = exchange.status.map(String.init) ?? "---"
        let id = exchange.id.map { "#\($0) " } ?? ""
        let target = exchange.keepsSecrets ? exchange.path : exchange.target
        var line = "\(id)\(time) \(exchange.method) \(exchange.host)\(target) \(status) \(String(format: "%.1f", exchange.timings.total))ms"
        if let error = exchange.error { line += " (\(error))" }
        if insecureUpstream { line += " [insecure-upstream]" }
        return line
    }
}
