import Foundation
import SwiftASN1
import X509

/// The names a name-constrained tokentap CA may certify: the permitted subtrees of its critical
/// Name Constraints extension (RFC 5280 §4.2.1.10).
///
/// Two name forms are used: dNSName subtrees (a domain permits itself and every name made by adding
/// labels on the left, so `miro.com` covers `api.miro.com`) and iPAddress subtrees (an address and
/// a prefix length). Leaves carry every name they certify in their subjectAltName; a client that
/// enforces name constraints rejects a leaf with a name outside these subtrees, whoever minted it.
public struct PermittedNames: Sendable, Hashable, CustomStringConvertible {
    /// One permitted subtree.
    public enum Subtree: Sendable, Hashable, CustomStringConvertible {
        /// A DNS domain, lower-cased, without a leading dot: the domain and all its subdomains.
        case dns(String)
        /// An IP range.
        case ip(IPRange)

        /// `example.com`, `127.0.0.0/8`, `::1/128`.
        public var description: String {
            switch self {
            case .dns(let domain): return domain
            case .ip(let range): return range.description
            }
        }
    }

    /// The subtrees, DNS domains first (in the order given, duplicates and domains inside another
    /// removed), then IP ranges.
    public let subtrees: [Subtree]

    /// The DNS domains among `subtrees`.
    public var dnsDomains: [String] { subtrees.compactMap { if case .dns(let d) = $0 { return d } else { return nil } } }
    /// The IP ranges among `subtrees`.
    public var ipRanges: [IPRange] { subtrees.compactMap { if case .ip(let r) = $0 { return r } else { return nil } } }

    /// Subtrees as given, normalized: DNS domains lower-cased with any leading or trailing dot
    /// removed; a subtree inside another one (`auth.example.com` beside `example.com`, `127.0.0.1/32`
    /// beside `127.0.0.0/8`) and duplicates are dropped.
    public init(_ subtrees: some Sequence<Subtree>) {
        var normalized: [Subtree] = []
        for subtree in subtrees {
            let subtree: Subtree = switch subtree {
            case .dns(let domain): .dns(Self.normalize(domain))
            case .ip: subtree
            }
            if case .dns(let d) = subtree, d.isEmpty { continue }
            if normalized.contains(where: { Self.contains($0, subtree) }) { continue }
            normalized.removeAll { Self.contains(subtree, $0) }
            normalized.append(subtree)
        }
        let dns = normalized.filter { if case .dns = $0 { true } else { false } }
        let ips = normalized.filter { if case .ip = $0 { true } else { false } }
        self.subtrees = dns + ips
    }

    /// The subtrees every constrained tokentap CA permits, whatever is intercepted: `miro.com` (the
    /// default intercepts `miro.com` and `*.miro.com`), `localhost`, 127.0.0.0/8 and ::1/128.
    public static let baseline: [Subtree] = [
        .dns("miro.com"), .dns("localhost"),
        .ip(IPRange(address: IPAddress("127.0.0.0")!, prefixLength: 8)!),
        .ip(IPRange(address: IPAddress("::1")!, prefixLength: 128)!),
    ]

    /// The baseline plus `extra` (one subtree per `--intercept` pattern in force).
    public static func tokentap(adding extra: [Subtree]) -> PermittedNames {
        PermittedNames(Array(baseline.prefix(1)) + extra + Array(baseline.dropFirst()))
    }

    /// Whether a leaf certifying `host` (a DNS name, or an IPv4/IPv6 literal, brackets allowed)
    /// falls inside these subtrees.
    public func permits(host: String) -> Bool {
        if let ip = IPAddress(host) { return covers(.ip(IPRange(address: ip, prefixLength: ip.bytes.count * 8)!)) }
        return covers(.dns(host))
    }

    /// Whether every name in `subtree` falls inside one of these subtrees.
    public func covers(_ subtree: Subtree) -> Bool {
        let subtree: Subtree = if case .dns(let d) = subtree { .dns(Self.normalize(d)) } else { subtree }
        return subtrees.contains { Self.contains($0, subtree) }
    }

    /// `miro.com, localhost, 127.0.0.0/8, ::1/128`.
    public var description: String { subtrees.map(\.description).joined(separator: ", ") }

    /// The extension value: these subtrees permitted, nothing excluded.
    public var nameConstraints: NameConstraints {
        NameConstraints(permittedDNSDomains: dnsDomains,
                        permittedIPRanges: ipRanges.map { ASN1OctetString(contentBytes: ArraySlice($0.octets)) })
    }

    /// The permitted names of an extension tokentap wrote: nil when it excludes subtrees or
    /// constrains other name forms (tokentap never writes such an extension).
    public init?(_ constraints: NameConstraints) {
        guard constraints.excludedSubtrees.isEmpty, !constraints.permittedSubtrees.isEmpty else { return nil }
        var subtrees: [Subtree] = []
        for name in constraints.permittedSubtrees {
            switch name {
            case .dnsName(let domain): subtrees.append(.dns(domain))
            case .ipAddress(let octets):
                guard let range = IPRange(octets: Array(octets.bytes)) else { return nil }
                subtrees.append(.ip(range))
            default: return nil
            }
        }
        self.init(subtrees)
    }

    /// Whether `outer` contains every name of `inner` (RFC 5280 §4.2.1.10 dNSName matching:
    /// equal, or `inner` ends with `.` + `outer`).
    private static func contains(_ outer: Subtree, _ inner: Subtree) -> Bool {
        switch (outer, inner) {
        case (.dns(let o), .dns(let i)): return i == o || i.hasSuffix("." + o)
        case (.ip(let o), .ip(let i)): return o.contains(i)
        default: return false
        }
    }

    private static func normalize(_ domain: String) -> String {
        var d = Substring(domain.lowercased())
        while d.hasPrefix(".") { d = d.dropFirst() }
        while d.hasSuffix(".") { d = d.dropLast() }
        return String(d)
    }
}

/// An IP address range: an address and a prefix length (RFC 5280 §4.2.1.10 encodes it as the
/// address followed by its mask, 8 octets for IPv4, 32 for IPv6).
public struct IPRange: Sendable, Hashable, CustomStringConvertible {
    /// The network address (bits past the prefix are zero), 4 or 16 bytes.
    public let network: [UInt8]
    /// Prefix length in bits: 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int

    /// - Returns: nil when `prefixLength` is out of range for the address family.
    public init?(address: IPAddress, prefixLength: Int) {
        guard (0...(address.bytes.count * 8)).contains(prefixLength) else { return nil }
        self.prefixLength = prefixLength
        self.network = Self.masked(address.bytes, Self.mask(bytes: address.bytes.count, prefixLength: prefixLength))
    }

    /// Decodes address + mask octets; nil unless 8 or 32 octets with a contiguous mask.
    public init?(octets: [UInt8]) {
        guard octets.count == 8 || octets.count == 32 else { return nil }
        let half = octets.count / 2
        let mask = Array(octets[half...])
        var length = 0
        for byte in mask { length += byte.nonzeroBitCount }
        guard mask == Self.mask(bytes: half, prefixLength: length) else { return nil }
        self.prefixLength = length
        self.network = Self.masked(Array(octets[..<half]), mask)
    }

    /// Address followed by mask, as the iPAddress subtree carries it.
    public var octets: [UInt8] { network + Self.mask(bytes: network.count, prefixLength: prefixLength) }

    /// Whether every address of `other` lies in this range (same family only).
    public func contains(_ other: IPRange) -> Bool {
        guard other.network.count == network.count, other.prefixLength >= prefixLength else { return false }
        return Self.masked(other.network, Self.mask(bytes: network.count, prefixLength: prefixLength)) == network
    }

    /// `127.0.0.0/8`, `::1/128`.
    public var description: String { "\(IPAddress(bytes: network).description)/\(prefixLength)" }

    private static func mask(bytes: Int, prefixLength: Int) -> [UInt8] {
        (0..<bytes).map { index in
            let bits = max(0, min(8, prefixLength - index * 8))
            return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }

    private static func masked(_ address: [UInt8], _ mask: [UInt8]) -> [UInt8] {
        zip(address, mask).map { $0 & $1 }
    }
}
