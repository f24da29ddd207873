import CertificateAuthority
import Foundation
import TokentapCore

/// A `HOST:PORT` listen or target address. IPv6 literals are written in brackets (`[::1]:8877`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal, without brackets.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[V6]:PORT`, or (with `defaultPort`) a bare host.
    /// - Throws: `ConfigurationError.invalid` with a message naming the expected form.
    public init(parsing text: String, option: String, defaultPort: Int? = nil) throws {
        let bad = ConfigurationError.invalid(option: option, value: text, expected: "HOST:PORT, e.g. 127.0.0.1:8877 or [::1]:8877")
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { portText = nil } else {
                guard rest.hasPrefix(":") else { throw bad }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw bad }  // an unbracketed IPv6 literal is ambiguous
        } else {
            host = Substring(text)
            portText = nil
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else { throw bad }
        let port: Int
        if let portText {
            guard let p = Int(portText), (0...65535).contains(p) else { throw bad }
            port = p
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw bad
        }
        self.host = String(host).lowercased()
        self.port = port
    }

    /// `host:port`, bracketing IPv6 literals.
    public var description: String { hostPortText(host, port) }
}

/// A host pattern for `--intercept`: an exact name (`miro.com`), a wildcard (`*.miro.com`, any
/// depth of subdomain), or `*` for every host. Compared case-insensitively.
public struct HostPattern: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String

    /// - Throws: `ConfigurationError.invalid` when the pattern is empty or has a `*` elsewhere than the front.
    public init(parsing text: String) throws {
        let lower = text.lowercased()
        let body = lower.hasPrefix("*.") ? String(lower.dropFirst(2)) : lower
        guard lower == "*" || (!body.isEmpty && !body.contains("*") && !body.contains("/")
            && body.allSatisfy({ $0.isLetter || $0.isNumber || "-.:[]".contains($0) })) else {
            throw ConfigurationError.invalid(option: "--intercept", value: text, expected: "a host name, *.domain or *")
        }
        pattern = lower
    }

    public func matches(_ host: String) -> Bool {
        hostMatches(host, pattern: pattern)
    }

    public var description: String { pattern }

    /// The defaults every proxy intercepts: `miro.com`, `*.miro.com`.
    public static let defaults: [HostPattern] = [try! HostPattern(parsing: "miro.com"), try! HostPattern(parsing: "*.miro.com")]

    /// The name-constraint subtree (RFC 5280 §4.2.1.10) holding every host this pattern matches:
    /// `example.com` and `*.example.com` → the DNS subtree `example.com` (a dNSName constraint covers
    /// the domain and its subdomains); an IP literal → that one address; nil for `*`, which no
    /// name constraint can permit.
    public var permittedSubtree: PermittedNames.Subtree? {
        if pattern == "*" { return nil }
        let body = pattern.hasPrefix("*.") ? String(pattern.dropFirst(2)) : pattern
        if let ip = IPAddress(body) { return .ip(IPRange(address: ip, prefixLength: ip.bytes.count * 8)!) }
        return .dns(body)
    }

    /// The pattern as a shell argument: quoted when it holds a `*`.
    public var shellQuoted: String { pattern.contains("*") ? "'\(pattern)'" : pattern }
}

/// Whether a CA can sign leaves that clients accept for every host a configuration intercepts.
public enum InterceptCoverage: Sendable, Equatable {
    /// Every intercepted host is inside the CA's name constraints (or the CA has none).
    case covered
    /// `*` is intercepted, and the CA is name-constrained: no constraint permits every name.
    case unconstrainable
    /// These `--intercept` patterns match hosts outside the CA's name constraints.
    case outside([HostPattern])
}

extension ProxyConfiguration {
    /// Checks the intercept patterns in force against a CA's layout: a constrained CA must permit
    /// every host they match; an unconstrained or self-signed CA (before name constraints) permits all.
    public func coverage(by layout: CertificateAuthority.Layout) -> InterceptCoverage {
        guard case .constrained(let permitted) = layout else { return .covered }
        let subtrees = interceptPatterns.map { ($0, $0.permittedSubtree) }
        if subtrees.contains(where: { $0.1 == nil }) { return .unconstrainable }
        let outside = subtrees.filter { !permitted.covers($0.1!) }.map(\.0)
        return outside.isEmpty ? .covered : .outside(outside)
    }

    /// The names a CA issued for this configuration permits: the baseline plus one subtree per
    /// `--intercept` pattern (`*` adds none: it cannot be constrained).
    public var permittedNames: PermittedNames {
        PermittedNames.tokentap(adding: intercept.compactMap(\.permittedSubtree))
    }
}

/// `--map-remote HOST[:PORT]=ADDR:PORT`: connect to ADDR:PORT instead of HOST, keeping SNI, the
/// Host header and certificate verification for HOST.
public struct MapRemoteRule: Sendable, Hashable {
    public var host: String
    /// nil: any port of `host`.
    public var port: Int?
    public var target: HostPort

    /// - Throws: `ConfigurationError.invalid` naming the expected form.
    public init(parsing text: String) throws {
        let expected = "HOST[:PORT]=ADDR:PORT, e.g. api.miro.com=127.0.0.1:9443"
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ConfigurationError.invalid(option: "--map-remote", value: text, expected: expected)
        }
        do {
            target = try HostPort(parsing: String(parts[1]), option: "--map-remote")
            let source = try HostPort(parsing: String(parts[0]), option: "--map-remote", defaultPort: -1)
            host = source.host
            port = source.port == -1 ? nil : source.port
        } catch {
            throw ConfigurationError.invalid(option: "--map-remote", value: text, expected: expected)
        }
    }

    public func applies(to host: String, port: Int) -> Bool {
        self.host == host.lowercased() && (self.port == nil || self.port == port)
    }
}

/// Everything `tokentap proxy` is configured with (design.md, "Command line").
public struct ProxyConfiguration: Sendable {
    public var listen = HostPort(host: "127.0.0.1", port: 8877)
    /// Patterns intercepted in addition to `HostPattern.defaults`.
    public var intercept: [HostPattern] = []
    public var mapRemote: [MapRemoteRule] = []
    /// Extra PEM files trusted for upstream TLS, on top of the system trust store.
    public var upstreamCAs: [String] = []
    /// Session name recorded on every exchange.
    public var session: String = "default"
    /// Bytes of each body kept in a capture (1 MiB by default).
    public var maxBody: Int = 1 << 20
    /// Upstream connect / response-head timeout, seconds (30 by default).
    public var upstreamTimeout: Double = 30
    /// A client connection idle longer than this is closed, seconds (60 by default).
    public var clientTimeout: Double = 60
    /// Skip upstream certificate verification (`--insecure-upstream`).
    public var insecureUpstream = false

    public init() {}

    /// All patterns in force: the defaults plus `intercept`.
    public var interceptPatterns: [HostPattern] { HostPattern.defaults + intercept }

    public func intercepts(_ host: String) -> Bool { interceptPatterns.contains { $0.matches(host) } }

    /// Whether a plain-proxy (absolute-form) request is recorded as an exchange: one to an
    /// intercepted host, or one in plain HTTP to a loopback host (the app's OAuth callback, which
    /// `tokentap browser` sends through the proxy). Other hosts are forwarded unrecorded.
    public func records(scheme: String, host: String) -> Bool {
        intercepts(host) || (scheme == "http" && isLoopbackHost(host))
    }

    /// Where to connect for `host:port`: a `--map-remote` target, or the host itself.
    public func connectTarget(host: String, port: Int) -> HostPort {
        mapRemote.first { $0.applies(to: host, port: port) }?.target ?? HostPort(host: host, port: port)
    }
}

/// A bad option value; the message says which option, what was given and what is expected.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case invalid(option: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .invalid(let option, let value, let expected):
            return "invalid value '\(value)' for \(option): expected \(expected)"
        }
    }
}
