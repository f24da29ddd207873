import Foundation
import TokentapCore

/// When a rule judges, relative to the others: a rule sees the findings of the stages before its
/// own (``RuleContext/prior``) and nothing of its own stage, so no rule depends on another's
/// findings by the order of a list, and no rule changes or deletes another's findings.
///
/// (oauth-rules.md: "When nothing on the request side explains a failed exchange, say so" needs to
/// know what the request-side rules found; "The provider's own message is evidence for the cause it
/// names" needs to know whether any rule found an error.)
public enum RuleStage: Int, Sendable, Comparable, CaseIterable {
    /// Judges the wire: the exchange and the session before it.
    case wire
    /// Judges what is left when the wire rules found no request-side cause (`code-unknown` raised
    /// to an error, `server-rejected-credentials`).
    case fallback
    /// Quotes the provider's own words, as the cause or as evidence (`provider-error`).
    case providerMessage

    public static func < (a: RuleStage, b: RuleStage) -> Bool { a.rawValue < b.rawValue }
}

/// One diagnosis rule of oauth-rules.md: its id, the exchanges it looks at, and its findings on one.
///
/// Rules are independent units in one explicit list (``DiagnosisRules/all``), judged stage by
/// stage (``RuleStage``); modelled on swift-certificates' `VerifierPolicy`, where each policy judges
/// a chain on its own and the verifier combines the answers. A rule reads provider facts only from
/// the exchange's profile (``ProviderProfile``), and its evidence names the profile and file each
/// fact came from (``ProviderProfile/source(of:)``).
protocol DiagnosisRule: Sendable {
    /// The catalog rule id of every finding it makes (`code-reused`).
    var id: String { get }
    /// The stage it judges in.
    var stage: RuleStage { get }
    /// Whether it looks at this exchange (by its OAuth role; proxy-side failures go to the
    /// `upstream-*` rules only).
    func looks(at observation: Observation) -> Bool
    /// Its findings on the context's current exchange; each has ``id`` as its rule.
    func findings(_ context: RuleContext) -> [Finding]
}

/// A catalog rule: an id, the roles of the exchanges it looks at, its stage, and its judgement
/// (a function of ``RuleContext`` that adds findings with ``RuleContext/add(_:_:_:_:_:fix:ref:)``).
struct CatalogRule: DiagnosisRule {
    let id: String
    let stage: RuleStage
    /// Roles of the exchanges it looks at (an exchange the proxy answered itself is never one of them).
    let roles: Set<Role>
    let judge: @Sendable (inout RuleContext) -> Void

    init(_ id: String, _ roles: Set<Role>, stage: RuleStage = .wire, _ judge: @escaping @Sendable (inout RuleContext) -> Void) {
        self.id = id; self.roles = roles; self.stage = stage; self.judge = judge
    }

    func looks(at o: Observation) -> Bool { o.upstreamFailure == nil && roles.contains(o.role) }

    func findings(_ context: RuleContext) -> [Finding] {
        var c = context
        c.findings = []
        judge(&c)
        return c.findings
    }
}

/// `upstream-unreachable`, `upstream-timeout`, `upstream-tls-failed`, `upstream-response-invalid`:
/// the proxy reported the failure itself (``UpstreamFailure``), so these are the only rules that
/// look at such an exchange (oauth-rules.md, "One verdict per failure").
struct UpstreamFailureRule: DiagnosisRule {
    let failures: Set<UpstreamFailure>
    var id: String { failures.first!.rule }
    var stage: RuleStage { .wire }
    func looks(at o: Observation) -> Bool { o.upstreamFailure.map(failures.contains) ?? false }
    func findings(_ context: RuleContext) -> [Finding] {
        var c = context
        c.findings = []
        c.upstreamRule(context.cur.upstreamFailure!)
        return c.findings
    }
}

/// The rules, in one explicit list. The order inside a stage is only the order findings are listed
/// in; what a verdict names as the cause is decided by ``Verdict/precedence``.
enum DiagnosisRules {
    static let tokenAPIOther: Set<Role> = [.token, .api, .other]
    static let oauthSteps: Set<Role> = [.authorize, .callback, .redirect]

    static let all: [any DiagnosisRule] = [
        // proxy-side failures
        UpstreamFailureRule(failures: [.connect]),
        UpstreamFailureRule(failures: [.timeout]),
        UpstreamFailureRule(failures: [.tls]),
        UpstreamFailureRule(failures: [.truncated, .malformed]),
        CatalogRule("client-tls-untrusted", [.tlsError]) { $0.tlsRules() },
        // token request shape
        CatalogRule("token-redirected", tokenAPIOther) { $0.tokenRedirectRule() },
        CatalogRule("token-endpoint-wrong", [.token]) { $0.tokenEndpointWrongRule() },
        CatalogRule("token-method-not-post", [.token]) { $0.methodNotPostRule() },
        CatalogRule("token-over-plain-http", [.token, .api, .other, .authorize, .callback, .redirect]) { $0.plainHTTPRule() },
        CatalogRule("grant-type-invalid", [.token]) { $0.grantTypeRule() },
        CatalogRule("param-missing", [.token]) { $0.paramMissingRule() },
        CatalogRule("param-conflict", [.token]) { $0.paramConflictRule() },
        CatalogRule("params-in-query", [.token]) { $0.paramsInQueryRule() },
        CatalogRule("param-split", [.token]) { $0.paramSplitRule() },
        CatalogRule("body-not-form-encoded", [.token]) { $0.bodyNotFormEncodedRule() },
        CatalogRule("content-type-mismatch", [.token]) { $0.contentTypeRule() },
        CatalogRule("basic-auth-malformed", [.token]) { $0.basicAuthRule() },
        // client authentication
        CatalogRule("client-auth-conflict", [.token]) { $0.clientAuthConflictRule() },
        CatalogRule("client-credentials-swapped", [.token]) { $0.swappedRule() },
        CatalogRule("client-id-mismatch", [.token]) { $0.clientIDMismatchRule() },
        CatalogRule("credential-formatting", [.token]) { $0.credentialFormattingRule() },
        // the code, the redirect, PKCE
        CatalogRule("token-type-confusion", [.token, .api]) { $0.tokenTypeConfusionRule() },
        CatalogRule("code-reused", [.token]) { $0.codeReusedRule() },
        CatalogRule("code-mangled", [.token]) { $0.codeMangledRule() },
        CatalogRule("code-expired", [.token]) { $0.codeExpiredRule() },
        CatalogRule("redirect-uri-missing", [.token]) { $0.redirectURIMissingRule() },
        CatalogRule("redirect-uri-mismatch", [.token, .authorize]) { $0.redirectURIMismatchRule() },
        CatalogRule("pkce-verifier-invalid", [.token]) { $0.pkceVerifierInvalidRule() },
        CatalogRule("pkce-verifier-missing", [.token]) { $0.pkceVerifierMissingRule() },
        CatalogRule("pkce-verifier-mismatch", [.token]) { $0.pkceVerifierMismatchRule() },
        CatalogRule("spa-origin-required", [.token]) { $0.spaOriginRule() },
        // tokens after the exchange
        CatalogRule("refresh-token-not-issued", [.token]) { $0.refreshTokenNotIssuedRule() },
        CatalogRule("refresh-token-rotated", [.token]) { $0.refreshTokenRotatedRule() },
        CatalogRule("refresh-token-expired", [.token]) { $0.refreshTokenExpiredRule() },
        CatalogRule("refresh-token-client-mismatch", [.token]) { $0.refreshTokenClientMismatchRule() },
        CatalogRule("extra-params", [.token]) { $0.extraParamRules() },
        CatalogRule("scope-mismatch", [.token, .api]) { $0.scopeMismatchRule() },
        CatalogRule("jwt-clock-skew", [.token]) { $0.jwtRules() },
        CatalogRule("api-wrong-host", [.api]) { $0.apiWrongHostRule() },
        CatalogRule("access-token-missing", [.api]) { $0.accessTokenMissingRule() },
        CatalogRule("access-token-expired", [.api]) { $0.accessTokenExpiredRule() },
        CatalogRule("access-token-superseded", [.api]) { $0.accessTokenSupersededRule() },
        // authorize, redirect, callback
        CatalogRule("state-mismatch", oauthSteps) { $0.stateMismatchRule() },
        CatalogRule("loopback-redirect-port", oauthSteps) { $0.loopbackRule() },
        // the rest
        CatalogRule("rate-limited", [.token, .api, .other, .authorize, .callback, .redirect]) { $0.rateLimitRule() },
        // fallback: what the wire rules did not explain
        CatalogRule("code-unknown", [.token], stage: .fallback) { $0.codeUnknownRule() },
        CatalogRule("server-rejected-credentials", [.token], stage: .fallback) { $0.serverRejectedRule() },
        // the provider's words
        CatalogRule("provider-error", [.token, .api, .authorize, .callback, .redirect], stage: .providerMessage) { $0.providerErrorRule() },
    ]

    /// The findings of every rule of `rules` (default: ``all``) that looks at the observation at
    /// `position` of `index`, stage by stage (each stage sees the findings of the stages before it),
    /// in list order. The order inside a stage changes only the order of the findings (a test
    /// judges with the list reversed).
    static func judge(_ index: FlowIndex, position: Int, rules: [any DiagnosisRule] = all) -> [Finding] {
        let o = index.observations[position]
        var found: [Finding] = []
        var context = RuleContext(index: index, position: position)
        for stage in RuleStage.allCases {
            context.prior = found
            for rule in rules where rule.stage == stage && rule.looks(at: o) {
                found += rule.findings(context)
            }
        }
        return found
    }
}
