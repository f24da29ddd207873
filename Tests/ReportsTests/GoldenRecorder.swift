import Foundation
import OAuthDiagnosis
import Recording
import Testing
import TokentapCore

// TEMPORARY: records today's bytes (the JSONSerialization code of Render, DoctorCommand and
// TailCommand, verbatim) as golden files, before the Codable documents replace it.
@Test func recordGoldenFiles() throws {
    guard ProcessInfo.processInfo.environment["TOKENTAP_RECORD_GOLDEN"] == "1" else { return }
    let exchanges = Fixtures.exchanges()
    func write(_ name: String, _ text: String) throws {
        try text.write(to: Fixtures.goldenDirectory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    try write("list.json", Render.listJSON(exchanges))
    for e in exchanges { try write("show-\(e.id!).json", Render.showJSON(e)) }
    try write("sessions.json", Render.sessionsJSON([SessionSummary(name: "s1", firstStarted: HTMLReportTests.at(0), lastStarted: HTMLReportTests.at(6), count: 5, httpCount: 3, failures: 2)]))
    func verdictObject(_ v: Verdict) -> [String: Any] {
        [
            "exchange": Int(v.exchange), "step": v.step, "status": v.status.map { $0 as Any } ?? NSNull(),
            "cause": v.cause, "confidence": v.confidence.rawValue, "summary": v.summary, "fix": v.fix,
            "consequences": v.consequences, "alternatives": v.alternatives,
        ]
    }
    let diagnoser = Fixtures.diagnoser
    let verdicts = diagnoser.verdicts(exchanges)
    let timeline = diagnoser.timeline(exchanges)
    let findings = Diagnoser.sorted(exchanges.flatMap(\.findings))
    let object: [String: Any] = [
        "session": "s1",
        "verdicts": verdicts.map(verdictObject),
        "timeline": timeline.map {
            ["exchange": Int($0.exchange), "at": iso8601Microseconds($0.at), "step": $0.step, "summary": $0.summary] as [String: Any]
        },
        "findings": findings.map(Render.findingObject),
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    try write("doctor.json", String(decoding: data, as: UTF8.self))
    var extra: [Int64: [String: Any]] = [:]
    for v in verdicts { extra[v.exchange] = ["verdict": verdictObject(v)] }
    try write("export.har", String(decoding: HAR.export(exchanges, creatorVersion: "9.9", extensions: extra), as: UTF8.self))
    func jsonLine(_ e: Exchange) -> String {
        let pretty = Data(Render.listJSON([e]).utf8)
        guard let array = try? JSONSerialization.jsonObject(with: pretty) as? [Any], let object = array.first,
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
    try write("tail.jsonl", exchanges.map(jsonLine).joined(separator: "\n") + "\n")
}
