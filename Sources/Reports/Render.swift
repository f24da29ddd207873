import Foundation
import Recording
import TokentapCore

/// Output of `tokentap list` and `tokentap show`, text and `--json` (design.md, "Command line").
///
/// JSON documents use sorted keys, ints as ints, `null` for absent values, dates as ISO 8601 UTC
/// with microseconds (`2026-11-29T12:00:00.123456Z`) and durations in milliseconds.
public enum Render {
    // MARK: JSON

    /// `list --json`: an array of ``ExchangeDocument``s (`{ id, session, kind, started,
    /// duration_ms, method, url, status, error, findings: [rule id] }`), pretty-printed.
    public static func listJSON(_ exchanges: [Exchange]) -> String {
        JSONDocument.string(exchanges.map { ExchangeDocument($0) })
    }

    /// `tail --json`: one exchange as one compact line with `list --json`'s keys.
    public static func tailJSONLine(_ exchange: Exchange) -> String {
        JSONDocument.string(ExchangeDocument(exchange), compact: true)
    }

    /// `show --json`: the `list` fields plus `request` and `response` (`headers`, `body`,
    /// `body_encoding`, `truncated`, `http_version`; `reason` on the response), `timings` (ms) and
    /// `findings` as full objects (`rule`, `severity`, `confidence`, `exchange`, `title`,
    /// `evidence`, `fix`, `reference`); a `websocket` row adds its `websocket` object.
    public static func showJSON(_ exchange: Exchange) -> String {
        JSONDocument.string(ExchangeDocument(exchange, detail: true))
    }

    // MARK: Text

    /// `tokentap list`: a header line and one aligned line per exchange: id, local time, method,
    /// URL, status, duration, findings (rule ids) and the error, if any. With `color`, ANSI colors
    /// (status by class, findings by severity); without, plain text.
    /// `header: false` omits the title line (for `tail`, which prints batches as they come).
    /// `notes` gives lines printed under an exchange's line, as they are (`tail`: the verdict).
    public static func listTable(_ exchanges: [Exchange], color: Bool, header: Bool = true,
                                 notes: ((Exchange) -> [String])? = nil) -> String {
        let style = Style(enabled: color)
        let timeFormatter = DateFormatter()
        timeFormatter.locale = Locale(identifier: "en_US_POSIX")
        timeFormatter.dateFormat = "HH:mm:ss.SSS"
        timeFormatter.timeZone = .current

        struct Line { var cells: [String]; var colors: [String?]; var notes: [String] = [] }
        var lines: [Line] = [Line(cells: ["ID", "TIME", "METHOD", "URL", "STATUS", "DURATION", "FINDINGS"],
                                  colors: Array(repeating: style.bold, count: 7))]
        for e in exchanges {
            let method: String
            switch e.kind {
            case .http: method = e.method
            case .tunnel: method = "TUNNEL"
            case .tlsError: method = "TLS-ERR"
            case .clientError: method = e.method.isEmpty ? "BAD-REQ" : e.method
            case .websocket: method = "WS"
            }
            let status = e.status.map(String.init) ?? (e.error != nil ? "ERR" : "-")
            let statusColor: String? = {
                guard let s = e.status else { return e.error != nil ? style.red : nil }
                switch s {
                case 200..<300: return style.green
                case 300..<400: return style.cyan
                case 400...: return style.red
                default: return nil
                }
            }()
            var findings = e.findings.map(\.rule).joined(separator: ",")
            if let error = e.error { findings += (findings.isEmpty ? "" : "  ") + "(\(oneLine(error)))" }
            let worst = e.findings.map(\.severity).min()
            let findingsColor: String? = worst == .error ? style.red : worst == .warning ? style.yellow
                : (e.error != nil ? style.red : nil)
            lines.append(Line(
                cells: [e.id.map(String.init) ?? "-", timeFormatter.string(from: e.started), method, e.url, status,
                        durationText(e.timings.total), findings],
                colors: [nil, style.dim, nil, nil, statusColor, style.dim, findingsColor], notes: notes?(e) ?? []))
        }
        let shown = header ? lines[...] : lines.dropFirst()
        return table(shown.map(\.cells), colors: shown.map(\.colors), rightAligned: [0, 5], unpadded: [6],
                     notes: shown.map(\.notes), style: style)
    }

    /// The one table renderer (`list`, `tail`, `sessions`): each cell padded to its column's widest
    /// (left-aligned, or right-aligned in `rightAligned`; `unpadded` columns as they are), cells
    /// joined by two spaces, trailing spaces dropped, `colors` applied per cell after padding, and
    /// each row's `notes` printed under it as they are.
    static func table(_ rows: [[String]], colors: [[String?]], rightAligned: Set<Int>, unpadded: Set<Int> = [],
                      notes: [[String]] = [], style: Style) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        var out = ""
        for (r, row) in rows.enumerated() {
            var parts: [String] = []
            for (c, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                let padded = unpadded.contains(c) ? cell : (rightAligned.contains(c) ? pad + cell : cell + pad)
                parts.append(style.apply(colors[r][c], padded))
            }
            var text = parts.joined(separator: "  ")
            while text.hasSuffix(" ") { text.removeLast() }
            out += text + "\n"
            if r < notes.count { for note in notes[r] { out += note + "\n" } }
        }
        return out
    }

    /// `tokentap show ID`: the exchange for reading. Request line, headers, body (JSON
    /// pretty-printed with its key order kept, form bodies one parameter a line, percent-decoded),
    /// then the response likewise, timings, and the findings with evidence, fix and reference.
    /// `raw` prints bodies exactly as stored (binary ones as base64) and no reformatting. A loud
    /// warning opens (and closes) the output when the exchange holds raw secrets (`keepsSecrets`).
    public static func show(_ e: Exchange, raw: Bool, color: Bool) -> String {
        let style = Style(enabled: color)
        var out = ""
        let loud = style.apply(style.boldRed,
            "!!! RAW SECRETS: this exchange was recorded with --keep-secrets; tokens and client secrets below are real. Do not share this output; use `tokentap export` for a redacted copy.")
        if e.keepsSecrets { out += loud + "\n" }

        let idText = e.id.map { "#\($0)" } ?? "#?"
        out += style.apply(style.bold, "\(idText)  \(e.kind.rawValue)  session \(e.session)  started \(iso8601Microseconds(e.started))") + "\n"
        if let client = e.clientAddress { out += style.apply(style.dim, "client \(client)") + "\n" }
        if let error = e.error { out += style.apply(style.red, "error\(e.errorKind.map { " (\($0.rawValue))" } ?? ""): \(error)") + "\n" }
        out += "\n"

        switch e.kind {
        case .tunnel:
            out += "CONNECT \(e.host):\(e.port) (tunnelled, not intercepted)\n"
            out += "bytes client→server \(e.request.wireSize), server→client \(e.response.wireSize)\n\n"
        case .tlsError where e.request.headers.isEmpty && e.status == nil:
            out += "TLS handshake for \(e.host):\(e.port) failed\n\n"
        case .http, .tlsError, .clientError, .websocket:
            // Request
            out += style.apply(style.bold, "\(e.method.isEmpty ? "-" : e.method) \(e.url) \(e.request.httpVersion)") + "\n"
            out += headerLines(e.request.headers, style: style)
            out += headerNote(e.request, style: style)
            out += bodySection(e.request, headers: e.request.headers, raw: raw, style: style)
            out += "\n"
            // Response
            if e.status != nil || !e.response.headers.isEmpty || !e.response.body.isEmpty {
                let statusText = e.status.map(String.init) ?? "-"
                let statusColor: String? = (e.status ?? 0) >= 400 ? style.red : ((e.status ?? 0) >= 300 ? style.cyan : style.green)
                out += style.apply(statusColor, "\(e.response.httpVersion) \(statusText)\(e.reason.map { " " + $0 } ?? "")") + "\n"
                out += headerLines(e.response.headers, style: style)
                out += headerNote(e.response, style: style)
                out += bodySection(e.response, headers: e.response.headers, raw: raw, style: style)
                out += "\n"
            } else {
                out += style.apply(style.dim, "(no response)") + "\n\n"
            }
            if let ws = e.websocket { out += webSocketSection(ws, style: style) }
        }

        // Timings
        let t = e.timings
        var phases: [String] = []
        for (name, value) in [("connect", t.connect), ("tls", t.tls), ("send", t.send), ("wait", t.wait), ("receive", t.receive)] {
            if let value { phases.append("\(name) \(durationText(value))") }
        }
        phases.append("total \(durationText(t.total))")
        out += style.apply(style.bold, "Timings") + ": " + phases.joined(separator: ", ") + "\n"

        // Findings
        if !e.findings.isEmpty {
            out += "\n" + style.apply(style.bold, "Findings") + "\n"
            for f in e.findings.sorted(by: { ($0.severity, $0.confidence) < ($1.severity, $1.confidence) }) {
                let color = f.severity == .error ? style.red : f.severity == .warning ? style.yellow : style.cyan
                out += style.apply(color, "[\(f.severity.rawValue), \(f.confidence.rawValue)] \(f.rule)") + ": \(f.title)\n"
                for line in f.evidence { out += "    evidence: \(line)\n" }
                if !f.fix.isEmpty { out += "    fix: \(f.fix)\n" }
                if !f.reference.isEmpty { out += "    see: \(f.reference)\n" }
            }
        }
        if e.keepsSecrets { out += "\n" + loud + "\n" }
        return out
    }

    /// The upgraded connection's counts under its handshake.
    static func webSocketSection(_ ws: WebSocketSummary, style: Style) -> String {
        func frames(_ n: Int?) -> String { n.map { "\($0) frames" } ?? "frames unknown" }
        var out = style.apply(style.bold, "WebSocket") + (ws.open ? " (open, or tokentap stopped before it closed)" : "") + "\n"
        out += "client→server \(frames(ws.framesClient)), \(ws.bytesClient) bytes\n"
        out += "server→client \(frames(ws.framesServer)), \(ws.bytesServer) bytes\n"
        if !ws.open {
            out += "close code \(ws.closeCode.map(String.init) ?? "none"), closed by \(ws.closedBy ?? "-")\n"
        }
        if let error = ws.countingError { out += style.apply(style.yellow, error) + "\n" }
        let kept = ws.messages.count
        out += "messages: \(kept) kept (metadata only)\(ws.messagesDropped > 0 ? ", \(ws.messagesDropped) more counted only" : "")\n\n"
        return out
    }

    // MARK: Sessions

    /// `tokentap sessions`: name, first and last start (local time), rows, HTTP exchanges and
    /// failures; the latest session (the last line) is marked with `*`.
    public static func sessionsTable(_ sessions: [SessionSummary], color: Bool) -> String {
        let style = Style(enabled: color)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = .current
        var rows = [["SESSION", "FIRST", "LAST", "ROWS", "HTTP", "FAILURES"]]
        for (i, s) in sessions.enumerated() {
            rows.append([s.name + (i == sessions.count - 1 ? " *" : ""), formatter.string(from: s.firstStarted),
                         formatter.string(from: s.lastStarted), String(s.count), String(s.httpCount), String(s.failures)])
        }
        let colors = rows.enumerated().map { r, row in
            row.enumerated().map { c, cell -> String? in r == 0 ? style.bold : (c == 5 && cell != "0" ? style.red : nil) }
        }
        return table(rows, colors: colors, rightAligned: [3, 4, 5], style: style)
    }

    /// `tokentap sessions --json`: an array of ``SessionDocument``s (`{ "name": str,
    /// "first_started": ISO 8601, "last_started": ISO 8601, "count": int, "http_count": int,
    /// "failures": int }`), latest last.
    public static func sessionsJSON(_ sessions: [SessionSummary]) -> String {
        JSONDocument.string(sessions.map(SessionDocument.init))
    }

    // MARK: Helpers

    static func durationText(_ ms: Double) -> String {
        if ms >= 10_000 { return String(format: "%.1fs", ms / 1000) }
        if ms >= 100 { return String(format: "%.0fms", ms) }
        return String(format: "%.1fms", ms)
    }

    private static func oneLine(_ s: String) -> String {
        s.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
    }

    private static func headerLines(_ headers: [HeaderField], style: Style) -> String {
        headers.map { style.apply(style.cyan, $0.name) + ": " + visible($0.value) + "\n" }.joined()
    }

    /// Names the header fields whose bytes were not valid UTF-8 (they arrived as U+FFFD).
    private static func headerNote(_ m: MessageRecord, style: Style) -> String {
        let names = m.headersNotUTF8
        guard !names.isEmpty else { return "" }
        return style.apply(style.dim, "(\(names.joined(separator: ", ")): bytes that were not valid UTF-8 arrived as U+FFFD; tokentap relays and records header values as UTF-8)") + "\n"
    }

    /// A header value with its invisible characters made visible (a trailing `\n` matters to
    /// OAuth): ``visibleText(_:quoted:)``. Shared by `show` and the HTML report.
    public static func visible(_ s: String) -> String { visibleText(s) }

    private static func bodySection(_ m: MessageRecord, headers: [HeaderField], raw: Bool, style: Style) -> String {
        if m.body.isEmpty && !m.truncated { return "" }
        var notes: [String] = ["\(m.body.count) bytes"]
        if m.decodedFrom == MessageRecord.notEncoded {
            notes.append("Content-Encoding \(m.headers.first(named: "Content-Encoding") ?? "") declared, but the body is not encoded: recorded as sent")
        } else if let from = m.decodedFrom {
            notes.append("decoded from \(from), \(m.wireSize) bytes on the wire")
        }
        if m.truncated { notes.append("truncated: more travelled than was recorded") }
        var out = "\n"
        let contentType = (headers.first(named: "Content-Type") ?? "").lowercased()
        guard let text = String(data: m.body, encoding: .utf8) else {
            out += style.apply(style.dim, "(binary body, \(notes.joined(separator: "; ")); base64:)") + "\n"
            out += wrap(m.body.base64EncodedString(), width: 76) + "\n"
            return out
        }
        if !raw || m.truncated || m.decodedFrom != nil {
            out += style.apply(style.dim, "(\(notes.joined(separator: "; ")))") + "\n"
        }
        if raw {
            out += text
            if !text.hasSuffix("\n") { out += "\n" }
            return out
        }
        if let pretty = prettyJSON(text) {
            out += pretty + "\n"
        } else if contentType.contains("application/x-www-form-urlencoded") || (contentType.isEmpty && FormCoding.looksLikeForm(text)) {
            for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = formDecode(String(parts[0]))
                if parts.count == 2 {
                    out += style.apply(style.cyan, name) + " = " + visible(formDecode(String(parts[1]))) + "\n"
                } else {
                    out += style.apply(style.cyan, name) + "\n"
                }
            }
        } else {
            out += text
            if !text.hasSuffix("\n") { out += "\n" }
        }
        return out
    }

    private static func formDecode(_ s: String) -> String {
        FormCoding.decode(s)
    }


    private static func wrap(_ s: String, width: Int) -> String {
        var lines: [Substring] = []
        var rest = Substring(s)
        while rest.count > width {
            lines.append(rest.prefix(width))
            rest = rest.dropFirst(width)
        }
        lines.append(rest)
        return lines.joined(separator: "\n")
    }

    /// Re-indents valid JSON (two spaces), keeping key order, number spelling and string escapes
    /// exactly as sent. `nil` when `text` is not a JSON object or array.
    static func prettyJSON(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{") || trimmed.hasPrefix("[") else { return nil }
        guard (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])) != nil else {
            return nil
        }
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        let chars = Array(trimmed)
        var i = 0
        func newline() { out += "\n" + String(repeating: "  ", count: depth) }
        while i < chars.count {
            let c = chars[i]
            if inString {
                out.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                i += 1
                continue
            }
            switch c {
            case "\"":
                inString = true
                out.append(c)
            case "{", "[":
                // Empty container stays on one line.
                var j = i + 1
                while j < chars.count, chars[j].isWhitespace { j += 1 }
                if j < chars.count, chars[j] == (c == "{" ? "}" : "]") {
                    out += c == "{" ? "{}" : "[]"
                    i = j
                } else {
                    out.append(c)
                    depth += 1
                    newline()
                }
            case "}", "]":
                depth -= 1
                newline()
                out.append(c)
            case ",":
                out.append(c)
                newline()
            case ":":
                out += ": "
            case " ", "\t", "\n", "\r":
                break
            default:
                out.append(c)
            }
            i += 1
        }
        return out
    }
}

/// ANSI styling, or none.
struct Style {
    let enabled: Bool
    let bold = "\u{1B}[1m"
    let dim = "\u{1B}[2m"
    let red = "\u{1B}[31m"
    let boldRed = "\u{1B}[1;31m"
    let green = "\u{1B}[32m"
    let yellow = "\u{1B}[33m"
    let cyan = "\u{1B}[36m"
    let reset = "\u{1B}[0m"

    func apply(_ code: String?, _ text: String) -> String {
        guard enabled, let code, !text.isEmpty else { return text }
        return code + text + reset
    }
}
