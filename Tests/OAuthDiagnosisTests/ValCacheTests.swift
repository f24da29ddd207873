import Foundation
import Testing
@testable import OAuthDiagnosis
import Redaction

/// ``ValCache``: the placeholder memo is bounded (starts again past ``ValCache/placeholderLimit``)
/// and what it answers is always what parsing the placeholder gives, before and after it starts again;
/// raw values are forgotten after each judgement.
@Suite("Diagnosis value memo")
struct ValCacheTests {
    let redactor = Scenario.redactor

    func placeholder(_ i: Int) -> String { redactor.placeholderValue(role: "code", value: "code-\(i)").text }

    @Test func thePlaceholderMemoStaysBoundedAndKeepsAnsweringRight() {
        let cache = ValCache()
        let n = ValCache.placeholderLimit + 10
        for i in 0..<n {
            let v = cache.value(placeholder(i), role: "code", redactor: redactor)
            #expect(v.fp == redactor.fingerprint("code-\(i)"))
            #expect(v.raw == nil)
            #expect(cache.placeholderCount <= ValCache.placeholderLimit)
        }
        // Early values, dropped when the memo started again, come back the same.
        for i in [0, 1, ValCache.placeholderLimit - 1, n - 1] {
            let v = cache.value(placeholder(i), role: "code", redactor: redactor)
            #expect(v == Val(placeholder(i), role: "code", redactor: redactor))
        }
    }

    @Test func rawValuesAreForgottenAfterTheJudgement() {
        let cache = ValCache()
        let v = cache.value("raw-code-value", role: "code", redactor: redactor)
        #expect(v.raw == "raw-code-value")
        #expect(cache.placeholderCount == 0)
        cache.forgetRawValues()
        #expect(cache.value("raw-code-value", role: "code", redactor: redactor) == v)
    }
}
