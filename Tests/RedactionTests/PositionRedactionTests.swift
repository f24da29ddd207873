import Foundation
import Redaction
import Testing
import TokentapCore

/// Every body shape and position the classifier decides for (issue 14): names it did not know
/// before, XML, text lines, `error_uri`, Basic after form-decoding, and the last check.
@Suite struct PositionRedactionTests {
    @Test("names by their words in a form, JSON at depth 3 and a query")
    func namesByWords() {
        let form = "grant_type=authorization_code&device_code=DEV-SECRET-1&clientSecret=CAMEL-SECRET-2&private_key=PK-SECRET-3&session_token=SESS-SECRET-4&expires_in=3600&status_code=200"
        let e = redactor.redact(exchange(target: "/t?webhook_secret=QS-SECRET-5&state=s1",
                                         requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                                         requestBody: form,
                                         responseHeaders: [("Content-Type", "application/json")],
                                         responseBody: #"{"a":{"b":{"config":{"webhook_secret":"WH-SECRET-7","expires_in":"3600","status_code":"x200"}}}}"#))
        for s in ["DEV-SECRET-1", "CAMEL-SECRET-2", "PK-SECRET-3", "SESS-SECRET-4", "QS-SECRET-5", "WH-SECRET-7"] {
            #expect(leaks(s, in: e).isEmpty, "\(s)")
        }
        #expect(body(e.request).contains("grant_type=authorization_code&device_code=redacted.device_code."))
        #expect(body(e.request).hasSuffix("&expires_in=3600&status_code=200"))
        #expect(body(e.response).contains(#""expires_in":"3600","status_code":"x200""#))
        #expect(e.target.hasSuffix("&state=s1"))
    }

    @Test("only string values are secrets")
    func onlyStrings() {
        let json = #"{"token":12345678901,"secret":true,"password":null,"session":"sess-string-1"}"#
        let out = redactor.redactBody(Data(json.utf8), contentType: "application/json")
        #expect(String(decoding: out, as: UTF8.self).hasPrefix(#"{"token":12345678901,"secret":true,"password":null,"session":"redacted.session."#))
    }

    @Test("XML: elements, attributes, CDATA, entities, namespace prefixes")
    func xml() {
        let xml = """
        <?xml version="1.0"?>
        <!-- a comment with <password>not-a-value</password> -->
        <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:token="urn:x">
          <s:Body>
            <wst:RequestSecurityToken><wst:client_secret>XML-SECRET-1</wst:client_secret></wst:RequestSecurityToken>
            <cred password="ATTR-SECRET-2" user="alice" apiKey='ATTR-SECRET-3'/>
            <refresh_token><![CDATA[CDATA-SECRET-4]]></refresh_token>
            <accessToken>ENT&amp;SECRET-5</accessToken>
            <token_type>bearer</token_type>
            <code>CODE-SECRET-6</code>
            <status_code>200</status_code>
          </s:Body>
        </s:Envelope>
        """
        let out = String(decoding: redactor.redactBody(Data(xml.utf8), contentType: "application/soap+xml; charset=utf-8"), as: UTF8.self)
        for s in ["XML-SECRET-1", "ATTR-SECRET-2", "ATTR-SECRET-3", "CDATA-SECRET-4", "ENT&amp;SECRET-5", "CODE-SECRET-6"] {
            #expect(!out.contains(s), "\(s)")
        }
        // Entities are decoded before fingerprinting: the placeholder is the one of `ENT&SECRET-5`.
        #expect(out.contains("<accessToken>" + redactor.placeholder(role: "access_token", value: "ENT&SECRET-5") + "</accessToken>"))
        #expect(out.contains("<refresh_token><![CDATA[" + redactor.placeholder(role: "refresh_token", value: "CDATA-SECRET-4") + "]]></refresh_token>"))
        #expect(out.contains(#"user="alice""#))
        #expect(out.contains("<token_type>bearer</token_type>"))
        #expect(out.contains("<status_code>200</status_code>"))
        #expect(out.contains(#"xmlns:token="urn:x""#))
        #expect(out.contains("<password>not-a-value</password>"))  // inside a comment: kept
        // An element with children is not replaced as a whole.
        #expect(out.contains("<wst:RequestSecurityToken><wst:client_secret>redacted.client_secret."))
    }

    @Test("broken XML is still scanned")
    func brokenXML() {
        let xml = "<root><password>BROKEN-SECRET-1</password><token>CUT-SECRET-2"
        let out = String(decoding: redactor.redactBody(Data(xml.utf8), contentType: "text/xml"), as: UTF8.self)
        #expect(!out.contains("BROKEN-SECRET-1"))
        #expect(out.hasPrefix("<root><password>redacted.password."))
    }

    @Test("text bodies: name: value and name=value lines")
    func textLines() {
        let text = """
        # .env
        export CLIENT_SECRET="ENV SECRET 1"
        MIRO_ACCESS_TOKEN=ENV-SECRET-2
        api_key: YAML-SECRET-3
        Authorization: Bearer HDR-SECRET-4
        expires_in: 3600
        redirect_uri=http://127.0.0.1:8765/callback
        note: nothing secret here
        error_uri: https://login.microsoftonline.com/error?code=9002327
        """
        let out = String(decoding: redactor.redactBody(Data(text.utf8), contentType: "text/plain"), as: UTF8.self)
        for s in ["ENV SECRET 1", "ENV-SECRET-2", "YAML-SECRET-3", "HDR-SECRET-4"] {
            #expect(!out.contains(s), "\(s)")
        }
        #expect(out.contains("export CLIENT_SECRET=\"" + redactor.placeholder(role: "client_secret", value: "ENV SECRET 1") + "\""))
        #expect(out.contains("expires_in: 3600"))
        #expect(out.contains("redirect_uri=http://127.0.0.1:8765/callback"))
        #expect(out.contains("note: nothing secret here"))
        #expect(out.contains("error_uri: https://login.microsoftonline.com/error?code=9002327"))
    }

    @Test("error_uri keeps its error number: JSON, form, redirect Location")
    func errorURI() {
        let json = #"{"error":"invalid_request","error_description":"AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.","error_uri":"https://login.microsoftonline.com/error?code=9002327"}"#
        let out = String(decoding: redactor.redactBody(Data(json.utf8), contentType: "application/json"), as: UTF8.self)
        #expect(out == json)
        let form = "error=invalid_request&error_uri=https%3A%2F%2Flogin.microsoftonline.com%2Ferror%3Fcode%3D9002327"
        #expect(redactor.redactForm(form) == form)
        let location = "https://app.example/cb?error=invalid_request&error_uri=https://login.microsoftonline.com/error?code=9002327&state=s"
        let e = redactor.redact(exchange(status: 302, responseHeaders: [("Location", location)]))
        #expect(header(e.response, "Location") == location)
        // A real code next to it is still a code.
        let both = "https://app.example/cb?code=REAL-CODE-123&error_uri=https%3A%2F%2Fx%2Ferror%3Fcode%3D42"
        let r = redactor.redactURL(both)
        #expect(!r.contains("REAL-CODE-123"))
        #expect(r.hasSuffix("&error_uri=https%3A%2F%2Fx%2Ferror%3Fcode%3D42"))
    }

    @Test("error_uri keeps only its error number: other secrets inside it are still secrets")
    func errorURIOtherSecrets() {
        let secret = "EURI-SECRET-123"
        let ph = redactor.placeholder(role: "access_token", value: secret)
        let json = #"{"error":"x","error_uri":"https://idp.example/err?code=42&access_token=\#(secret)"}"#
        let out = String(decoding: redactor.redactBody(Data(json.utf8), contentType: "application/json"), as: UTF8.self)
        #expect(out == #"{"error":"x","error_uri":"https://idp.example/err?code=42&access_token=\#(ph)"}"#)
        let form = "error=x&error_uri=" + "https://idp.example/err?code=42&access_token=\(secret)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let redactedForm = redactor.redactForm(form)
        #expect(!redactedForm.contains(secret) && redactedForm.contains("code%3D42"))
        let text = String(decoding: redactor.redactBody(Data("error_uri: https://idp.example/err?code=42&access_token=\(secret)\n".utf8),
                                                        contentType: "text/plain"), as: UTF8.self)
        #expect(text == "error_uri: https://idp.example/err?code=42&access_token=\(ph)\n")
        #expect(redactor.redactValue("https://idp.example/err?code=42&access_token=\(secret)", named: "error_uri")
                == "https://idp.example/err?code=42&access_token=\(ph)")
    }

    @Test("a provider-error evidence line `code: \"oauthError\"` stays readable; a real code does not")
    func envelopeCodeLine() {
        #expect(redactor.redactText(#"code: "oauthError""#) == #"code: "oauthError""#)
        #expect(redactor.redactText(#"code: "SplxlOBeZQQYbYS6WxSbIA""#) != #"code: "SplxlOBeZQQYbYS6WxSbIA""#)
        let body = #"{"code":"oauthError","message":"Invalid authorization code.","status":401,"type":"error"}"#
        let finding = Finding(rule: "provider-error", severity: .info, confidence: .certain, exchange: 1, title: "Miro answered with an error",
                              evidence: ["HTTP 401", "code: \"oauthError\"", "message: \"Invalid authorization code.\""], fix: "", reference: "")
        let (e, fallbacks) = redactor.redactChecked(exchange(target: "/v1/oauth/token?code=abcdefghijk", status: 401,
                                                             responseHeaders: [("Content-Type", "application/json")],
                                                             responseBody: body, findings: [finding]))
        #expect(fallbacks.isEmpty)
        #expect(String(decoding: e.response.body, as: UTF8.self) == body)
        #expect(e.findings[0].evidence[1] == "code: \"oauthError\"")
    }

    @Test("Basic: the password is fingerprinted after RFC 6749 §2.3.1 form-decoding")
    func basicFormDecoded() {
        let secret = "s3cr3t/with+plus=and%"
        let formEncoded = "s3cr3t%2Fwith%2Bplus%3Dand%25"
        let basic = "Basic " + Data("3458764513820540928:\(formEncoded)".utf8).base64EncodedString()
        let e = redactor.redact(exchange(requestHeaders: [("Authorization", basic), ("Content-Type", "application/x-www-form-urlencoded")],
                                         requestBody: "client_secret=\(formEncoded)"))
        let expected = redactor.placeholder(role: "client_secret", value: secret)
        #expect(body(e.request) == "client_secret=\(expected)")
        let decoded = String(decoding: Data(base64Encoded: String(header(e.request, "Authorization")!.dropFirst(6)))!, as: UTF8.self)
        #expect(decoded == "3458764513820540928:\(expected)")
    }

    @Test("the last check catches what a leaky rule wrote, and says where")
    func fallbackCatchesLeakyRule() {
        let code = "LEAKY-CODE-0123456789"
        let secret = "leaky secret/+"
        // A deliberately leaky rule: it quotes the raw values inside sentences no scanner parses.
        let leaky = Finding(rule: "leaky-rule", severity: .error, confidence: .certain, exchange: 1,
                            title: "the code \(code) was bad",
                            evidence: ["secret was «\(secret)»", "percent: \(secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"],
                            fix: "base64 \(Data(code.utf8).base64EncodedString())", reference: "none")
        let raw = exchange(target: "/t?code=\(code)",
                           requestHeaders: [("Content-Type", "application/x-www-form-urlencoded")],
                           requestBody: "client_secret=leaky+secret%2F%2B", findings: [leaky])
        let plain = redactor.redact(raw)
        #expect(!leaks(code, in: plain).isEmpty)  // the ordinary pass misses it: the rule is at fault
        let (checked, fallbacks) = redactor.redactChecked(raw)
        #expect(leaks(code, in: checked).isEmpty)
        #expect(leaks(secret, in: checked).isEmpty)
        #expect(checked.findings[0].title == "the code \(redactor.placeholder(role: "code", value: code)) was bad")
        #expect(fallbacks.contains(RedactionFallback(role: "code", field: "finding leaky-rule")))
        #expect(fallbacks.contains(RedactionFallback(role: "client_secret", field: "finding leaky-rule")))
        #expect(fallbacks.map(\.description).contains("redaction fallback: code in finding leaky-rule"))
        // Nothing to catch: no report, and the result is the ordinary redaction.
        let clean = exchange(target: "/t?code=\(code)")
        let (same, none) = redactor.redactChecked(clean)
        #expect(none.isEmpty)
        #expect(same == redactor.redact(clean))
    }

    @Test("a wrongly declared Content-Encoding: scanned when marked not encoded, dropped otherwise")
    func wrongContentEncoding() {
        let json = #"{"refresh_token":"GZ-LIE-SECRET-1","expires_in":3599}"#
        var m = MessageRecord(headers: [HeaderField(name: "Content-Encoding", value: "gzip"),
                                        HeaderField(name: "Content-Type", value: "application/json")],
                              body: Data(json.utf8), decodedFrom: MessageRecord.notEncoded)
        let kept = redactor.redact(m)
        #expect(!kept.truncated)
        #expect(body(kept).hasPrefix(#"{"refresh_token":"redacted.refresh_token."#))
        m.decodedFrom = nil
        let dropped = redactor.redact(m)
        #expect(dropped.body.isEmpty && dropped.truncated)
    }
}
