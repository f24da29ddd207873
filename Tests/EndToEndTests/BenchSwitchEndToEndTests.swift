import Foundation
import Testing

/// `TOKENTAP_BENCH_NO_RECORD=1` (issue 25) is bench/run's switch for the relay's ceiling: read from
/// the environment only. The CLI never offers it, and without it the proxy records.
@Suite("Bench-only no-record switch", .serialized)
final class BenchSwitchEndToEndTests {
    let fixture: UpstreamFixture
    var home: String { fixture.home }

    init() throws { fixture = try UpstreamFixture() }

    /// Subcommand names listed under `SUBCOMMANDS:` in a help text (the first word of each entry).
    static func subcommands(_ help: String) -> [String] {
        guard let section = help.range(of: "SUBCOMMANDS:") else { return [] }
        var names: [String] = []
        for line in help[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("See '") { break }
            // An entry is indented by two spaces; its wrapped description lines by many more.
            guard line.hasPrefix("  "), !line.hasPrefix("   "),
                  let name = line.split(separator: " ").first else { continue }
            names.append(name.replacingOccurrences(of: "(default)", with: ""))
        }
        return names
    }

    @Test("no command's --help or --help-hidden mentions the switch")
    func helpDoesNotOfferIt() throws {
        var queue: [[String]] = [[]]
        var seen: [[String]] = []
        while let path = queue.first {
            queue.removeFirst()
            seen.append(path)
            for flag in ["--help", "--help-hidden"] {
                let result = try tokentap(path + [flag])
                #expect(result.status == 0, "\(path) \(flag): \(result.stderr)")
                let text = result.text + result.stderr
                #expect(text.contains("USAGE:"), "\(path) \(flag) printed no help")
                for needle in ["TOKENTAP_BENCH", "NO_RECORD", "no-record", "norecord", "bench"] {
                    #expect(!text.localizedCaseInsensitiveContains(needle), "\(path) \(flag) mentions \(needle)")
                }
                if flag == "--help" {
                    queue += Self.subcommands(result.text).map { path + [$0] }
                }
            }
        }
        // Every top-level command was visited (a parser that found none would prove nothing).
        for command in ["proxy", "run", "ca", "list", "show", "doctor", "sandbox", "export", "import", "sessions", "delete", "tail"] {
            #expect(seen.contains([command]), "never looked at \(command) --help")
        }
    }

    @Test("without the switch the proxy records; with TOKENTAP_BENCH_NO_RECORD=1 it relays and stores nothing")
    func recordsUnlessSwitched() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TOKENTAP_BENCH_NO_RECORD"] = nil
        let recording = try fixture.startProxy(session: "on", environment: environment)
        #expect(recording.line(startingWith: "recording to ") != nil)
        #expect(try fixture.curl(recording, ["https://api.miro.com/echo"]).text.contains(#""method":"GET""#))
        #expect(recording.stop() == 0)

        // Any value but 1 records as well.
        environment["TOKENTAP_BENCH_NO_RECORD"] = "0"
        let zero = try fixture.startProxy(session: "zero", environment: environment)
        #expect(try fixture.curl(zero, ["https://api.miro.com/echo"]).text.contains(#""method":"GET""#))
        #expect(zero.stop() == 0)

        environment["TOKENTAP_BENCH_NO_RECORD"] = "1"
        let relaying = try fixture.startProxy(session: "off", environment: environment)
        #expect(relaying.line(startingWith: "recording to ") == nil)
        #expect(relaying.line(startingWith: "recording OFF (TOKENTAP_BENCH_NO_RECORD=1") != nil)
        for _ in 0..<3 {
            #expect(try fixture.curl(relaying, ["https://api.miro.com/echo"]).text.contains(#""method":"GET""#))
        }
        #expect(relaying.stop() == 0)

        for (session, recorded) in [("on", true), ("zero", true), ("off", false)] {
            let list = try tokentap(["list", "--home", home, "--session", session, "--json"])
            #expect(list.status == 0, "\(list.stderr)")
            let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
            #expect(rows.count == (recorded ? 1 : 0), "session \(session): \(rows.count) rows")
            if recorded { #expect(rows.first?["url"] as? String == "https://api.miro.com/echo") }
        }
    }
}
