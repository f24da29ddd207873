import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import TokentapCore

/// `tokentap export --format html` and `tokentap doctor --html` (issue 27): one self-contained HTML
/// file to attach to a bug report. It has no script, loads nothing (a Content-Security-Policy
/// `<meta>` forbids it: `default-src 'none'`), and shows:
/// - the verdicts ("What went wrong") first;
/// - the flow as a sequence diagram in inline SVG: a lane for the browser, one for the app and one
///   per host, one arrow per exchange (`<g class="exchange" data-exchange="ID">`, `failed` added to
///   the class of a failed one) with its method, path (never the query string) and status; the
///   OAuth role decides where an arrow starts (authorize, redirect and callback from the browser,
///   the rest from the app; a callback ends in the app's lane); codes and tokens handed over are
///   labelled by their placeholder, one colour per value;
/// - each exchange with its findings (`data-rule`), evidence and fix, expandable (`<details>`) to
///   its request and response.
///
/// The exchanges must already be redacted (`tokentap export` and `doctor` redact rows recorded with
/// `--keep-secrets` first). Every recorded value goes through ``HTMLEscape/escape(_:)``.
public struct HTMLReport: Exporter {
    public let format = "html"
    public let diagnoser: Diagnoser
    public let version: String
    /// The heading: `tokentap report` or `tokentap doctor`.
    public let title: String
    /// Bytes of each body shown; longer ones are trimmed (the rest is counted).
    public var bodyLimit = 64 * 1024

    /// The policy the file carries: nothing may load, only the inline style applies.
    public static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

    public init(diagnoser: Diagnoser, version: String, title: String = "tokentap report") {
        self.diagnoser = diagnoser
        self.version = version
        self.title = title
    }

    public func export(_ exchanges: [Exchange]) -> Data {
        Data(render(exchanges).utf8)
    }

    /// The whole page.
    public func render(_ exchanges: [Exchange]) -> String {
        let verdicts = diagnoser.verdicts(exchanges)
        let sessions = Array(Set(exchanges.map(\.session))).sorted()
        let failed = Set(exchanges.filter { isFailed($0, verdicts: verdicts) }.compactMap(\.id))
        let findingsCount = exchanges.reduce(0) { $0 + $1.findings.count }
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="\(Self.contentSecurityPolicy)">
        <meta http-equiv="x-dns-prefetch-control" content="off">
        <meta name="referrer" content="no-referrer">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="tokentap \(e(version))">
        <title>\(e(title)): session \(e(sessions.joined(separator: ", ")))</title>
        <style>\(Self.style)</style>
        </head>
        <body>
        <header>
        <h1>\(e(title)): session \(e(sessions.joined(separator: ", ")))</h1>
        <p class="meta">tokentap \(e(version)) · \(exchanges.count) exchange\(exchanges.count == 1 ? "" : "s"), \(failed.count) failed, \(findingsCount) finding\(findingsCount == 1 ? "" : "s")
        """
        if let first = exchanges.map(\.started).min(), let last = exchanges.map(\.started).max() {
            h += " · recorded \(e(iso8601Microseconds(first))) to \(e(iso8601Microseconds(last)))"
        }
        h += "</p>\n</header>\n"

        // Verdicts first.
        h += "<section id=\"verdicts\">\n<h2>What went wrong</h2>\n"
        if verdicts.isEmpty {
            h += "<p class=\"none\">Nothing: no OAuth exchange failed.</p>\n"
        }
        for v in verdicts {
            h += "<article class=\"verdict\" data-rule=\"\(e(v.cause))\" data-exchange=\"\(v.exchange)\">\n"
            h += "<p class=\"summary\">\(e(v.summary))</p>\n<dl>\n"
            h += "<dt>cause</dt><dd><code class=\"rule\">\(e(v.cause))</code> (\(e(v.confidence.rawValue))) on <a href=\"#exchange-\(v.exchange)\">#\(v.exchange)</a></dd>\n"
            h += "<dt>fix</dt><dd class=\"fix\">\(e(v.fix))</dd>\n"
            if !v.consequences.isEmpty {
                h += "<dt>explains</dt><dd>" + v.consequences.map { "<code>\(e($0))</code>" }.joined(separator: ", ") + "</dd>\n"
            }
            if !v.alternatives.isEmpty {
                h += "<dt>other possible causes</dt><dd>" + v.alternatives.map { "<code>\(e($0))</code>" }.joined(separator: ", ") + "</dd>\n"
            }
            h += "</dl>\n</article>\n"
        }
        h += "</section>\n"

        h += "<section id=\"flow\">\n<h2>The flow</h2>\n"
        h += diagram(exchanges, failed: failed)
        h += "</section>\n"

        h += "<section id=\"exchanges\">\n<h2>Exchanges</h2>\n"
        for x in exchanges { h += detail(x, failed: failed, verdict: verdicts.first { $0.exchange == x.id }) }
        h += "</section>\n"

        h += "<footer><p>Redacted by tokentap \(e(version)). Secrets appear as <code>redacted.&lt;role&gt;.&lt;fingerprint&gt;.&lt;length&gt;[.&lt;flags&gt;]</code>: "
        h += "the fingerprint is a keyed HMAC of the value (equal fingerprints, equal values); the length counts its characters; "
        h += "the flags note whitespace (<code>lead-ws</code>, <code>trail-ws</code>, <code>newline</code>), quotes (<code>quoted</code>), "
        h += "percent-escapes (<code>pct</code>) or <code>+</code> (<code>plus</code>).</p></footer>\n"
        h += "</body>\n</html>\n"
        return h
    }

    private func e(_ s: String) -> String { HTMLEscape.escape(s) }

    /// Failed: a status of 400 or more, an error, an `error` finding, or a verdict.
    func isFailed(_ x: Exchange, verdicts: [Verdict]) -> Bool {
        x.isFailed || verdicts.contains { $0.exchange == x.id && x.id != nil }
    }

    // MARK: - Sequence diagram

    /// Where an arrow starts.
    enum Source: String { case browser, app }

    /// An exchange's arrow: from a lane to a lane, what it says.
    struct Arrow {
        var id: Int64
        var source: Source
        /// Lane key of the target.
        var target: String
        var label: String
        var status: String
        var failed: Bool
        var handOffs: [HandOff]
        var title: String
    }

    /// A code or token an exchange issued (in a redirect's `Location`, a token response) or sent
    /// (query, form body, `Authorization`), by its placeholder.
    struct HandOff: Hashable {
        var issued: Bool
        var placeholder: Placeholder
    }

    /// The roles whose values are handed from one exchange to another in an OAuth flow.
    static let handOffRoles: Set<String> = ["code", "access_token", "refresh_token", "id_token"]

    /// The codes and tokens `x` sends and issues, each once, sent first.
    func handOffs(_ x: Exchange) -> [HandOff] {
        guard x.kind == .http else { return [] }
        var sentText = x.target
        for h in x.request.headers where h.hasName("authorization") { sentText += " " + h.value }
        if let body = String(data: x.request.body, encoding: .utf8) { sentText += " " + body }
        var issuedText = x.response.headers.all(named: "location").joined(separator: " ")
        if let body = String(data: x.response.body, encoding: .utf8) { issuedText += " " + body }
        var seen = Set<String>()
        var out: [HandOff] = []
        for (issued, text) in [(false, sentText), (true, issuedText)] {
            for p in Placeholder.all(in: text) where Self.handOffRoles.contains(p.role) {
                if seen.insert("\(issued) \(p.text)").inserted { out.append(HandOff(issued: issued, placeholder: p)) }
            }
        }
        return out
    }

    /// The lane key and title of a host (`miro.com`, `localhost:8080`).
    static func hostLane(_ x: Exchange) -> String {
        let host = hostText(x.host)
        let defaultPort = x.scheme == "http" ? 80 : 443
        return x.port == defaultPort && x.kind != .tunnel ? host : "\(host):\(x.port)"
    }

    /// The path shown on an arrow: no query string or fragment (they can hold secrets, even
    /// redacted ones take room), at most 40 characters.
    static func shortPath(_ x: Exchange) -> String {
        var path = x.path
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty { path = "/" }
        if path.count > 40 { path = String(path.prefix(39)) + "…" }
        return path
    }

    func arrow(_ x: Exchange, failed: Bool) -> Arrow {
        let role = diagnoser.oauthRole(of: x)
        let fromBrowser = ["authorize", "redirect", "callback"].contains(role ?? "")
        let target = role == "callback" ? "app" : "host:" + Self.hostLane(x)
        var status = x.status.map(String.init) ?? (x.error != nil ? "failed" : "no response")
        if x.status != nil, x.error != nil { status += " from tokentap" }
        let label: String
        switch x.kind {
        case .tunnel:
            label = "CONNECT \(Self.hostLane(x)) (tunnel, \(x.request.wireSize) B out, \(x.response.wireSize) B in)"
            status = x.error != nil ? "failed" : "tunnelled"
        case .tlsError:
            label = "TLS handshake with \(Self.hostLane(x))"
            if x.status == nil { status = "failed" }
        case .http, .clientError:
            let method = x.method.isEmpty ? "BAD REQUEST" : x.method
            label = role == "callback" ? "\(method) \(Self.hostLane(x))\(Self.shortPath(x))" : "\(method) \(Self.shortPath(x))"
        case .websocket:
            let ws = x.websocket
            let close = ws?.closeCode.map { ", close \($0)" } ?? (ws?.open == true ? ", open" : "")
            label = "WebSocket \(Self.shortPath(x)) (\(ws?.bytesClient ?? 0) B out, \(ws?.bytesServer ?? 0) B in\(close))"
        }
        var title = "#\(x.id.map(String.init) ?? "?")"
        if let role { title += " \(role)" }
        title += ": \(label) → \(status)"
        if let error = x.error { title += " (\(error))" }
        return Arrow(id: x.id ?? 0, source: fromBrowser ? .browser : .app, target: target, label: label, status: status,
                     failed: failed, handOffs: handOffs(x), title: title)
    }

    func diagram(_ exchanges: [Exchange], failed: Set<Int64>) -> String {
        let arrows = exchanges.map { arrow($0, failed: $0.id.map(failed.contains) ?? false) }
        var lanes: [(key: String, title: String)] = [("browser", "Browser"), ("app", "App")]
        for a in arrows where !lanes.contains(where: { $0.key == a.target }) {
            lanes.append((a.target, String(a.target.dropFirst("host:".count))))
        }
        let laneGap = 200.0, margin = 110.0, top = 56.0
        let width = margin * 2 + laneGap * Double(lanes.count - 1)
        func x(_ key: String) -> Double { margin + laneGap * Double(lanes.firstIndex { $0.key == key } ?? 0) }
        var rows: [(arrow: Arrow, y: Double)] = []
        var y = top + 34
        for a in arrows {
            rows.append((a, y))
            y += 40 + 15 * Double(a.handOffs.count)
        }
        let height = y + 10
        var s = "<svg class=\"sequence\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        s += "<title>Sequence diagram: \(exchanges.count) exchange\(exchanges.count == 1 ? "" : "s") between the browser, the app and \(lanes.count - 2) host\(lanes.count == 3 ? "" : "s")</title>\n"
        for lane in lanes {
            let lx = x(lane.key)
            s += "<g class=\"lane\" data-lane=\"\(e(lane.title))\">"
            s += "<rect class=\"lane-head\" x=\"\(fmt(lx - 92))\" y=\"8\" width=\"184\" height=\"30\" rx=\"5\"/>"
            s += "<text class=\"lane-title\" x=\"\(fmt(lx))\" y=\"28\" text-anchor=\"middle\">\(e(Self.clip(lane.title, 26)))</text>"
            s += "<line class=\"lifeline\" x1=\"\(fmt(lx))\" y1=\"38\" x2=\"\(fmt(lx))\" y2=\"\(fmt(height - 4))\"/></g>\n"
        }
        for (a, ay) in rows {
            let from = x(a.source.rawValue), to = x(a.target)
            let cls = a.failed ? "exchange failed" : "exchange"
            s += "<g class=\"\(cls)\" data-exchange=\"\(a.id)\" data-from=\"\(a.source.rawValue)\"\(a.failed ? " data-failed=\"true\"" : "")>"
            s += "<title>\(e(a.title))</title><a href=\"#exchange-\(a.id)\">"
            let left = min(from, to)
            let label = "#\(a.id) \(a.label) → \(a.status)" + (a.failed ? " ✗" : "")
            s += "<text class=\"label\" x=\"\(fmt(left + 8))\" y=\"\(fmt(ay - 6))\">\(e(label))</text>"
            if from == to {
                // To itself (a request the app sends to its own lane): a small loop.
                s += "<path class=\"arrow-line\" d=\"M\(fmt(from)) \(fmt(ay)) h40 v10 h-34\"/>"
                s += "<path class=\"arrow-head\" d=\"M\(fmt(from + 2)) \(fmt(ay + 10)) l8 -5 v10 z\"/>"
            } else {
                let dir = to > from ? 1.0 : -1.0
                s += "<line class=\"arrow-line\" x1=\"\(fmt(from))\" y1=\"\(fmt(ay))\" x2=\"\(fmt(to - dir * 9))\" y2=\"\(fmt(ay))\"/>"
                s += "<path class=\"arrow-head\" d=\"M\(fmt(to)) \(fmt(ay)) l\(fmt(-dir * 10)) -5 v10 z\"/>"
            }
            for (i, hand) in a.handOffs.enumerated() {
                let hue = Int(hand.placeholder.fingerprint.prefix(4), radix: 16).map { $0 % 360 } ?? 0
                let verb = hand.issued ? "issues" : "sends"
                s += "<text class=\"handoff\" style=\"--h:\(hue)\" data-role=\"\(e(hand.placeholder.role))\" data-placeholder=\"\(e(hand.placeholder.text))\" x=\"\(fmt(left + 8))\" y=\"\(fmt(ay + 16 + 15 * Double(i)))\">\(verb) \(e(hand.placeholder.role)) \(e(hand.placeholder.text))</text>"
            }
            s += "</a></g>\n"
        }
        s += "</svg>\n"
        s += "<p class=\"legend\">Arrows start in the browser's lane for the authorize request, the provider's redirect and the callback, and in the app's lane for token requests and API calls (the OAuth role decides). Failed exchanges are red and marked ✗. A code or token appears under each arrow that issues or sends it, as its placeholder: the same placeholder (and colour) is the same value.</p>\n"
        return s
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(n - 1)) + "…" : s }

    private func fmt(_ v: Double) -> String {
        v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
    }

    // MARK: - Exchanges

    func detail(_ x: Exchange, failed: Set<Int64>, verdict: Verdict?) -> String {
        let id = x.id.map(String.init) ?? "?"
        let isFailed = x.id.map(failed.contains) ?? false
        let role = diagnoser.oauthRole(of: x)
        var h = "<section class=\"exchange-detail\(isFailed ? " failed" : "")\" id=\"exchange-\(id)\" data-exchange=\"\(id)\">\n"
        let status = x.status.map { "\($0)\(x.reason.map { " " + $0 } ?? "")" } ?? (x.error != nil ? "failed" : "no response")
        let what: String
        switch x.kind {
        case .tunnel: what = "CONNECT \(Self.hostLane(x)) (tunnelled, not intercepted)"
        case .tlsError: what = "TLS handshake with \(Self.hostLane(x))"
        case .http, .clientError: what = "\(x.method.isEmpty ? "BAD REQUEST" : x.method) \(x.url)"
        case .websocket: what = "WebSocket \(x.url)"
        }
        h += "<h3><span class=\"id\">#\(e(id))</span> \(role.map { "<span class=\"role\">\(e($0))</span> " } ?? "")"
        h += "<span class=\"what\">\(e(what))</span> <span class=\"status\">→ \(e(x.kind == .tunnel && x.error == nil ? "tunnelled" : status))</span></h3>\n"
        h += "<p class=\"meta\">\(e(iso8601Microseconds(x.started))) · \(e(Self.duration(x.timings.total)))"
        h += " · \(e(x.kind.rawValue))"
        if x.status != nil, x.error != nil { h += " · answered by tokentap, not by the server" }
        h += "</p>\n"
        if let error = x.error { h += "<p class=\"exchange-error\">error: \(e(error))</p>\n" }
        if let verdict { h += "<p class=\"verdict-ref\">Verdict: <code class=\"rule\">\(e(verdict.cause))</code> (\(e(verdict.confidence.rawValue))): \(e(verdict.summary))</p>\n" }
        let findings = Diagnoser.sorted(x.findings)
        if !findings.isEmpty {
            h += "<ul class=\"findings\">\n"
            for f in findings {
                h += "<li class=\"finding \(e(f.severity.rawValue))\" data-rule=\"\(e(f.rule))\" data-severity=\"\(e(f.severity.rawValue))\">"
                h += "<p><span class=\"severity\">\(e(f.severity.rawValue)), \(e(f.confidence.rawValue))</span> <code class=\"rule\">\(e(f.rule))</code>: \(e(f.title))</p>"
                if !f.evidence.isEmpty {
                    h += "<ul class=\"evidence\">" + f.evidence.map { "<li><code>\(e($0))</code></li>" }.joined() + "</ul>"
                }
                if !f.fix.isEmpty { h += "<p class=\"fix\">fix: \(e(f.fix))</p>" }
                if !f.reference.isEmpty { h += "<p class=\"reference\">see: <code>\(e(f.reference))</code></p>" }
                h += "</li>\n"
            }
            h += "</ul>\n"
        }
        h += "<details>\n<summary>Request and response</summary>\n"
        switch x.kind {
        case .tunnel:
            h += "<pre class=\"request\">\(e("CONNECT \(x.host):\(x.port)\n\(x.request.wireSize) bytes client → server, \(x.response.wireSize) bytes server → client"))</pre>\n"
        case .tlsError where x.request.headers.isEmpty && x.status == nil:
            h += "<pre class=\"request\">\(e("TLS handshake with \(x.host):\(x.port) failed"))</pre>\n"
        case .http, .tlsError, .clientError, .websocket:
            h += "<h4>Request</h4>\n<pre class=\"request\">\(e("\(x.method.isEmpty ? "-" : x.method) \(x.target) \(x.request.httpVersion)\n" + headerLines(x.request.headers)))"
            h += body(x.request) + "</pre>\n"
            if x.status != nil || !x.response.headers.isEmpty || !x.response.body.isEmpty {
                h += "<h4>Response</h4>\n<pre class=\"response\">\(e("\(x.response.httpVersion) \(x.status.map(String.init) ?? "-")\(x.reason.map { " " + $0 } ?? "")\n" + headerLines(x.response.headers)))"
                h += body(x.response) + "</pre>\n"
            } else {
                h += "<p class=\"none\">(no response)</p>\n"
            }
        }
        h += "</details>\n</section>\n"
        return h
    }

    /// Header lines, line breaks and other controls inside a value shown as `\r`, `\n`, `\u{X}`.
    func headerLines(_ headers: [HeaderField]) -> String {
        headers.map { "\(Self.visible($0.name)): \(Self.visible($0.value))\n" }.joined()
    }

    static func visible(_ s: String) -> String { Render.visible(s) }

    /// A body, escaped: text trimmed at ``bodyLimit``, binary ones summarized.
    func body(_ m: MessageRecord) -> String {
        guard !m.body.isEmpty else { return "" }
        var out = "\n"
        var cut = min(m.body.count, bodyLimit)
        var text = String(data: m.body.prefix(cut), encoding: .utf8)
        if text == nil, m.body.count > bodyLimit {
            while cut > bodyLimit - 4, text == nil { cut -= 1; text = String(data: m.body.prefix(cut), encoding: .utf8) }
        }
        guard let text else { return out + "<span class=\"note\">(\(m.body.count) bytes of binary body not shown)</span>" }
        out += e(text)
        if m.body.count > cut { out += "\n<span class=\"note\">… (\(m.body.count - cut) more bytes not shown)</span>" }
        if m.truncated { out += "\n<span class=\"note\">… (body truncated when recorded)</span>" }
        return out
    }

    static func duration(_ ms: Double) -> String {
        ms >= 10_000 ? String(format: "%.1f s", ms / 1000) : ms >= 100 ? String(format: "%.0f ms", ms) : String(format: "%.1f ms", ms)
    }

    // MARK: - Style

    /// Light by default, dark when the reader's system is (`prefers-color-scheme`), black on white
    /// when printed; the diagram's colours come from the same variables.
    static let style = """

    :root{color-scheme:light dark;--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;--err:#c62828;--warn:#9a6700;--ok:#1a7f37;--accent:#0550ae;--hl:34%}
    @media (prefers-color-scheme: dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--panel:#151b23;--err:#ff7b72;--warn:#d29922;--ok:#3fb950;--accent:#79c0ff;--hl:72%}}
    *{box-sizing:border-box}
    body{margin:0 auto;max-width:1400px;padding:1.5rem;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
    h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;border-bottom:1px solid var(--line);padding-bottom:.25rem;margin-top:2rem}
    h3{font-size:1rem;margin:0 0 .25rem;word-break:break-all}h4{margin:.75rem 0 .25rem;font-size:.9rem}
    code,pre,.sequence text{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace}
    code{font-size:.9em;word-break:break-all}
    a{color:var(--accent)}
    .meta,.legend,.none,footer{color:var(--muted);font-size:.85rem}
    .verdict{border:1px solid var(--err);border-left-width:6px;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0;background:var(--panel)}
    .verdict .summary{font-weight:600;margin:.25rem 0}
    .verdict dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.25rem 0}.verdict dt{color:var(--muted)}.verdict dd{margin:0}
    .diagram,#flow{overflow-x:auto}
    .sequence{display:block;max-width:none;background:var(--bg)}
    .sequence text{fill:var(--fg);font-size:12px}
    .sequence .lane-head{fill:var(--panel);stroke:var(--line)}
    .sequence .lane-title{font-weight:700;font-size:13px}
    .sequence .lifeline{stroke:var(--line);stroke-dasharray:4 4}
    .sequence .arrow-line{stroke:var(--fg);stroke-width:1.5;fill:none}
    .sequence .arrow-head{fill:var(--fg)}
    .sequence .exchange.failed .arrow-line{stroke:var(--err);stroke-width:2.5}
    .sequence .exchange.failed .arrow-head,.sequence .exchange.failed .label{fill:var(--err)}
    .sequence .exchange.failed .label{font-weight:700}
    .sequence .handoff{font-size:11px;fill:hsl(var(--h) 70% var(--hl))}
    .sequence a:hover .label{text-decoration:underline}
    .exchange-detail{border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem;margin:.6rem 0}
    .exchange-detail.failed{border-left:6px solid var(--err)}
    .exchange-detail.failed .status,.exchange-error{color:var(--err);font-weight:600}
    .role{font-size:.75rem;border:1px solid var(--line);border-radius:3px;padding:0 .3rem;color:var(--muted);font-weight:400}
    .findings{list-style:none;padding:0;margin:.5rem 0}
    .finding{border-left:4px solid var(--line);padding:.1rem .75rem;margin:.4rem 0}
    .finding p{margin:.15rem 0}.finding.error{border-color:var(--err)}.finding.warning{border-color:var(--warn)}
    .finding.error .severity{color:var(--err)}.finding.warning .severity{color:var(--warn)}.severity{font-weight:600}
    .evidence{margin:.15rem 0;padding-left:1.25rem}
    .fix{font-weight:500}
    details{margin-top:.5rem}summary{cursor:pointer;color:var(--accent)}
    pre{background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:.5rem .75rem;white-space:pre-wrap;word-break:break-all;font-size:12.5px;margin:.25rem 0}
    .note{color:var(--muted);font-style:italic}
    @media print{
    :root{color-scheme:light;--bg:#fff;--fg:#000;--muted:#444;--line:#999;--panel:#fff;--err:#b00020;--warn:#7a5200;--accent:#000;--hl:30%}
    body{max-width:none;padding:0;font-size:10pt}
    #flow{overflow:visible}.sequence{max-width:100%;height:auto}
    .exchange-detail,.verdict,.finding{break-inside:avoid}
    a{text-decoration:none}summary{color:#000}
    details::details-content{content-visibility:visible;display:block}
    }

    """
}
