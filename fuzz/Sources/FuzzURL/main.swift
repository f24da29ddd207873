import FuzzCommon
import Foundation
import Redaction
import TokentapCore

/// URLs and request targets: the redactor's URL scan (userinfo, query, fragment), a `Location`
/// header, and the parse of a token request and an authorize redirect whose target is the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURL(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    _ = Fuzz.redactor.redactURL(text)
    _ = Fuzz.redactor.redactURL(text, fragmentAware: false)
    _ = Fuzz.redactor.redact(header: HeaderField(name: "Location", value: text))
    let target = text.hasPrefix("/") ? text : "/v1/oauth/token?" + text
    Fuzz.parse(Fuzz.tokenRequest(target: target))
    var redirect = Fuzz.tokenRequest(target: "/oauth/authorize?" + text, status: 302)
    redirect.host = "miro.com"
    redirect.method = "GET"
    redirect.response.headers.append(HeaderField(name: "Location", value: text))
    Fuzz.parse(redirect)
    return 0
}
