import Foundation
import Redaction
import TokentapCore

/// Rules about the shape of a token request (oauth-rules.md, "Token request shape").
extension RuleContext {
    static let tokenParamNames: Set<String> = ["grant_type", "code", "redirect_uri", "client_id", "client_secret",
                                               "refresh_token", "code_verifier", "scope", "client_assertion",
                                               "client_assertion_type", "assertion", "username", "password"]

    func resolve(_ location: String, from o: Observation) -> String {
        var loc = location
        if let q = loc.firstIndex(of: "?") { loc = String(loc[..<q]) }
        if loc.hasPrefix("//") { return o.exchange.scheme + ":" + loc }
        if loc.hasPrefix("/") {
            let e = o.exchange
            let d = e.scheme == "https" ? 443 : 80
            return "\(e.scheme)://\(e.host)\(e.port == d ? "" : ":\(e.port)")\(loc)"
        }
        return loc.replacingOccurrences(of: ":443/", with: "/")
    }

    // MARK: token-redirected

    /// The earlier token request whose redirect the current request follows.
    var redirectedTokenRequest: Observation? {
        history.last { h in
            h.role == .token && h.isRedirectResponse && h.location.map { resolve($0, from: h).lowercased() == cur.endpoint.lowercased() } ?? false
        }
    }

    /// The current request follows a redirected token request and lost its method or body on the way
    /// (`token-redirected` blames it; the shape rules do not judge what was lost).
    var redirectedFollowUp: Bool {
        guard let h = redirectedTokenRequest else { return false }
        return h.exchange.method.uppercased() != ex.method.uppercased() || (!h.exchange.request.body.isEmpty && ex.request.body.isEmpty)
    }

    mutating func tokenRedirectRule() {
        // The current request follows an earlier redirect of a token request.
        if let h = redirectedTokenRequest {
            let lostMethod = h.exchange.method.uppercased() != ex.method.uppercased()
            let lostBody = !h.exchange.request.body.isEmpty && ex.request.body.isEmpty
            if lostMethod || lostBody {
                var ev = ["\(exchangeID(h)): \(h.exchange.method) \(h.endpoint) answered \(h.exchange.status ?? 0) Location: \(resolve(h.location ?? "", from: h))",
                          "\(exchangeID(cur)): follow-up \(ex.method) \(cur.endpoint)"]
                if lostMethod { ev.append("method changed \(h.exchange.method) → \(ex.method)") }
                if lostBody {
                    let names = h.params.items.filter { $0.place != .query && $0.place != .basic }.map(\.name)
                    ev.append("body lost: \(h.exchange.request.body.count) bytes → 0" + (names.isEmpty ? "" : " (\(names.joined(separator: ", ")))"))
                }
                add("token-redirected", .error, .certain,
                    "The token request was redirected and the follow-up lost its \(lostMethod && lostBody ? "method and body" : lostMethod ? "method" : "body")",
                    ev, fix: "Call the final URL \(cur.endpoint) directly with POST (no redirect in between).",
                    ref: RFC.redirect)
            }
            return
        }
        // The current token request is answered with a redirect.
        guard cur.role == .token, let s = ex.status, [301, 302, 303, 307, 308].contains(s) else { return }
        let target = cur.location.map { resolve($0, from: cur) } ?? "?"
        let keepsMethod = s == 307 || s == 308
        add("token-redirected", keepsMethod ? .info : .warning, .likely,
            "The token endpoint answered \(s) instead of tokens",
            ["\(ex.method) \(cur.endpoint) → \(s)", "Location: \(target)",
             keepsMethod ? "\(s) keeps the method and body" : "clients following a \(s) re-send as GET without the body"],
            fix: "Call \(target) directly with POST.", ref: RFC.redirect)
    }

    // MARK: shape

    mutating func tokenEndpointWrongRule() {
        let method = ex.method.uppercased()
        let hostPath = "\(ex.host.lowercased())\(ex.path)"
        if !profile.tokenEndpoints.isEmpty {
            if !profile.isTokenEndpoint(hostPath), !succeeded {
                add("token-endpoint-wrong", noResponse ? .warning : .error, .certain,
                    "The token request went to \(ex.host)\(ex.path), not \(profile.name)'s token endpoint",
                    ["sent to: \(method) \(cur.endpoint)", "\(profile.name) token endpoint: \(profile.tokenEndpoints.joined(separator: ", ")) \(fact(.tokenEndpoints))"],
                    fix: "POST to \(profile.tokenEndpoints[0]).", ref: profile.reference("token", else: RFC.tokenEndpoint))
            }
        } else if failed, let good = history.last(where: { $0.role == .token && $0.exchange.host == ex.host && $0.exchange.path != ex.path && $0.tokenResponse.success }) {
            add("token-endpoint-wrong", .error, .likely,
                "The token request went to \(ex.path); this session got tokens from \(good.exchange.path)",
                ["sent to: \(method) \(cur.endpoint)", "succeeded earlier: \(good.exchange.method) \(good.endpoint) (\(exchangeID(good)))"],
                fix: "POST to \(good.endpoint).", ref: RFC.tokenEndpoint)
        }
    }

    mutating func methodNotPostRule() {
        let method = ex.method.uppercased()
        if method != "POST", !redirectedFollowUp {
            add("token-method-not-post", succeeded ? .info : (noResponse ? .warning : .error), .certain,
                "The token endpoint was called with \(method), not POST",
                ["\(method) \(cur.endpoint)"], fix: "Send the token request with POST and a form body.",
                ref: RFC.tokenEndpoint)
        }
    }

    mutating func grantTypeRule() {
        let grants = p.all("grant_type")
        if grants.isEmpty {
            // The provider documents that it needs none (GitHub).
            guard profile.requiresGrantType else { return }
            // Providers that exchange codes without grant_type exist: for unknown providers it is only possible.
            let strict = !profile.tokenEndpoints.isEmpty
            // The same endpoint gave tokens to a request without grant_type earlier in this session
            // (GitHub, Slack): the session proved it is not needed.
            let learned = acceptedEarlier { !$0.params.has("grant_type") } != nil
            if !redirectedFollowUp, !learned {
                add("grant-type-invalid", strict ? shapeSeverity(.error) : shapeSeverity(.warning), strict ? .certain : .possible,
                    "The token request has no grant_type",
                    ["grant_type: absent from query, body and headers",
                     "parameters sent: \(p.items.map { "\($0.name) (\($0.place.rawValue))" }.joined(separator: ", "))"],
                    fix: "Send grant_type=\(cur.grant ?? "authorization_code").", ref: RFC.tokenRequest)
            }
        } else {
            for g in grants where !isValidGrant(g.value) {
                let v = g.value
                let clean = v.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"'")))
                let expected = closestGrant(v)
                var what = "is not a grant type"
                if clean == expected, v != clean {
                    what = hasLineBreak(v) ? "carries a line break" :
                        v.contains(where: { $0 == "\"" || $0 == "'" }) ? "carries quotes" : "carries whitespace"
                } else if clean.lowercased() == expected { what = "has the wrong case" }
                else if !v.isEmpty { what = "is misspelled" } else { what = "is empty" }
                add("grant-type-invalid", shapeSeverity(.error), .certain, "grant_type \(what)",
                    ["grant_type in \(g.place.rawValue): \(escaped(v))", "on the wire: \(escaped(g.wire))", "expected: \(escaped(expected))"],
                    fix: "Send exactly grant_type=\(expected) (no whitespace, line break or quotes).",
                    ref: RFC.tokenRequest)
            }
        }
    }

    /// Token parameters in the URL query and in the body of a POST.
    var queryAndBodyParameters: (query: [Parameter], body: [Parameter])? {
        guard ex.method.uppercased() == "POST" else { return nil }
        return (p.items.filter { $0.place == .query }, p.items.filter { [.form, .json, .multipart].contains($0.place) })
    }

    mutating func paramsInQueryRule() {
        if let (inQuery, inBody) = queryAndBodyParameters {
            if !inQuery.isEmpty && inBody.isEmpty {
                let accepted = acceptedEarlier { h in h.params.items.contains { $0.place == .query } } != nil
                let sev: Severity = profile.queryParameters == .accepted ? .info : shapeSeverity(.warning, acceptedEarlier: accepted)
                var ev = ["in the URL query: \(inQuery.map(\.name).joined(separator: ", "))", "request body: empty",
                          "\(profile.name): parameters in the query \(profile.queryParameters.rawValue) \(fact(.queryParameters))"]
                if inQuery.contains(where: { $0.name == "client_secret" }) { ev.append("client_secret travels in the URL (URLs end up in logs)") }
                add("params-in-query", sev, .certain, "Token parameters travel in the URL query string",
                    ev, fix: "Move them to an application/x-www-form-urlencoded body.",
                    ref: profile.queryParameters == .accepted ? profile.reference("token", else: RFC.tokenRequest) : "RFC 6749 §4.1.3; RFC 9700 §4.1")
            }
        }
    }

    mutating func paramSplitRule() {
        if let (inQuery, inBody) = queryAndBodyParameters {
            if !inQuery.isEmpty && !inBody.isEmpty {
                let accepted = acceptedEarlier { h in h.params.items.contains { $0.place == .query } && h.params.items.contains { [.form, .json, .multipart].contains($0.place) } } != nil
                let sev: Severity = profile.splitParameters == .accepted ? .info : shapeSeverity(.warning, acceptedEarlier: accepted)
                add("param-split", sev, .certain, "Token parameters are split between query string and body",
                    ["in the URL query: \(inQuery.map(\.name).joined(separator: ", "))",
                     "in the \(inBody[0].place.rawValue): \(inBody.map(\.name).joined(separator: ", "))",
                     "\(profile.name): split parameters \(profile.splitParameters.rawValue) \(fact(.splitParameters))"],
                    fix: "Put them all in the form body.",
                    ref: profile.splitParameters == .accepted ? profile.reference("refresh", else: RFC.tokenRequest) : RFC.tokenRequest)
            }
        }
    }

    mutating func bodyNotFormEncodedRule() {
        if [.json, .multipart, .text, .binary].contains(p.bodyKind), !(p.bodyKind == .json && profile.acceptsJSONBody) {
            let kind = p.bodyKind
            let accepted = acceptedEarlier { $0.params.bodyKind == kind } != nil
            let names = p.items.filter { $0.place == .json || $0.place == .multipart }.map(\.name)
            var ev = ["body is \(kind.rawValue)" + (names.isEmpty ? "" : " with \(names.joined(separator: ", "))"),
                      "Content-Type: \(p.contentType.map(escaped) ?? "(none)")",
                      "\(profile.name) expects application/x-www-form-urlencoded \(fact(.acceptsJSONBody))"]
            if accepted { ev.append("the same endpoint accepted a \(kind.rawValue) body earlier in this session") }
            add("body-not-form-encoded", shapeSeverity(.error, acceptedEarlier: accepted), .likely,
                "The token request body is \(kind.rawValue), not form-encoded",
                ev, fix: "Send the parameters as an application/x-www-form-urlencoded body (name=value pairs joined by &).",
                ref: RFC.tokenRequest)
        }
    }

    func isValidGrant(_ v: String) -> Bool {
        if profile.grantTypes.contains(v) { return true }
        // RFC 6749 §4.5: extension grants are absolute URIs (generic profile only).
        if profile.tokenEndpoints.isEmpty, v.hasPrefix("urn:") || v.hasPrefix("http"), !v.contains(where: { $0.isWhitespace || $0 == "\"" }) { return true }
        return false
    }

    func closestGrant(_ v: String) -> String {
        let clean = v.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"'"))).lowercased()
        if let exact = profile.grantTypes.first(where: { $0 == clean }) { return exact }
        if p.has("refresh_token") && !p.has("code") { return "refresh_token" }
        if p.has("code") { return "authorization_code" }
        return profile.grantTypes.min { levenshtein($0, clean) < levenshtein($1, clean) } ?? "authorization_code"
    }

    mutating func paramMissingRule() {
        guard !redirectedFollowUp, let grant = cur.grant else { return }
        var required: [String] = []
        let hasAssertion = p.has("client_assertion")
        switch grant {
        case "authorization_code":
            required = ["code"]
            if !hasAssertion {
                if profile.requiresClientSecret { required += ["client_id", "client_secret"] }
                else if !p.has("client_secret") && !(p.authorization?.isBasic ?? false) { required += ["client_id"] }
            }
        case "refresh_token":
            required = ["refresh_token"]
            if !hasAssertion, profile.requiresClientSecret { required += ["client_id", "client_secret"] }
        default:
            return
        }
        // A Basic header that could not be decoded still carries the client credentials (basic-auth-malformed says why).
        let opaqueBasic = p.authorization.map { ($0.isBasic || $0.scheme == nil) && $0.basicPassword == nil } ?? false
        if opaqueBasic { required.removeAll { $0 == "client_id" || $0 == "client_secret" } }
        for name in required where !p.has(name) {
            let sent = p.items.map { "\($0.name) (\($0.place.rawValue))" }
            add("param-missing", shapeSeverity(.error), .certain, "The \(grant) request has no \(name)",
                ["\(name): absent from query, body and Basic header", "parameters sent: \(sent.isEmpty ? "none" : sent.joined(separator: ", "))"],
                fix: "Add \(name) to the form body.",
                ref: grant == "refresh_token" ? profile.reference("refresh", else: RFC.refresh) : profile.reference("token", else: RFC.tokenRequest))
        }
    }

    mutating func paramConflictRule() {
        var names: [String] = []
        for i in p.items where !names.contains(i.name) { names.append(i.name) }
        for name in names {
            var occ = p.all(name)
            if name == "client_secret" { occ = occ.filter { $0.place != .basic } } // client-auth-conflict's job
            guard occ.count > 1 else { continue }
            let distinct = Set(occ.map(\.value))
            let ev = occ.map { "\(name) in \($0.place.rawValue): \(show($0))" }
            if distinct.count > 1 {
                // Values equal after trimming are credential-formatting's business too, but still a conflict.
                add("param-conflict", shapeSeverity(.error), .certain, "\(name) is sent \(occ.count) times with different values",
                    ev, fix: "Send \(name) once, in the form body.", ref: RFC.params)
            } else if !(occ.count == 2 && Set(occ.map(\.place)).contains(.basic)) {
                add("param-conflict", .info, .certain, "\(name) is sent \(occ.count) times (same value)",
                    ev, fix: "Send \(name) once, in the form body.", ref: RFC.params)
            }
        }
    }

    mutating func contentTypeRule() {
        let ct = p.contentType?.lowercased()
        let media = ct?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        var problem: String?
        var base: Severity = .error
        switch p.bodyKind {
        case .form:
            if media == nil { problem = "a form body is sent without Content-Type"; base = .warning }
            else if media != "application/x-www-form-urlencoded" { problem = "a form body is labelled \(media!)" }
        case .json:
            if let m = media, !m.contains("json") { problem = "a JSON body is labelled \(m)" }
        case .multipart:
            if let m = media, !m.hasPrefix("multipart/") { problem = "a multipart body is labelled \(m)" }
        default: break
        }
        if problem == nil, p.bodyKind == .form, let c = ct, let r = c.range(of: "charset=") {
            let cs = c[r.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: "\" ;"))
            if !["utf-8", "utf8", "us-ascii"].contains(cs) { problem = "charset \(cs) on a form body (RFC 6749 Appendix B wants UTF-8)"; base = .warning }
        }
        guard let problem else { return }
        let ctNow = p.contentType
        let accepted = acceptedEarlier { $0.params.contentType == ctNow && $0.params.bodyKind == p.bodyKind } != nil
        add("content-type-mismatch", shapeSeverity(base, acceptedEarlier: accepted), .likely, "Content-Type disagrees with the body: \(problem)",
            ["Content-Type: \(p.contentType.map(escaped) ?? "(none)")", "body sent: \(p.bodyKind.rawValue), \(ex.request.body.count) bytes"],
            fix: p.bodyKind == .form ? "Send Content-Type: application/x-www-form-urlencoded." : "Send a Content-Type that matches the body (better: form-encode it).",
            ref: RFC.tokenRequest)
    }

    mutating func basicAuthRule() {
        guard let a = p.authorization else { return }
        if a.isBearer {
            add("basic-auth-malformed", shapeSeverity(.error), .likely, "A Bearer token is sent to the token endpoint instead of client credentials",
                ["Authorization: \(a.scheme ?? "") \(val(a.credentials, "access_token").display)"],
                fix: "Authenticate the client with Basic base64(urlencode(client_id):urlencode(client_secret)) or client_id/client_secret in the form body.",
                ref: RFC.clientAuth)
            return
        }
        guard a.isBasic || a.scheme == nil else { return }
        var problems = a.problems
        if problems.isEmpty, let u = a.basicUser, let pw = a.basicPassword, failed {
            let reserved = CharacterSet(charactersIn: ":+&=%/?#@ ")
            if pw.unicodeScalars.contains(where: { reserved.contains($0) }) || u.unicodeScalars.contains(where: { reserved.contains($0) }) {
                problems.append("reserved characters in the id or secret were not form-urlencoded before base64 (RFC 6749 §2.3.1)")
                let ev = ["Authorization: \(a.scheme ?? "(no scheme)") <base64 of \(basicShape(a))>"] + problems
                add("basic-auth-malformed", .warning, .possible, "The Basic credentials contain characters the server may decode",
                    ev, fix: "Form-urlencode client_id and client_secret before joining them with `:` and base64-encoding.", ref: RFC.clientAuth)
                return
            }
        }
        guard !problems.isEmpty else { return }
        let shape = basicShape(a)
        let tail = a.credentials.last.map { escaped(String($0)) } ?? "\"\""
        var ev = ["Authorization: \(a.scheme ?? "(no scheme)") <base64, \(a.credentials.count) chars, ends with \(tail)>",
                  "decoded: \(shape)"]
        ev += problems
        let accepted = acceptedEarlier { h in h.params.authorization.map { Set($0.problems) == Set(problems) } ?? false } != nil
        add("basic-auth-malformed", shapeSeverity(.error, acceptedEarlier: accepted), .certain,
            "The Basic authorization header is malformed: \(problems[0])", ev,
            fix: "Build it as \"Basic \" + base64(client_id + \":\" + client_secret) with no line break (printf %s, base64.b64encode, Buffer.from(...).toString('base64')).",
            ref: RFC.clientAuth)
    }

    /// `client_id:<client_secret placeholder>` with the client id escaped (it is not a secret).
    func basicShape(_ a: AuthorizationHeader) -> String {
        if let u = a.basicUser, let pw = a.basicPassword {
            let uText = u.allSatisfy({ $0.isLetter || $0.isNumber || "-._~".contains($0) }) ? u : escaped(u)
            return "\(uText):<client_secret \(val(FormCoding.decode(pw), "client_secret").display)>"
        }
        if let d = a.basicDecoded { return "<\(val(d, "basic_credentials").display)>" }
        return "<undecodable: \(val(a.credentials, "basic_credentials").display)>"
    }

    // MARK: client authentication

    mutating func clientAuthConflictRule() {
        let basicPw = p.all("client_secret").first { $0.place == .basic }
        let bodySecrets = p.all("client_secret").filter { $0.place != .basic }
        // client-auth-conflict
        if let b = basicPw, let s = bodySecrets.first {
            let bv = val(b.value, "client_secret"), sv = val(s.value, "client_secret")
            let differ = bv.fp != sv.fp
            let accepted = acceptedEarlier { h in h.params.all("client_secret").count > 1 && h.params.authorization?.isBasic == true } != nil
            // A provider that rejects two methods (Okta) fails the request whatever the values.
            let strict = profile.rejectsMultipleClientAuth
            let sev: Severity = differ || strict ? shapeSeverity(.error) : shapeSeverity(.error, acceptedEarlier: accepted)
            add("client-auth-conflict", sev, differ || strict ? .certain : .likely,
                differ ? "The client authenticates twice with different secrets (Basic header and \(s.place.rawValue))"
                    : "The client authenticates twice (Basic header and client_secret in the \(s.place.rawValue))",
                ["Basic header secret: \(bv.display)", "client_secret in \(s.place.rawValue): \(sv.display)",
                 differ ? "the values differ" : "the values are equal"]
                    + (strict ? ["\(profile.name) rejects more than one client authentication method \(fact(.rejectsMultipleClientAuth))"] : []),
                fix: "Use one method: either the Basic header or client_id/client_secret in the form body, not both.",
                ref: RFC.oneAuthMethod)
        }
        if p.has("client_assertion") && p.has("client_secret") {
            add("client-auth-conflict", shapeSeverity(.error), .likely, "The client sends both client_assertion and client_secret",
                ["client_assertion: \(val(p.value("client_assertion")!, "client_assertion").display)",
                 "client_secret: \(val(p.value("client_secret")!, "client_secret").display)"],
                fix: "Use one client authentication method.", ref: RFC.oneAuthMethod)
        }
    }

    /// Client ids seen readable in authorize requests of this session.
    var knownClientIDs: Set<String> {
        Set(index.observations.filter { $0.role == .authorize }.compactMap { $0.params.value("client_id") })
    }
    /// The latest earlier token request that sent a client_secret with fingerprint `fp`.
    func earlierSecret(withFingerprint fp: String) -> Observation? {
        history.last { $0.role == .token && $0.secretFingerprints.contains(fp) }
    }

    mutating func swappedRule() {
        guard let (ev, conf) = swappedEvidence() else { return }
        add("client-credentials-swapped", succeeded ? .info : .error, conf, "client_id and client_secret are swapped", ev,
            fix: "Swap them back: client_id is the app's id\(profile.decimalClientIDs ? " (decimal)" : ""), client_secret its secret.",
            ref: RFC.clientAuth)
    }

    /// Evidence that client_id and client_secret are swapped, with its confidence (nil when they are not).
    func swappedEvidence() -> ([String], Confidence)? {
        guard let idP = p.first("client_id"), let secP = p.all("client_secret").first else { return nil }
        let id = idP.value.trimmingCharacters(in: .whitespacesAndNewlines)
        let sec = secP.value.trimmingCharacters(in: .whitespacesAndNewlines)
        var ev: [String] = []
        var conf: Confidence = .likely
        if knownClientIDs.contains(sec) {
            ev.append("client_secret in \(secP.place.rawValue) equals the client_id of the authorize request: \(escaped(sec))")
            conf = .certain
        }
        if let h = earlierSecret(withFingerprint: val(id, "client_secret").fp) {
            ev.append("client_id in \(idP.place.rawValue) has the fingerprint of the client_secret sent in \(exchangeID(h)): \(val(id, "client_secret").display)")
            conf = .certain
        }
        if ev.isEmpty, profile.decimalClientIDs, !id.isEmpty, !sec.isEmpty,
           !id.allSatisfy(\.isNumber), sec.allSatisfy(\.isNumber) {
            ev.append("client_id in \(idP.place.rawValue) is not decimal: \(val(id, "client_id").display)")
            ev.append("client_secret in \(secP.place.rawValue) is decimal like \(profile.name) client ids \(fact(.decimalClientIDs)): \(val(sec, "client_secret").display)")
        }
        guard !ev.isEmpty else { return nil }
        return (ev, conf)
    }

    mutating func clientIDMismatchRule() {
        guard cur.grant == "authorization_code", swappedEvidence() == nil,
              let idP = p.first("client_id") else { return }
        let sent = idP.value.trimmingCharacters(in: .whitespacesAndNewlines)
        let codeVal = p.value("code").map { val($0, "code") }
        let issue = codeVal.flatMap { index.issue(of: $0) }
        guard let (auth, proven) = index.authorize(for: issue, clientID: nil, before: cur.at),
              let issued = auth.params.value("client_id")?.trimmingCharacters(in: .whitespacesAndNewlines) else { return }
        guard !RedactedElsewhere.isMarker(sent), !RedactedElsewhere.isMarker(issued) else { return }
        var ev: [String] = []
        if issued != sent {
            ev = ["token request client_id (\(idP.place.rawValue)): \(escaped(sent))",
                  "authorize request client_id (\(exchangeID(auth))): \(escaped(issued))"]
        } else if let issue, let redirected = issue.obs.role != .callback ? issue.obs.locationParams.first(where: { $0.0 == "client_id" })?.1 : issue.obs.params.value("client_id"),
                  redirected != sent {
            ev = ["token request client_id: \(escaped(sent))", "redirect client_id (\(exchangeID(issue.obs))): \(escaped(redirected))"]
        }
        guard !ev.isEmpty else { return }
        add("client-id-mismatch", succeeded ? .info : .error, proven ? .certain : .likely,
            "The token request uses another client_id than the authorize request", ev,
            fix: "Exchange the code with the same app's client_id (and its secret) that started the authorization.",
            ref: RFC.tokenRequest)
    }

    mutating func credentialFormattingRule() {
        // A code that matches the issued one after a transformation is `code-mangled`'s (which names the transformation).
        let codeMangled = codeFacts.mangled != nil
        for name in ["client_id", "client_secret", "code", "refresh_token", "code_verifier"] where !(name == "code" && codeMangled) {
            for prm in p.all(name) where prm.place != .basic {
                let v = prm.value
                var issues: [String] = []
                // A stored value is a placeholder: its shape flags tell what the raw value looked like.
                let stored = Placeholder(parsing: v)?.flags ?? []
                if hasLineBreak(v) || stored.contains(.lineBreak) { issues.append("a line break") }
                if let f = v.unicodeScalars.first, CharacterSet.whitespaces.contains(f) { issues.append("leading whitespace") }
                else if stored.contains(.leadingWhitespace), !stored.contains(.lineBreak) { issues.append("leading whitespace") }
                if let l = v.unicodeScalars.last, CharacterSet.whitespaces.contains(l) { issues.append("trailing whitespace") }
                else if stored.contains(.trailingWhitespace), !stored.contains(.lineBreak) { issues.append("trailing whitespace") }
                if stored.contains(.quoted) { issues.append("surrounding quotes") }
                if v.count >= 2, (v.hasPrefix("\"") && v.hasSuffix("\"")) || (v.hasPrefix("'") && v.hasSuffix("'")) { issues.append("surrounding quotes") }
                if (v.hasPrefix("<") && v.hasSuffix(">")) || v.uppercased().contains("YOUR_") || v.uppercased().contains("YOUR-") || v.contains("${") || v.contains("{{") {
                    issues.append("template placeholder text instead of a value")
                }
                if hasPercentEscape(v) || stored.contains(.percentEncoded) {
                    issues.append("an extra level of percent-encoding")
                }
                guard !issues.isEmpty else { continue }
                add("credential-formatting", shapeSeverity(.error), issues.contains("an extra level of percent-encoding") && issues.count == 1 ? .likely : .certain,
                    "\(name) has \(issues.joined(separator: ", "))",
                    ["\(name) in \(prm.place.rawValue): \(show(prm))", "on the wire: \(showWire(prm))"],
                    fix: "Trim the value where it is read (.env file, secrets store, copy/paste) and send it exactly as issued.",
                    ref: RFC.tokenRequest)
            }
        }
    }

    // MARK: extra parameters

    mutating func extraParamRules() {
        let common: Set<String> = ["grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "resource", "audience"]
        let allowed: Set<String>
        switch cur.grant {
        case "authorization_code": allowed = common.union(["code", "redirect_uri", "code_verifier"])
        case "refresh_token": allowed = common.union(["refresh_token", "scope"])
        default: return
        }
        let extra = p.items.filter { $0.place != .basic && !allowed.contains($0.name) && !profile.tokenParameters.contains($0.name) }
        guard !extra.isEmpty else { return }
        let names = extra.map(\.name)
        let accepted = acceptedEarlier { h in names.allSatisfy { n in h.params.has(n) } } != nil
        let sev: Severity = profile.extraParameters == .accepted ? .info : shapeSeverity(.warning, acceptedEarlier: accepted)
        add("extra-params", sev, .certain, "The \(cur.grant!) request carries parameters the grant does not define",
            extra.map { "\($0.name) in \($0.place.rawValue): \(show($0))" },
            fix: "Send only \(allowed.subtracting(["resource", "audience", "client_assertion", "client_assertion_type"]).sorted().joined(separator: ", ")).",
            ref: cur.grant == "refresh_token" ? RFC.refresh : RFC.tokenRequest)
    }

    // MARK: plain http

    mutating func plainHTTPRule() {
        guard ex.scheme == "http", !isLoopbackHost(ex.host) else { return }
        let carries = p.items.filter { SecretClassifier.isSecret($0.name) }.map(\.name)
            + (p.authorization != nil ? ["Authorization header"] : [])
        guard cur.role == .token || !carries.isEmpty else { return }
        add("token-over-plain-http", succeeded || noResponse ? .warning : .error, .certain,
            "\(cur.role == .token ? "A token request" : "A request carrying credentials") went over plain http://",
            ["\(ex.method) \(cur.endpoint)"] + (carries.isEmpty ? [] : ["exposed: \(carries.joined(separator: ", "))"]),
            fix: "Use https://\(ex.host)\(ex.path).", ref: RFC.tls)
    }

    // MARK: fallback and provider's words

    /// An earlier successful token request (any endpoint of this host) with the same `client_id` and a
    /// `client_secret` of the same fingerprint: the pair is known to work (oauth-rules.md, "Learn from
    /// the session").
    func credentialsSucceededEarlier() -> Observation? {
        guard let id = p.first("client_id")?.value, let sec = p.all("client_secret").first else { return nil }
        let fp = val(sec.value, "client_secret").fp
        return history.last { h in
            h.role == .token && h.tokenResponse.success && h.exchange.host == ex.host && h.params.first("client_id")?.value == id &&
                h.params.all("client_secret").contains { val($0.value, "client_secret").fp == fp }
        }
    }

    /// Whether the exchange is one the fallback rules judge: the provider (not the proxy) rejected
    /// it with 400/401/403 or an error body, and no earlier stage found a request-side cause.
    var rejectedUnexplained: Bool {
        guard ex.error == nil, let s = ex.status, failed, [400, 401, 403].contains(s) || !response.errorFields.isEmpty else { return false }
        return !hasRequestSideCause
    }

    mutating func serverRejectedRule() {
        guard rejectedUnexplained else { return }
        // Never blame a pair that worked: what is left is the grant itself (`code-unknown` raised).
        if credentialsSucceededEarlier() != nil { return }
        let codeUnknown = codeFacts.unknown
        let idP = p.first("client_id")
        let secP = p.all("client_secret").first
        var ev = ["\(ex.method) \(cur.endpoint) → \(statusText(cur))"]
        if let idP { ev.append("client_id (\(idP.place.rawValue)): \(escaped(idP.value))") }
        if let secP { ev.append("client_secret (\(secP.place.rawValue)): \(val(secP.value, "client_secret").display)") }
        ev.append("no rule found a problem in the request")
        var conf: Confidence = codeUnknown ? .possible : .likely
        if let idP, let secP {
            let secFP = val(secP.value, "client_secret").fp
            if let good = history.last(where: { h in
                h.role == .token && h.tokenResponse.success && h.params.value("client_id") == idP.value &&
                    h.params.all("client_secret").first.map { val($0.value, "client_secret").fp != secFP } ?? false
            }), let gs = good.params.all("client_secret").first {
                conf = .certain
                ev.append("the same client_id succeeded in \(exchangeID(good)) with secret \(val(gs.value, "client_secret").display)")
            }
        }
        if codeUnknown { ev.append("the code was never seen issued in this session, so it may be stale") }
        add("server-rejected-credentials", .error, conf, "The server rejected a well-formed request: the client id/secret pair is likely wrong",
            ev, fix: "Check the client_id/client_secret pair in the app settings (a regenerated secret, another app's secret)\(codeUnknown ? " and use a fresh code" : "").",
            ref: profile.reference("errors", else: RFC.errorResponse))
    }

    /// `code-unknown`: info when the code was never seen issued in this session; an error when the
    /// request is well formed (no request-side cause found) and either its client credentials
    /// succeeded earlier in the session (`likely`) or the provider's message names the code
    /// (`possible`). That message is quoted as supporting evidence only.
    mutating func codeUnknownRule() {
        let facts = codeFacts
        guard facts.unknown, let code = facts.code else { return }
        let again = facts.presented.isEmpty ? [] : ["presented before in \(facts.presented.map(exchangeID).joined(separator: ", ")), rejected for the code itself each time: not a reuse"]
        let n = index.issuedCodes.filter { $0.obs.at <= cur.at }.count
        var f = Finding(rule: "code-unknown", severity: .info, confidence: .certain, exchange: ex.id ?? 0,
                        title: "The code was never seen issued in this session",
                        evidence: ["code sent: \(code.display)",
                                   n == 0 ? "no authorize redirect or callback was recorded (the browser did not use the proxy)" : "\(n) code(s) issued in this session; none matches"] + again,
                        fix: "Let the browser use the proxy too (or import a HAR of the login) so code age and redirect_uri can be checked.",
                        reference: RFC.authCode)
        let namesCode = ProviderSubject.named(inFields: response.errorFields).contains(.code)
        let good = rejectedUnexplained ? credentialsSucceededEarlier() : nil
        if rejectedUnexplained, good != nil || namesCode {
            f.severity = .error
            f.confidence = good != nil ? .likely : .possible
            if let good {
                f.title = "The code was never seen issued in this session, and the same client credentials worked: the code is the likely problem"
                f.evidence.append("the same client_id and client_secret (same fingerprint) got tokens in \(exchangeID(good))")
            } else {
                f.title = "The code was never seen issued in this session, and the provider's message names the code"
            }
            if namesCode, let m = response.errorFields.first(where: { ["message", "error_description", "error"].contains($0.0) }) {
                f.evidence.append("the provider's message names the code (supporting evidence only): \(m.0)=\(escaped(quote(name: m.0, value: m.1)))")
            }
            f.fix = "Use the code from this login's redirect, exchanged once and at once (an old, already used or another environment's code fails); let the browser use the proxy too so tokentap can check it."
        }
        findings.append(f)
    }

    mutating func providerErrorRule() {
        guard ex.error == nil else { return }
        // A browser's cookie-authenticated call (a page load in a HAR) is not an OAuth exchange.
        if cur.role == .api, p.authorization == nil, ex.request.headers.first(named: "Cookie") != nil { return }
        var fields: [(String, String)] = []
        if cur.role == .authorize || cur.role == .callback || cur.role == .redirect, let err = cur.deliveredError {
            fields = [("error", err)]
            let src = cur.role != .callback ? cur.locationParams : p.items.filter { $0.place == .query }.map { ($0.name, $0.value) }
            for n in ["error_description", "error_uri"] { if let v = src.first(where: { $0.0 == n })?.1 { fields.append((n, v)) } }
        }
        if fields.isEmpty, failed || !response.errorFields.isEmpty {
            fields = response.errorFields
            if fields.isEmpty, cur.role == .api, let s = ex.status, s != 401, s != 403 { return }
        }
        guard !fields.isEmpty || (cur.role == .token && failed) else { return }
        let otherError = prior.contains { $0.severity == .error }
        var ev = ex.status.map { ["HTTP \($0)"] } ?? []
        ev += fields.map { f in
            let v = quote(name: f.0, value: f.1)
            return "\(f.0): " + (v.allSatisfy(\.isNumber) && !v.isEmpty ? v : escaped(v))
        }
        if fields.isEmpty { ev.append("no error fields in the response body") }
        if let s = ex.status, (200..<300).contains(s), !fields.isEmpty, profile.errorsWithHTTP200 {
            ev.append("\(profile.name) answers errors with HTTP \(s) \(fact(.errorsWithHTTP200))")
        }
        for c in profile.errorCodes(in: fields) {
            ev.append(ProviderErrorCodeEvidence.line(code: c, source: profile.source(of: .errorCodes)))
        }
        let msg = fields.first(where: { $0.0 == "message" || $0.0 == "error_description" })?.1 ?? fields.first(where: { $0.0 == "error" || $0.0 == "code" })?.1
        add("provider-error", otherError ? .info : .error, .certain,
            "\(profile.isGeneric ? "The provider" : profile.name) answered with an error" + (msg.map { ": \(redactor.redactText($0))" } ?? ""),
            ev, fix: "Read the provider's message together with the other findings; the request itself is what to fix.",
            ref: profile.reference("errors", else: RFC.errorResponse))
    }

    mutating func rateLimitRule() {
        guard ex.status == 429 else { return }
        var ev = ["HTTP 429"]
        for h in ex.response.headers where h.name.lowercased().hasPrefix("x-ratelimit") || h.name.lowercased() == "retry-after" {
            ev.append("\(h.name): \(h.value)")
        }
        if let reset = ex.response.headers.first(named: "X-RateLimit-Reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
            let resetDate = Date(timeIntervalSince1970: reset)
            ev.append("resets at \(isoTime(resetDate)) (\(elapsed(resetDate.timeIntervalSince(ex.started))) after this request)")
        }
        add("rate-limited", .error, .certain, "The request was rate limited, not rejected for its credentials", ev,
            fix: "Wait until the limit resets and slow down (back off on 429); the credentials are not the problem.",
            ref: profile.reference("rateLimit", else: RFC.rateLimit))
    }

    mutating func tlsRules() {
        // Certain when the proxy saw the client break the handshake off over tokentap's certificate
        // (error kind `tls`); likely when the client hung up (`truncated`), went silent (`timeout`)
        // or the row predates `error_kind`; never when what the client sent was not TLS (`malformed`).
        if ex.errorKind == .malformed { return }
        let err = ex.error ?? ""
        let ua = ex.request.headers.first(named: "User-Agent")?.lowercased() ?? ""
        var hint = "Trust the tokentap CA (`tokentap ca`) in the client's runtime: Python requests REQUESTS_CA_BUNDLE, Node NODE_EXTRA_CA_CERTS, curl --cacert/CURL_CA_BUNDLE, Java -Djavax.net.ssl.trustStore, Go/OpenSSL SSL_CERT_FILE; or run it with `tokentap run`."
        if ua.contains("python") { hint = "Python does not trust the tokentap CA: set REQUESTS_CA_BUNDLE / SSL_CERT_FILE to the bundle `tokentap ca` prints, or use `tokentap run`." }
        else if ua.contains("node") || ua.contains("axios") || ua.contains("undici") { hint = "Node does not trust the tokentap CA: set NODE_EXTRA_CA_CERTS=certs/tokentap-ca.pem, or use `tokentap run`." }
        else if ua.contains("curl") { hint = "curl does not trust the tokentap CA: pass --cacert certs/tokentap-ca.pem (or CURL_CA_BUNDLE)." }
        else if ua.contains("java") || ua.contains("okhttp") { hint = "Java does not trust the tokentap CA: import it into a trust store and pass -Djavax.net.ssl.trustStore." }
        let certain = ex.errorKind == .tls
        add("client-tls-untrusted", .error, certain ? .certain : .likely, "The client aborted the TLS handshake: it does not trust tokentap's CA",
            ["\(ex.host):\(ex.port)" + (ex.clientAddress.map { " from \($0)" } ?? ""), "error: \(escaped(err))"] + (ua.isEmpty ? [] : ["User-Agent: \(ua)"]),
            fix: hint, ref: "https://www.rfc-editor.org/rfc/rfc8446#section-6.2")
    }
}

extension RuleContext {
    // MARK: upstream-* (the proxy answered)

    /// `upstream-unreachable`, `upstream-timeout`, `upstream-tls-failed`, `upstream-response-invalid`:
    /// the proxy reported the failure itself (``UpstreamFailure``), so the provider's rules stay silent.
    mutating func upstreamRule(_ failure: UpstreamFailure) {
        let host = "\(ex.host)\(ex.port == 443 || ex.port == 80 ? "" : ":\(ex.port)")"
        let answered = ex.status.map { failure == .truncated ? "HTTP \($0) from the upstream, then cut off" : "\($0) answered by tokentap" } ?? "no response"
        var ev = ["\(ex.method) \(cur.endpoint) → \(answered)", "proxy error: \(escaped(redactor.redactText(ex.error ?? "")))"]
        let title: String, fix: String
        switch failure {
        case .connect:
            title = "The proxy could not reach \(host): the provider never saw this request"
            fix = "Check that \(ex.host) resolves and is reachable from this machine (DNS, firewall, VPN, a --map-remote target that is down), then retry; the request itself was not judged."
        case .timeout:
            title = "\(host) did not answer in time: the proxy gave up and answered 504"
            fix = "Retry; if the provider is only slow, raise --upstream-timeout. The request itself was not judged."
        case .tls:
            title = "The TLS handshake between the proxy and \(host) failed: the provider never saw this request"
            fix = "If a corporate proxy or a test server presents \(ex.host)'s certificate, give its CA with --upstream-ca FILE; otherwise check the system clock and the host name."
        case .truncated, .malformed:
            title = "\(host) sent a \(failure == .truncated ? "truncated" : "malformed") response"
            fix = "Retry; if it persists, something between here and the provider is broken: share `tokentap export --format har` with its maintainers."
            ev.append("the response was not judged: it is not a complete HTTP answer")
        }
        add(failure.rule, .error, .certain, title, ev, fix: fix, ref: failure == .timeout ? "RFC 9110 §15.6.5" : "RFC 9110 §15.6.3")
    }
}

func levenshtein(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var row = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = row
    }
    return prev[b.count]
}

extension RuleContext {
    // MARK: spa-origin-required

    /// `spa-origin-required` (Microsoft profile): the provider's error code says the code was issued
    /// to a redirect URI of the other platform: a single-page-application one redeemed without an
    /// `Origin` header (AADSTS9002327), or a Web one redeemed with one (AADSTS9002326). Certain
    /// when the request's `Origin` header agrees with what the code says.
    mutating func spaOriginRule() {
        guard failed, ex.error == nil,
              let c = profile.errorCodes(in: response.errorFields).first(where: { $0.cause == "spa-origin-required" }) else { return }
        let origin = ex.request.headers.first(named: "Origin")
        let needs = c.originHeader ?? (origin == nil ? .required : .forbidden)
        let agrees = (needs == .required) == (origin == nil)
        let redirectOrigin = p.value("redirect_uri").flatMap { URLComponents(string: $0) }.flatMap { u in
            u.host.map { "\(u.scheme ?? "https")://\($0)\(u.port.map { ":\($0)" } ?? "")" }
        }
        let title = needs == .required
            ? "The code was issued to a single-page-application redirect URI and redeemed without an Origin header"
            : "The code was issued to a Web redirect URI and redeemed with an Origin header"
        let fix = needs == .required
            ? "Redeem the code from the browser app, which sends Origin\(redirectOrigin.map { " = \($0)" } ?? " = the redirect URI's origin"), or register the redirect URI under the Web platform."
            : "Redeem the code without an Origin header (from the server), or register the redirect URI under the single-page application platform."
        add("spa-origin-required", .error, agrees ? .certain : .likely, title,
            ["\(ex.method) \(cur.endpoint) → \(statusText(cur))",
             origin.map { "Origin: \(escaped($0))" } ?? "no Origin header",
             ProviderErrorCodeEvidence.line(code: c, source: profile.source(of: .errorCodes))],
            fix: fix, ref: profile.reference("errors", else: RFC.errorResponse))
    }
}

/// Whether `v` has a `%` followed by two ASCII hex digits (what the regular expression
/// `%[0-9A-Fa-f]{2}` finds; a byte scan, as this runs for every credential of every token request).
func hasPercentEscape(_ v: String) -> Bool {
    func isHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }
    let b = Array(v.utf8)
    guard b.count >= 3 else { return false }
    for i in 0..<(b.count - 2) where b[i] == UInt8(ascii: "%") && isHex(b[i + 1]) && isHex(b[i + 2]) { return true }
    return false
}
