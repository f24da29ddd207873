import Capture
import Foundation
import Logging
import OAuthDiagnosis
import Recording
import Redaction
import Testing
import TokentapCore

/// The capture pipeline's order, without the binary: decode → diagnose on raw values → redact →
/// store → live line. A client secret left as template text (`YOUR_CLIENT_SECRET`) is only visible
/// in the raw value (its placeholder does not say it), so the `credential-formatting` finding
/// proves the diagnosis saw the raw value, and the stored row proves the store saw only the
/// redacted one.
@Suite("Capture pipeline order", .serialized)
struct CaptureOrderTests {
    static let key = Data(repeating: 9, count: 32)
    static let secret = "YOUR_CLIENT_SECRET"
    static let code = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_c0deAbCdEfGhIjKlMnOpQrStUv"

    /// A failed token exchange whose client secret is template text.
    static func tokenRequest(gzipResponse: Bool = false) -> Exchange {
        let body = "grant_type=authorization_code&client_id=3074457363680401096&client_secret=\(secret)&code=\(code)&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
        return Exchange(
            session: "s", started: Date(timeIntervalSince1970: 1_795_953_600), timings: Timings(total: 20),
            host: "api.miro.com", method: "POST", target: "/v1/oauth/token",
            request: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                   body: Data(body.utf8)),
            status: 401, reason: "Unauthorized",
            response: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/json")],
                                    body: Data(#"{"status":401,"message":"Invalid client credentials","type":"error"}"#.utf8)))
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-capture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("the diagnosis sees the raw value; what is prepared for the store holds only placeholders")
    func processorOrder() throws {
        let redactor = Redactor(key: Self.key)
        let processor = CaptureProcessor(redactor: redactor, keepSecrets: false, maxBody: 1 << 20, warn: { _ in })
        let stored = try #require(processor.prepare([Self.tokenRequest()]).first)

        let formatting = try #require(stored.findings.first { $0.rule == "credential-formatting" })
        #expect(formatting.title.contains("client_secret"))
        #expect(formatting.title.contains("template placeholder text"))
        let body = String(decoding: stored.request.body, as: UTF8.self)
        #expect(!body.contains(Self.secret))
        #expect(!body.contains(Self.code))
        #expect(body.contains("client_secret=redacted.client_secret."))
        for f in stored.findings {
            #expect(!(f.title + f.evidence.joined() + f.fix).contains(Self.secret))
        }

        // The control: the same request diagnosed after redaction cannot tell (so the order matters).
        let late = CaptureProcessor(redactor: redactor, keepSecrets: true, maxBody: 1 << 20, warn: { _ in })
        let diagnosedRedacted = try #require(late.prepare([redactor.redact(Self.tokenRequest())]).first)
        #expect(diagnosedRedacted.findings.contains { $0.rule == "credential-formatting" } == false)
    }

    @Test("keepSecrets stores the raw values, diagnosed the same way")
    func keepSecrets() throws {
        let processor = CaptureProcessor(redactor: Redactor(key: Self.key), keepSecrets: true, maxBody: 1 << 20, warn: { _ in })
        let stored = try #require(processor.prepare([Self.tokenRequest()]).first)
        #expect(String(decoding: stored.request.body, as: UTF8.self).contains("client_secret=\(Self.secret)"))
        #expect(stored.findings.contains { $0.rule == "credential-formatting" })
    }

    @Test("through the pipeline: the SQLite row is redacted, diagnosed, and the live line names its id")
    func pipelineToStore() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = dir.appendingPathComponent("tokentap.sqlite")
        let keyFile = dir.appendingPathComponent("tokentap-fingerprint.key")
        let pipeline = try CapturePipeline(database: database, fingerprintKey: keyFile, session: "s", keepSecrets: false,
                                           insecureUpstream: false, echo: false, maxBody: 1 << 20, profiles: ProviderProfile.builtIn + [.generic],
                                           logger: Logger(label: "test"))
        pipeline.capture(Self.tokenRequest())
        await pipeline.close()

        // The key was created 0600 on first use.
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let store = try ExchangeStore.openReadOnly(path: database)
        let rows = try store.exchanges(ExchangeQuery(session: "s", includeBodies: true))
        let row = try #require(rows.first)
        #expect(rows.count == 1)
        // Nothing on disk (the database, its WAL) holds the raw secret.
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            let bytes = try Data(contentsOf: dir.appendingPathComponent(name))
            #expect(bytes.range(of: Data(Self.secret.utf8)) == nil, "the raw secret reached \(name)")
        }
        #expect(String(decoding: row.request.body, as: UTF8.self).contains("client_secret=redacted.client_secret."))
        #expect(row.findings.contains { $0.rule == "credential-formatting" && $0.title.contains("template placeholder text") })
        #expect(row.findings.allSatisfy { $0.exchange == row.id })

        // The live line is written from the stored row: its id, the request line, the verdict.
        let printer = LivePrinter(echo: true, insecureUpstream: false, diagnoser: Diagnoser(redactor: Redactor(key: try Redactor.loadOrCreateKey(at: keyFile))))
        let id = try #require(row.id)
        #expect(printer.line(for: row).hasPrefix("#\(id) "))
        #expect(printer.line(for: row).contains("POST api.miro.com/v1/oauth/token 401"))
        #expect(printer.notes(for: row).joined().contains("fix:"))
    }

    @Test("a store that cannot be opened is a typed setup error naming the file")
    func setupError() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A directory where the database file should be.
        let database = dir.appendingPathComponent("db")
        try FileManager.default.createDirectory(at: database, withIntermediateDirectories: true)
        do {
            _ = try CapturePipeline(database: database, fingerprintKey: dir.appendingPathComponent("k"), session: "s",
                                    keepSecrets: false, insecureUpstream: false, echo: false, maxBody: 1024, profiles: [.generic],
                                    logger: Logger(label: "test"))
            Issue.record("opened a directory as a database")
        } catch let error as CaptureSetupError {
            #expect(error.kind == .store)
            #expect(error.description.contains(database.path))
        }
    }
}
