import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

/// The live diagnosis's history: what it keeps, its limit, ids given after storing.
@Suite("FlowHistory")
struct FlowHistoryTests {
    let diagnoser = Diagnoser(redactor: Scenario.redactor)

    private func redacted(_ e: Exchange) -> Exchange { Scenario.redactor.redact(e) }

    @Test func keepsFlowStepsNotAPICallsAndDiagnoseKeepsNothing() {
        var flow = FlowHistory(diagnoser: diagnoser)
        let kept = [
            flow.append(redacted(S.authorize(at: 0))),
            flow.append(redacted(S.token(S.codeParams(), at: 5, response: S.tokens()))),
            flow.append(redacted(S.api(bearer: Miro.access, at: 6))),
            flow.append(redacted(S.http("GET", "https://miro.com/app/dashboard/", at: 7, status: 200))),
        ].map { $0 != nil }
        #expect(kept == [true, true, false, false])
        #expect(flow.count == 2)
        let api = flow.diagnose(S.api(bearer: Miro.access, at: 8, status: 401))
        #expect(!api.isFlowStep)
        let token = flow.diagnose(S.token(S.codeParams(), at: 9))
        #expect(token.isFlowStep)
        #expect(flow.count == 2, "diagnose judges without keeping")
    }

    /// The same code sent again is caught with a redacted history, and the evidence names the first
    /// use by the id it got in the database.
    @Test func codeReuseIsFoundAgainstRedactedHistoryAndNamesTheAssignedID() throws {
        var flow = FlowHistory(diagnoser: diagnoser)
        flow.append(redacted(S.authorize(at: 0)))
        let first = S.token(S.codeParams(), style: .form, at: 5, response: S.tokens())
        let firstFindings = flow.diagnose(first).findings
        #expect(firstFindings.first { $0.severity == .error } == nil)
        let appended = flow.append(redacted(first))
        let entry = try #require(appended)
        flow.assignID(42, to: entry)
        let again = S.token(S.codeParams(), style: .form, at: 6, status: 400, response: S.miroError(400, "Invalid code"))
        let againFindings = flow.diagnose(again).findings
        let finding = try #require(againFindings.first { $0.rule == "code-reused" })
        #expect(finding.severity == .error)
        #expect(finding.evidence.contains { $0.contains("#42") })
        #expect(!finding.evidence.joined().contains(Miro.code))
    }

    /// Past the limit by a quarter, the oldest steps are dropped down to the limit; ids of dropped
    /// entries are ignored.
    @Test func theLimitDropsTheOldestSteps() throws {
        var flow = FlowHistory(diagnoser: diagnoser, limit: 4)
        var entries: [FlowHistory.Entry] = []
        for i in 0...5 {
            let entry = flow.append(redacted(S.authorize(at: Double(i))))
            entries.append(try #require(entry))
            if i == 4 { #expect(flow.count == 5) }
        }
        #expect(flow.count == 4)
        flow.assignID(1, to: entries[0])  // dropped: a no-op
        #expect(flow.count == 4)
    }

    /// The incremental history judges a session as the whole-history API does.
    @Test func incrementalMatchesWholeHistory() {
        let s = correctMiroFlow(style: .form)
        var flow = FlowHistory(diagnoser: diagnoser)
        let stored = s.stored
        for (i, e) in s.exchanges.enumerated() {
            let live = flow.diagnose(e).findings
            let whole = diagnoser.diagnose(e, history: Array(stored[..<i]))
            #expect(live.map(\.rule) == whole.map(\.rule))
            if let entry = flow.append(stored[i]), let id = stored[i].id { flow.assignID(id, to: entry) }
        }
    }
}
