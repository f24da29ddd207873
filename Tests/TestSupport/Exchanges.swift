import Foundation
import TokentapCore

// Sample exchanges shared by RecordingTests and ReportsTests.

/// 2026-11-29T12:00:00Z plus `seconds`.
public func at(_ seconds: Double) -> Date {
    Date(timeIntervalSince1970: 1_795_953_600 + seconds)
}

public func sample(session: String = "s1", kind: ExchangeKind = .http, started: Date = at(0), host: String = "api.miro.com",
            method: String = "GET", target: String = "/v2/boards", status: Int? = 200, error: String? = nil,
            findings: [Finding] = [], requestHeaders: [HeaderField] = [], requestBody: Data = Data(),
            responseHeaders: [HeaderField] = []) -> Exchange {
    Exchange(session: session, kind: kind, started: started, timings: Timings(total: 12.5), host: host,
             method: method, target: target,
             request: MessageRecord(headers: requestHeaders, body: requestBody, wireSize: requestBody.count),
             status: status, reason: status == nil ? nil : "OK",
             response: MessageRecord(headers: responseHeaders), error: error, findings: findings)
}

public func finding(_ rule: String, _ severity: Severity = .error) -> Finding {
    Finding(rule: rule, severity: severity, confidence: .certain, title: "Title of \(rule)",
            evidence: ["sent ‹secret:code fp=ab12 len=40›", "issued ‹secret:code fp=cd34 len=40›"],
            fix: "Send the code you received.", reference: "RFC 6749 §4.1.3")
}
