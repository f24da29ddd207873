import Foundation
import Redaction
import TokentapCore

/// RFC references used by findings.
enum RFC {
    static let tokenRequest = "RFC 6749 §4.1.3"
    static let tokenEndpoint = "RFC 6749 §3.2"
    static let clientAuth = "RFC 6749 §2.3.1"
    static let oneAuthMethod = "RFC 6749 §2.3"
    static let params = "RFC 6749 §3.2"
    static let authCode = "RFC 6749 §4.1.2"
    static let refresh = "RFC 6749 §6"
    static let bearer = "RFC 6750 §2.1"
    static let state = "RFC 6749 §10.12"
    static let pkce = "RFC 7636 §4.1"
    static let pkceVerify = "RFC 7636 §4.6"
    static let tls = "RFC 6749 §3.2 (TLS required); RFC 9700 §2"
    static let redirect = "RFC 9110 §15.4"
    static let errorResponse = "RFC 6749 §5.2"
    static let loopback = "RFC 8252 §7.3"
    static let jwt = "RFC 7523 §3"
    static let rateLimit = "RFC 6585 §4"
}

/// What a rule sees of one exchange: the flow index, the observation being judged, the findings
/// of the earlier stages (``prior``), and the rule's own findings so far (``findings``, empty when
/// the rule starts: a rule never sees or changes another rule's findings of its own stage).
/// Facts several rules share (``redirectedFollowUp``, ``codeFacts``) are pure functions of the
/// index, computed by whichever rule asks.
struct RuleContext {
    let index: FlowIndex
    let position: Int
    /// Findings of the stages before the judging rule's (``RuleStage``).
    var prior: [Finding] = []
    /// The judging rule's own findings.
    var findings: [Finding] = []
    /// What the session says about the exchange's code (computed once, here).
    private(set) var codeFacts = CodeFacts()

    init(index: FlowIndex, position: Int) {
        self.index = index
        self.position = position
        self.codeFacts = computeCodeFacts()
    }

    var cur: Observation { index.observations[position] }
    var ex: Exchange { cur.exchange }
    var p: RequestParameters { cur.params }
    var profile: ProviderProfile { cur.profile }
    var history: ArraySlice<Observation> { index.observations[..<position] }
    var redactor: Redactor { index.redactor }

    func val(_ s: String, _ role: String) -> Val { index.val(s, role) }

    /// The current token response (parsed).
    var response: TokenResponse { cur.tokenResponse }
    /// The exchange got an answer that is a success for its role.
    var succeeded: Bool {
        guard let s = ex.status else { return false }
        if cur.role == .token { return response.success }
        return (200..<400).contains(s) && response.errorFields.isEmpty
    }
    var failed: Bool {
        guard let s = ex.status else { return false }
        return s >= 400 || !response.errorFields.isEmpty
    }
    var noResponse: Bool { ex.status == nil }

    /// Severity of a request-shape finding: `info` when the endpoint accepted the shape (now, or earlier in
    /// the session), `base` when the exchange failed, `warning` when there is no answer yet.
    func shapeSeverity(_ base: Severity, acceptedEarlier: Bool = false) -> Severity {
        if succeeded || acceptedEarlier { return .info }
        if noResponse && base == .error { return .warning }
        if !failed && base == .error { return .warning }
        return base
    }

    /// An earlier successful token request to the same endpoint whose request satisfies `shape`.
    func acceptedEarlier(_ shape: (Observation) -> Bool) -> Observation? {
        history.last { h in
            h.role == .token && h.exchange.host == ex.host && h.exchange.path == ex.path && h.tokenResponse.success && shape(h)
        }
    }

    /// A parameter's value for evidence: the placeholder when `SecretClassifier` calls its name a
    /// secret (the redactor's own decision, so a finding never quotes what the body hides),
    /// escaped bytes otherwise.
    func show(_ prm: Parameter) -> String { show(name: prm.name, value: prm.value) }
    func show(name: String, value: String) -> String {
        if let role = SecretClassifier.role(forName: name) { return val(value, role).display }
        return escaped(value)
    }
    /// A field of the provider's error response quoted in a finding (`error_description`, `message`): the placeholder for
    /// a secret name, shapes only for `error_uri`, otherwise the redactor's text scan, so a value
    /// the provider echoes back (`invalid client_secret=…`) is hidden as the body hides it.
    func quote(name: String, value: String) -> String { redactor.redactValue(value, named: name, errorEnvelope: true) }
    /// What the wire form of a parameter may show: its length for a secret, escaped bytes otherwise.
    func showWire(_ prm: Parameter) -> String {
        SecretClassifier.isSecret(prm.name) ? "\(prm.wire.count) chars" : escaped(prm.wire)
    }

    func exchangeID(_ o: Observation) -> String { o.exchange.id.map { "#\($0)" } ?? "#0" }
    func statusText(_ o: Observation) -> String {
        guard let s = o.exchange.status else { return "no response" + (o.exchange.error.map { " (\($0))" } ?? "") }
        if o.role == .token {
            let r = o.tokenResponse
            if r.success { return "HTTP \(s), tokens issued" }
            if let m = r.errorFields.first(where: { $0.0 == "message" || $0.0 == "error" }) {
                return "HTTP \(s) (\(m.0): \(escaped(quote(name: m.0, value: m.1))))"
            }
        }
        return "HTTP \(s)"
    }

    mutating func add(_ rule: String, _ severity: Severity, _ confidence: Confidence, _ title: String,
                      _ evidence: [String], fix: String, ref: String) {
        findings.append(Finding(rule: rule, severity: severity, confidence: confidence, exchange: ex.id ?? 0,
                                title: title, evidence: evidence, fix: fix, reference: ref))
    }

    /// Whether an earlier stage found an error or warning on the request side (not a guess, not the
    /// provider's words): then `server-rejected-credentials` and a raised `code-unknown` stay silent.
    var hasRequestSideCause: Bool {
        prior.contains { ($0.severity == .error || $0.severity == .warning) && $0.confidence != .possible && $0.rule != "provider-error" }
    }

    /// Where a profile fact came from, for evidence: `(Miro profile, built-in)`.
    func fact(_ field: ProviderProfile.CodingKeys) -> String { "(\(profile.source(of: field)))" }
}
