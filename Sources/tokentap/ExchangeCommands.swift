import ArgumentParser
import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import Capture
import Reports
import TokentapCore

/// Loads the fingerprint key of `home` (created on first use) as a `Redactor`.
func loadRedactor(_ home: Home) throws -> Redactor {
    do {
        return Redactor(key: try Redactor.loadOrCreateKey(at: CertificatePaths(home: home).fingerprintKey))
    } catch {
        throw CLIFailure.runtime("\(error)")
    }
}

// MARK: - import

/// `tokentap import FILE.har [--session NAME] [--home DIR]` (design.md, "Command line"; issue 8).
///
/// Every entry goes through the live pipeline (`CaptureProcessor`: body decoding, diagnosis with the
/// session's history, redaction), oldest first, keeping the HAR's timestamps; findings the file
/// carries in `_tokentap.findings` are kept, merged with the new ones (de-duplicated by rule and
/// title). A malformed file imports nothing.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a HAR file (Chrome, Firefox, mitmproxy, HTTP Toolkit, tokentap) as a session, redacted and diagnosed.")

    @Argument(help: ArgumentHelp("The HAR file.", valueName: "FILE.har"))
    var file: String

    @Option(help: ArgumentHelp("Session name (default: the file name without extension).", valueName: "NAME"))
    var session: String?

    @Option(name: .customLong("profile"), help: ArgumentHelp("Add or override a provider profile (JSON, the format of the built-in ones; repeatable; after the home's profiles/*.json).", valueName: "FILE"))
    var profiles: [String] = []

    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        let url = URL(fileURLWithPath: file)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIFailure.runtime("cannot read \(file): \(error.localizedDescription)")
        }
        let name = session ?? url.deletingPathExtension().lastPathComponent
        guard !name.isEmpty else { throw CLIFailure.usage("empty session name: pass --session NAME") }
        let entries: [HAR.ImportedEntry]
        let skipped: [(index: Int, url: String)]
        do {
            (entries, skipped) = try HAR.parseReportingSkips(data, session: name)
        } catch let error as HAR.FormatError {
            throw CLIFailure.runtime("\(file): \(error); nothing was imported (fix that entry or export the HAR again)")
        }
        let home = try homeOptions.resolve()
        let profiles = try loadProfiles(home: home, files: self.profiles)
        let store: ExchangeStore
        do { store = try ExchangeStore(path: home.database) } catch {
            throw CLIFailure.runtime("cannot open the recordings database \(home.database.path): \(error)")
        }
        if try !store.exchanges(ExchangeQuery(session: name, kinds: Set(ExchangeKind.allCases), limit: 1)).isEmpty {
            throw CLIFailure.usage("session '\(name)' already exists: choose another name with --session NAME (or `tokentap delete --session \(name)`)")
        }
        let redactor = try loadRedactor(home)
        let processor = CaptureProcessor(redactor: redactor, keepSecrets: false, maxBody: 1 << 24, profiles: profiles)
        do { try store.recordProfiles(sessionProfiles(profiles), session: name) } catch {
            throw CLIFailure.runtime("cannot write to \(home.database.path): \(error)")
        }
        // Oldest first (stable for equal times), as the live pipeline sees traffic.
        let ordered = entries.enumerated().sorted { a, b in
            a.element.exchange.started != b.element.exchange.started
                ? a.element.exchange.started < b.element.exchange.started : a.offset < b.offset
        }.map(\.element)
        var count = 0
        var findings: [Finding] = []
        for entry in ordered {
            guard var prepared = processor.prepare([entry.exchange]).first else { continue }
            if !entry.findings.isEmpty {
                // The file's findings were computed on raw values by whoever wrote it: keep them
                // (redacted like everything else) next to what can be computed again here.
                var carrier = Exchange(session: name, started: prepared.started, host: prepared.host)
                carrier.findings = entry.findings
                let imported = redactor.redact(carrier).findings
                prepared.findings = Diagnoser.sorted(HAR.mergeFindings(computed: prepared.findings, imported: imported))
            }
            let stored: [Exchange]
            do { stored = try await store.insert([prepared]) } catch {
                throw CLIFailure.runtime("cannot write to \(home.database.path) after \(count) exchanges: \(error)")
            }
            processor.stored(stored)
            count += stored.count
            findings += stored.flatMap(\.findings)
        }
        let serious = findings.filter { $0.severity != .info }
        print("imported \(count) exchanges into session \(name)"
              + (serious.isEmpty ? "" : " (\(serious.count) error/warning findings: \(Set(serious.map(\.rule)).sorted().joined(separator: ", ")))"))
        if !skipped.isEmpty {
            print("skipped \(skipped.count) entries that are not network requests (e.g. entry \(skipped[0].index): \(skipped[0].url.prefix(60)))")
        }
        print("next: tokentap doctor --session \(name)")
    }
}

// MARK: - export

// `--format`'s values are `Reports.ExportFormat`'s cases.
extension ExportFormat: ExpressibleByArgument {}

/// Exchanges as every export shows them: rows recorded with `--keep-secrets` redacted (with the same
/// last check as at capture; its fallbacks are warned about on stderr), then, with `pseudonymize`,
/// e-mail addresses, user names and Miro ids replaced by stable pseudonyms.
func exportable(_ exchanges: [Exchange], redactor: Redactor, pseudonymize: Bool) -> [Exchange] {
    var out = exchanges.map { e in
        guard e.keepsSecrets else { return e }
        let (redacted, fallbacks) = redactor.redactChecked(e)
        for f in fallbacks { warn(f.description) }
        return redacted
    }
    if pseudonymize {
        var pseudonymizer = Pseudonymizer()
        out = out.map { pseudonymizer.pseudonymize($0) }
    }
    return out
}

/// `tokentap export [--session S] [--id N]... --format har|markdown|curl [-o FILE] [--home DIR]`
/// (design.md, "Command line"; issue 9). Always redacted: rows recorded with `--keep-secrets` go
/// through the `Redactor` first.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export recorded exchanges, redacted: HAR 1.2, a Markdown report, curl commands, or an HTML report with the flow as a sequence diagram.")

    @OptionGroup var filters: FilterOptions

    @Option(name: .customLong("id"), help: ArgumentHelp("Only this exchange (repeatable).", valueName: "N"))
    var ids: [Int64] = []

    @Option(help: ArgumentHelp("har, markdown, curl or html.", valueName: "FORMAT"))
    var format: ExportFormat

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write to FILE instead of stdout.", valueName: "FILE"))
    var output: String?

    @Flag(help: "Also replace e-mail addresses, user names and Miro user/team ids with stable pseudonyms.")
    var pseudonymize = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let home = try homeOptions.resolve(prepare: false)
        let store = try openStore(home)
        var exchanges: [Exchange] = []
        if ids.isEmpty {
            var query = try filters.query(store: store)
            guard query.session != nil else {
                throw CLIFailure.runtime("no recordings yet in \(home.database.path): run `tokentap proxy` or `tokentap import FILE.har` first")
            }
            query.includeBodies = true
            exchanges = try store.exchanges(query)
            if exchanges.isEmpty {
                throw CLIFailure.runtime("nothing to export: no exchanges match in session \(query.session!) (`tokentap list` shows what is there)")
            }
        } else {
            for id in ids {
                guard let e = try store.exchange(id: id) else {
                    throw CLIFailure.runtime("no exchange #\(id) in \(store.path.path): `tokentap list` shows the ids")
                }
                exchanges.append(e)
            }
        }
        let redactor = try loadRedactor(home)
        // Raw rows (--keep-secrets) are redacted here, with the same last check as at capture.
        exchanges = exportable(exchanges, redactor: redactor, pseudonymize: pseudonymize)

        let text = format.exporter(diagnoser: Diagnoser(redactor: redactor), version: Tokentap.version).export(exchanges)
        if let output {
            do { try text.write(to: URL(fileURLWithPath: output)) } catch {
                throw CLIFailure.runtime("cannot write \(output): \(error.localizedDescription)")
            }
            if format.isExecutable { _ = chmod(output, 0o755) }
            FileHandle.standardError.write(Data("wrote \(exchanges.count) exchanges (\(format.rawValue)) to \(output)\n".utf8))
        } else {
            // A closed pipe (`| head`) ends the output quietly (SIGPIPE is ignored: EPIPE here).
            var out = text
            if out.last != 0x0A { out.append(0x0A) }
            try? FileHandle.standardOutput.write(contentsOf: out)
        }
    }
}

