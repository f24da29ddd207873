import Foundation
import Logging
import NIOConcurrencyHelpers
import OAuthDiagnosis
import ProxyServer
import Recording
import Redaction
import TokentapCore

/// Where captured exchanges go, off the event loop (design.md, "The way a request travels"):
/// body decoding → diagnosis on the raw values (with the session's redacted history) →
/// redaction (unless `--keep-secrets`) → the SQLite store → the live line on stdout.
///
/// `capture` only queues (it runs on an event loop); the `RecordingWriter`'s task does the rest,
/// one batch at a time, in order. Raw values never leave memory.
final class CapturePipeline: ExchangeSink, Sendable {
    let session: String
    let store: ExchangeStore
    private let writer: RecordingWriter

    init(home: Home, paths: CertificatePaths, session: String, keepSecrets: Bool, insecureUpstream: Bool,
         echo: Bool, maxBody: Int, logger: Logger) throws {
        self.session = session
        do {
            store = try ExchangeStore(path: home.database)
        } catch {
            throw CLIFailure.runtime("cannot open the recordings database \(home.database.path): \(error)")
        }
        let redactor: Redactor
        do {
            redactor = Redactor(key: try Redactor.loadOrCreateKey(at: paths.fingerprintKey))
        } catch {
            throw CLIFailure.runtime("\(error)")
        }
        let processor = CaptureProcessor(redactor: redactor, keepSecrets: keepSecrets, maxBody: maxBody)
        let printer = LivePrinter(echo: echo, insecureUpstream: insecureUpstream)
        writer = RecordingWriter(
            store: store, logger: logger,
            prepare: { processor.prepare($0) },
            onStored: { stored in
                processor.stored(stored)
                for exchange in stored { printer.print(exchange) }
            })
    }

    func capture(_ exchange: Exchange) {
        writer.submit(exchange)
    }

    /// Writes what is queued and stops.
    func close() async {
        await writer.close()
    }
}

/// The pure-ish steps between capture and store, with the session history the diagnosis needs.
/// Called by the writer's task only, one batch at a time.
final class CaptureProcessor: Sendable {
    private let redactor: Redactor
    private let diagnoser: Diagnoser
    private let keepSecrets: Bool
    private let maxBody: Int
    /// OAuth-relevant exchanges of this session, as stored (redacted), oldest first.
    private let history = NIOLockedValueBox<[Exchange]>([])
    /// How much history the diagnosis sees (the newest OAuth exchanges). Each diagnosis reads the
    /// whole history, so this bounds the per-exchange cost under load (the benchmark showed the
    /// recorder falling behind with 2,000); a debugging session's flow fits in far fewer.
    static let historyLimit = 200

    init(redactor: Redactor, keepSecrets: Bool, maxBody: Int) {
        self.redactor = redactor
        self.diagnoser = Diagnoser(redactor: redactor)
        self.keepSecrets = keepSecrets
        self.maxBody = maxBody
    }

    func prepare(_ batch: [Exchange]) -> [Exchange] {
        var earlier = history.withLockedValue { $0 }
        var out: [Exchange] = []
        out.reserveCapacity(batch.count)
        for raw in batch {
            var exchange = raw
            exchange.request = decoded(exchange.request)
            exchange.response = decoded(exchange.response)
            if exchange.kind == .http || exchange.kind == .tlsError {
                exchange.findings = diagnoser.diagnose(exchange, history: earlier)
            }
            let stored = keepSecrets ? exchange : redactor.redact(exchange)
            if diagnoser.oauthRole(of: stored) != nil { earlier.append(stored) }
            out.append(stored)
        }
        return out
    }

    /// Keeps the stored (id-carrying) OAuth exchanges as history for the next batches.
    func stored(_ batch: [Exchange]) {
        let relevant = batch.filter { diagnoser.oauthRole(of: $0) != nil }
        guard !relevant.isEmpty else { return }
        history.withLockedValue { history in
            history.append(contentsOf: relevant)
            if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
        }
    }

    /// The message with a gzip/deflate body replaced by its decoded form (size-limited).
    private func decoded(_ message: MessageRecord) -> MessageRecord {
        guard !message.body.isEmpty, message.decodedFrom == nil,
              let encoding = message.headers.first(named: "Content-Encoding")?.trimmingCharacters(in: .whitespaces).lowercased(),
              ["gzip", "x-gzip", "deflate"].contains(encoding),
              let result = decodeContentEncoding(message.body, encoding: encoding, limit: maxBody) else { return message }
        var out = message
        out.body = result.body
        out.truncated = message.truncated || result.truncated
        out.decodedFrom = encoding
        return out
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
            Swift.print("    \(finding.severity.rawValue) \(finding.rule): \(finding.title) Fix: \(finding.fix)")
        }
    }

    func line(for exchange: Exchange) -> String {
        let time = iso8601Microseconds(exchange.started).dropFirst(11).prefix(12)
        let status = exchange.status.map(String.init) ?? "---"
        let id = exchange.id.map { "#\($0) " } ?? ""
        // Raw recordings (--keep-secrets) show no query string: it can hold secrets.
        let target = exchange.keepsSecrets ? exchange.path : exchange.target
        var line = "\(id)\(time) \(exchange.method) \(exchange.host)\(target) \(status) \(String(format: "%.1f", exchange.timings.total))ms"
        if let error = exchange.error { line += " (\(error))" }
        if insecureUpstream { line += " [insecure-upstream]" }
        return line
    }
}
