import Foundation
import TokentapCore

/// The doctor's answer for one failed OAuth exchange: one cause, in one sentence, first
/// (oauth-rules.md, "One verdict per failure"; design.md, `doctor --json` `verdicts`).
///
/// Computed from the exchange's findings only (``Verdict/decide(_:)``, a pure function with an
/// explicit precedence), so it is the same wherever it is computed: `doctor`, the exports, the
/// proxy's live lines and `tail`.
public struct Verdict: Codable, Sendable, Hashable {
    /// Id of the failed exchange.
    public var exchange: Int64
    /// The timeline's name of the step: `token exchange`, `refresh`, `token request`, `api call`,
    /// `authorize`, `redirect`, `callback`, `tls error`.
    public var step: String
    /// The status recorded (for a proxy-side failure, the proxy's own 502/504); nil without a response.
    public var status: Int?
    /// The rule id of the cause.
    public var cause: String
    /// How sure the cause is: the cause finding's confidence, except `possible` when the provider's
    /// message is all there is (`provider-error` as the cause).
    public var confidence: Confidence
    /// One sentence: what failed and why. Built from the findings' texts (which never carry a raw secret).
    public var summary: String
    /// What to change: the cause's fix.
    public var fix: String
    /// Rule ids of the findings the cause explains (a JSON body explains every `param-missing`).
    public var consequences: [String]
    /// Rule ids of the other findings that could explain the failure (errors and warnings the cause
    /// does not explain), most likely first.
    public var alternatives: [String]

    public init(exchange: Int64, step: String, status: Int?, cause: String, confidence: Confidence, summary: String,
                fix: String, consequences: [String], alternatives: [String]) {
        self.exchange = exchange; self.step = step; self.status = status; self.cause = cause
        self.confidence = confidence; self.summary = summary; self.fix = fix
        self.consequences = consequences; self.alternatives = alternatives
    }
}

extension Verdict {
    /// How a cause ranks (oauth-rules.md, "One verdict per failure"), highest first. A finding's
    /// tier is fixed by its rule id (``tier(of:)``).
    public enum Tier: Int, Sendable, Comparable, CaseIterable {
        /// The proxy reported the failure itself (502/504, upstream TLS) or the client refused the
        /// proxy: the provider never judged the request.
        case proxy
        /// The provider refused to judge the request at all (rate limit).
        case refused
        /// The request's shape stopped the server from reading it as a token request or API call
        /// (body encoding, method, endpoint, host, a redirect that lost the body, plain http), or
        /// from reading its client credentials (a malformed Basic header).
        case unreadable
        /// Something the server read is wrong: credentials, grant, code, redirect URI, PKCE, tokens.
        case request
        /// Nothing on the request explains it: the credentials are suspected, or the provider's
        /// message is all there is.
        case fallback

        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
    }

    /// The precedence of causes: tiers in order, and inside a tier the catalog rules from most to
    /// least specific. This list is the whole order; nothing else ranks causes.
    public static let precedence: [(Tier, [String])] = [
        (.proxy, ["upstream-unreachable", "upstream-timeout", "upstream-tls-failed", "upstream-response-invalid", "client-tls-untrusted"]),
        (.refused, ["rate-limited"]),
        (.unreadable, ["token-redirected", "token-endpoint-wrong", "api-wrong-host", "token-method-not-post", "token-over-plain-http",
                       "body-not-form-encoded", "content-type-mismatch", "basic-auth-malformed"]),
        (.request, ["token-type-confusion", "code-reused", "code-mangled", "code-expired", "refresh-token-not-issued",
                    "refresh-token-rotated", "refresh-token-expired", "refresh-token-client-mismatch", "access-token-missing",
                    "access-token-superseded", "access-token-expired", "scope-mismatch", "client-auth-conflict", "client-credentials-swapped", "credential-formatting", "param-conflict",
                    "grant-type-invalid", "param-missing", "client-id-mismatch", "redirect-uri-missing", "redirect-uri-mismatch",
                    "pkce-verifier-missing", "pkce-verifier-invalid", "pkce-verifier-mismatch", "spa-origin-required",
                    "jwt-clock-skew", "state-mismatch", "loopback-redirect-port", "code-unknown", "extra-params",
                    "params-in-query", "param-split"]),
        (.fallback, ["server-rejected-credentials", "provider-error"]),
    ]

    /// The tier of a rule (``Tier/request`` for a rule the list does not name).
    public static func tier(of rule: String) -> Tier {
        precedence.first { $0.1.contains(rule) }?.0 ?? .request
    }

    /// Position of a rule in ``precedence`` (later for rules it does not name).
    static func rank(of rule: String) -> Int {
        var i = 0
        for (_, rules) in precedence {
            if let j = rules.firstIndex(of: rule) { return i + j }
            i += rules.count
        }
        return i
    }

    /// Rules that only say the server could not read or did not accept what was sent: explained by
    /// any cause in a higher tier ("a JSON body explains every parameter missing").
    static let unreadConsequences: Set<String> = ["param-missing", "grant-type-invalid", "redirect-uri-missing",
                                                  "pkce-verifier-missing", "content-type-mismatch"]

    /// Whether `cause` explains the finding `other` on the same exchange.
    /// - A proxy-side failure explains everything else (nothing reached the provider).
    /// - Every cause explains the fallbacks: the provider's message is its symptom, and
    ///   `server-rejected-credentials` only stands when nothing else does.
    /// - An unreadable request explains what the server could not read (``unreadConsequences``).
    /// - A code rule explains `code-unknown`; a rate limit explains the rest of the answer.
    public static func explains(_ cause: String, _ other: String) -> Bool {
        let t = tier(of: cause)
        if t == .proxy || t == .refused { return true }
        if tier(of: other) == .fallback { return true }
        if t == .unreadable { return unreadConsequences.contains(other) }
        if ProviderSubject.of(rule: cause) == .code { return other == "code-unknown" }
        return false
    }

    /// The choice of one cause among an exchange's findings.
    public struct Decision: Sendable, Hashable {
        public var cause: Finding
        public var consequences: [Finding]
        public var alternatives: [Finding]
        /// The provider's own message when it names the cause's subject (supporting evidence).
        public var supportingMessage: String?
    }

    /// Chooses the cause among `findings` (one exchange's): the error and warning findings are the
    /// candidates, ranked by severity (an error explains a failure, a warning only may), then tier
    /// (``precedence``), then confidence, then whether the provider's message names the rule's
    /// subject (or its error code names the rule through the profile's ``ProviderProfile/ErrorCode``s),
    /// then the rule's place in ``precedence``. Consequences: the other findings the cause
    /// ``explains(_:_:)``; alternatives: the remaining error and warning findings. Nil when no
    /// finding is an error or a warning.
    public static func decide(_ findings: [Finding]) -> Decision? {
        let candidates = findings.filter { $0.severity == .error || $0.severity == .warning }
        guard !candidates.isEmpty else { return nil }
        let message = providerMessage(findings)
        let subjects = message.map { ProviderSubject.named(in: $0) } ?? []
        // Causes the provider's error code names through its profile (Entra's AADSTS54005 → code-reused).
        let named = ProviderErrorCodeEvidence.causes(in: findings)
        func supported(_ f: Finding) -> Bool {
            named.contains(f.rule) || (ProviderSubject.of(rule: f.rule).map(subjects.contains) ?? false)
        }
        let ranked = candidates.enumerated().sorted { a, b in
            let x = a.element, y = b.element
            if x.severity != y.severity { return x.severity < y.severity }
            if tier(of: x.rule) != tier(of: y.rule) { return tier(of: x.rule) < tier(of: y.rule) }
            if x.confidence != y.confidence { return x.confidence < y.confidence }
            if supported(x) != supported(y) { return supported(x) }
            if rank(of: x.rule) != rank(of: y.rule) { return rank(of: x.rule) < rank(of: y.rule) }
            return a.offset < b.offset
        }.map(\.element)
        let cause = ranked[0]
        let rest = findings.filter { $0 != cause }
        let consequences = rest.filter { explains(cause.rule, $0.rule) }
        let alternatives = ranked.dropFirst().filter { f in !consequences.contains(f) }
        return Decision(cause: cause, consequences: consequences, alternatives: Array(alternatives),
                        supportingMessage: supported(cause) && cause.rule != "provider-error" ? message : nil)
    }

    /// The provider's message as the `provider-error` finding quotes it (`message`,
    /// `error_description`, else `error`), already redacted.
    static func providerMessage(_ findings: [Finding]) -> String? {
        guard let f = findings.first(where: { $0.rule == "provider-error" }) else { return nil }
        for key in ["message: ", "error_description: ", "error: "] {
            if let line = f.evidence.first(where: { $0.hasPrefix(key) }) { return String(line.dropFirst(key.count)) }
        }
        return nil
    }

    /// The verdict on a failed exchange from its findings, or nil when none is an error or warning.
    /// - Parameters:
    ///   - exchange: the exchange's id; `step`: its timeline name; `status`: as recorded;
    ///   - provider: the provider's name for the summary (`Miro`, `the provider`).
    public static func make(exchange: Int64, step: String, status: Int?, findings: [Finding], provider: String = "the provider") -> Verdict? {
        guard let d = decide(findings) else { return nil }
        let cause = d.cause
        var confidence = cause.confidence
        if cause.rule == "provider-error" { confidence = .possible }
        let name = step == "api call" ? "API call" : step == "tls error" ? "TLS error" : step.prefix(1).uppercased() + step.dropFirst()
        var sentence = "\(name) #\(exchange)"
        if let status { sentence += " (\(tier(of: cause.rule) == .proxy && cause.rule != "client-tls-untrusted" ? "\(status) from tokentap" : "HTTP \(status)"))" }
        sentence += ": " + lowercasedStart(trimmedPeriod(cause.title))
        let explained = Dictionary(grouping: d.consequences.filter { $0.severity != .info }.map(\.rule), by: { $0 })
            .sorted { rank(of: $0.key) < rank(of: $1.key) }
            .map { $0.value.count > 1 ? "\($0.value.count) × \($0.key)" : $0.key }
        if !explained.isEmpty { sentence += "; this also explains " + explained.joined(separator: ", ") }
        if let m = d.supportingMessage { sentence += "; \(provider)'s message agrees: \(m)" }
        if cause.rule == "provider-error" {
            let named = ProviderErrorCodeEvidence.causes(in: findings).sorted { rank(of: $0) < rank(of: $1) }
            if !named.isEmpty { sentence += "; its error code points at \(named.joined(separator: ", "))" }
        }
        sentence += "."
        var alternatives: [String] = []
        for f in d.alternatives where !alternatives.contains(f.rule) { alternatives.append(f.rule) }
        var consequences: [String] = []
        for f in d.consequences where !consequences.contains(f.rule) { consequences.append(f.rule) }
        return Verdict(exchange: exchange, step: step, status: status, cause: cause.rule, confidence: confidence,
                       summary: sentence, fix: cause.fix, consequences: consequences, alternatives: alternatives)
    }

    private static func trimmedPeriod(_ s: String) -> String {
        s.hasSuffix(".") ? String(s.dropLast()) : s
    }

    /// `The token request …` → `the token request …`; `API …`, `PKCE …` stay.
    private static func lowercasedStart(_ s: String) -> String {
        guard let first = s.first, first.isUppercase else { return s }
        let second = s.dropFirst().first
        if let second, second.isUppercase || second.isNumber { return s }
        return first.lowercased() + s.dropFirst()
    }
}
