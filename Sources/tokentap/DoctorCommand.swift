import ArgumentParser
import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import TokentapCore

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Explain a session's OAuth flow: the timeline, then the findings, most certain first.")

    @Option(help: ArgumentHelp("Session to examine (default: the latest).", valueName: "NAME"))
    var session: String?

    @Flag(help: "Print one JSON document (design.md's shape).")
    var json = false

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
        let diagnoser = Diagnoser(redactor: redactor)
        let timeline = diagnoser.timeline(exchanges)
        // Findings were computed at capture time, on raw values: they are the authoritative ones.
        let findings = Diagnoser.sorted(exchanges.flatMap(\.findings))
        if json {
            let object: [String: Any] = [
                "session": name,
                "timeline": timeline.map {
                    ["exchange": Int($0.exchange), "at": iso8601Microseconds($0.at), "step": $0.step, "summary": $0.summary] as [String: Any]
                },
                "findings": findings.map(Render.findingObject),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("session \(name): \(exchanges.count) recorded, \(timeline.count) OAuth steps")
        print("")
        print("Timeline")
        if timeline.isEmpty { print("  (no OAuth traffic recorded: is the app using the proxy? `tokentap ca` shows how to trust it)") }
        for step in timeline {
            let time = iso8601Microseconds(step.at).dropFirst(11).prefix(12)
            print("  #\(step.exchange) \(time) \(step.step): \(step.summary)")
        }
        print("")
        let serious = findings.filter { $0.severity != .info }
        print(serious.isEmpty ? "Findings: no errors or warnings" : "Findings")
        for f in findings {
            print("  [\(f.severity.rawValue), \(f.confidence.rawValue)] #\(f.exchange) \(f.rule): \(f.title)")
            for line in f.evidence { print("      evidence: \(line)") }
            print("      fix: \(f.fix)")
            print("      see: \(f.reference)")
        }
    }
}
