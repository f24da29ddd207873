import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import TokentapCore

// MARK: - placeholders

/// Every distinct placeholder text in `text` (canonical placeholders only).
func placeholderTexts(in text: String) -> [String] {
    var seen = Set<String>()
    return Placeholder.all(in: text).map(\.text).filter { seen.insert($0).inserted }
}

/// What the reader needs to read placeholders (README: "Secrets").
public let placeholderExplanation = """
Secrets are redacted: each appears as `redacted.<role>.<fingerprint>.<length>[.<flags>]`. The fingerprint is a keyed \
HMAC of the value (it cannot be reversed; equal fingerprints mean equal values), `length` is its character count, and \
the flags note whitespace (`lead-ws`, `trail-ws`, `newline`), quotes (`quoted`), percent-escapes (`pct`) or `+` (`plus`) in it.
"""

// MARK: - Markdown

/// The report of `export --format markdown`: ready to paste into an issue or a forum post. A title
/// with the session(s) and counts, "What went wrong" (one verdict per failed OAuth exchange), the
/// timeline, every finding (most certain first), each failing exchange's request and response
/// (bodies over ``bodyLimit`` bytes trimmed) and what the placeholders mean.
public struct MarkdownReport: Exporter {
    public let format = "markdown"
    public let diagnoser: Diagnoser
    public let version: String
    /// Bodies longer than this (bytes) are trimmed.
    public static let bodyLimit = 2048

    public init(diagnoser: Diagnoser, version: String) {
        self.diagnoser = diagnoser
        self.version = version
    }

    public func export(_ exchanges: [Exchange]) -> Data {
        Data(render(exchanges).utf8)
    }

    public func render(_ exchanges: [Exchange]) -> String {
        let sessions = Array(Set(exchanges.map(\.session))).sorted()
        let failing = exchanges.filter(\.isFailed)
        let findings = Diagnoser.sorted(exchanges.flatMap(\.findings))
        var md = "# tokentap report: session \(sessions.joined(separator: ", "))\n\n"
        md += "tokentap \(version) · \(exchanges.count) exchanges, \(failing.count) failing, \(findings.count) findings"
        if let first = exchanges.map(\.started).min(), let last = exchanges.map(\.started).max() {
            md += " · recorded \(iso8601Microseconds(first)) to \(iso8601Microseconds(last))"
        }
        md += "\n\n"

        md += "## What went wrong\n\n"
        let verdicts = diagnoser.verdicts(exchanges)
        if verdicts.isEmpty { md += "Nothing: no OAuth exchange failed.\n\n" }
        for v in verdicts {
            md += "- \(inline(v.summary))\n"
            md += "  Cause: `\(v.cause)` (\(v.confidence.rawValue)). Fix: \(inline(v.fix))"
            if !v.consequences.isEmpty { md += " Explains: " + v.consequences.map { "`\($0)`" }.joined(separator: ", ") + "." }
            if !v.alternatives.isEmpty { md += " Other possible causes: " + v.alternatives.map { "`\($0)`" }.joined(separator: ", ") + "." }
            md += "\n"
        }
        if !verdicts.isEmpty { md += "\n" }
        md += "## Timeline\n\n"
        let timeline = diagnoser.timeline(exchanges)
        if timeline.isEmpty { md += "(no OAuth steps among these exchanges)\n" }
        for step in timeline {
            md += "- `#\(step.exchange)` \(iso8601Microseconds(step.at).dropFirst(11).prefix(15)) **\(step.step)**: \(inline(step.summary))\n"
        }
        md += "\n## Findings\n\n"
        if findings.isEmpty { md += "(none)\n" }
        for f in findings {
            md += "### \(f.severity.rawValue) (\(f.confidence.rawValue)): `\(f.rule)` on #\(f.exchange)\n\n"
            md += "\(inline(f.title))\n\n"
            for line in f.evidence { md += "- evidence: \(code(line))\n" }
            md += "- fix: \(inline(f.fix))\n"
            md += "- reference: \(f.reference)\n\n"
        }
        md += "## Failing exchanges\n\n"
        if failing.isEmpty { md += "(none)\n\n" }
        for e in failing {
            let status = e.status.map { "\($0)\(e.reason.map { " " + $0 } ?? "")" } ?? "no response"
            md += "### #\(e.id.map(String.init) ?? "?") \(e.method) \(e.url) → \(status)\n\n"
            if let error = e.error { md += "Error: \(inline(error))\n\n" }
            md += "Request (\(iso8601Microseconds(e.started))):\n\n"
            md += fenced("\(e.method) \(e.target) \(e.request.httpVersion)\n" + headerLines(e.request.headers) + bodyText(e.request))
            for h in e.request.headers where h.name.lowercased() == "authorization" {
                if let credentials = CurlExport.basicUser(h.value) { md += "\nThe Basic credentials decode to \(code(credentials)).\n" }
            }
            md += "\nResponse (\(String(format: "%.1f", e.timings.total)) ms):\n\n"
            md += fenced("\(e.response.httpVersion) \(status)\n" + headerLines(e.response.headers) + bodyText(e.response))
            if let v = verdicts.first(where: { $0.exchange == e.id }) { md += "\nVerdict: `\(v.cause)` (\(v.confidence.rawValue)): \(inline(v.summary))\n" }
            if !e.findings.isEmpty { md += "\nFindings: " + e.findings.map { "`\($0.rule)`" }.joined(separator: ", ") + "\n" }
            md += "\n"
        }
        md += "---\n\n"
        let roles = Set(placeholderTexts(in: md).compactMap { Placeholder(parsing: $0)?.role }).sorted()
        md += "Redacted by tokentap \(version)" + (roles.isEmpty ? "" : " (roles in this report: \(roles.joined(separator: ", ")))") + ". "
        md += placeholderExplanation + "\n"
        return md
    }

    private func headerLines(_ headers: [HeaderField]) -> String {
        headers.map { "\($0.name): \($0.value)\n" }.joined()
    }

    private func bodyText(_ m: MessageRecord) -> String {
        guard !m.body.isEmpty else { return "" }
        guard let text = String(data: m.body, encoding: .utf8) else {
            return "\n(\(m.body.count) bytes of binary body omitted)\n"
        }
        var out = "\n"
        if m.body.count > Self.bodyLimit {
            var cut = Self.bodyLimit
            while cut > 0, String(data: m.body.prefix(cut), encoding: .utf8) == nil { cut -= 1 }
            out += String(decoding: m.body.prefix(cut), as: UTF8.self)
            out += "\n… (\(m.body.count - cut) more bytes trimmed)"
        } else {
            out += text
        }
        if m.truncated { out += "\n… (body truncated when recorded)" }
        return out + "\n"
    }

    /// A code block whose fence is longer than any backtick run inside.
    private func fenced(_ text: String) -> String {
        var longest = 0, run = 0
        for c in text { if c == "`" { run += 1; longest = max(longest, run) } else { run = 0 } }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        return "\(fence)http\n\(text)\(text.hasSuffix("\n") ? "" : "\n")\(fence)\n"
    }

    private func code(_ text: String) -> String {
        let clean = text.replacingOccurrences(of: "\n", with: " ")
        return clean.contains("`") ? "`` \(clean) ``" : "`\(clean)`"
    }

    private func inline(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: " ") }
}

