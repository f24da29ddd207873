import Foundation

/// An OAuth client registered with the sandbox: what a Miro app's settings page holds.
///
/// Miro compares the `redirect_uri` of an authorize request with the app's configured ones byte for
/// byte (miro-oauth.md, "Authorize request and redirect"); so does the sandbox. Several apps may
/// share a client ID: that registers several redirect URIs for one client.
public struct SandboxApp: Sendable, Hashable {
    /// The client ID (RFC 6749 §2.2). Miro's are long decimal numbers.
    public var clientID: String
    /// The client secret (RFC 6749 §2.3.1).
    public var clientSecret: String
    /// The registered redirect URI (RFC 6749 §3.1.2), compared byte for byte.
    public var redirectURI: String

    public init(clientID: String, clientSecret: String, redirectURI: String) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
    }

    /// The fixed demo app every sandbox registers: client ID `3458764513820540928` (decimal, like
    /// Miro's), secret `sandbox-demo-secret-0123456789abcdef`, redirect URI
    /// `http://127.0.0.1:8765/callback`.
    public static let demo = SandboxApp(clientID: "3458764513820540928",
                                        clientSecret: "sandbox-demo-secret-0123456789abcdef",
                                        redirectURI: "http://127.0.0.1:8765/callback")

    /// Parses `CLIENT_ID:CLIENT_SECRET:REDIRECT_URI` (the `--app` option), split at the first two
    /// colons so the redirect URI keeps its own (`1:s:http://127.0.0.1:8765/cb`).
    ///
    /// - Throws: `SandboxAppParseError` when a part is missing or empty, the ID or secret holds
    ///   white space or control characters, or the redirect URI is not an absolute URI
    ///   (`scheme:…`) or carries a fragment (RFC 6749 §3.1.2 forbids one).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SandboxAppParseError.shape(text) }
        let id = String(parts[0]), secret = String(parts[1]), uri = String(parts[2])
        guard !id.isEmpty else { throw SandboxAppParseError.empty(part: "CLIENT_ID", text) }
        guard !secret.isEmpty else { throw SandboxAppParseError.empty(part: "CLIENT_SECRET", text) }
        guard !uri.isEmpty else { throw SandboxAppParseError.empty(part: "REDIRECT_URI", text) }
        for (name, value) in [("CLIENT_ID", id), ("CLIENT_SECRET", secret), ("REDIRECT_URI", uri)]
        where value.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            throw SandboxAppParseError.whitespace(part: name, text)
        }
        guard let components = URLComponents(string: uri), let scheme = components.scheme, !scheme.isEmpty,
              !(components.host ?? "").isEmpty || scheme != "http" && scheme != "https" else {
            throw SandboxAppParseError.notAbsoluteURI(uri)
        }
        guard components.fragment == nil else { throw SandboxAppParseError.fragment(uri) }
        self.init(clientID: id, clientSecret: secret, redirectURI: uri)
    }
}

/// Why an `--app` value was refused; the text says what was expected.
public enum SandboxAppParseError: Error, Equatable, CustomStringConvertible {
    case shape(String)
    case empty(part: String, String)
    case whitespace(part: String, String)
    case notAbsoluteURI(String)
    case fragment(String)

    public var description: String {
        let expected = "expected CLIENT_ID:CLIENT_SECRET:REDIRECT_URI, e.g. 3458764513820540928:my-secret:http://127.0.0.1:8765/callback"
        switch self {
        case .shape(let text):
            return "--app \"\(text)\": \(expected)"
        case .empty(let part, let text):
            return "--app \"\(text)\": \(part) is empty; \(expected)"
        case .whitespace(let part, let text):
            return "--app \"\(text)\": \(part) contains white space or control characters"
        case .notAbsoluteURI(let uri):
            return "--app: the redirect URI \"\(uri)\" is not an absolute URI (scheme://host/path, RFC 6749 §3.1.2)"
        case .fragment(let uri):
            return "--app: the redirect URI \"\(uri)\" has a fragment (#…), which RFC 6749 §3.1.2 forbids"
        }
    }
}

/// What a sandbox serves and how its clock and limits behave. Times are seconds.
public struct SandboxConfiguration: Sendable {
    /// Listen address (an IP literal or host name).
    public var host = "127.0.0.1"
    /// Listen port; 0 picks a free one (`SandboxServer.start()` returns it).
    public var port = 0
    /// Registered apps; the demo app by default.
    public var apps: [SandboxApp] = [.demo]
    /// Authorization code lifetime (Miro: 10 minutes, documented).
    public var codeTTL: Double = 600
    /// Access token lifetime, also the token response's `expires_in` (Miro: 3599, documented).
    public var accessTTL: Double = 3599
    /// Refresh token lifetime (Miro: 60 days, documented).
    public var refreshTTL: Double = 60 * 86_400
    /// Added to the wall clock (seconds; negative moves it back). `POST /__sandbox/advance` adds more.
    public var clockOffset: Double = 0
    /// REST requests allowed per minute (a window opening with the first request) for one user of one app before `429 tooManyRequests`.
    /// Miro counts 100,000 credits per minute per user per app (documented); the sandbox counts each
    /// request as one credit (assumption: real costs vary by endpoint).
    public var rateBudget: Int = 100_000

    public init() {}
}
