import Foundation
import TokentapCore

/// A failure the proxy itself reported for an exchange: it could not reach the upstream, the
/// upstream did not answer in time, the upstream TLS handshake failed, or the upstream's response
/// was malformed or cut short (oauth-rules.md, "The rest": `upstream-unreachable`,
/// `upstream-timeout`, `upstream-tls-failed`, `upstream-response-invalid`).
///
/// It is the recorded ``ErrorKind`` (design.md `error_kind`), set by the proxy where the failure
/// happened: no text is read.
public typealias UpstreamFailure = ErrorKind

extension ErrorKind {
    /// The catalog rule that names this failure of an upstream.
    public var rule: String {
        switch self {
        case .connect: return "upstream-unreachable"
        case .timeout: return "upstream-timeout"
        case .tls: return "upstream-tls-failed"
        case .truncated, .malformed: return "upstream-response-invalid"
        }
    }

    /// The proxy-side failure of `exchange`, or nil when the provider's answer (if any) is what was
    /// recorded: the row's ``Exchange/errorKind`` on `http` rows. A client that went away and a HAR
    /// entry without a response carry no kind.
    public static func classify(_ exchange: Exchange) -> ErrorKind? {
        exchange.kind == .http ? exchange.errorKind : nil
    }
}
