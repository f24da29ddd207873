import Foundation
import TokentapCore

/// A failure the proxy itself reported for an exchange: it could not reach the upstream, the
/// upstream did not answer in time, the upstream TLS handshake failed, or the upstream's response
/// was malformed or cut short (oauth-rules.md, "The rest": `upstream-unreachable`,
/// `upstream-timeout`, `upstream-tls-failed`, `upstream-response-invalid`).
///
/// The cases are design.md's `error_kind` values. Until recordings carry `error_kind` (the
/// bad-upstreams issue), ``classify(_:)`` recognises the failure from the stored status and
/// `error` text; it is the one place that reads that text, so a typed `error_kind` replaces it
/// without touching the rules.
public enum UpstreamFailure: String, Sendable, Hashable, CaseIterable, Codable {
    /// No connection (refused, DNS, reset before any response): the proxy answered 502.
    case connect
    /// The upstream TLS handshake failed (unknown CA, wrong name, expired): the proxy answered 502.
    case tls
    /// No response head within `--upstream-timeout` (or the connect/TLS timeout): the proxy answered 504.
    case timeout
    /// A response head arrived, then the upstream closed or failed before the response completed.
    case truncated
    /// The upstream's response could not be parsed as HTTP/1.1: the proxy answered 502.
    case malformed

    /// The catalog rule that names this failure.
    public var rule: String {
        switch self {
        case .connect: return "upstream-unreachable"
        case .timeout: return "upstream-timeout"
        case .tls: return "upstream-tls-failed"
        case .truncated, .malformed: return "upstream-response-invalid"
        }
    }

    /// The proxy-side failure of `exchange`, or nil when the provider's answer (if any) is what was
    /// recorded. Only `http` rows are considered; a client that went away (`client closed the
    /// connection …`) and a HAR entry without a response are not proxy-side failures.
    ///
    /// A response the proxy wrote itself is a 502/504 with `error` set (and, from tokentap's relay,
    /// the header `X-Tokentap-Error: upstream`); a truncated response keeps the upstream's status
    /// and has an `error` naming the upstream.
    public static func classify(_ exchange: Exchange) -> UpstreamFailure? {
        guard exchange.kind == .http, let error = exchange.error, !error.isEmpty else { return nil }
        let text = error.lowercased()
        let proxyAnswered = exchange.response.headers.first(named: "X-Tokentap-Error") != nil
            || exchange.status == 502 || exchange.status == 504
        guard proxyAnswered else {
            // The upstream's own head was relayed, then the response broke off.
            return exchange.status != nil && text.contains("upstream") ? .truncated : nil
        }
        if exchange.status == 504 || ["timeout", "timed out", "in time"].contains(where: text.contains) { return .timeout }
        if ["tls", "ssl", "certificate", "handshake"].contains(where: text.contains) { return .tls }
        if ["invalid", "malformed", "parse", "unexpected", "chunk", "content-length"].contains(where: text.contains) { return .malformed }
        return .connect
    }
}
