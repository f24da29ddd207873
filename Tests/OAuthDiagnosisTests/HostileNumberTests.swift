import Foundation
import OAuthDiagnosis
import Redaction
import Testing
import TokentapCore

/// Issue 26's fuzzing regressions: numbers an attacker controls (a client's JWT claims, an
/// upstream's `expires_in`) that used to reach `Int(_:)` out of range and trap, taking the proxy
/// (the diagnosis runs in its capture pipeline) or `doctor` down.
@Suite("Hostile numbers in the diagnosis")
struct HostileNumberTests {
    static func jwt(_ claims: [String: Any]) -> String {
        func b64(_ d: Data) -> String {
            d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return b64(json(["alg": "RS256"])) + "." + b64(json(claims)) + ".c2ln"
    }

    static func assertion(_ claims: [String: Any]) -> Scenario {
        var s = Scenario()
        s.add(S.token([("grant_type", "client_credentials"),
                       ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                       ("client_assertion", jwt(claims))], style: .form, at: 0, status: 401,
                      response: json(["error": "invalid_client"]), url: "https://idp.example.com/token"))
        return s
    }

    @Test("JWT claims of ±1e300 seconds: jwt-clock-skew says so, with the span in days, no trap")
    func hugeJWTClaims() {
        let past = Self.assertion(["iat": 0, "exp": -1e300]).findings()
        #expect(past.rule("jwt-clock-skew")?.severity == .error)
        #expect(past.evidenceContains("jwt-clock-skew", "exp is 1.2e+295d before the proxy clock"), "\(past.map(\.evidence))")
        let future = Self.assertion(["iat": 1e300, "exp": 1.7e308]).findings()
        #expect(future.evidenceContains("jwt-clock-skew", "iat is 1.2e+295d after the proxy clock"), "\(future.map(\.evidence))")
        // In range, the usual form.
        let now = S.t0.timeIntervalSince1970
        #expect(Self.assertion(["exp": now - 600]).findings().evidenceContains("jwt-clock-skew", "exp is 10m 00s before"))
    }

    @Test("an expires_in of -1e300, 1e300, nan or inf from the token endpoint is ignored; the 401 later is judged, no trap",
          arguments: ["-1e300", "1e300", "nan", "inf", "-inf"])
    func hostileExpiresIn(_ value: String) {
        var s = Scenario()
        s.add(S.authorize())
        let tokens = json(["access_token": Miro.access, "refresh_token": Miro.refresh, "token_type": "bearer",
                           "expires_in": value, "scope": "boards:read"])
        s.add(S.token(S.codeParams(), at: 5, response: tokens))
        s.add(S.api(bearer: Miro.access, at: 5 + 75 * 60, status: 401))
        // Miro's documented lifetime (3599 s) stands in for the unusable value.
        let f = s.findings()
        #expect(f.evidenceContains("access-token-expired", "expires_in 3599 s"), "\(f.map(\.rule))")
        let stored = s.exchanges.enumerated().map { n, e -> Exchange in
            var r = Scenario.redactor.redact(e)
            r.id = Int64(n + 1)
            return r
        }
        let timeline = s.diagnoser.timeline(stored)
        #expect(timeline.contains { $0.summary.contains("tokens issued") && !$0.summary.contains("expires in") }, "\(timeline.map(\.summary))")
        #expect(timeline.contains { $0.step == "api call" && $0.summary.contains("(expires_in 3599)") }, "\(timeline.map(\.summary))")
    }

    @Test("a number-valued expires_in of 1e300 is ignored too")
    func numericHugeExpiresIn() {
        var s = Scenario()
        s.add(S.authorize())
        s.add(S.token(S.codeParams(), at: 5, response: json(["access_token": Miro.access, "expires_in": -1e300])))
        s.add(S.api(bearer: Miro.access, at: 5 + 75 * 60, status: 401))
        #expect(s.findings().evidenceContains("access-token-expired", "expires_in 3599 s"))
    }
}
