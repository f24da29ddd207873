import Foundation
import Redaction
import Testing
import TokentapCore

@Suite("Pseudonymizer")
struct PseudonymizerTests {
    @Test("e-mail addresses become stable pseudonyms, also %40-encoded")
    func emails() {
        var p = Pseudonymizer()
        let out = p.text("from jane.doe@corp.example to bob@x.io, again Jane.Doe@corp.example and jane.doe%40corp.example")
        #expect(!out.contains("jane") && !out.contains("Jane") && !out.contains("bob@"))
        #expect(out == "from user1@example.invalid to user2@example.invalid, again user1@example.invalid and user1%40example.invalid")
    }

    @Test("query and form ids: same id, same pseudonym; other parameters untouched")
    func queryIDs() {
        var p = Pseudonymizer()
        let location = p.text("https://app.example/cb?code=abc&state=s1&client_id=3074457363680401096&team_id=3458764516184293832")
        let form = p.text("team_id=3458764516184293832&user_id=3458764517517852417&grant_type=authorization_code")
        #expect(!location.contains("3458764516184293832") && !form.contains("3458764516184293832") && !form.contains("3458764517517852417"))
        #expect(location.contains("client_id=3074457363680401096") && location.contains("code=abc&state=s1"))
        let team = location.components(separatedBy: "team_id=").last!
        #expect(form.hasPrefix("team_id=\(team)&user_id="))
        #expect(team.count == 19 && team.allSatisfy(\.isNumber))
        #expect(form.hasSuffix("&grant_type=authorization_code"))
    }

    @Test("JSON: id keys keep string or number form; owner objects lose id and name; other bytes kept")
    func json() throws {
        var p = Pseudonymizer()
        let body = #"{"user_id":"3458764517517852417","team_id": 3458764516184293832,"scope":"boards:read","#
            + #""createdBy":{"type":"user","id":"3458764517517852417","name":"Jane Doe"},"#
            + #""team":{"id":"3458764516184293832","name":"Acme Design"},"username":"jdoe","access_token":"redacted.access_token.0123456789ab.40"}"#
        let out = p.text(body)
        for secret in ["3458764517517852417", "3458764516184293832", "Jane Doe", "Acme Design", "jdoe"] {
            #expect(!out.contains(secret), "\(secret) in \(out)")
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let user = try #require(object["user_id"] as? String)
        #expect(object["team_id"] is NSNumber)  // a number stays a number
        #expect((object["createdBy"] as? [String: Any])?["id"] as? String == user)  // same id, same pseudonym
        #expect((object["createdBy"] as? [String: Any])?["name"] as? String == "User 1")
        #expect((object["createdBy"] as? [String: Any])?["type"] as? String == "user")
        #expect((object["team"] as? [String: Any])?["name"] as? String == "Team 1")
        #expect("\((object["team"] as? [String: Any])?["id"] ?? "")" == "\(object["team_id"]!)")
        #expect(object["scope"] as? String == "boards:read")
        #expect(object["access_token"] as? String == "redacted.access_token.0123456789ab.40")
        #expect(out.contains(#""team_id": 9"#))  // spacing kept
    }

    @Test("a fresh pseudonymizer starts over; an exchange is pseudonymized in URL, headers, bodies and findings")
    func exchangeFields() {
        var e = exchange(method: "GET", target: "/v1/oauth-token?user_id=111",
                         requestHeaders: [("X-User", "ann@corp.example")],
                         status: 302, responseHeaders: [("Location", "https://app/cb?team_id=222")],
                         responseBody: #"{"user":{"id":"111","name":"Ann"}}"#)
        e.findings = [Finding(rule: "r", severity: .info, confidence: .certain, exchange: 1, title: "for ann@corp.example",
                              evidence: ["team_id=222"], fix: "", reference: "")]
        var p = Pseudonymizer()
        let out = p.pseudonymize(e)
        #expect(out.target == "/v1/oauth-token?user_id=9000000000000000001")
        #expect(out.request.headers.first?.value == "user1@example.invalid")
        #expect(out.response.headers.first?.value == "https://app/cb?team_id=9000000000000000002")
        #expect(String(decoding: out.response.body, as: UTF8.self) == #"{"user":{"id":"9000000000000000001","name":"User 1"}}"#)
        #expect(out.findings.first?.title == "for user1@example.invalid")
        #expect(out.findings.first?.evidence == ["team_id=9000000000000000002"])
        var fresh = Pseudonymizer()
        #expect(fresh.text("team_id=222") == "team_id=9000000000000000001")
    }
}
