import Foundation
import Testing
@testable import OAuthDiagnosis

/// `credential-formatting`'s test for an extra level of percent-encoding: the byte scan finds what
/// the regular expression `%[0-9A-Fa-f]{2}` it replaced finds.
@Suite("Percent escape scan")
struct PercentEscapeTests {
    @Test(arguments: [
        "", "%", "%2", "%2F", "a%2fb", "%zz", "%%41", "abc%4", "abc%4g", "%G1", "100%", "x%E2%82%ACy", "€%41",
        "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAB", "http%3A%2F%2Flocalhost", "%٣٣", "ünï%c3%bc", "%-1", "%a", "%aA",
    ])
    func theScanFindsWhatTheRegularExpressionFinds(_ v: String) {
        #expect(hasPercentEscape(v) == (v.range(of: "%[0-9A-Fa-f]{2}", options: .regularExpression) != nil))
    }
}
