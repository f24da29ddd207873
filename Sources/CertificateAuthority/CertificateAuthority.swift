import Crypto
import Foundation
import SwiftASN1
import Synchronization
import TokentapCore
import X509

/// tokentap's own certificate authority: creates or loads the CA certificate and key, and mints
/// leaf certificates for intercepted hosts (design.md, "Certificates").
///
/// The CA is ECDSA P-256, valid 10 years, backdated 2 days, `CA:true` (critical),
/// keyCertSign|cRLSign (critical), with a subject key identifier (RFC 5280 §4.2.1.2).
/// Leaves share one process-wide P-256 key, carry SAN = the host name or IP address, EKU serverAuth,
/// AKI = the CA's SKI, and live at most 199 days (Chromium's 200-day cap), backdated 1 day.
/// Minted leaves are cached by name and re-minted when fewer than 7 days remain.
///
/// Thread-safe: `leaf(for:)` may be called from any event loop at once.
public final class CertificateAuthority: Sendable {
    /// The CA certificate.
    public let certificate: Certificate
    /// The CA certificate, PEM.
    public let certificatePEM: String
    /// Where the CA certificate lives on disk (nil for an in-memory CA).
    public let certificateURL: URL?
    /// The CA key's raw representation (swift-crypto's keys are not `Sendable`; bytes are).
    private let privateKeyBytes: Data
    private let leafPublicKey: Certificate.PublicKey
    /// The process-wide leaf private key (PKCS#8 PEM), for TLS servers.
    public let leafPrivateKeyPEM: String
    private let cache = Mutex<[String: IssuedLeaf]>([:])
    /// Leaf lifetime in seconds (199 days).
    public static let leafLifetime: TimeInterval = 199 * 86_400
    /// Leaves are re-minted when they have less than this left (7 days).
    public static let leafRenewalMargin: TimeInterval = 7 * 86_400

    /// A CA held in memory only (tests, the sandbox's throwaway uses).
    public init(certificate: Certificate, privateKey: P256.Signing.PrivateKey, certificateURL: URL? = nil) throws {
        self.certificate = certificate
        self.privateKeyBytes = privateKey.rawRepresentation
        self.certificatePEM = try certificate.serializeAsPEM().pemString
        self.certificateURL = certificateURL
        let leafKey = P256.Signing.PrivateKey()
        self.leafPublicKey = Certificate.PublicKey(leafKey.publicKey)
        self.leafPrivateKeyPEM = leafKey.pemRepresentation
    }

    /// Creates a new self-signed CA certificate and key with the properties listed above.
    /// - Parameters:
    ///   - commonName: the subject CN (`tokentap CA`).
    ///   - now: issue time; the certificate is valid from `now - 2 days` to `now + 10 years`.
    public static func makeCA(commonName: String, now: Date = Date()) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let name = try DistinguishedName {
            CommonName(commonName)
            OrganizationName("tokentap")
            OrganizationalUnitName("local debugging proxy; never trust on shared machines")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        let cert = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-2 * 86_400),
            notValidAfter: now.addingTimeInterval(10 * 365.25 * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return (cert, key)
    }

    /// Loads the CA from `certificateURL` + `keyURL`, or creates both when neither exists.
    ///
    /// Files are written atomically; the key with mode 0600. An existing CA is never replaced
    /// silently: a missing half, an unreadable or corrupt file, or a key that does not match the
    /// certificate throws `CertificateAuthorityError` naming the file and the fix, unless `reissue`
    /// is true, which writes a new CA over the old one.
    ///
    /// - Returns: the CA and whether it was created by this call.
    public static func loadOrCreate(certificateURL: URL, keyURL: URL, commonName: String = "tokentap CA",
                                    reissue: Bool = false, now: Date = Date()) throws -> (CertificateAuthority, created: Bool) {
        let fm = FileManager.default
        let haveCert = fm.fileExists(atPath: certificateURL.path)
        let haveKey = fm.fileExists(atPath: keyURL.path)
        if !reissue && (haveCert || haveKey) {
            guard haveCert else { throw CertificateAuthorityError.missingHalf(present: keyURL.path, missing: certificateURL.path) }
            guard haveKey else { throw CertificateAuthorityError.missingHalf(present: certificateURL.path, missing: keyURL.path) }
            return (try load(certificateURL: certificateURL, keyURL: keyURL), false)
        }
        let (cert, key) = try makeCA(commonName: commonName, now: now)
        let pem = try cert.serializeAsPEM().pemString
        // Key first: a crash between the two writes leaves a key without certificate, which the next
        // start reports instead of silently pairing a new certificate with it.
        try FileSystem.writeAtomically(Data(key.pemRepresentation.utf8), to: keyURL, mode: 0o600)
        try FileSystem.writeAtomically(Data((pem + "\n").utf8), to: certificateURL, mode: 0o644)
        return (try CertificateAuthority(certificate: cert, privateKey: key, certificateURL: certificateURL), true)
    }

    /// Loads an existing CA; throws `CertificateAuthorityError` naming the bad file.
    public static func load(certificateURL: URL, keyURL: URL) throws -> CertificateAuthority {
        let certificate: Certificate
        do {
            let text = try String(contentsOf: certificateURL, encoding: .utf8)
            certificate = try Certificate(pemEncoded: text)
        } catch {
            throw CertificateAuthorityError.corrupt(path: certificateURL.path, reason: String(describing: error))
        }
        let key: P256.Signing.PrivateKey
        do {
            let text = try String(contentsOf: keyURL, encoding: .utf8)
            key = try P256.Signing.PrivateKey(pemRepresentation: text)
        } catch {
            throw CertificateAuthorityError.corrupt(path: keyURL.path, reason: String(describing: error))
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw CertificateAuthorityError.mismatch(certificate: certificateURL.path, key: keyURL.path)
        }
        if let mode = FileSystem.mode(of: keyURL.path), mode & 0o077 != 0 {
            throw CertificateAuthorityError.keyTooOpen(path: keyURL.path, mode: mode)
        }
        return try CertificateAuthority(certificate: certificate, privateKey: key, certificateURL: certificateURL)
    }

    /// The leaf for `host` (a DNS name or an IPv4/IPv6 literal), minted on first use and cached.
    /// Concurrent callers asking for the same name get the same leaf.
    /// - Parameter now: the time used for validity and renewal decisions.
    public func leaf(for host: String, now: Date = Date()) throws -> IssuedLeaf {
        let name = host.lowercased()
        return try cache.withLock { cache in
            if let cached = cached(cache[name], now: now) { return cached }
            let minted = try mint(name: name, now: now)
            cache[name] = minted
            return minted
        }
    }

    private func cached(_ leaf: IssuedLeaf?, now: Date) -> IssuedLeaf? {
        guard let leaf, leaf.notValidAfter.timeIntervalSince(now) > Self.leafRenewalMargin else { return nil }
        return leaf
    }

    /// Mints a new leaf without caching.
    public func mint(name: String, now: Date = Date()) throws -> IssuedLeaf {
        let san: GeneralName
        if let ip = IPAddress(name) {
            san = .ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip.bytes)))
        } else {
            san = .dnsName(name)
        }
        let subject = try DistinguishedName {
            CommonName(String(name.prefix(64)))
            OrganizationName("tokentap")
        }
        let issuerSKI = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let notAfter = now.addingTimeInterval(Self.leafLifetime - 86_400)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames([san])
            AuthorityKeyIdentifier(keyIdentifier: issuerSKI)
        }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: leafPublicKey,
            notValidBefore: now.addingTimeInterval(-86_400),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(try P256.Signing.PrivateKey(rawRepresentation: privateKeyBytes))
        )
        var serializer = DER.Serializer()
        try serializer.serialize(leaf)
        return IssuedLeaf(name: name, certificate: leaf, derBytes: serializer.serializedBytes, notValidAfter: notAfter)
    }
}

/// A minted leaf certificate. The private key is the CA's process-wide leaf key
/// (`CertificateAuthority.leafPrivateKeyPEM`).
public struct IssuedLeaf: Sendable, Hashable {
    /// The lower-cased name it was minted for.
    public let name: String
    public let certificate: Certificate
    /// DER encoding of `certificate`.
    public let derBytes: [UInt8]
    public let notValidAfter: Date
}

/// Why the CA could not be loaded; each message names the file and the fix.
public enum CertificateAuthorityError: Error, CustomStringConvertible, Equatable {
    case corrupt(path: String, reason: String)
    case mismatch(certificate: String, key: String)
    case missingHalf(present: String, missing: String)
    case keyTooOpen(path: String, mode: mode_t)

    public var description: String {
        let reissue = "run `tokentap ca --reissue` to create a new CA (every client that trusted the old one must then trust the new one)"
        switch self {
        case .corrupt(let path, let reason):
            return "cannot read the CA file \(path) (\(reason)): restore it from a backup, or \(reissue)"
        case .mismatch(let certificate, let key):
            return "the CA key \(key) does not match the certificate \(certificate): restore the matching pair, or \(reissue)"
        case .missingHalf(let present, let missing):
            return "\(missing) is missing but \(present) exists: restore the missing file, or \(reissue)"
        case .keyTooOpen(let path, let mode):
            return "the CA key \(path) has mode \(String(mode, radix: 8)); it must be readable by you alone: chmod 600 \(path)"
        }
    }
}

/// An IPv4 or IPv6 address literal (brackets allowed), parsed with `inet_pton`.
public struct IPAddress: Sendable, Hashable {
    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var literal = text
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }
}
