import Foundation
import OAuthDiagnosis
import Redaction
import TokentapCore

/// Values shaped like Miro's (miro-oauth.md); none is real.
enum Miro {
    static let clientID = "3074457363680401096"
    static let secret = "Xk9fQ2mZ7pL4vR8tY1wB6nC3dE5gH0jKq2"
    static let otherSecret = "Zz1fQ2mZ7pL4vR8tY1wB6nC3dE5gH0jKq9"
    static let prefix = "eyJtaXJvLm9yaWdpbiI6ImV1MDEifQ_"
    static let code = prefix + "c0deAbCdEfGhIjKlMnOpQrStUv"
    static let code2 = prefix + "c0de2222EfGhIjKlMnOpQrStUv"
    static let access = prefix + "accEssTokenAAAAAAAAAAAAAAA"
    static let refresh = prefix + "reFreshTokenRRRRRRRRRRRRRR"
    static let access2 = prefix + "accEssTokenBBBBBBBBBBBBBBB"
    static let refresh2 = prefix + "reFreshTokenSSSSSSSSSSSSSS"
    static let redirect = "https://app.example/cb"
    static let tokenPath = "/v1/oauth/token"
}

/// How a token request carries its parameters.
enum Style {
    /// Miro's SDKs: everything in the query string of a POST, empty body, no Content-Type.
    case query
    /// application/x-www-form-urlencoded body.
    case form
    /// JSON body.
    case json
    /// Basic header for client_id/client_secret, the rest in a form body (requests-oauthlib default);
    /// `clientIDInBody` also sends client_id in the body.
    case basic(clientIDInBody: Bool)
}

/// Form-encodes one value (RFC 3986 unreserved kept; everything else percent-encoded).
func formEncode(_ s: String) -> String {
    let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
}

func formString(_ pairs: [(String, String)]) -> String {
    pairs.map { "\($0.0)=\(formEncode($0.1))" }.joined(separator: "&")
}

func json(_ obj: [String: Any]) -> Data {
    try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
}

/// A session being built: exchanges (raw) with times relative to `t0`.
struct Scenario {
    static let key = Data((0..<32).map { UInt8($0 * 7 % 251) })
    static let redactor = Redactor(key: key)
    static let t0 = Date(timeIntervalSince1970: 1_750_000_000)
    var exchanges: [Exchange] = []
    var profiles: [ProviderProfile] = [.miro]

    var diagnoser: Diagnoser { Diagnoser(redactor: Scenario.redactor, profiles: profiles) }

    @discardableResult
    mutating func add(_ e: Exchange) -> Int {
        exchanges.append(e)
        return exchanges.count - 1
    }

    /// Findings for exchange `i` (default: the last), with the earlier ones redacted and numbered 1…
    func findings(at i: Int? = nil) -> [Finding] {
        let idx = i ?? exchanges.count - 1
        let history = exchanges[..<idx].enumerated().map { n, e -> Exchange in
            var r = Scenario.redactor.redact(e)
            r.id = Int64(n + 1)
            return r
        }
        return diagnoser.diagnose(exchanges[idx], history: history)
    }

    /// The verdict on exchange `i` (default: the last) as `doctor` computes it: the exchange as
    /// stored (redacted, numbered) with the findings judged when it was captured.
    func verdict(at i: Int? = nil) -> Verdict? {
        let idx = i ?? exchanges.count - 1
        var e = Scenario.redactor.redact(exchanges[idx])
        e.id = Int64(idx + 1)
        e.findings = findings(at: idx)
        return diagnoser.verdict(for: e)
    }

    /// Every exchange's verdict (nil for those that did not fail).
    var verdicts: [Verdict?] { exchanges.indices.map { verdict(at: $0) } }

    /// Every exchange's findings, each judged against the ones before it.
    func allFindings() -> [[Finding]] { exchanges.indices.map { findings(at: $0) } }

    /// The stored (redacted, numbered) session.
    var stored: [Exchange] {
        exchanges.enumerated().map { n, e in var r = Scenario.redactor.redact(e); r.id = Int64(n + 1); return r }
    }

    static func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    // MARK: builders

    static func http(_ method: String, _ url: String, at: TimeInterval, headers: [HeaderField] = [], body: Data = Data(),
                     status: Int?, responseHeaders: [HeaderField] = [], responseBody: Data = Data(),
                     session: String = "test", totalMs: Double = 120) -> Exchange {
        let u = URLComponents(string: url)!
        let scheme = u.scheme ?? "https"
        var target = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath
        if let q = u.percentEncodedQuery { target += "?" + q }
        var h = [HeaderField(name: "Host", value: u.host!)] + headers
        if !body.isEmpty { h.append(HeaderField(name: "Content-Length", value: String(body.count))) }
        return Exchange(session: session, started: Scenario.at(at), timings: Timings(total: totalMs), scheme: scheme, host: u.host!,
                        port: u.port ?? (scheme == "https" ? 443 : 80), method: method, target: target,
                        request: MessageRecord(headers: h, body: body, wireSize: body.count), status: status,
                        response: MessageRecord(headers: responseHeaders, body: responseBody, wireSize: responseBody.count))
    }

    /// `GET https://miro.com/oauth/authorize` answered 302 to the redirect URI with `code` (or `error`).
    static func authorize(at t: TimeInterval = 0, clientID: String = Miro.clientID, redirectURI: String = Miro.redirect,
                          state: String? = "st4te", code: String? = Miro.code, redirectState: String?? = .none,
                          extra: [(String, String)] = [], error: String? = nil, host: String = "miro.com",
                          path: String = "/oauth/authorize") -> Exchange {
        var q: [(String, String)] = [("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI)]
        if let state { q.append(("state", state)) }
        q += extra
        var loc: [(String, String)] = []
        if let code { loc.append(("code", code)) }
        if let error { loc.append(("error", error)) }
        let st: String? = redirectState ?? state
        if let st { loc.append(("state", st)) }
        if host == "miro.com" { loc += [("client_id", clientID), ("team_id", "3458764516184293832")] }
        return http("GET", "https://\(host)\(path)?" + formString(q), at: t, status: 302,
                    responseHeaders: [HeaderField(name: "Location", value: redirectURI + "?" + formString(loc))])
    }

    /// A token request in `style`, answered with `status` and `response`.
    static func token(_ params: [(String, String)], style: Style = .query, at t: TimeInterval,
                      status: Int? = 200, response: Data = Data(), url: String = "https://api.miro.com/v1/oauth/token",
                      method: String = "POST", headers: [HeaderField] = [], totalMs: Double = 120) -> Exchange {
        var headers = headers
        var body = Data()
        var u = url
        switch style {
        case .query:
            u += "?" + formString(params)
        case .form:
            body = Data(formString(params).utf8)
            headers.append(HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"))
        case .json:
            var o: [String: Any] = [:]
            for (k, v) in params { o[k] = v }
            body = json(o)
            headers.append(HeaderField(name: "Content-Type", value: "application/json"))
        case .basic(let idInBody):
            let id = params.first { $0.0 == "client_id" }?.1 ?? ""
            let secret = params.first { $0.0 == "client_secret" }?.1 ?? ""
            headers.append(HeaderField(name: "Authorization", value: "Basic " + Data("\(formEncode(id)):\(formEncode(secret))".utf8).base64EncodedString()))
            let rest = params.filter { $0.0 != "client_secret" && (idInBody || $0.0 != "client_id") }
            body = Data(formString(rest).utf8)
            headers.append(HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"))
        }
        headers.append(HeaderField(name: "Accept", value: "application/json"))
        let respHeaders = response.isEmpty ? [] : [HeaderField(name: "Content-Type", value: "application/json")]
        return http(method, u, at: t, headers: headers, body: body, status: status, responseHeaders: respHeaders,
                    responseBody: response, totalMs: totalMs)
    }

    static func codeParams(code: String = Miro.code, clientID: String = Miro.clientID, secret: String = Miro.secret,
                           redirectURI: String? = Miro.redirect, grant: String = "authorization_code") -> [(String, String)] {
        var p = [("grant_type", grant), ("client_id", clientID), ("client_secret", secret), ("code", code)]
        if let redirectURI { p.append(("redirect_uri", redirectURI)) }
        return p
    }

    static func refreshParams(_ refresh: String = Miro.refresh, clientID: String = Miro.clientID,
                              secret: String = Miro.secret) -> [(String, String)] {
        [("grant_type", "refresh_token"), ("client_id", clientID), ("client_secret", secret), ("refresh_token", refresh)]
    }

    static func tokens(_ access: String = Miro.access, _ refresh: String? = Miro.refresh, expiresIn: Int = 3599,
                       scope: String = "boards:read boards:write") -> Data {
        var o: [String: Any] = ["user_id": "3458764516184293000", "access_token": access, "expires_in": expiresIn,
                                "team_id": "3458764516184293832", "scope": scope, "token_type": "bearer"]
        if let refresh { o["refresh_token"] = refresh }
        return json(o)
    }

    static func miroError(_ status: Int = 401, _ message: String = "Authorization failed") -> Data {
        json(["status": status, "code": "oauthError", "message": message, "type": "error"])
    }

    /// A REST call with `Authorization: Bearer token` (or `authorization` verbatim, or none).
    static func api(_ method: String = "GET", _ url: String = "https://api.miro.com/v2/boards", bearer: String?,
                    authorization: String? = nil, at t: TimeInterval, status: Int = 200,
                    responseHeaders: [HeaderField] = [], body: Data = Data()) -> Exchange {
        var h: [HeaderField] = []
        if let bearer { h.append(HeaderField(name: "Authorization", value: "Bearer \(bearer)")) }
        if let authorization { h.append(HeaderField(name: "Authorization", value: authorization)) }
        let rb = body.isEmpty && status >= 400 ? json(["status": status, "code": status == 401 ? "tokenNotProvided" : "forbiddenAccess",
                                                      "message": "Unauthorized", "type": "error"]) : body
        return http(method, url, at: t, headers: h, status: status, responseHeaders: responseHeaders, responseBody: rb)
    }
}

extension Array where Element == Finding {
    func rule(_ id: String) -> Finding? { first { $0.rule == id } }
    var rules: [String] { map(\.rule) }
    /// Findings of severity error or warning.
    var alarms: [Finding] { filter { $0.severity == .error || $0.severity == .warning } }
    /// The rule the verdict on these findings (one exchange's) names as the cause.
    var cause: String? { Verdict.decide(self)?.cause.rule }
    func evidenceContains(_ rule: String, _ text: String) -> Bool {
        self.rule(rule)?.evidence.contains { $0.contains(text) } ?? false
    }
}
