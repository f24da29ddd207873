import Foundation
import Testing
import TokentapCore
import Redaction

@Suite struct TextRedactionTests {
    @Test func jsonInsideAnHTMLAttribute() {
        let html = #"<div data-config="{&quot;refresh_token&quot;:&quot;attrREFRESH1&quot;,&quot;scope&quot;:&quot;boards:read&quot;}"></div>"#
        let out = redactor.redactText(html)
        #expect(!out.contains("attrREFRESH1"))
        #expect(out.contains(redactor.placeholder(role: "refresh_token", value: "attrREFRESH1")))
        #expect(out.contains("&quot;scope&quot;:&quot;boards:read&quot;}\"></div>"))
    }

    @Test func percentEncodedJSONInAQueryParameter() {
        let json = #"{"access_token":"qsTOKEN99","n":1}"#
        let target = "/cb?payload=" + json.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! + "&state=s"
        let e = redactor.redact(exchange(method: "GET", target: target))
        #expect(leaks("qsTOKEN99", in: e).isEmpty)
        #expect(e.target.hasSuffix("&state=s"))
        #expect(e.target.hasPrefix("/cb?payload="))
    }

    @Test func liveLineHelpers() {
        #expect(redactor.redactURL("https://api.miro.com/v1/oauth/token?code=liveCODE1&state=x")
                == "https://api.miro.com/v1/oauth/token?code=" + redactor.placeholder(role: "code", value: "liveCODE1") + "&state=x")
        #expect(redactor.redactForm("a=1&password=pw%20x") == "a=1&password=" + redactor.placeholder(role: "password", value: "pw x"))
        #expect(redactor.redactShapes(in: "see \(jwt) and code=notRedactedByShape")
                == "see " + redactor.placeholder(role: "jwt", value: jwt) + " and code=notRedactedByShape")
        #expect(redactor.redactText("plain text without secrets, x=1") == "plain text without secrets, x=1")
    }

    @Test func secretNames() {
        #expect(SecretClassifier.role(forName: "clientSecret") == "client_secret")
        #expect(SecretClassifier.role(forName: "REFRESH-TOKEN") == "refresh_token")
        for name in ["state", "client_id", "redirect_uri", "scope", "team_id", "code_challenge", "grant_type",
                     "response_type", "user_id", "token_type", "expires_in", "code_challenge_method"] {
            #expect(SecretClassifier.role(forName: name) == nil, "\(name)")
        }
        #expect(SecretClassifier.isSecretHeader("X-Api-Key"))
        #expect(!SecretClassifier.isSecretHeader("X-RateLimit-Remaining"))
        #expect(!SecretClassifier.isSecretHeader("Content-Type"))
    }

    @Test func purityAndKeysMatter() {
        let e = exchange(target: "/t?code=pureCODE", requestBody: #"{"client_secret":"pureSECRET"}"#)
        #expect(redactor.redact(e) == redactor.redact(e))
        let other = Redactor(key: Data(repeating: 9, count: 32))
        #expect(other.redact(e).target != redactor.redact(e).target)
        #expect(leaks("pureCODE", in: other.redact(e)).isEmpty)
    }
}
