import ArgumentParser
import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import Reports
import TokentapCore

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Explain a session's OAuth flow: what went wrong (one cause per failed exchange), the timeline, then the findings.")

    @Option(help: ArgumentHelp("Session to examine (default: the latest).", valueName: "NAME"))
    var session: String?

    @Flag(help: "Also list info findings in the text form (--json always carries every finding).")
    var all = false

    @Flag(help: "Print one JSON document (design.md's shape).")
    var json = false

    @Flag(help: "Write a self-contained HTML report (the flow as a sequence diagram, the verdicts, each exchange), redacted like every export.")
    var html = false

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("With --html: write to FILE instead of stdout.", valueName: "FILE"))
    var output: String?

    func validate() throws {
        if json && html { throw ValidationError("--json and --html cannot be combined: choose one") }
        if output != nil && !html { throw ValidationError("-o FILE goes with --html (the text and --json forms print on stdout)") }
    }

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let home = try homeOptions.resolve(prepare: false)
        let store = try openStore(home)
        guard let name = try session ?? store.latestSession() else {
            throw CLIFailure.runtime("no recordings yet in \(home.database.path): run `tokentap proxy` and send traffic through it")
        }
        let exchanges = try store.exchanges(ExchangeQuery(session: name, kinds: Set(ExchangeKind.allCases)))
        if exchanges.isEmpty && session != nil {
            throw CLIFailure.runtime("no session named '\(name)': `tokentap list --all` or the proxy's start-up line shows session names")
        }
        let keyURL = CertificatePaths(home: home).fingerprintKey
        let redactor: Redactor
        do { redactor = Redactor(key: try Redactor.loadOrCreateKey(at: keyURL)) } catch {
            throw CLIFailure.runtime("\(error)")
        }
        // Verdicts name each step by the profiles the session was recorded with: the home's, then the
        // `--profile` files the session recorded (table `session_profile`) that are still there. A file
        // that is gone or now bad: the built-in ones stand in, with a warning.
        let recordedFiles = sessionProfileFiles((try? store.profiles(session: name)) ?? [], home: home)
        for gone in recordedFiles.missing {
            warn("tokentap: profile file \(gone), used when session \(name) was recorded, no longer exists; verdicts use the profiles that remain")
        }
        let profiles: [ProviderProfile]
        do { profiles = try loadProfiles(home: home, files: recordedFiles.present) } catch let failure as CLIFailure {
            warn("tokentap: \(failure.message); using the built-in profiles")
            profiles = ProviderProfile.builtIn + [.generic]
        }
        let diagnoser = Diagnoser(redactor: redactor, profiles: profiles)
        if html {
            // Every exchange of the session, redacted as every export is (even a --keep-secrets recording).
            let shown = exportable(exchanges, redactor: redactor, pseudonymize: false)
            let exporter: any Exporter = HTMLReport(diagnoser: diagnoser, version: Tokentap.version, title: "tokentap doctor")
            let data = exporter.export(shown)
            if let output {
                do { try data.write(to: URL(fileURLWithPath: output)) } catch {
                    throw CLIFailure.runtime("cannot write \(output): \(error.localizedDescription)")
                }
                FileHandle.standardError.write(Data("wrote \(output)\n".utf8))
            } else {
                try? FileHandle.standardOutput.write(contentsOf: data)
            }
            return
        }
        let timeline = diagnoser.timeline(exchanges)
        // Findings were computed at capture time, on raw values: they are the authoritative ones,
        // and the verdicts are chosen among them.
        let verdicts = diagnoser.verdicts(exchanges)
        let findings = Diagnoser.sorted(exchanges.flatMap(\.findings))
        if json {
            print(DoctorDocument(session: name, verdicts: verdicts, timeline: timeline, findings: findings).json)
            return
        }
        print("session \(name): \(exchanges.count) recorded, \(timeline.count) OAuth steps")
        print("")
        print("What went wrong")
        if verdicts.isEmpty {
            print(timeline.isEmpty ? "  nothing to judge: no OAuth traffic was recorded" : "  nothing: no OAuth exchange failed")
        }
        for (i, v) in verdicts.enumerated() {
            if i > 0 { print("") }
            print(verdictParagraph(v, indent: "  "))
        }
        print("")
        print("Timeline")
        if timeline.isEmpty { print("  (no OAuth traffic recorded: is the app using the proxy? `tokentap ca` shows how to trust it)") }
        for step in timeline {
            let time = iso8601Microseconds(step.at).dropFirst(11).prefix(12)
            print("  #\(step.exchange) \(time) \(step.step): \(step.summary)")
        }
        print("")
        let serious = findings.filter { $0.severity != .info }
        let shown = all ? findings : serious
        let hidden = findings.count - shown.count
        let more = hidden > 0 ? " (\(hidden) info finding\(hidden == 1 ? "" : "s") hidden: --all shows them)" : ""
        print((serious.isEmpty ? "Findings: no errors or warnings" : "Findings") + more)
        for f in shown {
            print("  [\(f.severity.rawValue), \(f.confidence.rawValue)] #\(f.exchange) \(f.rule): \(f.title)")
            for line in f.evidence { print("      evidence: \(line)") }
            print("      fix: \(f.fix)")
            print("      see: \(f.reference)")
        }
    }
}

/// One verdict as a paragraph of `doctor`'s "What went wrong": the sentence, the cause, the fix,
/// and what else it explains or might be.
func verdictParagraph(_ v: Verdict, indent: String) -> String {
    var lines = ["\(indent)\(v.summary)",
                 "\(indent)    cause: \(v.cause) (\(v.confidence.rawValue))",
                 "\(indent)    fix: \(v.fix)"]
    if !v.consequences.isEmpty { lines.append("\(indent)    explains: \(v.consequences.joined(separator: ", "))") }
    if !v.alternatives.isEmpty { lines.append("\(indent)    other possible causes: \(v.alternatives.joined(separator: ", "))") }
    return lines.joined(separator: "\n")
}
