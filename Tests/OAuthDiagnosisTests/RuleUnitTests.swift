import Foundation
import Testing
@testable import OAuthDiagnosis
import TokentapCore

/// Rules as units (issue 24): no rule depends on another's findings by the order of the list, so
/// judging with the list reversed gives the same findings (only listed in another order), on the
/// sessions where the rules used to depend on each other (`code-mangled` removing
/// `credential-formatting`, `server-rejected-credentials` and `code-unknown` reading what ran before).
@Suite("Rule units")
struct RuleUnitTests {
    /// The findings on the last exchange of `s`, judged with `rules` (history redacted, as live).
    func judge(_ s: Scenario, rules: [any DiagnosisRule]) -> [String] {
        var exchanges = s.stored
        exchanges[exchanges.count - 1] = s.exchanges[exchanges.count - 1]
        let index = FlowIndex(exchanges, profiles: s.profiles, redactor: Scenario.redactor)
        return DiagnosisRules.judge(index, position: exchanges.count - 1, rules: rules)
            .map { "\($0.rule) \($0.severity) \($0.confidence) \($0.title) \($0.evidence)" }.sorted()
    }

    static var sessions: [(String, Scenario)] {
        var out: [(String, Scenario)] = []
        let issued = Miro.prefix + "abc/def+ghiJKLmnoPQRstu"
        var mangled = Scenario()
        mangled.add(Scenario.authorize(code: issued))
        mangled.add(Scenario.token(Scenario.codeParams(code: formEncode(issued)), style: .form, at: 5, status: 400, response: Scenario.miroError(400, "Invalid code")))
        out.append(("code-mangled, not credential-formatting", mangled))
        var unknown = Scenario()
        unknown.add(Scenario.authorize())
        unknown.add(Scenario.token(Scenario.codeParams(), style: .form, at: 5, response: Scenario.tokens()))
        unknown.add(Scenario.token(Scenario.codeParams(code: Miro.code2), style: .form, at: 3600, status: 401,
                                   response: Scenario.miroError(401, "Invalid authorization code.")))
        out.append(("code-unknown raised, no server-rejected-credentials", unknown))
        var rejected = Scenario()
        rejected.add(Scenario.authorize())
        rejected.add(Scenario.token(Scenario.codeParams(), style: .form, at: 5, status: 401, response: Scenario.miroError(401, "Authorization failed")))
        out.append(("server-rejected-credentials", rejected))
        var json = Scenario()
        json.add(Scenario.authorize())
        json.add(Scenario.token(Scenario.codeParams(), style: .json, at: 5, status: 400, response: Scenario.miroError(400, "Missing grant_type")))
        out.append(("body-not-form-encoded with provider-error", json))
        var twice = Scenario()
        twice.add(Scenario.authorize())
        twice.add(Scenario.token(Scenario.codeParams(code: Miro.code2), style: .form, at: 5, status: 401, response: Scenario.miroError(401, "Invalid authorization code.")))
        twice.add(Scenario.token(Scenario.codeParams(code: Miro.code2), style: .form, at: 9, status: 401, response: Scenario.miroError(401, "Invalid authorization code.")))
        out.append(("the same bad code twice", twice))
        return out
    }

    @Test("judging with the rule list reversed gives the same findings")
    func orderDoesNotMatter() {
        for (name, s) in Self.sessions {
            let forward = judge(s, rules: DiagnosisRules.all)
            #expect(!forward.isEmpty, "\(name)")
            #expect(forward == judge(s, rules: DiagnosisRules.all.reversed()), "\(name)")
        }
    }

    @Test("a rule's findings all carry its id, and a unit sees only the earlier stages' findings")
    func unitsKeepToThemselves() {
        for (name, s) in Self.sessions {
            var exchanges = s.stored
            exchanges[exchanges.count - 1] = s.exchanges[exchanges.count - 1]
            let index = FlowIndex(exchanges, profiles: s.profiles, redactor: Scenario.redactor)
            let position = exchanges.count - 1
            for rule in DiagnosisRules.all where rule.looks(at: index.observations[position]) {
                let alone = rule.findings(RuleContext(index: index, position: position))
                #expect(alone.allSatisfy { $0.rule == rule.id }, "\(name): \(rule.id) made \(alone.map(\.rule))")
            }
        }
        // The fallback stage stays silent when an earlier stage found a request-side cause.
        let json = Self.sessions[3].1
        #expect(judge(json, rules: DiagnosisRules.all).contains { $0.hasPrefix("body-not-form-encoded") })
        #expect(!judge(json, rules: DiagnosisRules.all).contains { $0.hasPrefix("server-rejected-credentials") })
        #expect(judge(json, rules: DiagnosisRules.all.filter { $0.id != "body-not-form-encoded" && $0.id != "content-type-mismatch" })
            .contains { $0.hasPrefix("server-rejected-credentials") })
    }
}
