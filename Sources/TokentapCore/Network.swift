/// `host:port` as written in a URL authority or a CONNECT target: an IPv6 literal goes in
/// brackets (`[::1]:8877`, RFC 3986 §3.2.2), anything else as is (`api.miro.com:443`).
public func hostPortText(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}
