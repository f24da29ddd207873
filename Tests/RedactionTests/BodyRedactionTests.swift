import Foundation
import Testing
import TokentapCore
import Redaction

@Suite struct BodyRedactionTests {
    @Test func tokenResponseKeepsBigIntegersAndLayout() {
        let json = """
        {
          "user_id": 3458764517517819000,
          "team_id": 3458764517517852417,
          "access_token" : "\(miroAccess)",
          "refresh_token":"\(miroRefresh)",
          "expires_in": 3599, "scope": "boards:read boards:write", "token_type": "bearer",
          "ratio": 1.5e10, "ok": true, "none": null
        }
        """
        let e = redactor.redact(exchange(responseHeaders: [("Content-Type", "application/json")], responseBody: json))
        #expect(leaks(miroAccess, in: e).isEmpty && leaks(miroRefresh, in: e).isEmpty)
        let expected = json
            .replacingOccurrences(of: miroAccess, with: redactor.placeholder(role: "access_token", value: miroAccess))
            .replacingOccurrences(of: miroRefresh, with: redactor.placeholder(role: "refresh_token", value: miroRefresh))
        #expect(body(e.response) == expected)
        #expect(body(e.response).contains("\"team_id\": 3458764517517852417,"))
    }

    @Test func jsonEscapesAreDecodedBeforeFingerprinting() throws {
        let e = redactor.redact(exchange(requestBody: #"{"client_secret":"a\"b\\c\u00e9\n","other":"x\ny"}"#))
        let p = try #require(Placeholder.all(in: body(e.request)).first)
        #expect(redactor.matches(p, value: "a\"b\\cé\n"))
        #expect(p.flags.contains(.lineBreak) && p.flags.contains(.trailingWhitespace))
        #expect(body(e.request).hasSuffix(#","other":"x\ny"}"#))
    }

    @Test func deepJSONAndArraysUnderSecretKeys() {
        let json = #"{"data":[{"meta":{"auth":{"clientSecret":"deepSECRET1","refreshToken":"deepREFRESH2"}}}],"# +
            #""tokens":{"id_token":["arrTOKEN3","arrTOKEN4"]},"state":"keepSTATE"}"#
        let e = redactor.redact(exchange(responseBody: json))
        for s in ["deepSECRET1", "deepREFRESH2", "arrTOKEN3", "arrTOKEN4"] { #expect(leaks(s, in: e).isEmpty, "\(s)") }
        #expect(body(e.response).contains(#""state":"keepSTATE"}"#))
        #expect(body(e.response).contains(redactor.placeholder(role: "id_token", value: "arrTOKEN4")))
    }

    @Test func miroErrorEnvelopeCodeStaysReadableButAuthorizationCodeDoesNot() {
        let error = #"{"status": 401, "code": "oauthError", "message": "Redirect URI mismatch.", "type": "error"}"#
        let e = redactor.redact(exchange(status: 401, responseHeaders: [("Content-Type", "application/json")], responseBody: error))
        #expect(body(e.response) == error)
        let e2 = redactor.redact(exchange(responseBody: #"{"code":"oauthCode123","redirect_uri":"https://a/cb"}"#))
        #expect(leaks("oauthCode123", in: e2).isEmpty)
        // An error envelope does not protect a code that is not an identifier.
        let e3 = redactor.redact(exchange(responseBody: #"{"code":"\#(miroCode)","message":"x"}"#))
        #expect(leaks(miroCode, in: e3).isEmpty)
    }

    @Test func jsonLabelledForm() {
        let e = redactor.redact(exchange(requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                         requestBody: #"{"clientId":"\#(clientID)","clientSecret":"\#(clientSecret)","accessToken":"\#(miroAccess)"}"#))
        #expect(leaks(clientSecret, in: e).isEmpty && leaks(miroAccess, in: e).isEmpty)
        #expect(body(e.request).hasPrefix(#"{"clientId":"\#(clientID)","clientSecret":"redacted.client_secret."#))
    }

    @Test func formLabelledJSONAndFormWithoutContentType() {
        for headers in [[("Content-Type", "application/json")], [], [("Content-Type", "text/plain")]] {
            let e = redactor.redact(exchange(requestHeaders: headers,
                                             requestBody: "grant_type=refresh_token&refresh_token=\(miroRefresh)&client_secret=\(clientSecret) \n"))
            #expect(leaks(miroRefresh, in: e).isEmpty && leaks(clientSecret, in: e).isEmpty)
            #expect(body(e.request).hasPrefix("grant_type=refresh_token&refresh_token=redacted.refresh_token."))
            #expect(Placeholder.all(in: body(e.request)).last?.flags.contains(.lineBreak) == true)
        }
    }

    @Test func plainTextAndHTMLByShape() {
        let html = "<html><body><p>Your token: \(jwt)</p><script>var t = \"\(miroAccess)\";"
            + "window.cfg = {\"refresh_token\": \"htmlREFRESH9\"};</script></body></html>"
        let e = redactor.redact(exchange(responseHeaders: [("Content-Type", "text/html; charset=utf-8")], responseBody: html))
        let e2 = redactor.redact(exchange(requestHeaders: [("Content-Type", "text/plain")], requestBody: "jwt=\(jwt)\n see \(jwt)"))
        for s in [jwt, miroAccess, "htmlREFRESH9"] { #expect(leaks(s, in: e).isEmpty, "\(s)") }
        #expect(leaks(jwt, in: e2).isEmpty)
        #expect(body(e.response).hasPrefix("<html><body><p>Your token: " + redactor.placeholder(role: "jwt", value: jwt) + "</p>"))
    }

    @Test func nestedURLAndFormInJSONStrings() {
        let json = #"{"url":"https:\/\/app.example\/cb?code=nestedCODE1&state=s","form":"a=1&client_secret=nestedSECRET2","#
            + #""inner":"{\"access_token\":\"nestedTOKEN3\"}","enc":"https://x/?next=%2Fcb%3Fcode%3DencCODE4"}"#
        let e = redactor.redact(exchange(responseBody: json))
        for s in ["nestedCODE1", "nestedSECRET2", "nestedTOKEN3", "encCODE4"] { #expect(leaks(s, in: e).isEmpty, "\(s)") }
        #expect(body(e.response).contains("&state=s"))
    }

    @Test func truncatedJSONStillHidesThePartialSecret() {
        let full = #"{"expires_in":3599,"access_token":"\#(miroAccess)","refresh_token":"x"}"#
        let cut = String(full.prefix(60))
        var message = MessageRecord(body: Data(cut.utf8), truncated: true)
        message.headers = [HeaderField(name: "Content-Type", value: "application/json")]
        let out = redactor.redact(message)
        let partial = String(cut.split(separator: "\"").last!)
        #expect(partial.count > 10)
        #expect(!body(out).contains(partial))
        #expect(body(out).hasPrefix(#"{"expires_in":3599,"access_token":"redacted.access_token."#))
    }

    @Test func truncatedInsideAMultibyteCharacterStaysUTF8Path() {
        var bytes = Array(#"{"client_secret":"\#(clientSecret)","name":"é"#.utf8)
        bytes.removeLast()  // cut é in half
        let out = redactor.redact(MessageRecord(body: Data(bytes), truncated: true))
        #expect(!String(decoding: out.body, as: UTF8.self).contains(clientSecret))
        #expect(out.body.last == bytes.last)
    }

    @Test func compressedBodyThatCouldNotBeDecodedIsDropped() {
        let m = MessageRecord(headers: [HeaderField(name: "Content-Encoding", value: "gzip")],
                              body: Data([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]), wireSize: 6)
        let out = redactor.redact(m)
        #expect(out.body.isEmpty && out.truncated)
        // Decoded by the store: scanned like any other body.
        var decoded = m
        decoded.body = Data(#"{"access_token":"\#(miroAccess)"}"#.utf8)
        decoded.decodedFrom = "gzip"
        let out2 = redactor.redact(decoded)
        #expect(!out2.truncated)
        #expect(body(out2) == #"{"access_token":"\#(redactor.placeholder(role: "access_token", value: miroAccess))"}"#)
    }

    @Test func binaryBodyReplacedBytewise() {
        var bytes: [UInt8] = [0x00, 0xFF, 0xFE, 0x80]
        bytes += Array("token=\(jwt)".utf8) + [0xC3, 0x28, 0x00] + Array(miroAccess.utf8) + [0xFF]
        let out = redactor.redact(MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/octet-stream")],
                                                body: Data(bytes)))
        let expected: [UInt8] = [0x00, 0xFF, 0xFE, 0x80] + Array("token=\(redactor.placeholder(role: "token", value: jwt))".utf8)
            + [0xC3, 0x28, 0x00] + Array(redactor.placeholder(role: "miro_token", value: miroAccess).utf8) + [0xFF]
        #expect([UInt8](out.body) == expected)
    }

    @Test func multipartSecretFields() {
        let boundary = "----formBoundary7MA4YWxk"
        let multipart = "--\(boundary)\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n\(clientID)\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\n\(clientSecret)\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\nbinary\u{00}data \(jwt)\r\n--\(boundary)--\r\n"
        let e = redactor.redact(exchange(requestHeaders: [("Content-Type", "multipart/form-data; boundary=\(boundary)")],
                                         requestBody: multipart))
        #expect(leaks(clientSecret, in: e).isEmpty && leaks(jwt, in: e).isEmpty)
        #expect(body(e.request).contains("name=\"client_id\"\r\n\r\n\(clientID)\r\n"))
        #expect(body(e.request).contains("name=\"client_secret\"\r\n\r\n\(redactor.placeholder(role: "client_secret", value: clientSecret))\r\n--"))
    }

    @Test func errorReasonAndFindingEvidence() {
        let finding = Finding(rule: "credential-formatting", severity: .error, confidence: .certain,
                              title: "client_secret=\(clientSecret) has a trailing newline",
                              evidence: ["sent \"refresh_token\": \"\(miroRefresh)\"", "bearer \(jwt)"],
                              fix: "trim it", reference: "RFC 6749 §2.3.1")
        let e = redactor.redact(exchange(error: "upstream refused POST /v1/oauth/token?code=errCODE42&state=1: \(miroAccess)",
                                         findings: [finding]))
        for s in [clientSecret, miroRefresh, jwt, "errCODE42", miroAccess] { #expect(leaks(s, in: e).isEmpty, "\(s)") }
        #expect(e.findings[0].rule == "credential-formatting")
        #expect(e.findings[0].fix == "trim it")
        #expect(e.error?.hasPrefix("upstream refused POST /v1/oauth/token?code=redacted.code.") == true)
    }

    @Test func escapedJSONInsideAnErrorString() {
        let text = #"upstream said: "{\"access_token\":\"escTOKEN77\",\"scope\":\"boards:read\"}""#
        let out = redactor.redactText(text)
        #expect(!out.contains("escTOKEN77"))
        #expect(out.contains(#"\"scope\":\"boards:read\""#))
    }

    @Test func removingRedactionWouldFailTheseChecks() {
        // Guard against a test helper that cannot fail: the raw exchange leaks every planted value.
        let raw = exchange(target: "/t?code=\(plainCode)", requestHeaders: [("Authorization", "Bearer \(miroAccess)")],
                           requestBody: "client_secret=\(clientSecret)", responseBody: #"{"refresh_token":"\#(miroRefresh)"}"#)
        for s in [plainCode, miroAccess, clientSecret, miroRefresh] { #expect(!leaks(s, in: raw).isEmpty) }
        let redacted = redactor.redact(raw)
        for s in [plainCode, miroAccess, clientSecret, miroRefresh] { #expect(leaks(s, in: redacted).isEmpty) }
    }
}
