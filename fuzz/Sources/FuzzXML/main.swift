import FuzzCommon
import Foundation
import Redaction

/// XML and HTML bodies: the redactor's XML scan (elements, attributes, CDATA) and HTML form fields.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXML(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = Fuzz.data(start, count)
    _ = Fuzz.redactor.redactBody(body, contentType: "application/xml")
    _ = Fuzz.redactor.redactBody(body, contentType: "text/html; charset=utf-8")
    return 0
}
