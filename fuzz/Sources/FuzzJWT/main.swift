import FuzzCommon
import Foundation
import Redaction
import TokentapCore

/// JWTs: the input as a whole assertion, and as the claims of `eyJhbGciOiJub25lIn0.CLAIMS.` (so the
/// diagnoser's claim decoder reads arbitrary JSON), in a `client_assertion` token request (the
/// `jwt-clock-skew` rule) and through the redactor's JWT shape scan.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let raw = Fuzz.text(start, count)
    let claims = Fuzz.data(start, count).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
    for jwt in [raw, "eyJhbGciOiJub25lIn0.\(claims).", "eyJhbGciOiJub25lIn0.\(claims).\(raw)"] {
        _ = Fuzz.redactor.redactShapes(in: "token " + jwt)
        let form = "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
            + (jwt.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        Fuzz.capture(Fuzz.tokenRequest(headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                       body: Data(form.utf8)))
    }
    return 0
}
