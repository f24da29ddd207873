import Foundation
import OAuthDiagnosis
import Recording
import Reports
import Testing
import TokentapCore

/// Each JSON document's bytes, pinned by a golden file (`Golden/`, recorded from the
/// `JSONSerialization` code the Codable documents replaced, then changed on purpose: `error_kind`,
/// unescaped slashes in `doctor`; re-record with `TOKENTAP_RECORD_GOLDEN=1` and review the diff) on
/// the fixed exchanges of `Fixtures`:
/// an authorize, a failed token exchange with findings and a verdict, a tunnel row, a 502 the proxy
/// answered, a closed WebSocket.
@Suite("JSON documents (golden files)")
struct GoldenDocumentTests {
    let exchanges = Fixtures.exchanges()

    @Test("list --json") func list() throws {
        let actual = Render.listJSON(exchanges)
        #expect(actual == (try Fixtures.golden("list.json", recording: actual)))
    }

    @Test("show --json, one per row kind", arguments: 1...5)
    func show(id: Int) throws {
        let e = try #require(exchanges.first { $0.id == Int64(id) })
        let actual = Render.showJSON(e)
        #expect(actual == (try Fixtures.golden("show-\(id).json", recording: actual)))
    }

    @Test("tail --json: one compact line per exchange") func tail() throws {
        let actual = exchanges.map(Render.tailJSONLine).joined(separator: "\n") + "\n"
        #expect(actual == (try Fixtures.golden("tail.jsonl", recording: actual)))
    }

    @Test("sessions --json") func sessions() throws {
        let summary = SessionSummary(name: "s1", firstStarted: HTMLReportTests.at(0), lastStarted: HTMLReportTests.at(6),
                                     count: 5, httpCount: 3, failures: 2)
        let actual = Render.sessionsJSON([summary])
        #expect(actual == (try Fixtures.golden("sessions.json", recording: actual)))
    }

    @Test("doctor --json") func doctor() throws {
        let d = Fixtures.diagnoser
        let document = DoctorDocument(session: "s1", verdicts: d.verdicts(exchanges), timeline: d.timeline(exchanges),
                                      findings: Diagnoser.sorted(exchanges.flatMap(\.findings)))
        #expect(!document.verdicts.isEmpty)
        #expect(document.json == (try Fixtures.golden("doctor.json", recording: document.json)))
    }

    @Test("export --format har (with the verdict)") func har() throws {
        let data = HARExport(diagnoser: Fixtures.diagnoser, version: "9.9").export(exchanges)
        let actual = String(decoding: data, as: UTF8.self)
        #expect(actual == (try Fixtures.golden("export.har", recording: actual)))
    }

    @Test("the documents still read back as the JSON they were") func parses() throws {
        for text in [Render.listJSON(exchanges), Render.showJSON(exchanges[1])] + exchanges.map(Render.tailJSONLine) {
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil)
        }
        #expect(!Render.tailJSONLine(exchanges[0]).contains("\n"))
    }
}
