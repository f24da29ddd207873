import Foundation
import Testing

@testable import Redaction

/// ``Redactor/leakForms(of:)`` skips Foundation's replacing where there is nothing to replace: the
/// forms are the ones the plain spelling-out gives (as is, percent-, form-, JSON-escaped with and
/// without `\/`, base64), in that order, each once.
@Suite("Leak forms")
struct LeakFormsTests {
    static func reference(_ raw: String) -> [[UInt8]] {
        let json = Coding.jsonEscape(raw)
        let forms = [
            raw,
            Coding.percentEncode(raw),
            Coding.percentEncode(raw).replacingOccurrences(of: "%20", with: "+"),
            json,
            json.replacingOccurrences(of: "/", with: "\\/"),
            Data(raw.utf8).base64EncodedString(),
        ]
        var out: [[UInt8]] = []
        for f in forms where !out.contains(Array(f.utf8)) { out.append(Array(f.utf8)) }
        return out
    }

    @Test(arguments: [
        "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAB", "eyJ" + String(repeating: "a", count: 700), "pass word", "a/b/c",
        "a b/c\"d\\e", "%20literal", "ünïcödé secret", "tab\there", "+plus+", "x", "",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "http://localhost:3000/callback?x=1 2",
    ])
    func theFormsAreThePlainOnes(_ raw: String) {
        #expect(Redactor.leakForms(of: raw) == Self.reference(raw))
    }
}
