import Foundation
import Testing
import TokentapCore
import Redaction

@Suite struct HeaderRedactionTests {
    @Test func bearerToken() {
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", "Bearer \(miroAccess)")]))
        #expect(leaks(miroAccess, in: e).isEmpty)
        #expect(header(e.request, "Authorization") == "Bearer " + redactor.placeholder(role: "access_token", value: miroAccess))
    }

    @Test func bearerWithTrailingNewlineKeepsTheFlag() throws {
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", "Bearer \(miroAccess)\n")]))
        #expect(leaks(miroAccess, in: e).isEmpty)
        let p = try #require(Placeholder.all(in: header(e.request, "Authorization") ?? "").first)
        #expect(p.flags.contains(.lineBreak))
        #expect(redactor.matches(p, value: miroAccess + "\n"))
    }

    @Test func basicCredentialsKeepClientIDAndStayValidBase64() throws {
        let credentials = Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", "Basic \(credentials)")]))
        #expect(leaks(clientSecret, in: e).isEmpty)
        #expect(!dump(e).contains(credentials))
        let value = try #require(header(e.request, "Authorization"))
        #expect(value.hasPrefix("Basic "))
        let decoded = try #require(Data(base64Encoded: String(value.dropFirst(6))).flatMap { String(data: $0, encoding: .utf8) })
        #expect(decoded == "\(clientID):" + redactor.placeholder(role: "client_secret", value: clientSecret))
        // The same secret sent in a form body has the same placeholder.
        let form = redactor.redact(exchange(requestBody: "client_id=\(clientID)&client_secret=\(clientSecret)"))
        #expect(body(form.request).hasSuffix(redactor.placeholder(role: "client_secret", value: clientSecret)))
    }

    @Test(arguments: ["\n", "\r\n", " "])
    func malformedBasicBecomesBasicCredentials(_ trailer: String) throws {
        // Python's base64.encodebytes appends a newline: the value is no longer strict base64.
        let credentials = Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", "Basic \(credentials)\(trailer)")]))
        #expect(leaks(clientSecret, in: e).isEmpty)
        #expect(!dump(e).contains(credentials))
        let value = try #require(header(e.request, "Authorization"))
        let p = try #require(Placeholder(parsing: String(value.dropFirst("Basic ".count))))
        #expect(p.role == "basic_credentials")
        #expect(p.flags.contains(.trailingWhitespace))
        #expect(p.flags.contains(.lineBreak) == trailer.contains("\n"))
    }

    @Test func basicWithoutColonBecomesBasicCredentials() throws {
        let credentials = Data("justonesecretvalue".utf8).base64EncodedString()
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", "Basic \(credentials)")]))
        #expect(leaks("justonesecretvalue", in: e).isEmpty)
        #expect(!dump(e).contains(credentials))
        #expect(role(header(e.request, "Authorization") ?? "") == "basic_credentials")
    }

    @Test func otherSchemesAndProxyAuthorization() {
        let e = redactor.redact(exchange(requestHeaders: [
            ("Authorization", "Digest username=\"u\", response=\"6629fae49393a05397450978507c4ef1\""),
            ("Proxy-Authorization", "Bearer proxyTokenValue123"),
            ("Authorization", "bareTokenWithoutScheme999"),
        ]))
        #expect(leaks("6629fae49393a05397450978507c4ef1", in: e).isEmpty)
        #expect(leaks("proxyTokenValue123", in: e).isEmpty)
        #expect(leaks("bareTokenWithoutScheme999", in: e).isEmpty)
        let values = e.request.headers.map(\.value)
        #expect(values[0].hasPrefix("Digest redacted.authorization."))
        #expect(values[1].hasPrefix("Bearer redacted.access_token."))
        #expect(values[2].hasPrefix("redacted.authorization."))
    }

    @Test func cookiesKeepNamesAndAttributes() throws {
        let e = redactor.redact(exchange(
            requestHeaders: [("Cookie", "session=sessVALUE111; theme=darkVALUE222; csrftoken=csrfVALUE333")],
            responseHeaders: [("Set-Cookie", "session=newSessVALUE444; Path=/; Domain=miro.com; HttpOnly; Secure; SameSite=Lax")]))
        for secret in ["sessVALUE111", "darkVALUE222", "csrfVALUE333", "newSessVALUE444"] {
            #expect(leaks(secret, in: e).isEmpty, "\(secret)")
        }
        let cookie = try #require(header(e.request, "Cookie"))
        #expect(cookie == "session=\(redactor.placeholder(role: "cookie", value: "sessVALUE111")); theme="
                + "\(redactor.placeholder(role: "cookie", value: "darkVALUE222")); csrftoken="
                + redactor.placeholder(role: "cookie", value: "csrfVALUE333"))
        let setCookie = try #require(header(e.response, "Set-Cookie"))
        #expect(setCookie == "session=\(redactor.placeholder(role: "set-cookie", value: "newSessVALUE444"))"
                + "; Path=/; Domain=miro.com; HttpOnly; Secure; SameSite=Lax")
    }

    @Test func credentialNamedHeaders() {
        let secretHeaders = ["X-Api-Key", "X-Auth-Token", "X-Session-Id", "X-Client-Secret", "X-Hub-Signature-256",
                             "Sec-WebSocket-Key", "api-key", "X-CSRF-Token"]
        let e = redactor.redact(exchange(requestHeaders: secretHeaders.enumerated().map { ($1, "hdrSecret\($0)VALUE") }))
        for (i, name) in secretHeaders.enumerated() {
            #expect(leaks("hdrSecret\(i)VALUE", in: e).isEmpty, "\(name)")
            #expect(header(e.request, name) == redactor.placeholder(role: name.lowercased(), value: "hdrSecret\(i)VALUE"))
        }
    }

    @Test func nonCredentialHeadersStayReadable() {
        let kept: [(String, String)] = [
            ("Content-Type", "application/json"), ("Content-Length", "42"), ("X-RateLimit-Limit", "100000"),
            ("X-RateLimit-Remaining", "99990"), ("X-RateLimit-Reset", "1700000000"),
            ("WWW-Authenticate", #"Bearer realm="miro", error="invalid_token""#), ("Host", "api.miro.com"),
            ("Accept", "*/*"), ("User-Agent", "python-requests/2.32"), ("Keep-Alive", "timeout=5"),
            ("Access-Control-Allow-Headers", "Authorization, X-Api-Key"), ("X-Tokentap-Session", "20240101-120000"),
        ]
        let e = redactor.redact(exchange(requestHeaders: kept, responseHeaders: kept))
        #expect(e.request.headers.map(\.value) == kept.map(\.1))
        #expect(e.response.headers.map(\.value) == kept.map(\.1))
        #expect(e.request.headers.map(\.name) == kept.map(\.0))
    }

    @Test func locationRedirectWithCodeAndFragmentTokens() throws {
        let e = redactor.redact(exchange(method: "GET", target: "/oauth/authorize", status: 302, responseHeaders: [
            ("Location", "https://app.example/cb?code=\(miroCode)&state=xyzSTATE&client_id=\(clientID)&team_id=3458764517517852417"),
            ("Content-Location", "https://app.example/done#access_token=fragTOKENvalue1&token_type=bearer"),
        ], responseBody: #"<html><a href="https://app.example/cb?code=\#(miroCode)&amp;state=xyzSTATE">continue</a></html>"#))
        #expect(leaks(miroCode, in: e).isEmpty)
        #expect(leaks("fragTOKENvalue1", in: e).isEmpty)
        let location = try #require(header(e.response, "Location"))
        #expect(location == "https://app.example/cb?code=" + redactor.placeholder(role: "code", value: miroCode)
                + "&state=xyzSTATE&client_id=\(clientID)&team_id=3458764517517852417")
        #expect(header(e.response, "Content-Location") == "https://app.example/done#access_token="
                + redactor.placeholder(role: "access_token", value: "fragTOKENvalue1") + "&token_type=bearer")
        #expect(body(e.response).contains("&amp;state=xyzSTATE\">continue</a>"))
    }

    @Test func refererAndOtherHeadersScannedByShapeAndName() {
        let e = redactor.redact(exchange(requestHeaders: [
            ("Referer", "https://app.example/cb?code=refCODEvalue77&state=s"),
            ("Link", "<https://api.miro.com/v2/x?cursor=abc&access_token=linkTOKEN55>; rel=next"),
            ("X-Debug", "token is \(jwt) ok"),
        ]))
        for s in ["refCODEvalue77", "linkTOKEN55", jwt] { #expect(leaks(s, in: e).isEmpty, "\(s)") }
        #expect(e.request.headers[1].value.hasSuffix(">; rel=next"))
        #expect(e.request.headers[2].value == "token is " + redactor.placeholder(role: "jwt", value: jwt) + " ok")
    }
}
