import Foundation
import OAuthDiagnosis
import Redaction
import TokentapCore

/// What every fuzz target shares: one redactor under a fixed key (fingerprints do not matter here,
/// only that parsing never crashes or hangs) and the diagnoser over it.
public enum Fuzz {
    public static let redactor = Redactor(key: Data(repeating: 0x5A, count: 32))
    public static let diagnoser = Diagnoser(redactor: redactor)

    /// The input as bytes.
    public static func data(_ start: UnsafeRawPointer, _ count: Int) -> Data {
        Data(bytes: start, count: count)
    }

    /// The input as text, lossy (invalid UTF-8 becomes U+FFFD, as `String(decoding:)` does
    /// wherever tokentap reads outside bytes as text).
    public static func text(_ start: UnsafeRawPointer, _ count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    }

    /// A token request to Miro (`POST https://api.miro.com/v1/oauth/token`) answered `status`, as
    /// the proxy captures it: the diagnoser runs its token rules on it.
    public static func tokenRequest(target: String = "/v1/oauth/token", headers: [HeaderField] = [],
                                    body: Data = Data(), status: Int = 400, responseBody: Data = Data()) -> Exchange {
        Exchange(session: "fuzz", started: Date(timeIntervalSince1970: 1_700_000_000), host: "api.miro.com",
                 method: "POST", target: target,
                 request: MessageRecord(headers: [HeaderField(name: "Host", value: "api.miro.com")] + headers, body: body),
                 status: status, reason: "Bad Request",
                 response: MessageRecord(headers: [HeaderField(name: "Content-Type", value: "application/json")], body: responseBody))
    }

    /// The diagnoser's parse of a request (query, form/JSON/multipart body, Authorization) and the
    /// redactor's pass over the whole exchange: cheap enough for every input.
    public static func parse(_ exchange: Exchange) {
        _ = RequestParameters(exchange)
        _ = redactor.redact(exchange)
    }

    /// Redacts and diagnoses `exchange` the way the capture pipeline does: findings on the raw
    /// exchange, then the redacted copy, then every rendering that reads it.
    public static func capture(_ exchange: Exchange) {
        let findings = diagnoser.diagnose(exchange, history: [])
        var redacted = redactor.redact(exchange)
        redacted.findings = findings
        _ = diagnoser.verdict(for: redacted)
        _ = diagnoser.timeline([redacted])
    }
}

@_silgen_name("LLVMFuzzerTestOneInput")
func fuzzTargetEntry(_ start: UnsafeRawPointer, _ count: Int) -> CInt

/// libFuzzer calls this once before fuzzing: run the target on a few well-formed inputs so every
/// lazily created global (the redactor, compiled patterns, formatters) exists before the leak
/// checker starts counting allocations per input (otherwise it reports them as leaks).
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let warmUp = [
        "grant_type=authorization_code&code=abc&client_secret=s3cr3t",
        #"{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.","error":"invalid_grant"}"#,
        #"<?xml version="1.0"?><r><client_secret>x</client_secret><a token="y"/></r>"#,
        "Basic aWQ6c2VjcmV0",
        "https://miro.com/oauth/authorize?client_id=1&redirect_uri=https%3A%2F%2Fa.example%2Fcb&state=s#access_token=t",
        #"{"log":{"entries":[{"startedDateTime":"2026-11-29T12:00:00.000Z","time":1,"request":{"method":"POST","url":"https://api.miro.com/v1/oauth/token","headers":[],"postData":{"mimeType":"application/x-www-form-urlencoded","text":"grant_type=authorization_code&code=c"}},"response":{"status":400,"headers":[],"content":{"size":2,"mimeType":"application/json","text":"{}"}}}]}}"#,
        "", "x",
    ]
    for _ in 0..<2 {
        for input in warmUp {
            var bytes = Array(input.utf8)
            bytes.withUnsafeMutableBytes { _ = fuzzTargetEntry($0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!, $0.count) }
        }
    }
    return 0
}
