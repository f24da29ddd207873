import FuzzCommon
import Foundation
import Redaction

/// Free text and unlabelled bodies: `name=value` / `"name": "value"` lines, JWT and Miro token
/// shapes, the byte-wise scan of non-UTF-8 bodies, and multipart bodies.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzText(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    _ = Fuzz.redactor.redactText(text)
    _ = Fuzz.redactor.redactShapes(in: text)
    let body = Fuzz.data(start, count)
    _ = Fuzz.redactor.redactBody(body, contentType: nil)
    _ = Fuzz.redactor.redactBody(body, contentType: "application/octet-stream")
    _ = Fuzz.redactor.redactBody(body, contentType: "multipart/form-data; boundary=XyZ")
    return 0
}
