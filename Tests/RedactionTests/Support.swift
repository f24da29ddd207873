import Foundation
import Redaction
import TokentapCore

/// A fixed key: tests are deterministic, and the same key is used across "exchanges".
let testKey = Data(repeating: 7, count: 32)
let redactor = Redactor(key: testKey)

func exchange(method: String = "POST", target: String = "/", requestHeaders: [(String, String)] = [],
              requestBody: String = "", status: Int? = 200, responseHeaders: [(String, String)] = [],
              responseBody: String = "", error: String? = nil, findings: [Finding] = []) -> Exchange {
    Exchange(session: "test", started: Date(timeIntervalSince1970: 1_700_000_000), host: "api.miro.com",
             method: method, target: target,
             request: MessageRecord(headers: requestHeaders.map { HeaderField(name: $0.0, value: $0.1) },
                                    body: Data(requestBody.utf8)),
             status: status,
             response: MessageRecord(headers: responseHeaders.map { HeaderField(name: $0.0, value: $0.1) },
                                     body: Data(responseBody.utf8)),
             error: error, findings: findings, keepsSecrets: true)
}

/// Every text an exchange carries, bodies decoded as UTF-8 (lossy) and as ISO 8859-1, plus the
/// JSON encoding of the whole exchange (what a `show --json` would print).
func dump(_ e: Exchange) -> String {
    var parts = [e.target, e.url, e.reason ?? "", e.error ?? ""]
    for m in [e.request, e.response] {
        parts += m.headers.map { "\($0.name): \($0.value)" }
        parts.append(String(decoding: m.body, as: UTF8.self))
        parts.append(String(data: m.body, encoding: .isoLatin1) ?? "")
    }
    for f in e.findings { parts += [f.title, f.fix] + f.evidence }
    let encoder = JSONEncoder()
    parts.append(String(decoding: (try? encoder.encode(e)) ?? Data(), as: UTF8.self))
    return parts.joined(separator: "\n")
}

/// The forms in which a leaked secret could show: raw, base64, percent-encoded, JSON-escaped.
func leakedForms(of secret: String) -> [String] {
    var forms = [secret, Data(secret.utf8).base64EncodedString()]
    if let pct = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) { forms.append(pct) }
    if let json = try? JSONEncoder().encode(secret), let s = String(data: json, encoding: .utf8) {
        forms.append(String(s.dropFirst().dropLast()))
    }
    // Trimmed raw: a secret with surrounding whitespace must not leak its core either.
    let core = secret.trimmingCharacters(in: .whitespacesAndNewlines)
    if !core.isEmpty { forms.append(core) }
    return forms
}

/// The forms of `secret` that still occur in `text` (empty when redaction worked).
func leaks(_ secret: String, in text: String) -> [String] {
    leakedForms(of: secret).filter { text.contains($0) }
}

func leaks(_ secret: String, in e: Exchange) -> [String] { leaks(secret, in: dump(e)) }

func header(_ e: MessageRecord, _ name: String) -> String? { e.headers.first(named: name) }
func body(_ m: MessageRecord) -> String { String(decoding: m.body, as: UTF8.self) }
