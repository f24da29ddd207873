#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A host as written in a URL authority (RFC 3986 §3.2.2): an IPv6 literal in brackets (`[::1]`),
/// anything else as is (`api.miro.com`, `127.0.0.1`).
public func hostText(_ host: String) -> String {
    host.contains(":") ? "[\(host)]" : host
}

/// `host:port` as written in a URL authority or a CONNECT target, the host as ``hostText(_:)``
/// writes it: `[::1]:8877`, `api.miro.com:443`. The one `[v6]:port` formatter (the `listening on`
/// line, client addresses, `--map-remote` targets, tunnel rows, exports).
public func hostPortText(_ host: String, _ port: Int) -> String {
    "\(hostText(host)):\(port)"
}

/// Whether `host` matches a host pattern (compared case-insensitively): `*` matches every host,
/// `*.example.com` every subdomain of example.com at any depth (not example.com itself), anything
/// else that exact name. The one `*.domain` matcher (`--intercept` patterns, provider profiles'
/// hosts).
public func hostMatches(_ host: String, pattern: String) -> Bool {
    let host = host.lowercased(), pattern = pattern.lowercased()
    if pattern == "*" { return true }
    if pattern.hasPrefix("*.") { return host.hasSuffix(String(pattern.dropFirst(1))) }
    return host == pattern
}

/// The 4 (IPv4) or 16 (IPv6) bytes, network order, of an IP address literal (an IPv6 one may be
/// in brackets); `nil` when `text` is not one (`inet_pton`, POSIX).
public func ipAddressBytes(_ text: String) -> [UInt8]? {
    var literal = text
    if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
    var v4 = in_addr()
    if inet_pton(AF_INET, literal, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, literal, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
    return nil
}

/// Whether `host` names this machine: `localhost` and its subdomains (RFC 6761 §6.3), 127.0.0.0/8,
/// `::1` and IPv4-mapped `::ffff:127.x.y.z`, in any spelling (brackets, a trailing dot, any case).
/// The one loopback test: `--listen` without `--allow-remote`, plain-HTTP callbacks the proxy
/// records, and the diagnosis's loopback redirect URIs (RFC 8252 §7.3).
public func isLoopbackHost(_ host: String) -> Bool {
    var h = host.lowercased()
    if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
    if h.hasSuffix(".") { h = String(h.dropLast()) }
    if h == "localhost" || h.hasSuffix(".localhost") { return true }
    guard let b = ipAddressBytes(h) else { return false }
    if b.count == 4 { return b[0] == 127 }
    if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }  // ::1
    // ::ffff:127.x.y.z (an IPv4-mapped loopback address)
    return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff && b[12] == 127
}
