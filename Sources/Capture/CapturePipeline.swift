import Foundation
import Logging
import OAuthDiagnosis
import ProxyServer
import Recording
import Redaction
import Synchronization
import TokentapCore

/// Why a ``CapturePipeline`` cannot start: the store or the fingerprint key cannot be opened.
public struct CaptureSetupError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The SQLite database (`recordings/tokentap.sqlite`) cannot be opened or migrated.
        case store
        /// The fingerprint key (`certs/tokentap-fingerprint.key`) cannot be read or created.
        case fingerprintKey
    }

    public var kind: Kind
    /// What to tell the user, e.g. `cannot open the recordings database PATH: ...`.
    public var description: String
}

/// Where captured exchanges go, off the event loop (design.md, "The way a request travels"):
/// body decoding → diagnosis on the raw values (with the session's redacted history) →
/// redaction (unless `keepSecrets`) → the SQLite store → the live line (``LivePrinter``).
///
/// `capture` only queues (it runs on an event loop); the `RecordingWriter`'s task does the rest,
/// one batch at a time, in order (``CaptureProcessor``). Raw values never leave memory.
public final class CapturePipeline: ExchangeSink, Sendable {
    public let session: String
    public let store: ExchangeStore
    private let writer: RecordingWriter

    /// Opens the store at `database` and the fingerprint key at `fingerprintKey` (created on first
    /// use, mode 0600), and records `profiles` as the session's profiles in force. `echo` prints the
    /// live line of each stored exchange on stdout.
    /// - Throws: ``CaptureSetupError`` naming the file that cannot be opened or written.
    public init(database: URL, fingerprintKey: URL, session: String, keepSecrets: Bool, insecureUpstream: Bool,
                echo: Bool, maxBody: Int, profiles: [ProviderProfile], logger: Logger) throws {
        self.session = session
        do {
            store = try ExchangeStore(path: database)
        } catch {
            throw CaptureSetupError(kind: .store, description: "cannot open the recordings database \(database.path): \(error)")
        }
        do {
            try store.recordProfiles(sessionProfiles(profiles), session: session)
        } catch {
            throw CaptureSetupError(kind: .store, description: "cannot write to the recordings database \(database.path): \(error)")
        }
        let redactor: Redactor
        do {
            redactor = Redactor(key: try Redactor.loadOrCreateKey(at: fingerprintKey))
        } catch {
            throw CaptureSetupError(kind: .fingerprintKey, description: "\(error)")
        }
        let processor = CaptureProcessor(redactor: redactor, keepSecrets: keepSecrets, maxBody: maxBody, profiles: profiles)
        let printer = LivePrinter(echo: echo, insecureUpstream: insecureUpstream, diagnoser: Diagnoser(redactor: redactor, profiles: profiles))
        writer = RecordingWriter(
            store: store, logger: logger,
            prepare: { processor.prepare($0) },
            onStored: { stored in
                processor.stored(stored)
                for exchange in stored { printer.print(exchange) }
            })
    }

    public func capture(_ exchange: Exchange) {
        writer.submit(exchange)
    }

    public func whenRoom(_ resume: @escaping @Sendable () -> Void) -> Bool {
        writer.whenRoom(resume)
    }

    /// Exchanges captured and not yet stored.
    public var backlog: Int { writer.backlog }

    /// Writes what is queued and stops.
    public func close() async {
        await writer.close()
    }
}

/// The pure-ish steps between capture and store, with the session history the diagnosis needs.
/// Called by the writer's task only, one batch at a time: `prepare(batch)`, then `stored(batch)` once
/// it is committed (or not at all when the write was given up on).
public final class CaptureProcessor: Sendable {
    private struct State {
        /// The flow steps of this session as stored (redacted), parsed once (`FlowHistory`'s limit
        /// bounds it).
        var flow: FlowHistory
        /// The history entries of the batch being written, in batch order (nil: not kept).
        var pending: [FlowHistory.Entry?] = []
    }

    private let redactor: Redactor
    private let keepSecrets: Bool
    private let maxBody: Int
    private let warn: @Sendable (String) -> Void
    private let state: Mutex<State>

    /// `maxBody`: bytes of a decoded body kept. `profiles`: the provider profiles findings are
    /// computed with. `warn` receives the redaction check's fallbacks (a value redacted by its last
    /// check: the message names the rule; standard error by default).
    public init(redactor: Redactor, keepSecrets: Bool, maxBody: Int,
                profiles: [ProviderProfile] = ProviderProfile.builtIn + [.generic],
                warn: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.redactor = redactor
        self.keepSecrets = keepSecrets
        self.maxBody = maxBody
        self.warn = warn
        self.state = Mutex(State(flow: FlowHistory(diagnoser: Diagnoser(redactor: redactor, profiles: profiles))))
    }

    /// The batch as it is to be stored: each exchange's bodies decoded, its findings computed on
    /// its raw values (and the session's stored history), then redacted unless `keepSecrets`.
    public func prepare(_ batch: [Exchange]) -> [Exchange] {
        state.withLock { state in
            var out: [Exchange] = []
            out.reserveCapacity(batch.count)
            state.pending = []
            state.pending.reserveCapacity(batch.count)
            for raw in batch {
                var exchange = raw
                exchange.request = decoded(exchange.request)
                exchange.response = decoded(exchange.response)
                // Only flow steps (authorize, token, ...) are parsed a second time, redacted, to be kept.
                var isFlowStep = true
                // A refused request (client-error) is judged on the head it carried.
                if exchange.kind == .http || exchange.kind == .tlsError || exchange.kind == .clientError {
                    let judgement = state.flow.diagnose(exchange)
                    exchange.findings = judgement.findings
                    isFlowStep = judgement.isFlowStep
                }
                var stored = exchange
                if !keepSecrets {
                    let (redacted, fallbacks) = redactor.redactChecked(exchange)
                    for f in fallbacks { warn(f.description) }
                    stored = redacted
                }
                state.pending.append(isFlowStep ? state.flow.append(stored) : nil)
                out.append(stored)
            }
            return out
        }
    }

    /// Gives the history entries of the committed batch their ids (for `#id` in later evidence).
    public func stored(_ batch: [Exchange]) {
        state.withLock { state in
            for (exchange, entry) in zip(batch, state.pending) {
                if let entry, let id = exchange.id { state.flow.assignID(id, to: entry) }
            }
            state.pending = []
        }
    }

    /// The message with a gzip/deflate body replaced by its decoded form (size-limited). A body
    /// that does not start with the declared encoding's magic bytes was sent as is (a wrong
    /// `Content-Encoding` header): it is marked `identity` and scanned and kept like any body.
    private func decoded(_ message: MessageRecord) -> MessageRecord {
        guard !message.body.isEmpty, message.decodedFrom == nil,
              let encoding = message.headers.first(named: "Content-Encoding")?.trimmingCharacters(in: .whitespaces).lowercased(),
              ["gzip", "x-gzip", "deflate"].contains(encoding) else { return message }
        var out = message
        guard contentEncodingMagicMatches(message.body, encoding: encoding) else {
            out.decodedFrom = MessageRecord.notEncoded
            return out
        }
        guard let result = decodeContentEncoding(message.body, encoding: encoding, limit: maxBody) else { return message }
        out.body = result.body
        out.truncated = message.truncated || result.truncated
        out.decodedFrom = encoding
        return out
    }
}

/// The one line per exchange on stdout; under a failed OAuth exchange, its verdict's sentence and
/// fix (not every finding); under any other exchange, its warnings (they say what will fail).
public struct LivePrinter: Sendable {
    public let echo: Bool
    public let insecureUpstream: Bool
    public let diagnoser: Diagnoser

    public init(echo: Bool, insecureUpstream: Bool, diagnoser: Diagnoser) {
        self.echo = echo
        self.insecureUpstream = insecureUpstream
        self.diagnoser = diagnoser
    }

    public func print(_ exchange: Exchange) {
        // A WebSocket's line comes when it closes (its row is also written at the 101).
        guard echo, exchange.kind == .http || (exchange.kind == .websocket && exchange.websocket?.open == false) else { return }
        Swift.print(line(for: exchange))
        for line in notes(for: exchange) { Swift.print(line) }
    }

    /// The lines under an exchange's line (indented).
    public func notes(for exchange: Exchange) -> [String] {
        guard exchange.findings.contains(where: { $0.severity != .info }) || (exchange.status ?? 0) >= 400 || exchange.error != nil else { return [] }
        if let verdict = diagnoser.verdict(for: exchange) {
            return ["    \(verdict.summary)", "    fix: \(verdict.fix)"]
        }
        return exchange.findings.filter { $0.severity != .info }.map {
            "    \($0.severity.rawValue) \($0.rule): \($0.title) Fix: \($0.fix)"
        }
    }

    public func line(for exchange: Exchange) -> String {
        let time = iso8601Microseconds(exchange.started).dropFirst(11).prefix(12)
        let status = exchange.status.map(String.init) ?? "---"
        let id = exchange.id.map { "#\($0) " } ?? ""
        // Raw recordings (--keep-secrets) show no query string: it can hold secrets.
        let target = exchange.keepsSecrets ? exchange.path : exchange.target
        let method = exchange.kind == .websocket ? "WS" : exchange.method
        var line = "\(id)\(time) \(method) \(exchange.host)\(target) \(status) \(String(format: "%.1f", exchange.timings.total))ms"
        if let error = exchange.error { line += " (\(error))" }
        if insecureUpstream { line += " [insecure-upstream]" }
        if let ws = exchange.websocket { line += " close \(ws.closeCode.map(String.init) ?? "-")" }
        return line
    }
}

/// `profiles` as the store records them for a session (table `session_profile`): each profile's
/// name, where it came from (`built-in` or a file path) and the fields a file overrode.
public func sessionProfiles(_ profiles: [ProviderProfile]) -> [SessionProfile] {
    profiles.map { SessionProfile(name: $0.name, origin: $0.origin, overrides: $0.overrides) }
}
