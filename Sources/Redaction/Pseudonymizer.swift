import Foundation
import TokentapCore

/// Replaces personal data in exported exchanges with stable pseudonyms (`export --pseudonymize`,
/// issue 9): e-mail addresses, user names and Miro user/team ids.
///
/// - E-mail addresses anywhere (URL, headers, bodies, findings; also `%40`-encoded) become
///   `user<N>@example.invalid`.
/// - Id parameters in query strings and form bodies (`user_id`, `team_id`, `userId`, `teamId`,
///   `createdBy`, `modifiedBy`, `owner_id`, `organization_id`…) and the same keys in JSON (string or
///   number values) become 19-digit decimal ids `9000000000000000NNN`, kept as strings or numbers
///   as they were; `id` inside a JSON object under `user`, `team`, `createdBy`, `modifiedBy`,
///   `owner`, `member` or `organization` is replaced the same way.
/// - User names (`name` in those objects, `user_name`, `username`, `userName`, `display_name`,
///   `full_name`, `first_name`, `last_name` in JSON) become `User N` (`Team N` for a team).
///
/// The same input gives the same pseudonym for the lifetime of one `Pseudonymizer` (one export):
/// a team id in a redirect `Location` and in the token response stays recognisably the same.
/// Bytes that are not personal data are kept as they are (JSON is edited in place, never
/// re-serialized). Pure: no I/O, no randomness.
public struct Pseudonymizer: Sendable {
    private var table: [String: String] = [:]  // "kind\u{0}value" → pseudonym
    private var counters: [String: Int] = [:]

    public init() {}

    /// Keys whose values are Miro user/team ids (query, form and JSON), compared case-insensitively.
    static let idKeys: Set<String> = ["user_id", "userid", "team_id", "teamid", "createdby", "modifiedby", "owner_id",
                                      "ownerid", "organization_id", "organizationid", "org_id", "member_id", "memberid"]
    /// JSON keys whose string values are user names.
    static let nameKeys: Set<String> = ["user_name", "username", "display_name", "displayname", "full_name", "fullname",
                                        "first_name", "firstname", "last_name", "lastname"]
    /// JSON keys whose object value describes a person, team or organization (`id`, `name`, `email` in it).
    static let ownerKeys: Set<String> = ["user", "team", "createdby", "modifiedby", "owner", "member", "organization"]

    private static let email = try! NSRegularExpression(
        pattern: #"[A-Za-z0-9._+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"#)
    private static let queryPair = try! NSRegularExpression(pattern: #"(^|[?&;])([A-Za-z_]+)=([^&#;\s"]*)"#)
    private static let jsonPair = try! NSRegularExpression(
        pattern: #""([A-Za-z_]+)"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?[0-9]+)"#)
    private static let jsonObject = try! NSRegularExpression(pattern: #""([A-Za-z_]+)"\s*:\s*\{[^{}]*\}"#)

    /// The stable pseudonym of `value` of `kind` (`email`, `id`, `user`, `team`).
    public mutating func pseudonym(_ value: String, kind: String) -> String {
        let key = "\(kind)\u{0}\(value)"
        if let known = table[key] { return known }
        let n = (counters[kind] ?? 0) + 1
        counters[kind] = n
        let made: String
        switch kind {
        case "email": made = "user\(n)@example.invalid"
        case "id": made = "9" + String(repeating: "0", count: max(0, 18 - String(n).count)) + String(n)
        case "team": made = "Team \(n)"
        default: made = "User \(n)"
        }
        table[key] = made
        return made
    }

    /// `exchange` with personal data replaced in the target, headers, bodies (UTF-8 only), error and findings.
    public mutating func pseudonymize(_ exchange: Exchange) -> Exchange {
        var e = exchange
        e.target = text(e.target)
        e.request = message(e.request)
        e.response = message(e.response)
        e.error = e.error.map { text($0) }
        e.findings = e.findings.map { $0.mappingText { text($0) } }
        return e
    }

    private mutating func message(_ m: MessageRecord) -> MessageRecord {
        var m = m
        m.headers = m.headers.map { HeaderField(name: $0.name, value: text($0.value)) }
        if let body = String(data: m.body, encoding: .utf8) {
            let replaced = text(body)
            if replaced != body { m.body = Data(replaced.utf8) }
        }
        return m
    }

    /// `s` with JSON owner objects, JSON id/name keys, query/form id parameters and e-mail addresses replaced.
    public mutating func text(_ s: String) -> String {
        var out = replace(Self.jsonObject, in: s) { this, groups, whole in
            guard Self.ownerKeys.contains(groups[1].lowercased()) else { return whole }
            let kind = groups[1].lowercased() == "team" ? "team" : "user"
            return this.replace(Self.jsonPair, in: whole) { this, g, pair in
                switch g[1].lowercased() {
                case "id": return this.jsonValue(g, kind: "id")
                case "name": return g[3].hasPrefix("\"") ? this.jsonValue(g, kind: kind) : pair
                default: return pair
                }
            }
        }
        out = replace(Self.jsonPair, in: out) { this, g, pair in
            let key = g[1].lowercased()
            if Self.idKeys.contains(key) { return this.jsonValue(g, kind: "id") }
            if Self.nameKeys.contains(key), g[3].hasPrefix("\"") { return this.jsonValue(g, kind: "user") }
            return pair
        }
        out = replace(Self.queryPair, in: out) { this, g, pair in
            guard Self.idKeys.contains(g[2].lowercased()), !g[3].isEmpty else { return pair }
            return g[1] + g[2] + "=" + this.pseudonym(g[3], kind: "id")
        }
        out = replace(Self.email, in: out) { this, _, whole in
            let normal = whole.replacingOccurrences(of: "%40", with: "@").lowercased()
            let made = this.pseudonym(normal, kind: "email")
            return whole.contains("%40") ? made.replacingOccurrences(of: "@", with: "%40") : made
        }
        return out
    }

    /// `"key": value` with the value's pseudonym, keeping string or number form.
    private mutating func jsonValue(_ g: [String], kind: String) -> String {
        let raw = g[3]
        let quoted = raw.hasPrefix("\"")
        let value = quoted ? String(raw.dropFirst().dropLast()) : raw
        if value.isEmpty || value.hasPrefix("redacted.") { return "\"\(g[1])\"\(g[2])\(raw)" }
        let made = pseudonym(value, kind: kind)
        return "\"\(g[1])\"\(g[2])" + (quoted ? "\"\(made)\"" : made)
    }

    /// Every match of `regex` in `s` replaced by `transform(self, capture groups, whole match)`.
    private mutating func replace(_ regex: NSRegularExpression, in s: String,
                                  _ transform: (inout Pseudonymizer, [String], String) -> String) -> String {
        let ns = s as NSString
        let matches = regex.matches(in: s, range: NSRange(location: 0, length: ns.length))
        guard !matches.isEmpty else { return s }
        var out = ""
        var cursor = 0
        for m in matches {
            out += ns.substring(with: NSRange(location: cursor, length: m.range.location - cursor))
            let groups = (0..<m.numberOfRanges).map { i -> String in
                let r = m.range(at: i)
                return r.location == NSNotFound ? "" : ns.substring(with: r)
            }
            out += transform(&self, groups, groups[0])
            cursor = m.range.location + m.range.length
        }
        out += ns.substring(from: cursor)
        return out
    }
}
