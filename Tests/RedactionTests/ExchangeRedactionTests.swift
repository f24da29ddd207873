import Foundation
import Testing
import TokentapCore
import Redaction

let clientID = "3074457363680401096"
let clientSecret = "Zq8sV2kLmN4pR7tW9xY1bC3dF5gH6jK0"
let miroCode = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_kQ2mW8rT5yU1iO3pA7sD9fG"
let miroAccess = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_aCcEsStOkEn1234567890abcdefXYZ"
let miroRefresh = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_rEfReShToKeN0987654321zyxwvUTS"
let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
let plainCode = "Ab3De6Gh9Jk2Mn5Pq8"

func role(_ text: String) -> String? { Placeholder.all(in: text).first?.role }

@Suite struct QueryAndFormTests {
    @Test func tokenRequestInTheQueryString() throws {
        let target = "/v1/oauth/token?grant_type=authorization_code&client_id=\(clientID)&client_secret=\(clientSecret)"
            + "&code=\(plainCode)&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=st4te-XYZ&code_challenge=abcCHAL"
        let e = redactor.redact(exchange(target: target))
        #expect(leaks(clientSecret, in: e).isEmpty)
        #expect(leaks(plainCode, in: e).isEmpty)
        #expect(e.target.hasPrefix("/v1/oauth/token?grant_type=authorization_code&client_id=\(clientID)&client_secret=redacted.client_secret."))
        #expect(e.target.contains("&code=redacted.code."))
        #expect(e.target.hasSuffix("&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=st4te-XYZ&code_challenge=abcCHAL"))
        #expect(e.target.contains(redactor.placeholder(role: "client_secret", value: clientSecret)))
        #expect(e.keepsSecrets == false)
    }

    @Test(arguments: ["client_secret", "client-secret", "clientSecret", "CLIENT_SECRET", "ClientSecret"])
    func parameterNameVariants(_ name: String) {
        let e = redactor.redact(exchange(target: "/t?\(name)=\(clientSecret)"))
        #expect(leaks(clientSecret, in: e).isEmpty)
        #expect(e.target == "/t?\(name)=" + redactor.placeholder(role: "client_secret", value: clientSecret))
    }

    @Test(arguments: [("code", "code"), ("code_verifier", "code_verifier"), ("access_token", "access_token"),
                      ("refresh_token", "refresh_token"), ("id_token", "id_token"), ("token", "token"),
                      ("assertion", "assertion"), ("client_assertion", "client_assertion"), ("password", "password"),
                      ("api_key", "api_key"), ("apiKey", "api_key"), ("secret", "secret"), ("accessToken", "access_token"),
                      ("refreshToken", "refresh_token"), ("clientSecret", "client_secret")])
    func everySecretNameInEveryPosition(_ name: String, _ expectedRole: String) {
        let secret = "S3cret-\(name)-VALUE-42"
        let e = redactor.redact(exchange(
            target: "/t?\(name)=\(secret)&ok=1",
            requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
            requestBody: "a=1&\(name)=\(secret)",
            responseHeaders: [("Content-Type", "application/json")],
            responseBody: #"{"outer":{"list":[{"\#(name)":"\#(secret)"}]},"n":1}"#))
        #expect(leaks(secret, in: e).isEmpty)
        let expected = redactor.placeholder(role: expectedRole, value: secret)
        #expect(e.target == "/t?\(name)=\(expected)&ok=1")
        #expect(body(e.request) == "a=1&\(name)=\(expected)")
        #expect(body(e.response) == #"{"outer":{"list":[{"\#(name)":"\#(expected)"}]},"n":1}"#)
    }

    @Test func nonSecretsStayReadable() {
        let query = "state=st4te&client_id=\(clientID)&redirect_uri=https%3A%2F%2Fa%2Fcb&scope=boards%3Aread"
            + "&team_id=3458764517517852417&code_challenge=E9Melhoa2Owv&grant_type=authorization_code"
            + "&response_type=code&user_id=3458764517517819000"
        let e = redactor.redact(exchange(target: "/oauth/authorize?" + query,
                                         requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                         requestBody: query))
        #expect(e.target == "/oauth/authorize?" + query)
        #expect(body(e.request) == query)
        #expect(Placeholder.all(in: dump(e)).isEmpty)
    }

    @Test func emptyValuesStayEmpty() {
        let e = redactor.redact(exchange(target: "/t?code=&client_secret=&state=x"))
        #expect(e.target == "/t?code=&client_secret=&state=x")
    }

    @Test func formBodyTrailingNewlineGetsNewlineFlagAndOtherFingerprint() throws {
        let e1 = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                          requestBody: "client_id=\(clientID)&client_secret=\(clientSecret)"))
        let e2 = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                          requestBody: "client_id=\(clientID)&client_secret=\(clientSecret)%0A"))
        #expect(leaks(clientSecret, in: e1).isEmpty && leaks(clientSecret, in: e2).isEmpty)
        let p1 = try #require(Placeholder.all(in: body(e1.request)).first)
        let p2 = try #require(Placeholder.all(in: body(e2.request)).first)
        #expect(p1.fingerprint != p2.fingerprint)
        #expect(p2.flags.contains(.lineBreak) && p2.flags.contains(.trailingWhitespace))
        #expect(p1.flags.isEmpty)
        #expect(p2.length == clientSecret.count + 1)
        #expect(body(e2.request).hasPrefix("client_id=\(clientID)&client_secret=redacted.client_secret."))
    }

    @Test func rawNewlineInFormValueIsPartOfTheValue() throws {
        let e = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                         requestBody: "client_secret=\(clientSecret)\n"))
        let p = try #require(Placeholder(parsing: String(body(e.request).dropFirst("client_secret=".count))))
        #expect(p.flags.contains(.lineBreak))
        #expect(redactor.matches(p, value: clientSecret + "\n"))
    }

    @Test func doubleEncodedCodeGetsPctFlagAndOtherFingerprint() throws {
        let e1 = redactor.redact(exchange(target: "/t?code=ab%2Fcd"))
        let e2 = redactor.redact(exchange(target: "/t?code=ab%252Fcd"))
        let p1 = try #require(Placeholder.all(in: e1.target).first)
        let p2 = try #require(Placeholder.all(in: e2.target).first)
        #expect(redactor.matches(p1, value: "ab/cd"))
        #expect(!p1.flags.contains(.percentEncoded))
        #expect(p2.flags.contains(.percentEncoded))
        #expect(redactor.matches(p2, value: "ab%2Fcd"))
        #expect(p1.fingerprint != p2.fingerprint)
    }

    @Test func plusDecodesToSpaceAndEncodedPlusSetsFlag() throws {
        let spaced = try #require(Placeholder.all(in: redactor.redact(exchange(target: "/t?client_secret=a+b")).target).first)
        #expect(redactor.matches(spaced, value: "a b"))
        let plus = try #require(Placeholder.all(in: redactor.redact(exchange(target: "/t?client_secret=a%2Bb")).target).first)
        #expect(plus.flags.contains(.plus))
        #expect(redactor.matches(plus, value: "a+b"))
    }

    @Test func userinfoPasswordInAbsoluteTarget() {
        let e = redactor.redact(exchange(target: "http://bob:hunter2pass@api.miro.com/x?y=1"))
        #expect(leaks("hunter2pass", in: e).isEmpty)
        #expect(e.target == "http://bob:" + redactor.placeholder(role: "password", value: "hunter2pass") + "@api.miro.com/x?y=1")
    }

    @Test func shapesInThePath() {
        let e = redactor.redact(exchange(method: "GET", target: "/v1/tokens/\(miroAccess)/info"))
        #expect(leaks(miroAccess, in: e).isEmpty)
        #expect(e.target == "/v1/tokens/" + redactor.placeholder(role: "miro_token", value: miroAccess) + "/info")
    }
}

@Suite struct SameValueAcrossExchangesTests {
    @Test func codeInLocationEqualsCodeInTokenRequest() throws {
        // The authorize redirect carries the code percent-encoded; the token request sends it in a
        // JSON body (unescaped) and in a form body: one value, one placeholder.
        let code = "abc/def+ghi=="
        let redirect = redactor.redact(exchange(method: "GET", target: "/oauth/authorize?response_type=code", status: 302,
            responseHeaders: [("Location", "https://app.example/cb?code=abc%2Fdef%2Bghi%3D%3D&state=s1&client_id=\(clientID)")]))
        let token = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/json")],
                                             requestBody: #"{"code":"abc\/def+ghi=="}"#))
        let form = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                            requestBody: "code=abc%2Fdef%2Bghi%3D%3D"))
        let location = try #require(header(redirect.response, "Location"))
        #expect(location.hasPrefix("https://app.example/cb?code=redacted.code."))
        #expect(location.hasSuffix("&state=s1&client_id=\(clientID)"))
        let a = try #require(Placeholder.all(in: location).first)
        let b = try #require(Placeholder.all(in: body(token.request)).first)
        let c = try #require(Placeholder.all(in: body(form.request)).first)
        #expect(a == b && b == c)
        #expect(a.flags == [.plus])
        for e in [redirect, token, form] { #expect(leaks(code, in: e).isEmpty) }
        #expect(!location.contains("abc%2Fdef"))
    }

    @Test func sameBearerTwoExchangesSamePlaceholder() {
        let e1 = redactor.redact(exchange(method: "GET", target: "/v2/boards", requestHeaders: [("Authorization", "Bearer \(miroAccess)")]))
        let e2 = redactor.redact(exchange(method: "GET", target: "/v2/boards/x", requestHeaders: [("authorization", "Bearer \(miroAccess)")]))
        #expect(header(e1.request, "Authorization") == header(e2.request, "Authorization"))
        #expect(header(e1.request, "Authorization") == "Bearer " + redactor.placeholder(role: "access_token", value: miroAccess))
    }

    @Test func redactionIsIdempotent() {
        let e = exchange(target: "/t?code=\(plainCode)", requestHeaders: [("Authorization", "Basic " + Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()),
                                                                      ("Cookie", "sid=abc123def")],
                         requestBody: "client_secret=\(clientSecret)", responseBody: #"{"access_token":"\#(miroAccess)"}"#)
        let once = redactor.redact(e)
        #expect(redactor.redact(once) == once)
    }
}
