import ArgumentParser
import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import Reports
import TokentapCore

/// Loads the fingerprint key of `home` (created on first use) as a `Redactor`.
func loadRedactor(_ home: Home) throws -> Redactor {
    do {
        return Redactor(key: try Redactor.loadOrCreateKey(at: CertificatePaths(home: home).fingerprintKey))
    } catch {
        throw CLIFailure.runtime("\(error)")
    }
}

// MARK: - import

/// `tokentap import FILE.har [--session NAME] [--home DIR]` (design.md, "Command line"; issue 8).
///
/// Every entry goes through the live pipeline (`CaptureProcessor`: body decoding, diagnosis with the
/// session's history, redaction), oldest first, keeping the HAR's timestamps; findings the file
/// carries in `_tokentap.findings` are kept, merged with the new ones (de-duplicated by rule and
/// title). A malformed file imports nothing.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a HAR file (Chrome, Firefox, mitmproxy, HTTP Toolkit, tokentap) as a session, redacted and diagnosed.")

    @Argument(help: ArgumentHelp("The HAR file.", valueName: "FILE.har"))
    var file: String

    @Option(help: ArgumentHelp("Session name (default: the file name without extension).", valueName: "NAME"))
    var session: String?

    @Option(name: .customLong("profile"), help: ArgumentHelp("Add or override a provider profile (JSON, the format of the built-in ones; repeatable; after the home's profiles/*.json).", valueName: "FILE"))
    var profiles: [String] = []

    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        let url = URL(fileURLWithPath: file)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIFailure.runtime("cannot read \(file): \(error.localizedDescription)")
        }
        let name = session ?? url.deletingPathExtension().lastPathComponent
        guard !name.isEmpty else { throw CLIFailure.usage("empty session name: pass --session NAME") }
        let entries: [HAR.ImportedEntry]
        let skipped: [(index: Int, url: String)]
        do {
            (entries, skipped) = try HAR.parseReportingSkips(data, session: name)
        } catch let error as HAR.FormatError {
            throw CLIFailure.runtime("\(file): \(error); nothing was imported (fix that entry or export the HAR again)")
        }
        let home = try homeOptions.resolve()
        let profiles = try loadProfiles(home: home, files: self.profiles)
        let store: ExchangeStore
        do { store = try ExchangeStore(path: home.database) } catch {
            throw CLIFailure.runtime("cannot open the recordings database \(home.database.path): \(error)")
        }
        if try !store.exchanges(ExchangeQuery(session: name, kinds: Set(ExchangeKind.allCases), limit: 1)).isEmpty {
            throw CLIFailure.usage("session '\(name)' already exists: choose another name with --session NAME (or `tokentap delete --session \(name)`)")
        }
        let redactor = try loadRedactor(home)
        let processor = CaptureProcessor(redactor: redactor, keepSecrets: false, maxBody: 1 << 24, profiles: profiles)
        do { try store.recordProfiles(sessionProfiles(profiles), session: name) } catch {
            throw CLIFailure.runtime("cannot write to \(home.database.path): \(error)")
        }
        // Oldest first (stable for equal times), as the live pipeline sees traffic.
        let ordered = entries.enumerated().sorted { a, b in
            a.element.exchange.started != b.element.exchange.started
                ? a.element.exchange.started < b.element.exchange.started : a.offset < b.offset
        }.map(\.element)
        var count = 0
        var findings: [Finding] = []
        for entry in ordered {
            guard var prepared = processor.prepare([entry.exchange]).first else { continue }
            if !entry.findings.isEmpty {
                // The file's findings were computed on raw values by whoever wrote it: keep them
                // (redacted like everything else) next to what can be computed again here.
                var carrier = Exchange(session: name, started: prepared.started, host: prepared.host)
                carrier.findings = entry.findings
                let imported = redactor.redact(carrier).findings
                prepared.findings = Diagnoser.sorted(HAR.mergeFindings(computed: prepared.findings, imported: imported))
            }
            let stored: [Exchange]
            do { stored = try await store.insert([prepared]) } catch {
                throw CLIFailure.runtime("cannot write to \(home.database.path) after \(count) exchanges: \(error)")
            }
            processor.stored(stored)
            count += stored.count
            findings += stored.flatMap(\.findings)
        }
        let serious = findings.filter { $0.severity != .info }
        print("imported \(count) exchanges into session \(name)"
              + (serious.isEmpty ? "" : " (\(serious.count) error/warning findings: \(Set(serious.map(\.rule)).sorted().joined(separator: ", ")))"))
        if !skipped.isEmpty {
            print("skipped \(skipped.count) entries that are not network requests (e.g. entry \(skipped[0].index): \(skipped[0].url.prefix(60)))")
        }
        print("next: tokentap doctor --session \(name)")
    }
}

// MARK: - export

/// The formats of `tokentap export`.
enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case har, markdown, curl, html
}

/// Exchanges as every export shows them: rows recorded with `--keep-secrets` redacted (with the same
/// last check as at capture; its fallbacks are warned about on stderr), then, with `pseudonymize`,
/// e-mail addresses, user names and Miro ids replaced by stable pseudonyms.
func exportable(_ exchanges: [Exchange], redactor: Redactor, pseudonymize: Bool) -> [Exchange] {
    var out = exchanges.map { e in
        guard e.keepsSecrets else { return e }
        let (redacted, fallbacks) = redactor.redactChecked(e)
        for f in fallbacks { warn(f.description) }
        return redacted
    }
    if pseudonymize {
        var pseudonymizer = Pseudonymizer()
        out = out.map { pseudonymizer.pseudonymize($0) }
    }
    return out
}

/// `tokentap export [--session S] [--id N]... --format har|markdown|curl [-o FILE] [--home DIR]`
/// (design.md, "Command line"; issue 9). Always redacted: rows recorded with `--keep-secrets` go
/// through the `Redactor` first.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export recorded exchanges, redacted: HAR 1.2, a Markdown report, curl commands, or an HTML report with the flow as a sequence diagram.")

    @OptionGroup var filters: FilterOptions

    @Option(name: .customLong("id"), help: ArgumentHelp("Only this exchange (repeatable).", valueName: "N"))
    var ids: [Int64] = []

    @Option(help: ArgumentHelp("har, markdown, curl or html.", valueName: "FORMAT"))
    var format: ExportFormat

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write to FILE instead of stdout.", valueName: "FILE"))
    var output: String?

    @Flag(help: "Also replace e-mail addresses, user names and Miro user/team ids with stable pseudonyms.")
    var pseudonymize = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let home = try homeOptions.resolve(prepare: false)
        let store = try openStore(home)
        var exchanges: [Exchange] = []
        if ids.isEmpty {
            var query = try filters.query(store: store)
            guard query.session != nil else {
                throw CLIFailure.runtime("no recordings yet in \(home.database.path): run `tokentap proxy` or `tokentap import FILE.har` first")
            }
            query.includeBodies = true
            exchanges = try store.exchanges(query)
            if exchanges.isEmpty {
                throw CLIFailure.runtime("nothing to export: no exchanges match in session \(query.session!) (`tokentap list` shows what is there)")
            }
        } else {
            for id in ids {
                guard let e = try store.exchange(id: id) else {
                    throw CLIFailure.runtime("no exchange #\(id) in \(store.path.path): `tokentap list` shows the ids")
                }
                exchanges.append(e)
            }
        }
        let redactor = try loadRedactor(home)
        // Raw rows (--keep-secrets) are redacted here, with the same last check as at capture.
        exchanges = exportable(exchanges, redactor: redactor, pseudonymize: pseudonymize)

        let text: Data
        switch format {
        case .har:
            // Each failed OAuth exchange carries its verdict in `_tokentap.verdict`.
            let verdicts = Diagnoser(redactor: redactor).verdicts(exchanges)
            var extra: [Int64: [String: Any]] = [:]
            for v in verdicts { extra[v.exchange] = ["verdict": verdictObject(v)] }
            text = HAR.export(exchanges, creatorVersion: Tokentap.version, extensions: extra)
        case .markdown:
            text = Data(MarkdownReport.render(exchanges, diagnoser: Diagnoser(redactor: redactor), version: Tokentap.version).utf8)
        case .curl:
            text = Data(CurlExport.render(exchanges, version: Tokentap.version).utf8)
        case .html:
            let exporter: any Exporter = HTMLReport(diagnoser: Diagnoser(redactor: redactor), version: Tokentap.version)
            text = exporter.export(exchanges)
        }
        if let output {
            do { try text.write(to: URL(fileURLWithPath: output)) } catch {
                throw CLIFailure.runtime("cannot write \(output): \(error.localizedDescription)")
            }
            if format == .curl { _ = chmod(output, 0o755) }
            FileHandle.standardError.write(Data("wrote \(exchanges.count) exchanges (\(format.rawValue)) to \(output)\n".utf8))
        } else {
            // A closed pipe (`| head`) ends the output quietly (SIGPIPE is ignored: EPIPE here).
            var out = text
            if out.last != 0x0A { out.append(0x0A) }
            try? FileHandle.standardOutput.write(contentsOf: out)
        }
    }
}

// MARK: - placeholders

/// Every distinct placeholder text in `text` (canonical placeholders only).
private func placeholderTexts(in text: String) -> [String] {
    var seen = Set<String>()
    return Placeholder.all(in: text).map(\.text).filter { seen.insert($0).inserted }
}

/// What the reader needs to read placeholders (README: "Secrets").
let placeholderExplanation = """
Secrets are redacted: each appears as `redacted.<role>.<fingerprint>.<length>[.<flags>]`. The fingerprint is a keyed \
HMAC of the value (it cannot be reversed; equal fingerprints mean equal values), `length` is its character count, and \
the flags note whitespace (`lead-ws`, `trail-ws`, `newline`), quotes (`quoted`), percent-escapes (`pct`) or `+` (`plus`) in it.
"""

// MARK: - Markdown

/// The report of `export --format markdown`: ready to paste into an issue or a forum post.
enum MarkdownReport {
    /// Bodies longer than this are trimmed.
    static let bodyLimit = 2048

    static func render(_ exchanges: [Exchange], diagnoser: Diagnoser, version: String) -> String {
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

    private static func headerLines(_ headers: [HeaderField]) -> String {
        headers.map { "\($0.name): \($0.value)\n" }.joined()
    }

    private static func bodyText(_ m: MessageRecord) -> String {
        guard !m.body.isEmpty else { return "" }
        guard let text = String(data: m.body, encoding: .utf8) else {
            return "\n(\(m.body.count) bytes of binary body omitted)\n"
        }
        var out = "\n"
        if m.body.count > bodyLimit {
            var cut = bodyLimit
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
    private static func fenced(_ text: String) -> String {
        var longest = 0, run = 0
        for c in text { if c == "`" { run += 1; longest = max(longest, run) } else { run = 0 } }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        return "\(fence)http\n\(text)\(text.hasSuffix("\n") ? "" : "\n")\(fence)\n"
    }

    private static func code(_ text: String) -> String {
        let clean = text.replacingOccurrences(of: "\n", with: " ")
        return clean.contains("`") ? "`` \(clean) ``" : "`\(clean)`"
    }

    private static func inline(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: " ") }
}

// MARK: - curl

/// The script of `export --format curl`: one curl command per exchange, each placeholder replaced
/// by a shell variable named for its role (`"$CLIENT_SECRET"`, `"$CODE"`), listed in a comment.
/// `set -u` makes the shell stop on a variable that is not set.
enum CurlExport {
    /// Headers curl computes itself, or that would change what the reproduction does.
    static let skippedHeaders: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "proxy-connection",
                                              "proxy-authorization", "keep-alive", "te", "upgrade", "accept-encoding"]

    static func render(_ exchanges: [Exchange], version: String) -> String {
        var commands: [String] = []
        for e in exchanges {
            guard e.kind == .http else {
                commands.append("# #\(e.id.map(String.init) ?? "?") \(e.kind.rawValue) \(e.host):\(e.port): not an HTTP exchange, nothing to reproduce")
                continue
            }
            commands.append(command(e))
        }
        // Variables: one per distinct value (fingerprint), named for the first role it appears in.
        let all = commands.joined(separator: "\n")
        var names: [String: String] = [:]        // fingerprint → name
        var used = Set<String>()
        var listing: [String] = []
        var byText: [String: String] = [:]       // placeholder text → name
        for text in placeholderTexts(in: all) {
            guard let p = Placeholder(parsing: text) else { continue }
            if let name = names[p.fingerprint] { byText[text] = name; continue }
            let base = variableBase(p.role)
            var name = base, n = 2
            while used.contains(name) { name = "\(base)_\(n)"; n += 1 }
            used.insert(name)
            names[p.fingerprint] = name
            byText[text] = name
            let flags = ShapeFlag.allCases.filter { p.flags.contains($0) }.map(\.rawValue)
            listing.append("#   \(name): the \(p.role) (\(p.length) characters\(flags.isEmpty ? "" : ", " + flags.joined(separator: ", ")); fingerprint \(p.fingerprint))")
        }
        var script = "#!/bin/sh\n"
        script += "# tokentap \(version): \(exchanges.count) recorded exchange(s) as curl commands (secrets redacted).\n"
        if listing.isEmpty {
            script += "# No secret was redacted in these requests.\n"
        } else {
            script += "# Set these variables to the values to send, as they appeared on the wire (URL-encoded where they sit in a URL or form body):\n"
            script += listing.joined(separator: "\n") + "\n"
            script += "# e.g. " + used.sorted().prefix(2).map { "\($0)=..." }.joined(separator: " ") + " sh THIS_FILE\n"
        }
        script += "set -u\n\n"
        script += substitute(all, byText) + "\n"
        return script
    }

    /// `client_secret` → `CLIENT_SECRET`, `x-api-key` → `X_API_KEY`.
    static func variableBase(_ role: String) -> String {
        var name = String(role.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        if name.isEmpty { name = "SECRET" }
        if name.first!.isNumber { name = "_" + name }
        return name
    }

    /// `text` with each placeholder replaced by `$NAME` (`${NAME}` when a name character follows).
    static func substitute(_ text: String, _ byText: [String: String]) -> String {
        var out = text
        // Longest first: a placeholder with flags extends the same one without.
        for (ph, name) in byText.sorted(by: { $0.key.count > $1.key.count }) {
            var result = ""
            var rest = Substring(out)
            while let r = rest.range(of: ph) {
                result += rest[..<r.lowerBound]
                let next = rest[r.upperBound...].first
                let continues = next.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } ?? false
                result += continues ? "${\(name)}" : "$\(name)"
                rest = rest[r.upperBound...]
            }
            result += rest
            out = result
        }
        return out
    }

    /// Double-quoted for sh with `\`, `"`, `$` and backquote escaped (placeholders contain none of them).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s {
            switch c {
            case "\\", "\"", "$", "`": out.append("\\"); out.append(c)
            default: out.append(c)
            }
        }
        return out + "\""
    }

    static func command(_ e: Exchange) -> String {
        var lines = ["# #\(e.id.map(String.init) ?? "?") \(e.method) \(e.url) (recorded \(iso8601Microseconds(e.started)): \(e.status.map(String.init) ?? e.error ?? "no response"))"]
        var args: [String] = []
        if e.method == "HEAD" { args.append("--head") } else { args += ["-X", e.method] }
        args.append(quoted(e.url))
        for h in e.request.headers where !skippedHeaders.contains(h.name.lowercased()) {
            if h.name.lowercased() == "authorization", let user = basicUser(h.value) {
                args += ["-u", quoted(user)]
            } else {
                args += ["-H", quoted("\(h.name): \(h.value)")]
            }
        }
        var prefix = ""
        if !e.request.body.isEmpty {
            if let text = String(data: e.request.body, encoding: .utf8) {
                args += ["--data-binary", quoted(text)]
            } else {
                prefix = "printf '%s' '\(e.request.body.base64EncodedString())' | base64 -d | "
                args += ["--data-binary", "@-"]
            }
        }
        var line = prefix + "curl -sS -g"
        for (i, a) in args.enumerated() {
            let startsOption = a.hasPrefix("-") && !a.hasPrefix("\"")
            line += (startsOption && i > 1 ? " \\\n  " : " ") + a
        }
        lines.append(line)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `id:secret` of a Basic `Authorization` value (RFC 7617) when it decodes to text with a colon.
    static func basicUser(_ value: String) -> String? {
        let parts = value.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8), text.contains(":"),
              !text.contains(where: { $0.isNewline }) else { return nil }
        return text
    }
}
