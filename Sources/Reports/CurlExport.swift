import Foundation
import Recording
import Redaction
import TokentapCore

// MARK: - curl

/// The script of `export --format curl`: one curl command per exchange, each placeholder replaced
/// by a shell variable named for its role (`"$CLIENT_SECRET"`, `"$CODE"`), listed in a comment.
/// `set -u` makes the shell stop on a variable that is not set. A row that is not an HTTP exchange
/// (a tunnel, a TLS error) is a comment line.
public struct CurlExport: Exporter {
    public let format = "curl"
    public let version: String

    public init(version: String) {
        self.version = version
    }

    public func export(_ exchanges: [Exchange]) -> Data {
        Data(render(exchanges).utf8)
    }

    /// Headers curl computes itself, or that would change what the reproduction does.
    static let skippedHeaders: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "proxy-connection",
                                              "proxy-authorization", "keep-alive", "te", "upgrade", "accept-encoding"]

    public func render(_ exchanges: [Exchange]) -> String {
        var commands: [String] = []
        for e in exchanges {
            guard e.kind == .http else {
                commands.append("# #\(e.id.map(String.init) ?? "?") \(e.kind.rawValue) \(hostPortText(e.host, e.port)): not an HTTP exchange, nothing to reproduce")
                continue
            }
            commands.append(Self.command(e))
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
            let base = Self.variableBase(p.role)
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
        script += Self.substitute(all, byText) + "\n"
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
            if h.name.lowercased() == "authorization", let user = Self.basicUser(h.value) {
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

    /// The `id:secret` text of a Basic `Authorization` value (``BasicCredentials``), unless it
    /// holds a line break (it could not be passed to `curl -u`, nor shown on one line).
    static func basicUser(_ value: String) -> String? {
        guard let text = BasicCredentials(authorization: value)?.text, !text.contains(where: \.isNewline) else { return nil }
        return text
    }
}
