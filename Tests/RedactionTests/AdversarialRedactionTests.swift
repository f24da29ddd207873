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

    @Test(".env without a leading comment, logfmt quotes, YAML items, INI sections, Python dicts")
    func textBodies() {
        // A `.env` whose first line is `NAME=value` was read as one form field.
        let env = "MIRO_CLIENT_ID=3458764513820540928\nMIRO_CLIENT_SECRET=\"ENV SECRET 1\"\nMIRO_REFRESH_TOKEN=ENV SECRET 2\n"
        let envOut = redactBody(env, "text/plain")
        #expect(!envOut.contains("ENV SECRET 1") && !envOut.contains("SECRET 2"), "\(envOut)")
        #expect(envOut.hasPrefix("MIRO_CLIENT_ID=3458764513820540928\nMIRO_CLIENT_SECRET=\""
            + redactor.placeholder(role: "miro_client_secret", value: "ENV SECRET 1") + "\"\n"))
        // A one-line form with its file's trailing newline is still a form.
        #expect(redactBody("client_id=1&client_secret=FORM-SECRET-3&state=s\n", nil)
            == "client_id=1&client_secret=" + redactor.placeholder(role: "client_secret", value: "FORM-SECRET-3") + "&state=s\n")
        // logfmt and shell: a quoted value inside a line, and the same escaped inside a JSON string.
        let logfmt = "level=error msg=\"token exchange failed\" client_secret=\"LOGFMT SECRET 4\" password='LOGFMT SECRET 5' state=st1"
        let logOut = redactBody(logfmt, "text/plain")
        #expect(!logOut.contains("LOGFMT SECRET 4") && !logOut.contains("LOGFMT SECRET 5"), "\(logOut)")
        #expect(logOut.hasSuffix("' state=st1"))
        #expect(!redactor.redactText(#"upstream: client_secret=\"ESCAPED SECRET 6\""#).contains("ESCAPED SECRET 6"))
        // YAML: a secret as the first key of a sequence item.
        let yaml = "clients:\n  - name: web\n  - password: YAML-SECRET-7\n    client_id: abc\n"
        let yamlOut = redactBody(yaml, "application/yaml")
        #expect(!yamlOut.contains("YAML-SECRET-7"))
        #expect(yamlOut.contains("  - name: web\n") && yamlOut.hasSuffix("    client_id: abc\n"))
        // An INI or TOML file starts with `[section]`: it is not a JSON array.
        let ini = "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = INI-SECRET-8\n[server]\npassword = \"INI SECRET 9\"\n"
        let iniOut = redactBody(ini, "text/plain")
        #expect(!iniOut.contains("INI-SECRET-8") && !iniOut.contains("INI SECRET 9"), "\(iniOut)")
        #expect(iniOut.hasPrefix("[default]\naws_access_key_id = AKIAEXAMPLE\n"))
        #expect(redactBody(#"[ {"password":"JSON-SECRET-10"} ]"#, "application/json").hasPrefix(#"[ {"password":"redacted.password."#))
        // Python's repr of a token (requests-oauthlib), as a body and inside an error string.
        let repr = "{'access_token': 'REPR-SECRET-11', 'token_type': 'Bearer', 'expires_in': 3600, 'refresh_token': 'REPR-SECRET-12'}"
        let reprOut = redactBody(repr, "text/plain")
        #expect(!reprOut.contains("REPR-SECRET-11") && !reprOut.contains("REPR-SECRET-12"), "\(reprOut)")
        #expect(reprOut.contains("'token_type': 'Bearer', 'expires_in': 3600"))
        #expect(!redactor.redactText("OAuth2Error: token=" + repr).contains("REPR-SECRET-11"))
    }

    @Test("HTML: the form_post response mode's hidden inputs, meta csrf-token, bare and single-quoted values")
    func htmlFormFields() {
        let html = """
        <!DOCTYPE html><html><body onload="document.forms[0].submit()">
        <form method="post" action="https://client.example.org/callback">
          <input type="hidden" name="code" value="FORMPOST-CODE-1"/>
          <input type="hidden" name="state" value="st-42"/>
          <INPUT TYPE=hidden NAME=access_token VALUE=FORMPOST-TOKEN-2>
          <input value='FORMPOST&amp;SECRET-3' name='session_token'>
        </form><meta name="csrf-token" content="CSRF-SECRET-4"><meta name="viewport" content="width=device-width">
        </body></html>
        """
        let out = redactBody(html, "text/html; charset=utf-8")
        for s in ["FORMPOST-CODE-1", "FORMPOST-TOKEN-2", "FORMPOST&amp;SECRET-3", "CSRF-SECRET-4"] {
            #expect(!out.contains(s), "\(s)")
        }
        #expect(out.contains(#"<input type="hidden" name="code" value=""# + redactor.placeholder(role: "code", value: "FORMPOST-CODE-1") + #""/>"#))
        #expect(out.contains("value='" + redactor.placeholder(role: "session_token", value: "FORMPOST&SECRET-3") + "'"))
        #expect(out.contains(#"<input type="hidden" name="state" value="st-42"/>"#))
        #expect(out.contains(#"<meta name="viewport" content="width=device-width">"#))
    }

    @Test("XML: a value split in two CDATA sections, a comment inside, a truncated element")
    func xmlContent() {
        let split = "<r><password><![CDATA[SPLIT-SECRET-1]]]]><![CDATA[>TAIL-2]]></password><user>alice</user></r>"
        let out = redactBody(split, "application/xml")
        #expect(!out.contains("SPLIT-SECRET-1") && !out.contains("TAIL-2"), "\(out)")
        // What the parser sees: `SPLIT-SECRET-1]]>TAIL-2`.
        #expect(out == "<r><password>" + redactor.placeholder(role: "password", value: "SPLIT-SECRET-1]]>TAIL-2") + "</password><user>alice</user></r>")
        let comment = redactBody("<r><client_secret>COMMENT-SECRET-3<!-- rotated --></client_secret></r>", "text/xml")
        #expect(!comment.contains("COMMENT-SECRET-3"))
        let cut = redactBody("<r><token_type>bearer</token_type><access_token>CUT-SECRET-4", "application/xml")
        #expect(cut == "<r><token_type>bearer</token_type><access_token>" + redactor.placeholder(role: "access_token", value: "CUT-SECRET-4"))
        let cutCDATA = redactBody("<r><refresh_token><![CDATA[CUT-SECRET-5", "application/xml")
        #expect(!cutCDATA.contains("CUT-SECRET-5"))
        // Unchanged: one CDATA section keeps its markers, an element with children is not a value.
        #expect(redactBody("<r><token> <![CDATA[ONE-6]]> </token></r>", "application/xml")
            == "<r><token> <![CDATA[" + redactor.placeholder(role: "token", value: "ONE-6") + "]]> </token></r>")
    }

    @Test("URLs: a hash-routed callback, a return URL encoded twice, userinfo passwords in JSON and text")
    func urls() {
        // `#/callback?code=…` (Angular/Vue hash routing) in a redirect's Location.
        let location = "https://app.example/#/callback?code=HASH-CODE-1&state=st1"
        let e = redactor.redact(exchange(status: 302, responseHeaders: [("Location", location)]))
        #expect(header(e.response, "Location") == "https://app.example/#/callback?code="
            + redactor.placeholder(role: "code", value: "HASH-CODE-1") + "&state=st1")
        // The implicit grant's fragment is unchanged.
        #expect(redactor.redactURL("https://app/cb#access_token=FRAG-2&state=s").hasSuffix("#access_token="
            + redactor.placeholder(role: "access_token", value: "FRAG-2") + "&state=s"))
        // A return URL encoded twice, in a query, a form and a JSON value.
        let twice = "/login?next=%252Fcb%253Fcode%253DTWICE-CODE-3%2526state%253Ds"
        #expect(!redactor.redactURL(twice).contains("TWICE-CODE-3"))
        #expect(!redactor.redactForm("next=%252Fcb%253Fcode%253DTWICE-CODE-4").contains("TWICE-CODE-4"))
        let json = redactBody(#"{"return_to":"%2Fcb%3Fcode%3DPCT-CODE-5%26state%3Ds","plain":"100%"}"#, "application/json")
        #expect(!json.contains("PCT-CODE-5"), "\(json)")
        #expect(json.hasSuffix(#""plain":"100%"}"#))
        // `scheme://user:password@host` outside a request target.
        let config = redactBody(#"{"database_url":"postgres://app:USERINFO-SECRET-6@db.internal:5432/app","homepage":"https://example.com:8443/a@b"}"#, "application/json")
        #expect(!config.contains("USERINFO-SECRET-6"))
        #expect(config.contains(#""postgres://app:"# + redactor.placeholder(role: "password", value: "USERINFO-SECRET-6") + "@db.internal:5432/app"))
        #expect(config.hasSuffix(#""homepage":"https://example.com:8443/a@b"}"#))
        let env = redactBody("DATABASE_URL=postgres://app:USERINFO%2FSECRET-7@db/app\nREDIS_URL: redis://:USERINFO-SECRET-8@cache:6379\n", "text/plain")
        #expect(!env.contains("USERINFO%2FSECRET-7") && !env.contains("USERINFO-SECRET-8"), "\(env)")
        #expect(env.contains("postgres://app:" + redactor.placeholder(role: "password", value: "USERINFO/SECRET-7") + "@db/app"))
        let err = redactor.redactText("dial failed: https://x-access-token:USERINFO-SECRET-9@github.com/org/repo.git")
        #expect(!err.contains("USERINFO-SECRET-9"))
    }

    @Test("Set-Cookie folded with commas: every cookie's value, not only the first")
    func foldedSetCookie() {
        let folded = "sid=FOLDED-SECRET-1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly, refresh=FOLDED-SECRET-2; Path=/auth, theme=dark"
        let e = redactor.redact(exchange(responseHeaders: [("Set-Cookie", folded)]))
        let out = header(e.response, "Set-Cookie") ?? ""
        #expect(leaks("FOLDED-SECRET-1", in: e).isEmpty && leaks("FOLDED-SECRET-2", in: e).isEmpty, "\(out)")
        #expect(out.contains("; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly, refresh=redacted.set-cookie."))
        #expect(out.contains("; Path=/auth, theme=redacted.set-cookie."))
    }

    @Test("the last check does not break placeholders that spell a raw value (password `password`)")
    func lastCheckKeepsPlaceholders() {
        let raw = exchange(requestHeaders: [("Content-Type", "application/json")],
                           requestBody: #"{"username":"alice","password":"password","client_secret":"client_secret"}"#)
        let (checked, fallbacks) = redactor.redactChecked(raw)
        let out = body(checked.request)
        #expect(fallbacks.isEmpty, "\(fallbacks)")
        #expect(out.contains(#""password":""# + redactor.placeholder(role: "password", value: "password") + "\""), "\(out)")
        #expect(out.contains(#""client_secret":""# + redactor.placeholder(role: "client_secret", value: "client_secret") + "\""), "\(out)")
        #expect(!out.contains("redacted.redacted."))
        #expect(Placeholder.all(in: out).count == 2)
        // A value that is no name stays a hit as a key: a map keyed by the session id of a cookie.
        let keyed = exchange(requestHeaders: [("Cookie", "sid=SESSION-KEY-0123456789")],
                             responseHeaders: [("Content-Type", "application/json")],
                             responseBody: #"{"SESSION-KEY-0123456789":{"user":"alice"}}"#)
        let (checkedKeyed, keyedFallbacks) = redactor.redactChecked(keyed)
        #expect(leaks("SESSION-KEY-0123456789", in: checkedKeyed).isEmpty)
        #expect(keyedFallbacks == [RedactionFallback(role: "cookie", field: "response body")])
    }

    @Test("fields described by name: {\"name\": \"CLIENT_SECRET\", \"value\": …}")
    func namedFields() {
        let json = #"{"env":[{"name":"MIRO_CLIENT_ID","value":"3458764513820540928"},{"value":"NAMED-SECRET-1","name":"MIRO_CLIENT_SECRET"},{"key":"refresh_token","value":"NAMED-SECRET-2","type":"secret"}]}"#
        let out = redactBody(json, "application/json")
        #expect(!out.contains("NAMED-SECRET-1") && !out.contains("NAMED-SECRET-2"), "\(out)")
        #expect(out.contains(#"{"name":"MIRO_CLIENT_ID","value":"3458764513820540928"}"#))
        #expect(out.contains(#"{"value":""# + redactor.placeholder(role: "miro_client_secret", value: "NAMED-SECRET-1") + #"","name":"MIRO_CLIENT_SECRET"}"#))
    }

    @Test("PEM private keys by their markers, anywhere: a file part, a text body, a JSON string under any name")
    func pemPrivateKeys() {
        let key = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7PEMSECRET1\nl0nGsecretPEMline2==\n"
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"key\"; filename=\"app.pem\"\r\nContent-Type: application/x-pem-file\r\n\r\n"
            + "-----BEGIN RSA PRIVATE KEY-----\n" + key + "-----END RSA PRIVATE KEY-----\r\n--b--\r\n"
        let out = redactBody(multipart, "multipart/form-data; boundary=b")
        #expect(!out.contains("PEMSECRET1") && !out.contains("secretPEMline2"), "\(out)")
        #expect(out.contains("-----BEGIN RSA PRIVATE KEY-----redacted.private_key."))
        #expect(out.contains("-----END RSA PRIVATE KEY-----"))
        let json = redactBody(#"{"attachment":"-----BEGIN PRIVATE KEY-----\nMIIEvQJSONPEMSECRET3\n-----END PRIVATE KEY-----\n"}"#, "application/json")
        #expect(!json.contains("JSONPEMSECRET3"))
        // A certificate is public.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAPUBLIC\n-----END CERTIFICATE-----\n"
        #expect(redactBody(cert, "text/plain") == cert)
    }

    @Test("debug dumps: Ruby's Hash#inspect, PHP's print_r, `Authorization:` inside a line")
    func debugDumps() {
        let ruby = #"{"access_token"=>"RUBY-SECRET-1", "token_type"=>"bearer", "expires_in"=>3600}"#
        let rubyOut = redactBody(ruby, "text/plain")
        #expect(rubyOut == #"{"access_token"=>""# + redactor.placeholder(role: "access_token", value: "RUBY-SECRET-1") + #"", "token_type"=>"bearer", "expires_in"=>3600}"#)
        #expect(!redactor.redactText("OmniAuth credentials: " + ruby).contains("RUBY-SECRET-1"))
        let php = "Array\n(\n    [access_token] => PHP-SECRET-2\n    [token_type] => bearer\n)\n"
        let phpOut = redactBody(php, "text/html")
        #expect(phpOut == "Array\n(\n    [access_token] => " + redactor.placeholder(role: "access_token", value: "PHP-SECRET-2") + "\n    [token_type] => bearer\n)\n")
        // A header inside a line: a logged curl command, an error string, a JSON string, a quoted value.
        let curl = redactBody("$ curl -H 'Authorization: Bearer CURL-SECRET-3' https://api.miro.com/v2/boards\n", "text/plain")
        #expect(curl == "$ curl -H 'Authorization: Bearer " + redactor.placeholder(role: "access_token", value: "CURL-SECRET-3") + "' https://api.miro.com/v2/boards\n")
        #expect(!redactor.redactText("sent authorization: Bearer LINE-SECRET-4 to the API").contains("LINE-SECRET-4"))
        #expect(redactor.redactText("sent authorization: Bearer LINE-SECRET-4 to the API").hasSuffix(" to the API"))
        #expect(!redactBody(#"{"headers":["Authorization: Bearer JSONLINE-SECRET-5"]}"#, "application/json").contains("JSONLINE-SECRET-5"))
        #expect(!redactor.redactValue("rejected Authorization: Bearer VALUE-SECRET-6", named: "error_description").contains("VALUE-SECRET-6"))
        let basic = "Basic " + Data("3458764513820540928:BASIC-SECRET-7".utf8).base64EncodedString()
        let basicOut = redactor.redactText("retrying with Proxy-Authorization: \(basic), got 407")
        #expect(leaks("BASIC-SECRET-7", in: basicOut).isEmpty)
        #expect(basicOut.hasSuffix(", got 407"))
        // Prose that only names the header is kept.
        #expect(redactor.redactText("missing Authorization: header") == "missing Authorization: header")
    }

    @Test("session ids glued in one word: ;jsessionid= in a path, PHPSESSID")
    func gluedSessionIDs() {
        let url = redactor.redactURL("https://app.example/cart;jsessionid=JSESSION-SECRET-1?item=2")
        #expect(url == "https://app.example/cart;jsessionid=" + redactor.placeholder(role: "jsessionid", value: "JSESSION-SECRET-1") + "?item=2")
        #expect(SecretClassifier.isSecret("PHPSESSID") && SecretClassifier.isSecret("sessionid"))
    }

    @Test("a form in Latin-1 (not UTF-8): the value's bytes above 0x7F are part of it")
    func latin1Form() {
        var form = Data("client_id=1&client_secret=s".utf8)
        form.append(0xE9)
        form.append(contentsOf: Array("cretLATIN1&state=st".utf8))
        let out = redactor.redactBody(form, contentType: "application/x-www-form-urlencoded; charset=ISO-8859-1")
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("cretLATIN1"), "\(text)")
        #expect(text.hasPrefix("client_id=1&client_secret=redacted.client_secret.") && text.hasSuffix("&state=st"))
    }

    @Test("JWE compact serialization: all five parts, also with an empty encrypted key (alg dir)")
    func jwe() {
        let rsa = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVydGV4dEpXRVNFQ1JFVA.dGFn"
        let dir = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.ZGlyQ2lwaGVydGV4dFNFQ1JFVA.dGFn"
        let out = redactBody(#"{"payload":"\#(rsa)","other":"\#(dir)"}"#, "application/json")
        #expect(out == #"{"payload":""# + redactor.placeholder(role: "jwt", value: rsa) + #"","other":""# + redactor.placeholder(role: "jwt", value: dir) + #""}"#)
        // A JWS followed by a sentence's period stays one JWT.
        let jws = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
        #expect(redactor.redactText("token \(jws). Next") == "token " + redactor.placeholder(role: "jwt", value: jws) + ". Next")
    }

    @Test("Miro's error code in a finding's evidence stays readable: code=\"oauthError\" next to message=")
    func envelopeCodeInEvidence() {
        let evidence = #"this response says: status="401" code="oauthError" message="Invalid authorization code" type="error""#
        let finding = Finding(rule: "code-reused", severity: .error, confidence: .certain, exchange: 1,
                              title: "The authorization code was already used", evidence: [evidence], fix: "x", reference: "r")
        let e = redactor.redact(exchange(findings: [finding]))
        #expect(e.findings[0].evidence == [evidence])
        // Without an envelope field, or with a value no error identifier looks like, `code` is a code.
        #expect(!redactor.redactText(#"callback code="SplxlOBe/ZQQ" state="x""#).contains("SplxlOBe/ZQQ"))
        #expect(!redactor.redactText(#"code="plainword""#).contains("plainword"))
    }

    @Test("multipart parts are bodies of their own type: XML in multipart/related, a .env file, a batch request")
    func multipartParts() {
        let body = "--mime\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\n\r\n"
            + "<s:Envelope><s:Body><wsse:Password>MTOM-SECRET-1</wsse:Password></s:Body></s:Envelope>\r\n"
            + "--mime\r\nContent-Disposition: form-data; name=\"config\"; filename=\".env\"\r\nContent-Type: text/plain\r\n\r\n"
            + "APP_NAME=demo\nCLIENT_SECRET=ENV FILE SECRET 2\n\r\n"
            + "--mime\r\nContent-Type: application/http\r\n\r\nGET /v2/boards HTTP/1.1\r\nAuthorization: Bearer BATCH-SECRET-3\r\n\r\n\r\n--mime--\r\n"
        let out = redactBody(body, "multipart/related; boundary=mime; type=\"application/xop+xml\"")
        for s in ["MTOM-SECRET-1", "ENV FILE SECRET 2", "BATCH-SECRET-3"] {
            #expect(!out.contains(s), "\(s) in \(out)")
        }
        #expect(out.contains("<wsse:Password>" + redactor.placeholder(role: "password", value: "MTOM-SECRET-1") + "</wsse:Password>"))
        #expect(out.contains("APP_NAME=demo\nCLIENT_SECRET=redacted.client_secret."))
        #expect(out.hasSuffix("--mime--\r\n"))
    }

    @Test("bare names: a page's script object, GraphQL arguments inside a JSON query")
    func bareNames() {
        let html = #"<script>window.__STATE__ = {user: "alice", accessToken: "SCRIPT-SECRET-1", refresh_token: 'SCRIPT-SECRET-2'};</script>"#
        let out = redactBody(html, "text/html")
        #expect(!out.contains("SCRIPT-SECRET-1") && !out.contains("SCRIPT-SECRET-2"), "\(out)")
        #expect(out.contains(#"{user: "alice", accessToken: ""#))
        let graphql = #"{"query":"mutation { login(email: \"a@b.c\", password: \"GRAPHQL-SECRET-3\") { token } }"}"#
        let gOut = redactBody(graphql, "application/json")
        #expect(!gOut.contains("GRAPHQL-SECRET-3"), "\(gOut)")
        #expect(gOut.contains(#"login(email: \"a@b.c\", password: \"redacted.password."#))
        // Not pairs: a URL, a time, prose.
        let prose = #"at 10:30 see https://x.example:8443/p "token: expired" note: "fine""#
        #expect(redactor.redactText(prose) == prose)
    }

    @Test("YAML block scalars: password: | and token: >- take the indented lines that follow")
    func yamlBlockScalars() {
        let yaml = "auth:\n  password: |\n    BLOCK-SECRET-1\n    BLOCK-SECRET-2\n  token: >-\n    FOLDED-SECRET-3\n    FOLDED-SECRET-4\n\n  client_id: abc\nother: 1\n"
        let out = redactBody(yaml, "application/yaml")
        for s in ["BLOCK-SECRET-1", "BLOCK-SECRET-2", "FOLDED-SECRET-3", "FOLDED-SECRET-4"] {
            #expect(!out.contains(s), "\(s) in \(out)")
        }
        #expect(out == "auth:\n  password: |\n    " + redactor.placeholder(role: "password", value: "BLOCK-SECRET-1\nBLOCK-SECRET-2\n")
            + "\n  token: >-\n    " + redactor.placeholder(role: "token", value: "FOLDED-SECRET-3 FOLDED-SECRET-4")
            + "\n\n  client_id: abc\nother: 1\n")
    }

    @Test("HTML attributes written by Go's html/template: &#34; quotes")
    func htmlNumericQuotes() {
        let html = #"<div id="app" data-state="{&#34;access_token&#34;:&#34;GO-SECRET-1&#34;,&#34;user&#34;:&#34;alice&#34;}"></div>"#
        let out = redactBody(html, "text/html")
        #expect(!out.contains("GO-SECRET-1"), "\(out)")
        #expect(out.contains("&#34;user&#34;:&#34;alice&#34;"))
    }

    @Test("one-time codes: verification_code, mfa_code, Auth0's oob_code and binding_code; a PGP private key block")
    func oneTimeCodesAndPGP() {
        let form = "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-oob&mfa_token=T1&oob_code=OOB-SECRET-1&binding_code=BINDING-2"
            + "&verification_code=VERIFY-3&email_verification_code=VERIFY-4&country_code=DE&status_code=200"
        let out = redactBody(form, "application/x-www-form-urlencoded")
        for s in ["OOB-SECRET-1", "BINDING-2", "VERIFY-3", "VERIFY-4"] { #expect(!out.contains(s), "\(s)") }
        #expect(out.hasSuffix("&country_code=DE&status_code=200"))
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPGPSECRET5\n-----END PGP PRIVATE KEY BLOCK-----\n"
        #expect(!redactBody(pgp, "text/plain").contains("PGPSECRET5"))
        let pub = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBGPUBLIC\n-----END PGP PUBLIC KEY BLOCK-----\n"
        #expect(redactBody(pub, "text/plain") == pub)
    }

    @Test("an error envelope keeps error codes, not authorization codes that look like identifiers")
    func envelopeCodes() {
        // A callback forwarded as JSON with `"error": null`, RFC 6749's example code next to a message.
        let forwarded = redactBody(#"{"code":"abcdefghijklmnopqrst","state":"s1","error":null}"#, "application/json")
        #expect(!forwarded.contains("abcdefghijklmnopqrst"), "\(forwarded)")
        let rfc = redactBody(#"{"code":"SplxlOBeZQQYbYS6WxSbIA","message":"received"}"#, "application/json")
        #expect(!rfc.contains("SplxlOBeZQQYbYS6WxSbIA"))
        let hex = redactBody(#"{"code":"e1b2c3d4f5a6b7c8d9e0","message":"ok"}"#, "application/json")
        #expect(!hex.contains("e1b2c3d4f5a6b7c8d9e0"))
        let msCode = redactBody(#"{"code":"M.C507_BL2.2.U.8c6b5f0a-1b2c-4d5e-8f90-123456789abc","error":"x"}"#, "application/json")
        #expect(!msCode.contains("8c6b5f0a"))
        // Miro's codes and other providers' identifiers stay readable.
        for code in ["oauthError", "tokenNotProvided", "tooManyRequests", "InvalidAuthenticationToken", "invalid_grant", "AADSTS50011", "E401"] {
            let body = #"{"status":401,"code":""# + code + #"","message":"m","type":"error"}"#
            #expect(redactBody(body, "application/json") == body, "\(code)")
        }
    }
}
