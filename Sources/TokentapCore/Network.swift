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
