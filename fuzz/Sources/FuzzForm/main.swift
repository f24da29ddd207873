import FuzzCommon
import Foundation
import Redaction
import TokentapCore

/// Form bodies and queries (`application/x-www-form-urlencoded`): the redactor's form scan, the
/// shared form decoder, and the diagnoser's parse of a token request carrying the bytes as its body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForm(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    _ = Fuzz.redactor.redactForm(text)
    _ = FormCoding.pairs(text)
    let body = Fuzz.data(start, count)
    _ = Fuzz.redactor.redactBody(body, contentType: "application/x-www-form-urlencoded")
    Fuzz.parse(Fuzz.tokenRequest(headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")], body: body))
    return 0
}
