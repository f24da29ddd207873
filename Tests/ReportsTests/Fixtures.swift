import Foundation
import OAuthDiagnosis
import Redaction
import TokentapCore

/// The fixed exchanges the exporter and document tests run on: `HTMLReportTests.exchanges()` (an
/// authorize, a failed token exchange with findings, a tunnel row, a 502 the proxy answered) plus a
/// closed WebSocket row, all redacted.
enum Fixtures {
    static let redactor = HTMLReportTests.redactor
    static let diagnoser = HTMLReportTests.diagnoser

    static func websocket() -> Exchange {
        var ws = WebSocketSummary(key: "k", open: false, framesClient: 3, framesServer: nil, bytesClient: 120, bytesServer: 4096,
                                  closeCode: 1000, closedBy: "client")
        ws.messages = [WebSocketMessage(time: HTMLReportTests.at(6.25), type: "send", opcode: 1, length: 40)]
        ws.messagesDropped = 2
        return Exchange(
            id: 5, session: "s1", kind: .websocket, started: HTMLReportTests.at(6), timings: Timings(connect: 1.5, tls: 2.25, total: 812.5),
            host: "api.miro.com", method: "GET", target: "/ws/board?x=1",
            request: MessageRecord(headers: [HeaderField(name: "Upgrade", value: "websocket")]),
            status: 101, reason: "Switching Protocols", websocket: ws)
    }

    static func exchanges() -> [Exchange] {
        HTMLReportTests.exchanges() + [websocket()]
    }

    /// The folder of the golden files (next to this file).
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// The golden file `name`. With `TOKENTAP_RECORD_GOLDEN=1` in the environment, `actual` is
    /// written to it first (to record a deliberate change of a document's shape; review the diff).
    static func golden(_ name: String, recording actual: String) throws -> String {
        let url = goldenDirectory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["TOKENTAP_RECORD_GOLDEN"] == "1" {
            try actual.write(to: url, atomically: true, encoding: .utf8)
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
