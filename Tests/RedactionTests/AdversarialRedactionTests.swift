import Foundation
import Redaction
import Testing
import TokentapCore

/// Inputs found by trying to break the classifier and the scanners (redaction review): each test
/// failed before its fix.
@Suite struct AdversarialRedactionTests {
    func redactBody(_ text: String, _ contentType: String?) -> String {
        String(decoding: redactor.redactBody(Data(text.utf8), contentType: contentType), as: UTF8.self)
    }

    @Test("bracketed, counted and plural names: data[client_secret], client_secret[], new_password2, token2, api_keys")
    func namesWithBracketsDigitsPlurals() {
        let form = "user%5Bemail%5D=a%40b.c&user[password]=BRACKET-SECRET-1&data[client_secret]=BRACKET-SECRET-2"
            + "&client_secret[]=BRACKET-SECRET-3&new_password1=DIGIT-SECRET-4&new_password2=DIGIT-SECRET-4&token2=DIGIT-SECRET-5"
            + "&api_keys=PLURAL-SECRET-6&api_key_2=DIGIT-SECRET-7&data%5Bpassword%5D=BRACKET-SECRET-8&state=st1&client_id=42"
        let out = redactBody(form, "application/x-www-form-urlencoded")
        for s in ["BRACKET-SECRET-1", "BRACKET-SECRET-2", "BRACKET-SECRET-3", "DIGIT-SECRET-4", "DIGIT-SECRET-5",
                  "PLURAL-SECRET-6", "DIGIT-SECRET-7", "BRACKET-SECRET-8"] {
            #expect(!out.contains(s), "\(s)")
        }
        #expect(out.hasPrefix("user%5Bemail%5D=a%40b.c&user[password]=redacted.user_password."))
        #expect(out.contains("&new_password2=redacted.new_password2."))
        #expect(out.hasSuffix("&state=st1&client_id=42"))
        // The same names in a query, JSON, a text line and free text.
        let url = redactor.redactURL("https://app/x?data[client_secret]=BRACKET-SECRET-9&token2=DIGIT-SECRET-10&state=s")
        #expect(!url.contains("BRACKET-SECRET-9") && !url.contains("DIGIT-SECRET-10") && url.hasSuffix("&state=s"))
        let json = redactBody(#"{"api_keys":["PLURAL-SECRET-11"],"password2":"DIGIT-SECRET-12","keys":[{"kid":"k1","n":"AQAB"}]}"#, "application/json")
        #expect(!json.contains("PLURAL-SECRET-11") && !json.contains("DIGIT-SECRET-12"))
        #expect(json.contains(#""keys":[{"kid":"k1","n":"AQAB"}]"#))  // a JWKS is public
        let text = redactor.redactText("rejected: data[password]=BRACKET-SECRET-13 (too short)")
        #expect(!text.contains("BRACKET-SECRET-13"))
        // Findings quote through the same classifier.
        #expect(redactor.redactValue("DIGIT-SECRET-14", named: "new_password1").hasPrefix("redacted.new_password1."))
        #expect(redactor.redactValue("BRACKET-SECRET-15", named: "data[client_secret]").hasPrefix("redacted.data_client_secret."))
        // Header names too: `Cookie2`.
        let e = redactor.redact(exchange(requestHeaders: [("Cookie2", "DIGIT-SECRET-16")]))
        #expect(leaks("DIGIT-SECRET-16", in: e).isEmpty)
        // Still not secrets.
        for name in ["client_id2", "state[]", "expires_in", "status_code", "public_keys", "keys", "x509_cert_url", "oauth2_scope"] {
            #expect(!SecretClassifier.isSecret(name), "\(name)")
        }
    }
}
