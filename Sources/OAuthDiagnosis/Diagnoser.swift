import Foundation
import Redaction
import TokentapCore

/// One step of the reconstructed OAuth flow, for `tokentap doctor` (design.md, `doctor --json`).
public struct TimelineStep: Codable, Sendable, Hashable {
    /// Id of the exchange (0 when not stored yet).
    public var exchange: Int64
    /// When the step happened (the exchange's `started`, from the recording).
    public var at: Date
    /// `authorize`, `redirect`, `callback`, `token exchange`, `refresh`, `token request`, `api call`, `tls error`, `test clock` (the sandbox clock moved forward).
    public var step: String
    /// One line: what was sent and answered, with the elapsed times that matter
    /// (e.g. "code used 11m 04s after issue"). Secrets only as placeholders.
    public var summary: String

    public init(exchange: Int64, at: Date, step: String, summary: String) {
        self.exchange = exchange; self.at = at; self.step = step; self.summary = summary
    }
}

/// The OAuth doctor: reconstructs the flow of a session and explains failed exchanges with the
/// rules of oauth-rules.md. Pure: exchanges in, findings out; no clock reads (times come from the
/// recording), no I/O.
public struct Diagnoser: Sendable {
    public let redactor: Redactor
    public let profiles: [ProviderProfile]

    /// - Parameters:
    ///   - redactor: the install's redactor; its key must be the one that redacted the history, so raw
    ///     values of the current exchange can be compared with history placeholders by fingerprint.
    ///   - profiles: provider profiles tried in order by host (``ProfileLoader/load(files:)`` gives the
    ///     ones in force); hosts matching none use the generic profile among them (the one with no
    ///     hosts), else ``ProviderProfile/generic``. Default: the built-in profiles.
    public init(redactor: Redactor, profiles: [ProviderProfile] = ProviderProfile.builtIn + [.generic]) {
        self.redactor = redactor
        self.profiles = profiles
    }

    /// Findings for `current` (raw values, in memory) given the session's earlier exchanges
    /// (redacted, oldest first, ids set). `current.id` may be nil: findings then carry exchange 0.
    /// Sorted by severity (error first), then confidence (certain first), then rule id.
    /// Evidence never contains a raw secret, only placeholders (REDACTION-API.md) or escaped bytes of
    /// non-secret values.
    ///
    /// This parses the whole history on every call; a caller judging a stream of exchanges keeps a
    /// ``FlowHistory`` instead (what the proxy and `diagnoseSession` do).
    public func diagnose(_ current: Exchange, history: [Exchange]) -> [Finding] {
        var flow = FlowHistory(diagnoser: self, limit: .max)
        for e in history { flow.append(e) }
        return flow.diagnose(current).findings
    }

    /// Sorts findings: severity, then confidence, then rule id (stable for equal keys).
    public static func sorted(_ findings: [Finding]) -> [Finding] {
        findings.enumerated().sorted { a, b in
            if a.element.severity != b.element.severity { return a.element.severity < b.element.severity }
            if a.element.confidence != b.element.confidence { return a.element.confidence < b.element.confidence }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// Findings for every exchange of a stored session (each judged against the exchanges before it).
    public func diagnoseSession(_ session: [Exchange]) -> [Finding] {
        var flow = FlowHistory(diagnoser: self, limit: .max)
        var out: [Finding] = []
        for e in session {
            out += flow.diagnose(e).findings
            flow.append(e)
        }
        return Diagnoser.sorted(out)
    }

    /// The OAuth role of one exchange on its own (no history needed): `authorize`, `redirect`, `callback`,
    /// `token`, `api`, `tls-error`, `test-clock` (`tokentap sandbox`'s `POST /__sandbox/advance?seconds=N`,
    /// which moves the session clock for the lifetime rules), or `nil` for traffic that plays no OAuth role
    /// (page loads, CORS preflights). Of these, ``FlowHistory`` keeps all but `api` for judging later exchanges.
    /// Useful for `tokentap list --oauth`.
    public func oauthRole(of exchange: Exchange) -> String? {
        if exchange.kind == .http, exchange.path == FlowIndex.testClockAdvancePath { return "test-clock" }
        switch Observation(exchange, profiles: profiles).role {
        case .authorize: return "authorize"
        case .redirect: return "redirect"
        case .callback: return "callback"
        case .token: return "token"
        case .api: return "api"
        case .tlsError: return "tls-error"
        case .other: return nil
        }
    }

    /// The verdict on `exchange` (a stored one, with the findings computed when it was captured), or
    /// nil when it is not a failed OAuth exchange or none of its findings is an error or a warning.
    ///
    /// Failed OAuth exchanges: a token request or refresh the provider answered with an error (HTTP
    /// 4xx/5xx or an error body sent with 200), an authorize request answered with an error or
    /// redirecting with `error=`, a callback carrying `error=`, an API call answered 401, 403, 407 or
    /// 429, a TLS handshake the client aborted, any of these the proxy answered itself
    /// (``UpstreamFailure``), and any OAuth step with an `error` finding (e.g. a redirect whose state
    /// differs: the app's check will fail). The cause is chosen by ``Verdict/decide(_:)``.
    public func verdict(for exchange: Exchange) -> Verdict? {
        let o = Observation(exchange, profiles: profiles)
        guard let step = Self.step(of: o), Self.failed(o, findings: exchange.findings) else { return nil }
        let provider = o.profile.isGeneric ? "the provider" : o.profile.name
        return Verdict.make(exchange: exchange.id ?? 0, step: step, status: exchange.status, findings: exchange.findings,
                            provider: provider)
    }

    /// The verdicts of a stored session, one per failed OAuth exchange, in time order.
    public func verdicts(_ session: [Exchange]) -> [Verdict] {
        session.compactMap(verdict(for:))
    }

    /// The timeline's name of an exchange's step, nil for traffic with no OAuth role.
    static func step(of o: Observation) -> String? {
        switch o.role {
        case .authorize: return "authorize"
        case .redirect: return "redirect"
        case .callback: return "callback"
        case .token:
            let grant = o.grant
            return grant == "refresh_token" ? "refresh" : grant == "authorization_code" ? "token exchange" : "token request"
        case .api: return "api call"
        case .tlsError: return "tls error"
        case .other: return nil
        }
    }

    /// Whether an OAuth step failed (see ``verdict(for:)``).
    static func failed(_ o: Observation, findings: [Finding]) -> Bool {
        if o.upstreamFailure != nil || findings.contains(where: { $0.severity == .error }) { return true }
        let status = o.exchange.status ?? 0
        switch o.role {
        case .token: return o.tokenResponse.failed
        case .api: return [401, 403, 407, 429].contains(status)
        case .authorize, .redirect, .callback: return status >= 400 || o.deliveredError != nil
        case .tlsError: return true
        case .other: return false
        }
    }

    /// The flow timeline of a session (oldest first): authorize → redirect → token exchange → API calls →
    /// refresh, with the elapsed times that matter. Exchanges that play no OAuth role are left out.
    public func timeline(_ session: [Exchange]) -> [TimelineStep] {
        let index = FlowIndex(session, profiles: profiles, redactor: redactor)
        var steps: [TimelineStep] = []
        for (i, o) in index.observations.enumerated() {
            let e = o.exchange
            var status = e.status.map { " → \($0)" } ?? (e.error.map { " → failed (\($0))" } ?? "")
            if o.upstreamFailure != nil, let error = e.error {
                status = e.status.map { " → \($0) " } ?? " → "
                status += o.upstreamFailure == .truncated ? "then cut off (\(redactor.redactText(error)))" : "from tokentap (\(redactor.redactText(error)))"
            }
            switch o.role {
            case .authorize:
                var parts = ["\(e.method) \(o.endpoint)"]
                for n in ["client_id", "redirect_uri", "state", "scope", "code_challenge_method"] {
                    if let v = o.params.value(n) { parts.append("\(n)=\(v)") }
                }
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: "authorize", summary: parts.joined(separator: " ") + status))
                if o.deliversSomething {
                    var s = "redirect to \(o.location.map { String($0.split(separator: "?").first ?? "") } ?? "?")"
                    if let c = o.deliveredCode { s += ": code \(index.val(c, "code").display) issued" }
                    if let err = o.deliveredError { s += ": error=\(err)" }
                    if let st = o.deliveredState { s += ", state=\(st)" }
                    steps.append(TimelineStep(exchange: o.id, at: e.started, step: "redirect", summary: s))
                }
            case .redirect:
                var s = "\(e.method) \(o.endpoint)\(status): redirect to \(o.location.map { String($0.split(separator: "?").first ?? "") } ?? "?")"
                if let c = o.deliveredCode { s += ", code \(index.val(c, "code").display) issued" }
                if let err = o.deliveredError { s += ", error=\(err)" }
                if let st = o.deliveredState { s += ", state=\(st)" }
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: "redirect", summary: s))
            case .callback:
                var s = "\(e.method) \(o.endpoint)"
                if let c = o.deliveredCode {
                    let v = index.val(c, "code")
                    s += ": code \(v.display) delivered"
                    if let first = index.issue(of: v), first.obs.id != o.id { s += " (issued in #\(first.obs.id))" }
                }
                if let err = o.deliveredError { s += ": error=\(err)" }
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: "callback", summary: s + status))
            case .token:
                let grant = o.grant
                let name = grant == "refresh_token" ? "refresh" : grant == "authorization_code" ? "token exchange" : "token request"
                var s = "\(e.method) \(o.endpoint)"
                var notes: [String] = []
                if grant == "authorization_code", let c = o.params.value("code") {
                    let v = index.val(c, "code")
                    // The code's placeholder, as in the redirect and the callback steps: one code, one flow.
                    s += " with code \(v.display)"
                    if let iss = index.issue(of: v) {
                        notes.append("code used \(elapsed(o.at.timeIntervalSince(iss.obs.at))) after issue (#\(iss.obs.id))")
                    } else {
                        notes.append("code not seen issued")
                    }
                    if let prev = index.observations[..<i].last(where: { $0.role == .token && $0.params.value("code").map { index.val($0, "code").fp == v.fp } ?? false }) {
                        notes.append("same code sent before in #\(prev.id)")
                    }
                }
                if grant == "refresh_token", let r = o.params.value("refresh_token") {
                    let v = index.val(r, "refresh_token")
                    if let iss = index.issueOfRefreshToken(v, before: i) {
                        notes.append("refresh token issued \(elapsed(o.at.timeIntervalSince(iss.obs.at))) earlier (#\(iss.obs.id))")
                    }
                }
                let r = o.tokenResponse
                if r.success {
                    var t = "tokens issued"
                    if let ex = r.expiresIn { t += ", access token expires in \(Int(ex)) s" }
                    if r.refreshToken != nil { t += ", refresh token issued" }
                    notes.append(t)
                } else if !r.errorFields.isEmpty {
                    notes.append(r.errorFields.map { "\($0.0)=\(redactor.redactValue($0.1, named: $0.0, errorEnvelope: true))" }.joined(separator: " "))
                }
                s += status
                if !notes.isEmpty { s += "; " + notes.joined(separator: "; ") }
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: name, summary: s))
            case .api:
                var s = "\(e.method) \(o.endpoint)\(status)"
                if let b = o.params.bearerToken {
                    let v = index.val(b, "access_token")
                    if let iss = index.issueOfAccessToken(v, before: i) {
                        let age = o.at.timeIntervalSince(iss.obs.at)
                        s += "; access token \(elapsed(age)) old"
                        if let ex = iss.response.expiresIn ?? iss.obs.profile.accessTokenLifetime { s += " (expires_in \(Int(ex)))" }
                    }
                } else {
                    s += "; no Bearer token"
                }
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: "api call", summary: s))
            case .tlsError:
                steps.append(TimelineStep(exchange: o.id, at: e.started, step: "tls error", summary: "\(e.host):\(e.port) \(e.error ?? "handshake failed")"))
            case .other:
                if e.path == FlowIndex.testClockAdvancePath, let secs = o.params.value("seconds") {
                    steps.append(TimelineStep(exchange: o.id, at: e.started, step: "test clock",
                                              summary: "\(e.method) \(o.endpoint)\(status): sandbox clock advanced \(secs) s"))
                }
                continue
            }
        }
        return steps
    }
}
