import FuzzCommon
import Foundation
import Redaction
import TokentapCore

/// JSON bodies: the redactor's JSON scan (request and response), and the diagnoser's parse of a
/// token request whose request and response bodies are the bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = Fuzz.redactor.redactJSON(Fuzz.text(start, count))
    let body = Fuzz.data(start, count)
    _ = Fuzz.redactor.redactBody(body, contentType: "application/json")
    Fuzz.parse(Fuzz.tokenRequest(headers: [HeaderField(name: "Content-Type", value: "application/json")],
                                   body: body, responseBody: body))
    return 0
}
