import FuzzCommon
import Foundation
import OAuthDiagnosis
import Redaction
import TokentapCore

/// `Authorization` header values (Basic, RFC 7617): the diagnoser's parser, the redactor's header
/// redaction, and the parse of a token request carrying the header.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBasic(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    for value in [text, "Basic " + text] {
        _ = AuthorizationHeader(raw: value)
        _ = Fuzz.redactor.redact(header: HeaderField(name: "Authorization", value: value))
        Fuzz.parse(Fuzz.tokenRequest(headers: [HeaderField(name: "Authorization", value: value),
                                                 HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                       body: Data("grant_type=authorization_code&code=abc".utf8)))
    }
    return 0
}
