import Foundation
import OAuthDiagnosis
import Testing
import TokentapCore

@Suite struct ParameterTests {
    @Test func everyPlaceIsRead() {
        var e = S.http("POST", "https://api.miro.com/v1/oauth/token?grant_type=authorization_code&scope=a+b%2Bc", at: 0,
                       headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                                 HeaderField(name: "Authorization", value: "Basic " + Data("id%3A1:s%2Bcret".utf8).base64EncodedString())],
                       body: Data("code=abc%252F&redirect_uri=https%3A%2F%2Fapp.example%2Fcb".utf8), status: 200)
        var p = RequestParameters(e)
        #expect(p.bodyKind == .form)
        #expect(p.all("scope").first?.value == "a b+c")
        #expect(p.all("scope").first?.place == .query)
        #expect(p.value("code") == "abc%2F")
        #expect(p.first("code")?.wire == "abc%252F")
        #expect(p.value("redirect_uri") == "https://app.example/cb")
        #expect(p.all("client_id").map(\.place) == [.basic])
        // RFC 6749 §2.3.1: Basic's halves are form-decoded; the wire keeps what was sent.
        #expect(p.value("client_id") == "id:1")
        #expect(p.first("client_id")?.wire == "id%3A1")
        #expect(p.value("client_secret") == "s+cret")
        #expect(p.authorization?.problems.isEmpty == true)

        e.request.body = Data(#"{"grant_type":"refresh_token","refresh_token":"r1","n":3}"#.utf8)
        p = RequestParameters(e)
        #expect(p.bodyKind == .json)
        #expect(p.all("grant_type").map(\.place) == [.query, .json])
        #expect(p.value("n") == nil || p.all("n").first?.value == "3")

        e.request.headers = [HeaderField(name: "Content-Type", value: "multipart/form-data; boundary=XyZ")]
        e.request.body = Data("--XyZ\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nabc\r\n--XyZ--\r\n".utf8)
        p = RequestParameters(e)
        #expect(p.bodyKind == .multipart)
        #expect(p.value("code") == "abc")
    }

    @Test func textBodyWithoutContentTypeIsSniffed() {
        let e = S.http("POST", "https://api.miro.com/v1/oauth/token", at: 0, body: Data("grant_type=refresh_token&refresh_token=r".utf8), status: 400)
        let p = RequestParameters(e)
        #expect(p.bodyKind == .form)
        #expect(p.contentType == nil)
        let t = S.http("POST", "https://api.miro.com/v1/oauth/token", at: 0, body: Data("hello world".utf8), status: 400)
        #expect(RequestParameters(t).bodyKind == .text)
    }
}
