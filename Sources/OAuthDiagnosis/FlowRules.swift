import Foundation
import Redaction
import TokentapCore
#if canImport(Crypto)
import Crypto
#endif

/// Rules about the code, the redirect, tokens after the exchange, and API calls.
extension RuleContext {
    // MARK: the code

    /// What the session says about the `code` of an `authorization_code` exchange, shared by the
    /// code, redirect URI and PKCE rules (a pure function of the index: each rule that asks computes it).
    struct CodeFacts {
        /// The code parameter and its value; nil without a code (or for another grant).
        var parameter: Parameter?
        var code: Val?
        /// The token issued earlier that the code equals (a token sent as the code), and its kind.
        var token: (obs: Observation, kind: String)?
        /// Earlier token requests that presented the code and reached the provider.
        var presented: [Observation] = []
        /// Of those, the ones that used it up (not rejected for the code itself).
        var earlier: [Observation] = []
        /// The issued code the sent one becomes after a transformation, and the transformation.
        var mangled: (issue: FlowIndex.Issue, how: String)?
        /// The issuance the code is linked to (directly or through ``mangled``).
        var issue: FlowIndex.Issue?
        /// The code was never seen issued (and is neither reused nor mangled).
        var unknown = false
        /// Whether the redirect URI and PKCE rules judge the exchange (not when a token was sent as the code).
        var judgesRedirectAndPKCE = true
    }

    /// Computes ``CodeFacts`` (once per judged exchange, when its context is made).
    func computeCodeFacts() -> CodeFacts {
        var f = CodeFacts()
        guard cur.grant == "authorization_code", let codeP = p.first("code") else { return f }
        f.parameter = codeP
        let code = val(codeP.value, "code")
        // A code another tool replaced (`[code redacted]`) is unknown: nothing to compare.
        guard !code.unknown else { return f }
        f.code = code
        if let t = history.last(where: { h in h.role == .token && h.tokenResponse.success &&
            (h.refreshTokenFingerprint == code.fp || h.accessTokenFingerprint == code.fp) }) {
            f.token = (t, t.refreshTokenFingerprint == code.fp ? "refresh token" : "access token")
            f.judgesRedirectAndPKCE = false
            return f
        }
        // Replay before time: a request answered with a redirect never reached the code check, and
        // one the proxy could not deliver never reached the provider: not a use.
        f.presented = history.filter { h in
            h.role == .token && !h.isRedirectResponse && h.reachedProvider && h.codeFingerprints.contains(code.fp)
        }
        // A use the provider rejected for the code itself (never a valid code) used nothing up.
        f.earlier = f.presented.filter { !rejectedForTheCodeItself($0) }
        var issue = index.issue(of: code)
        if let i = issue, i.obs.at > cur.at || i.obs.id == cur.id && cur.role == .token { issue = nil }
        if issue == nil {
            if let (orig, how) = mangled(code: codeP.value) {
                f.mangled = (orig, how)
                issue = orig
            } else if f.earlier.isEmpty {
                f.unknown = true
            }
        }
        f.issue = issue
        return f
    }

    /// `token-type-confusion`: a value issued in one role sent in another (a token as the code, an
    /// access token or a code as the refresh token, a code or refresh token as a Bearer token).
    mutating func tokenTypeConfusionRule() {
        if cur.role == .api { bearerConfusionRule(); return }
        if cur.grant == "refresh_token" { refreshConfusionRule(); return }
        guard let (t, kind) = codeFacts.token, let code = codeFacts.code else { return }
        add("token-type-confusion", succeeded ? .info : .error, .certain, "A \(kind) is sent as the authorization code",
            ["code sent: \(code.display)", "the \(kind) issued in \(exchangeID(t)) has the same fingerprint",
             "grant_type: \(escaped(p.value("grant_type") ?? ""))"],
            fix: kind == "refresh token" ? "Refresh with grant_type=refresh_token&refresh_token=…, not as a code." : "Send the authorization code from the redirect, not a token.",
            ref: kind == "refresh token" ? RFC.refresh : RFC.tokenRequest)
    }

    mutating func codeReusedRule() {
        let facts = codeFacts
        guard let code = facts.code, let first = facts.earlier.first else { return }
        let earlier = facts.earlier
        let dt = cur.at.timeIntervalSince(first.at)
        var ev = ["code: \(code.display)",
                  "first presented in \(exchangeID(first)) at \(isoTime(first.at)), \(elapsed(dt)) earlier: \(statusText(first))"]
        if earlier.count > 1 { ev.append("presented \(earlier.count) times before this request") }
        let anySuccess = earlier.contains { $0.tokenResponse.success }
        let why = dt < 2 ? " (a double callback: React StrictMode running the effect twice, or two handlers)" : " (a retry loop or a reloaded callback page)"
        add("code-reused", succeeded ? .info : .error, .certain,
            "The authorization code was already used" + (anySuccess ? " successfully" : ""),
            ev + (response.errorFields.isEmpty ? [] : ["this response says: \(response.errorFields.map { "\($0.0)=\(escaped(quote(name: $0.0, value: $0.1)))" }.joined(separator: " "))"]),
            fix: "Exchange each code exactly once\(why); keep the tokens from the first exchange.",
            ref: profile.reference("token", else: RFC.authCode))
    }

    mutating func codeMangledRule() {
        let facts = codeFacts
        guard let (orig, how) = facts.mangled, let code = facts.code, let codeP = facts.parameter else { return }
        add("code-mangled", succeeded ? .info : .error, .certain, "The code sent differs from the code issued: \(how)",
            ["code issued in \(exchangeID(orig.obs)): \(orig.code.display)", "code sent (\(codeP.place.rawValue)): \(code.display)",
             "matches after \(how)"],
            fix: "Pass the code exactly as the redirect delivered it: parse the callback query once with a URL parser (no extra encoding or decoding, no trimming).",
            ref: RFC.authCode)
    }

    /// `code-expired` (only when not replayed).
    mutating func codeExpiredRule() {
        let facts = codeFacts
        guard facts.earlier.isEmpty, let issue = facts.issue, let code = facts.code, let life = profile.codeLifetime else { return }
        let dt = cur.at.timeIntervalSince(issue.obs.at)
        if dt > life, !succeeded {
            add("code-expired", .error, profile.tokenEndpoints.isEmpty ? .likely : .certain, "The code was used \(elapsed(dt)) after it was issued (lifetime \(elapsed(life)))",
                ["code \(code.display) issued in \(exchangeID(issue.obs)) at \(isoTime(issue.obs.at))",
                 "code used \(elapsed(dt)) after issue, at \(isoTime(cur.at))",
                 "\(profile.name) code lifetime: \(elapsed(life)) \(fact(.codeLifetime))"],
                fix: "Exchange the code right after the redirect (within \(elapsed(life))); start a new authorization.",
                ref: profile.reference("token", else: RFC.authCode))
        }
    }

    /// Rules that blame the code itself.
    static let codeSubjectRules: Set<String> = ["code-unknown", "code-expired", "code-mangled", "code-reused", "token-type-confusion"]

    /// Whether the provider rejected the earlier token request `h` for its code and nothing else
    /// (oauth-rules.md, `code-reused`: "If every earlier use failed with a provider error about the
    /// code itself, a later failure is not `code-reused`"). `h` is judged again as it was judged when
    /// it happened (pure: the same history before it): no request-side cause other than the code,
    /// and either the provider's message names the code or a code rule is an error.
    func rejectedForTheCodeItself(_ h: Observation) -> Bool {
        guard h.reachedProvider, h.tokenResponse.failed, !h.tokenResponse.success,
              let j = index.observations.firstIndex(where: { $0 === h }), j < position else { return false }
        let judged = DiagnosisRules.judge(index, position: j)
        let other = judged.contains { f in
            (f.severity == .error || f.severity == .warning) && f.confidence != .possible &&
                !Self.codeSubjectRules.contains(f.rule) && f.rule != "provider-error" && f.rule != "server-rejected-credentials"
        }
        guard !other else { return false }
        return ProviderSubject.named(inFields: h.tokenResponse.errorFields).contains(.code)
            || judged.contains { Self.codeSubjectRules.contains($0.rule) && $0.severity == .error }
    }

    /// Finds an issued code that the sent code becomes after a transformation.
    func mangled(code sent: String) -> (FlowIndex.Issue, String)? {
        guard val(sent, "code").raw != nil else { return nil }
        let issued = index.issuedCodes.filter { $0.obs.at <= cur.at }
        guard !issued.isEmpty else { return nil }
        var candidates: [(String, String)] = []
        if let d = sent.removingPercentEncoding, d != sent { candidates.append((d, "percent-decoding once more (the code was not URL-decoded)")) }
        if let d = sent.replacingOccurrences(of: "+", with: " ").removingPercentEncoding, d != sent { candidates.append((d, "form-decoding once more (the code was not URL-decoded)")) }
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        if let e = sent.addingPercentEncoding(withAllowedCharacters: unreserved), e != sent { candidates.append((e, "percent-encoding (the code was URL-decoded once too often)")) }
        if sent.contains(" ") { candidates.append((sent.replacingOccurrences(of: " ", with: "+"), "turning spaces back into `+` (a `+` in the code was decoded as a space)")) }
        if sent.contains("+") { candidates.append((sent.replacingOccurrences(of: "+", with: " "), "turning `+` into spaces")) }
        let trimmed = sent.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed != sent { candidates.append((trimmed, "trimming whitespace")) }
        let unquoted = trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        if unquoted != trimmed { candidates.append((unquoted, "removing quotes")) }
        if let hash = sent.firstIndex(of: "#") { candidates.append((String(sent[..<hash]), "cutting a `#` fragment")) }
        for (c, how) in candidates {
            let fp = redactor.fingerprint(c)
            if let i = issued.last(where: { $0.code.fp == fp }) { return (i, how) }
        }
        // Truncation: the issued code is longer and the sent one is a prefix (only provable with raw history).
        for i in issued {
            if let raw = i.code.raw, raw.count > sent.count, raw.hasPrefix(sent), sent.count >= 8 { return (i, "truncation (\(sent.count) of \(raw.count) characters sent)") }
        }
        return nil
    }

    mutating func redirectURIMissingRule() {
        let facts = codeFacts
        guard cur.grant == "authorization_code", facts.judgesRedirectAndPKCE, p.first("redirect_uri") == nil else { return }
        let link = index.authorize(for: facts.issue, clientID: p.first("client_id")?.value, before: cur.at)
        let authURI = link?.0.params.value("redirect_uri")
        do {
            if profile.requiresRedirectURI || authURI != nil {
                var ev = ["redirect_uri: absent from the token request"]
                if let authURI, let link { ev.append("authorize request (\(exchangeID(link.0))) had redirect_uri=\(escaped(authURI))") }
                if profile.requiresRedirectURI { ev.append("\(profile.name) requires redirect_uri on the code exchange \(fact(.requiresRedirectURI))") }
                add("redirect-uri-missing", shapeSeverity(.error), authURI != nil && link?.proven == true || profile.requiresRedirectURI ? .certain : .likely,
                    "The code exchange has no redirect_uri", ev,
                    fix: "Send redirect_uri\(authURI.map { "=\($0)" } ?? "") exactly as in the authorize request.",
                    ref: profile.reference("token", else: RFC.tokenRequest))
            }
        }
    }

    /// `redirect-uri-mismatch`: on a code exchange, against the authorize request (or the session's
    /// earlier successful exchange); on a failed authorize request, against one that got a code.
    mutating func redirectURIMismatchRule() {
        if cur.role == .authorize {
            if !cur.deliversSomething, !loopbackPortChanged { failedAuthorizeRedirectRule() }
            return
        }
        let facts = codeFacts
        guard cur.grant == "authorization_code", facts.judgesRedirectAndPKCE, let sent = p.first("redirect_uri") else { return }
        let link = index.authorize(for: facts.issue, clientID: p.first("client_id")?.value, before: cur.at)
        let authURI = link?.0.params.value("redirect_uri")
        guard !succeeded else { return }
        guard let link, let authURI else {
            // No authorize request seen: learn from the session — an earlier successful exchange of the same client.
            let cid = p.first("client_id")?.value
            guard let good = history.last(where: { h in
                h.role == .token && h.grant == "authorization_code" && h.tokenResponse.success &&
                    h.params.first("client_id")?.value == cid && h.params.value("redirect_uri") != nil
            }), let goodURI = good.params.value("redirect_uri"), goodURI != sent.value else { return }
            let diff = describeURIDifference(authorize: goodURI, exchange: sent.value)
            add("redirect-uri-mismatch", .error, .likely, "redirect_uri differs from the one that worked earlier: \(diff)",
                ["succeeded in \(exchangeID(good)): redirect_uri=\(escaped(goodURI))",
                 "token request (\(sent.place.rawValue)): redirect_uri=\(escaped(sent.value))", "difference: \(diff)"],
                fix: "Send redirect_uri byte for byte as in the authorize request and the app settings: \(goodURI)",
                ref: profile.reference("errors", else: RFC.tokenRequest))
            return
        }
        let a = authURI, t = sent.value
        guard a != t, !RedactedElsewhere.isMarker(a), !RedactedElsewhere.isMarker(t) else { return }
        let diff = describeURIDifference(authorize: a, exchange: t)
        add("redirect-uri-mismatch", .error, link.proven ? .certain : .likely, "redirect_uri differs from the authorize request: \(diff)",
            ["authorize request (\(exchangeID(link.0))): redirect_uri=\(escaped(a))",
             "token request (\(sent.place.rawValue)): redirect_uri=\(escaped(t))", "difference: \(diff)"],
            fix: "Send redirect_uri byte for byte as in the authorize request (and as registered in the app settings): \(a)",
            ref: profile.reference("errors", else: RFC.tokenRequest))
    }

    func describeURIDifference(authorize a: String, exchange t: String) -> String {
        if let d = t.removingPercentEncoding, d == a { return "encoding level (the exchange's redirect_uri is encoded once more)" }
        if let d = a.removingPercentEncoding, d == t { return "encoding level (the authorize request's redirect_uri is encoded once more)" }
        if a.trimmingCharacters(in: .whitespacesAndNewlines) == t.trimmingCharacters(in: .whitespacesAndNewlines) { return "whitespace or a line break around the value" }
        guard let ua = URLComponents(string: a), let ut = URLComponents(string: t) else { return "the strings differ" }
        var diffs: [String] = []
        if ua.scheme?.lowercased() != ut.scheme?.lowercased() { diffs.append("scheme (\(ua.scheme ?? "") vs \(ut.scheme ?? ""))") }
        let ha = ua.host ?? "", ht = ut.host ?? ""
        if ha != ht {
            if ha.lowercased() == ht.lowercased() { diffs.append("host case") }
            else if ha.lowercased() == "www." + ht.lowercased() || ht.lowercased() == "www." + ha.lowercased() { diffs.append("`www.`") }
            else if Set([ha.lowercased(), ht.lowercased()]) == Set(["localhost", "127.0.0.1"]) { diffs.append("localhost vs 127.0.0.1") }
            else { diffs.append("host (\(ha) vs \(ht))") }
        }
        if ua.port != ut.port { diffs.append("port (\(ua.port.map(String.init) ?? "default") vs \(ut.port.map(String.init) ?? "default"))") }
        let pa = ua.percentEncodedPath, pt = ut.percentEncodedPath
        if pa != pt {
            if pa + "/" == pt { diffs.append("trailing slash added") }
            else if pt + "/" == pa { diffs.append("trailing slash missing") }
            else if pa.lowercased() == pt.lowercased() { diffs.append("path case") }
            else if pa.removingPercentEncoding == pt.removingPercentEncoding { diffs.append("encoding level of the path") }
            else { diffs.append("path (\(pa) vs \(pt))") }
        }
        if ua.percentEncodedQuery != ut.percentEncodedQuery {
            diffs.append(ua.percentEncodedQuery == nil ? "added query (\(ut.percentEncodedQuery ?? ""))" : "query differs")
        }
        if ua.fragment != ut.fragment { diffs.append("fragment") }
        return diffs.isEmpty ? "the strings differ" : diffs.joined(separator: ", ")
    }

    // MARK: PKCE (RFC 7636)

    mutating func pkceVerifierInvalidRule() {
        guard cur.grant == "authorization_code", codeFacts.judgesRedirectAndPKCE else { return }
        if let v = p.first("code_verifier") {
            let s = v.value
            let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
            var probs: [String] = []
            if s.count < 43 { probs.append("\(s.count) characters (minimum 43)") }
            if s.count > 128 { probs.append("\(s.count) characters (maximum 128)") }
            if !s.unicodeScalars.allSatisfy({ allowed.contains($0) }) {
                probs.append(s.contains("+") || s.contains("/") || s.contains("=") ? "standard base64 characters (`+`, `/`, `=`) instead of base64url" : "characters outside A-Z a-z 0-9 - . _ ~")
            }
            if !probs.isEmpty {
                add("pkce-verifier-invalid", profile.supportsPKCE ? shapeSeverity(.error) : .info, .certain, "code_verifier is invalid: \(probs.joined(separator: ", "))",
                    ["code_verifier (\(v.place.rawValue)): \(val(s, "code_verifier").display)"] + probs,
                    fix: "Generate 32 random bytes and base64url-encode them without padding (43 characters).", ref: RFC.pkce)
            }
        }
    }

    /// The authorize request behind the exchange's code, whether the link is proven, and its
    /// `code_challenge` and method (nil when it sent none).
    var pkceChallenge: (auth: Observation, proven: Bool, challenge: String, method: String)? {
        let facts = codeFacts
        guard cur.grant == "authorization_code", facts.judgesRedirectAndPKCE,
              let (auth, proven) = index.authorize(for: facts.issue, clientID: p.first("client_id")?.value, before: cur.at),
              let challenge = auth.params.value("code_challenge") else { return nil }
        return (auth, proven, challenge, auth.params.value("code_challenge_method") ?? "plain")
    }

    mutating func pkceVerifierMissingRule() {
        guard let (auth, proven, challenge, method) = pkceChallenge else { return }
        guard p.first("code_verifier") != nil else {
            add("pkce-verifier-missing", profile.supportsPKCE ? shapeSeverity(.error) : .info, proven ? .certain : .likely,
                "The authorize request had a code_challenge but the exchange has no code_verifier",
                ["authorize request (\(exchangeID(auth))): code_challenge=\(escaped(challenge)), code_challenge_method=\(escaped(method))",
                 "code_verifier: absent from the token request"],
                fix: "Send the code_verifier generated for this authorization.", ref: RFC.pkceVerify)
            return
        }
    }

    mutating func pkceVerifierMismatchRule() {
        guard let (auth, proven, challenge, method) = pkceChallenge, let v = p.first("code_verifier") else { return }
        guard let raw = val(v.value, "code_verifier").raw, !succeeded else { return }
        var computed: String?
        if method.uppercased() == "S256" { computed = s256(raw) } else if method == "plain" { computed = raw }
        guard let computed, computed != challenge else { return }
        add("pkce-verifier-mismatch", profile.supportsPKCE ? .error : .info, proven ? .certain : .likely,
            "code_verifier does not match the authorize request's code_challenge",
            ["authorize request (\(exchangeID(auth))): code_challenge=\(escaped(challenge)) (\(method))",
             "code_verifier sent: \(val(raw, "code_verifier").display)",
             method.uppercased() == "S256" ? "BASE64URL(SHA256(code_verifier)) = \(escaped(computed))" : "plain verifier differs from the challenge"],
            fix: "Keep the code_verifier from the authorize step (store it with state); do not generate a new one for the exchange.",
            ref: RFC.pkceVerify)
    }

    func s256(_ s: String) -> String? {
        #if canImport(Crypto)
        let d = Data(SHA256.hash(data: Data(s.utf8)))
        return d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        #else
        return nil
        #endif
    }

    // MARK: refresh

    /// The refresh token of a `refresh_token` grant, when the refresh rules judge it: not a token or
    /// code of another role (`token-type-confusion`), not replaced by another tool.
    var refreshToken: (Parameter, Val)? {
        guard cur.grant == "refresh_token", let rp = p.first("refresh_token") else { return nil }
        let r = val(rp.value, "refresh_token")
        guard !refreshTokenIsAnotherRole(r), !r.unknown else { return nil }
        return (rp, r)
    }

    func refreshTokenIsAnotherRole(_ r: Val) -> Bool {
        history.contains { $0.role == .token && $0.accessTokenFingerprint == r.fp } || index.issuedCodes.contains { $0.code.fp == r.fp }
    }

    /// `token-type-confusion` on a refresh: an access token or a code sent as refresh_token.
    mutating func refreshConfusionRule() {
        guard let rp = p.first("refresh_token") else { return }
        let r = val(rp.value, "refresh_token")
        if let t = history.last(where: { $0.role == .token && $0.accessTokenFingerprint == r.fp }) {
            add("token-type-confusion", succeeded ? .info : .error, .certain, "An access token is sent as the refresh_token",
                ["refresh_token sent: \(r.display)", "the access token issued in \(exchangeID(t)) has the same fingerprint"],
                fix: "Send the refresh_token field of the token response, not access_token.", ref: RFC.refresh)
            return
        }
        if let c = index.issuedCodes.first(where: { $0.code.fp == r.fp }) {
            add("token-type-confusion", succeeded ? .info : .error, .certain, "An authorization code is sent as the refresh_token",
                ["refresh_token sent: \(r.display)", "the code issued in \(exchangeID(c.obs)) has the same fingerprint"],
                fix: "Exchange the code with grant_type=authorization_code first; refresh with the refresh_token it returns.", ref: RFC.refresh)
            return
        }
    }

    /// `refresh-token-rotated`: the refresh token was already used successfully.
    mutating func refreshTokenRotatedRule() {
        guard let (rp, r) = refreshToken, !refreshTokenNeverIssued(rp, r) else { return }
        let uses = history.filter { h in h.role == .token && h.grant == "refresh_token" &&
            h.params.all("refresh_token").contains { val($0.value, "refresh_token").fp == r.fp } }
        if let used = uses.first(where: { $0.tokenResponse.success }) {
            let newRT = used.tokenResponse.refreshToken.map { val($0, "refresh_token") }
            let rotated = newRT.map { $0.fp != r.fp } ?? profile.rotatesRefreshTokens
            if rotated || profile.rotatesRefreshTokens, !succeeded {
                let end = used.at.addingTimeInterval((used.exchange.timings.total) / 1000)
                let racing = cur.at < end
                var ev = ["refresh_token sent: \(r.display)",
                          "already used in \(exchangeID(used)) at \(isoTime(used.at)) (\(elapsed(cur.at.timeIntervalSince(used.at))) earlier): \(statusText(used))"]
                if let n = newRT, n.fp != r.fp { ev.append("that refresh returned a new refresh_token \(n.display)") }
                if racing { ev.append("this request started before \(exchangeID(used)) had finished: concurrent refreshes") }
                add("refresh-token-rotated", .error, .certain,
                    racing ? "Two refreshes raced with the same refresh token; rotation invalidated it" : "The refresh token was already rotated by an earlier refresh",
                    ev, fix: racing ? "Serialize refreshes (one in flight, others wait for its result) and save the refresh_token from every response."
                        : "Save the refresh_token from every token response and use the newest one (\(profile.name) rotates refresh tokens).",
                    ref: profile.reference("refresh", else: RFC.refresh))
            }
        }
    }

    mutating func refreshTokenExpiredRule() {
        guard let (rp, r) = refreshToken, !refreshTokenNeverIssued(rp, r) else { return }
        if let iss = index.issueOfRefreshToken(r, before: position) {
            if let life = iss.response.refreshExpiresIn ?? profile.refreshTokenLifetime, !succeeded {
                let age = cur.at.timeIntervalSince(iss.obs.at)
                if age > life {
                    add("refresh-token-expired", .error, .certain, "The refresh token is \(elapsed(age)) old (lifetime \(elapsed(life)))",
                        ["refresh_token \(r.display) issued in \(exchangeID(iss.obs)) at \(isoTime(iss.obs.at))",
                         "presented \(elapsed(age)) later",
                         iss.response.refreshExpiresIn != nil ? "refresh_token_expires_in: \(Int(life)) s" : "\(profile.name) refresh token lifetime: \(elapsed(life)) \(fact(.refreshTokenLifetime))"],
                        fix: "Start a new authorization; refresh before the refresh token expires.",
                        ref: profile.reference("refresh", else: RFC.refresh))
                }
            }
        }
    }

    mutating func refreshTokenClientMismatchRule() {
        guard let (rp, r) = refreshToken, !refreshTokenNeverIssued(rp, r) else { return }
        if let iss = index.issueOfRefreshToken(r, before: position) {
            let issuedTo = iss.obs.params.first("client_id")?.value.trimmingCharacters(in: .whitespacesAndNewlines)
            if let issuedTo, let now = p.first("client_id")?.value.trimmingCharacters(in: .whitespacesAndNewlines), issuedTo != now {
                add("refresh-token-client-mismatch", succeeded ? .info : .error, .certain,
                    "The refresh token was issued to another client",
                    ["refresh request client_id: \(escaped(now))", "token issued in \(exchangeID(iss.obs)) to client_id \(escaped(issuedTo))"],
                    fix: "Refresh with the client_id (and secret) of the app the token was issued to.", ref: RFC.refresh)
            }
        }
    }

    /// `refresh-token-not-issued`: a `refresh_token` grant presents a value never issued in this
    /// session while the session's token responses carried no `refresh_token` (a Miro app without
    /// expiring tokens; an OIDC provider asked without `offline_access`; Google without
    /// `access_type=offline`). Returns true when it fired.
    /// Whether `refresh-token-not-issued` applies (then the other refresh rules stay silent: there is
    /// no issued token to compare with).
    func refreshTokenNeverIssued(_ rp: Parameter, _ r: Val) -> Bool {
        guard !succeeded, index.issueOfRefreshToken(r, before: position) == nil else { return false }
        let responses = history.filter { $0.role == .token && $0.tokenResponse.success && $0.exchange.host == ex.host }
        return !responses.isEmpty && responses.allSatisfy({ $0.tokenResponse.refreshToken == nil })
    }

    mutating func refreshTokenNotIssuedRule() {
        guard let (rp, r) = refreshToken, refreshTokenNeverIssued(rp, r) else { return }
        let responses = history.filter { $0.role == .token && $0.tokenResponse.success && $0.exchange.host == ex.host }
        // Only the raw value can be read; a stored one is a placeholder of its length.
        let literals = ["undefined", "null", "none", "nil", "[object object]"]
        let literal = r.raw.map { $0.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() }.flatMap { v in literals.first { $0 == v } }
        var ev = ["refresh_token sent (\(rp.place.rawValue)): \(r.display)",
                  "token responses in this session: " + responses.suffix(3).map { "\(exchangeID($0)) (no refresh_token)" }.joined(separator: ", ")]
        if let literal { ev.append("the value is the literal text `\(literal)`: the app read a field the response does not have") }
        if let need = profile.refreshTokenRequirement {
            ev.append("\(profile.name) issues a refresh token only with \(need) \(fact(.refreshTokenRequirement))")
        }
        add("refresh-token-not-issued", failed ? .error : .warning, literal != nil ? .certain : .likely,
            "The refresh token sent was never issued: this session's token responses carried no refresh_token",
            ev, fix: "Ask for a refresh token the provider's way (Miro: turn on expiring access tokens for the app; OpenID Connect: scope offline_access; Google: access_type=offline), or do not refresh: authorize again when the access token expires.",
            ref: profile.reference("refresh", else: RFC.refresh))
    }

    // MARK: redirect / callback

    mutating func stateMismatchRule() {
        guard cur.deliversSomething else { return }
        let auth: Observation?
        if cur.role == .authorize { auth = cur }
        else { auth = history.last { $0.role == .authorize } }
        if let auth, let sentState = auth.params.value("state"), !RedactedElsewhere.isMarker(sentState),
           !(cur.deliveredState.map(RedactedElsewhere.isMarker) ?? false) {
            let got = cur.deliveredState
            let same = auth.id == cur.id && auth.at == cur.at
            if got == nil {
                add("state-mismatch", .error, same ? .certain : .likely, "The redirect carries no state although the authorize request sent one",
                    ["authorize request (\(exchangeID(auth))): state=\(escaped(sentState))", "redirect: no state"],
                    fix: "Check the app's redirect handling; start a new authorization.", ref: RFC.state)
            } else if let got, got != sentState {
                let older = history.last { $0.role == .authorize && $0.params.value("state") == got }
                var ev = ["latest authorize request (\(exchangeID(auth))): state=\(escaped(sentState))", "redirect: state=\(escaped(got))"]
                if let older { ev.append("the redirect answers the older authorize request \(exchangeID(older)) (two logins in flight)") }
                add("state-mismatch", older != nil ? .warning : .error, same ? .certain : .likely, "The redirect's state differs from the authorize request's",
                    ev, fix: "Keep one authorization in flight and compare the callback's state with the value stored for it.", ref: RFC.state)
            }
        }
    }

    /// A failed authorize request whose redirect_uri differs from one that got a code earlier in the session.
    mutating func failedAuthorizeRedirectRule() {
        guard failed, let uri = p.value("redirect_uri") else { return }
        let cid = p.value("client_id")
        guard let good = history.last(where: { h in
            h.role == .authorize && h.deliveredCode != nil && h.params.value("client_id") == cid && h.params.value("redirect_uri") != nil
        }), let goodURI = good.params.value("redirect_uri"), goodURI != uri else { return }
        let diff = describeURIDifference(authorize: goodURI, exchange: uri)
        add("redirect-uri-mismatch", .error, .likely, "The authorize request's redirect_uri differs from the one that worked earlier: \(diff)",
            ["got a code in \(exchangeID(good)): redirect_uri=\(escaped(goodURI))", "now: redirect_uri=\(escaped(uri))", "difference: \(diff)"],
            fix: "Use a redirect_uri registered in the app settings, byte for byte: \(goodURI)",
            ref: profile.reference("errors", else: "RFC 6749 §3.1.2"))
    }

    /// A failed authorize request (or one whose redirect delivers an error) with a loopback
    /// redirect_uri whose port differs from one that got a code earlier: that earlier authorize.
    var loopbackPortChangedSince: Observation? {
        guard cur.role == .authorize, !cur.deliversSomething || cur.deliveredError != nil, failed || cur.deliveredError != nil,
              let uri = p.value("redirect_uri"), let u = URLComponents(string: uri), let host = u.host, isLoopbackHost(host) else { return nil }
        return history.last { h in
            h.role == .authorize && h.deliveredCode != nil &&
                (h.params.value("redirect_uri").flatMap { URLComponents(string: $0) }.map { $0.host.map(isLoopbackHost) == true && $0.port != u.port } ?? false)
        }
    }
    var loopbackPortChanged: Bool { loopbackPortChangedSince?.params.value("redirect_uri") != nil }

    mutating func loopbackRule() {
        guard let good = loopbackPortChangedSince, let uri = p.value("redirect_uri"), let goodURI = good.params.value("redirect_uri") else { return }
        add("loopback-redirect-port", .error, .likely, "The loopback redirect_uri's port changed since the last successful login",
            ["now: redirect_uri=\(escaped(uri))", "succeeded in \(exchangeID(good)): redirect_uri=\(escaped(goodURI))"],
            fix: "Register the loopback redirect without a fixed port if the provider allows it (RFC 8252 §7.3), or use a fixed port.",
            ref: RFC.loopback)
    }

    // MARK: API calls

    mutating func apiWrongHostRule() {
        let method = ex.method.uppercased()
        guard method != "OPTIONS" else { return }
        if profile.serves(host: ex.host), !profile.apiHosts.isEmpty, !profile.apiHosts.contains(ex.host.lowercased()),
           profile.apiPathPrefixes.contains(where: { ex.path.hasPrefix($0) }), !succeeded {
            add("api-wrong-host", noResponse ? .warning : .error, .certain, "The REST call went to \(ex.host), not \(profile.apiHosts.joined(separator: ", "))",
                ["\(method) \(cur.endpoint)", "\(profile.name) REST API host: \(profile.apiHosts.joined(separator: ", ")) \(fact(.apiHosts))"],
                fix: "Call https://\(profile.apiHosts[0])\(ex.path).", ref: profile.reference("api", else: RFC.bearer))
        }
    }

    mutating func accessTokenMissingRule() {
        let status = ex.status
        let method = ex.method.uppercased()
        guard method != "OPTIONS" else { return }
        let isProviderAPI = profile.apiHosts.contains(ex.host.lowercased()) || profile.serves(host: ex.host)
        let wwwBearer = ex.response.headers.first(named: "WWW-Authenticate")?.lowercased().hasPrefix("bearer") ?? false
        // access-token-missing
        let auth = p.authorization
        var missing: String?
        if auth == nil { missing = "no Authorization header" }
        else if let a = auth, !a.isBearer { missing = "scheme \(a.scheme.map(escaped) ?? "(none)") instead of Bearer" }
        else if let tok = p.bearerToken {
            if tok != tok.trimmingCharacters(in: .whitespacesAndNewlines) { missing = "whitespace or a line break around the token" }
            else if tok.contains("\"") || tok.contains("'") { missing = "quotes around the token" }
            else if tok.isEmpty { missing = "an empty token" }
        }
        // A browser's own calls authenticate with cookies (page loads in a HAR): not an OAuth client.
        let cookieSession = auth == nil && ex.request.headers.first(named: "Cookie") != nil
        if let missing, !cookieSession, isProviderAPI || (status == 401 && wwwBearer), status.map({ !(200..<300).contains($0) }) ?? true {
            var ev = ["\(method) \(cur.endpoint)" + (status.map { " → \($0)" } ?? ""), missing]
            if let t = p.bearerToken { ev.append("token: \(val(t, "access_token").display)") }
            add("access-token-missing", status == 401 ? .error : .warning, .certain, "The API call carries no usable Bearer token: \(missing)", ev,
                fix: "Send Authorization: Bearer <access_token> (exactly one space, no quotes or line break).", ref: RFC.bearer)
        }
    }

    /// `token-type-confusion` on an API call: a code or refresh token as the Bearer token.
    mutating func bearerConfusionRule() {
        guard ex.method.uppercased() != "OPTIONS", let tok = p.bearerToken else { return }
        let a = val(tok, "access_token")
        if let c = index.issuedCodes.first(where: { $0.code.fp == a.fp }) {
            add("token-type-confusion", succeeded ? .info : .error, .certain, "The authorization code is sent as a Bearer token",
                ["Bearer token: \(a.display)", "the code issued in \(exchangeID(c.obs)) has the same fingerprint"],
                fix: "Exchange the code at the token endpoint and send the access_token it returns.", ref: RFC.bearer)
            return
        }
        if let t = history.last(where: { $0.role == .token && $0.refreshTokenFingerprint == a.fp }) {
            add("token-type-confusion", succeeded ? .info : .error, .certain, "The refresh token is sent as a Bearer token",
                ["Bearer token: \(a.display)", "the refresh token issued in \(exchangeID(t)) has the same fingerprint"],
                fix: "Send the access_token field of the token response, not refresh_token.", ref: RFC.bearer)
            return
        }
    }

    /// The Bearer token of an API call and the token response that issued it, when the token
    /// rules judge it (not a code or refresh token sent as Bearer: `token-type-confusion`).
    var bearerIssue: (Val, FlowIndex.TokenIssue)? {
        guard ex.method.uppercased() != "OPTIONS", let tok = p.bearerToken else { return nil }
        let a = val(tok, "access_token")
        guard !index.issuedCodes.contains(where: { $0.code.fp == a.fp }),
              !history.contains(where: { $0.role == .token && $0.refreshTokenFingerprint == a.fp }),
              let iss = index.issueOfAccessToken(a, before: position) else { return nil }
        return (a, iss)
    }

    /// The access token's lifetime (the response's `expires_in`, else the profile's) when it had
    /// passed at this call.
    func accessTokenExpiry(_ iss: FlowIndex.TokenIssue) -> TimeInterval? {
        guard let life = iss.response.expiresIn ?? profile.accessTokenLifetime, cur.at.timeIntervalSince(iss.obs.at) > life else { return nil }
        return life
    }

    mutating func accessTokenExpiredRule() {
        guard ex.status == 401, let (a, iss) = bearerIssue else { return }
        do {
            let age = cur.at.timeIntervalSince(iss.obs.at)
            if let life = accessTokenExpiry(iss) {
                add("access-token-expired", .error, .certain, "The access token expired \(elapsed(age - life)) before this call",
                    ["Bearer \(a.display) issued in \(exchangeID(iss.obs)) at \(isoTime(iss.obs.at))",
                     "used \(elapsed(age)) after issue; expires_in \(Int(life)) s" + (iss.response.expiresIn == nil ? " \(fact(.accessTokenLifetime))" : ""),
                     iss.response.refreshToken != nil ? "a refresh_token was issued with it but no refresh was made" : "no refresh_token was issued with it"],
                    fix: "Refresh the access token before it expires (or on 401) and retry with the new one.",
                    ref: profile.reference("refresh", else: RFC.refresh))
            }
        }
    }

    mutating func accessTokenSupersededRule() {
        guard ex.status == 401, let (a, iss) = bearerIssue, accessTokenExpiry(iss) == nil else { return }
        do {
            if let later = history.first(where: { $0.at > iss.obs.at && $0.role == .token && $0.grant == "refresh_token" && $0.tokenResponse.success &&
                $0.at.addingTimeInterval($0.exchange.timings.total / 1000) <= cur.at }) {
                let pairRT = iss.response.refreshToken.map { val($0, "refresh_token").fp }
                let samePair = later.params.value("refresh_token").map { val($0, "refresh_token").fp } == pairRT
                let newAT = later.tokenResponse.accessToken.map { val($0, "access_token").display } ?? "?"
                add("access-token-superseded", .error, samePair && profile.rotatesRefreshTokens ? .certain : .likely,
                    "The access token was replaced by a later refresh",
                    ["Bearer \(a.display) issued in \(exchangeID(iss.obs))",
                     "refreshed in \(exchangeID(later)) at \(isoTime(later.at))\(samePair ? " with this token's refresh_token" : ""): new access token \(newAT)"],
                    fix: "Use the access token from the latest token response; share it across workers.",
                    ref: profile.reference("refresh", else: RFC.refresh))
            }
        }
    }

    /// `scope-mismatch`: on an API call answered 403, the scope the call needs against the one the
    /// token was granted; on a code exchange, the granted scope against the one asked.
    mutating func scopeMismatchRule() {
        if cur.role == .token { grantedScopeRule(); return }
        guard ex.status == 403, let (_, iss) = bearerIssue else { return }
        scopeRule(issue: iss)
    }

    mutating func scopeRule(issue: FlowIndex.TokenIssue) {
        guard let granted = issue.response.scope else { return }
        let scopes = Set(granted.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init))
        let method = ex.method.uppercased()
        guard let rule = profile.scopeRules.first(where: { r in
            ex.path.hasPrefix(r.pathPrefix) && (r.method == "*" || r.method == method || (r.method.hasPrefix("!") && String(r.method.dropFirst()) != method))
        }), !scopes.contains(rule.scope) else { return }
        add("scope-mismatch", .error, .likely, "The call needs scope \(rule.scope), which the token was not granted",
            ["\(method) \(cur.endpoint) → 403", "granted in \(exchangeID(issue.obs)): scope=\(escaped(granted))", "needed: \(rule.scope)"],
            fix: "Add \(rule.scope) to the app's scopes and authorize again.", ref: profile.reference("scopes", else: "RFC 6749 §3.3"))
    }

    /// `scope-mismatch` at the exchange: the token response granted less than the authorize request asked.
    mutating func grantedScopeRule() {
        guard cur.grant == "authorization_code", response.success, let granted = response.scope else { return }
        let codeIssue = p.value("code").flatMap { index.issue(of: val($0, "code")) }
        guard let (auth, _) = index.authorize(for: codeIssue, clientID: p.first("client_id")?.value, before: cur.at),
              let asked = auth.params.value("scope") else { return }
        func split(_ s: String) -> Set<String> { Set(s.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)) }
        let a = split(asked), g = split(granted)
        let missing = a.subtracting(g)
        guard !missing.isEmpty else { return }
        // A provider that renames scopes (e.g. `email` → a URL) grants names never asked: then only info.
        let renamed = !g.subtracting(a).isEmpty
        add("scope-mismatch", renamed ? .info : .warning, renamed ? .possible : .likely,
            "The token was granted narrower scope than the authorize request asked",
            ["asked in \(exchangeID(auth)): scope=\(escaped(asked))", "granted: scope=\(escaped(granted))",
             "missing: \(missing.sorted().joined(separator: " "))"],
            fix: "Calls that need \(missing.sorted().joined(separator: ", ")) will fail with 403: check the app's scopes and what the user consented to.",
            ref: profile.reference("scopes", else: "RFC 6749 §3.3"))
    }

    // MARK: JWT assertions

    mutating func jwtRules() {
        for name in ["client_assertion", "assertion"] {
            guard let prm = p.first(name), let raw = val(prm.value, name).raw else { continue }
            let parts = raw.split(separator: ".")
            guard parts.count >= 2 else { continue }
            var b = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            b += String(repeating: "=", count: (4 - b.count % 4) % 4)
            guard let d = Data(base64Encoded: b), let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { continue }
            let iat = (obj["iat"] as? NSNumber)?.doubleValue, exp = (obj["exp"] as? NSNumber)?.doubleValue, nbf = (obj["nbf"] as? NSNumber)?.doubleValue
            var serverNow = ex.started
            var clockSource = "proxy clock"
            if let ds = ex.response.headers.first(named: "Date"), let sd = httpDate(ds) { serverNow = sd; clockSource = "response Date" }
            let now = serverNow.timeIntervalSince1970
            let skew = 60.0
            var probs: [String] = []
            if let exp, exp < now { probs.append("exp is \(elapsed(now - exp)) before the \(clockSource)") }
            if let iat, iat > now + skew { probs.append("iat is \(elapsed(iat - now)) after the \(clockSource)") }
            if let nbf, nbf > now + skew { probs.append("nbf is \(elapsed(nbf - now)) after the \(clockSource)") }
            guard !probs.isEmpty else { continue }
            add("jwt-clock-skew", shapeSeverity(.error), .likely, "The \(name) JWT is outside the server's time window",
                ["\(name): \(val(raw, "jwt").display)"] + probs + ["\(clockSource): \(isoTime(serverNow))"],
                fix: "Sync the client's clock (NTP) and build the JWT with iat = now, exp = now + a few minutes.", ref: RFC.jwt)
        }
    }
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7) `Sun, 06 Nov 1994 08:49:37 GMT`.
func httpDate(_ s: String) -> Date? {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return f.date(from: s.trimmingCharacters(in: .whitespaces))
}
