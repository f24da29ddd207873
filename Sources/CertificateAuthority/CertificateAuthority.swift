import Crypto
import Foundation
import SwiftASN1
import Synchronization
import TokentapCore
import X509

/// A certificate authority that mints leaf certificates for intercepted hosts (design.md,
/// "Certificates").
///
/// Two shapes (`Layout`):
/// - tokentap's CA: a **root** (the certificate users trust; its private key is discarded right
///   after it signs) and, signed by it, an **intermediate** that signs the leaves. Both carry a
///   critical Name Constraints extension (RFC 5280 §4.2.1.10) permitting only the intercepted
///   domains, `localhost`, 127.0.0.0/8 and ::1/128, unless issued `--unconstrained`. Created and
///   loaded by `loadOrCreate(files:permitting:reissue:now:)`. Constraints on the intermediate are
///   what every client enforces: RFC 5280 §6 makes constraints on a trust anchor optional (Java's
///   PKIX ignores them).
/// - one self-signed CA that signs leaves itself: tokentap's CA before name constraints (still
///   loaded, `Layout.selfSigned`), the sandbox's CA, test CAs. `loadOrCreate(certificateURL:keyURL:…)`.
///
/// Every CA certificate is ECDSA P-256, valid 10 years, backdated 2 days, `CA:true` (critical),
/// keyCertSign|cRLSign (critical), with a subject key identifier (RFC 5280 §4.2.1.2).
/// Leaves share one process-wide P-256 key, carry SAN = the host name or IP address (an IP leaf has
/// an iPAddress SAN and no common name: OpenSSL checks a common name as a DNS name against name
/// constraints), EKU serverAuth, AKI = the signing certificate's SKI, and live at most 199 days
/// (Chromium's 200-day cap), backdated 1 day. Minted leaves are cached by name and re-minted when
/// fewer than 7 days remain.
///
/// Thread-safe: `leaf(for:)` may be called from any event loop at once.
public final class CertificateAuthority: Sendable {
    /// How the CA is built.
    public enum Layout: Sendable, Hashable {
        /// Root + intermediate, both with critical Name Constraints permitting these names.
        case constrained(PermittedNames)
        /// Root + intermediate without Name Constraints (`tokentap ca --reissue --unconstrained`).
        case unconstrained
        /// One self-signed CA whose key signs leaves (tokentap before name constraints, sandbox, tests).
        case selfSigned
    }

    /// Where tokentap's CA lives: the root users trust, the intermediate, and the intermediate's key.
    public struct ChainFiles: Sendable, Hashable {
        /// The root certificate, PEM (`certs/tokentap-ca.pem`).
        public var root: URL
        /// The intermediate certificate, PEM (`certs/tokentap-ca-intermediate.pem`).
        public var intermediate: URL
        /// The intermediate's private key, PKCS#8 PEM, mode 0600 (`certs/tokentap-ca-key.pem`);
        /// for a self-signed CA of before name constraints, that CA's key.
        public var key: URL

        /// The three files, usually side by side in the home's `certs/`.
        public init(root: URL, intermediate: URL, key: URL) {
            self.root = root
            self.intermediate = intermediate
            self.key = key
        }
    }

    /// The certificate that signs leaves: the intermediate, or the self-signed CA.
    public let certificate: Certificate
    /// `certificate`, PEM.
    public let certificatePEM: String
    /// The certificate clients trust: the root, or the self-signed CA (then equal to `certificate`).
    public let root: Certificate
    /// `root`, PEM, ending with a newline.
    public let rootPEM: String
    /// DER of the certificates a TLS server sends after the leaf, signer first:
    /// `[intermediate, root]`, or `[ca]` for a self-signed CA.
    public let chainDER: [[UInt8]]
    /// The shape of this CA, with its name constraints.
    public let layout: Layout
    /// Where the certificate clients trust lives on disk (nil for an in-memory CA).
    public let certificateURL: URL?
    /// The signing key's raw representation (swift-crypto's keys are not `Sendable`; bytes are).
    private let privateKeyBytes: Data
    private let leafPublicKey: Certificate.PublicKey
    /// The process-wide leaf private key (PKCS#8 PEM), for TLS servers.
    public let leafPrivateKeyPEM: String
    private let cache = Mutex<[String: IssuedLeaf]>([:])
    /// Leaf lifetime in seconds (199 days).
    public static let leafLifetime: TimeInterval = 199 * 86_400
    /// Leaves are re-minted when they have less than this left (7 days).
    public static let leafRenewalMargin: TimeInterval = 7 * 86_400
    /// CA lifetime in seconds (10 years).
    public static let caLifetime: TimeInterval = 10 * 365.25 * 86_400

    /// A self-signed CA held in memory (tests, the sandbox), or loaded from `certificateURL`.
    public convenience init(certificate: Certificate, privateKey: P256.Signing.PrivateKey, certificateURL: URL? = nil) throws {
        try self.init(signer: certificate, root: certificate, layout: .selfSigned, privateKey: privateKey,
                      certificateURL: certificateURL)
    }

    /// A root + intermediate CA; `privateKey` is the intermediate's. The layout follows the
    /// intermediate's Name Constraints extension.
    /// - Throws: `CertificateAuthorityError.unexpectedConstraints` when that extension is not one
    ///   tokentap writes (excluded subtrees, or forms other than dNSName and iPAddress);
    ///   `CertificateAuthorityError.corrupt` when it cannot be decoded.
    public convenience init(root: Certificate, intermediate: Certificate, privateKey: P256.Signing.PrivateKey,
                            certificateURL: URL? = nil, intermediateURL: URL? = nil) throws {
        let path = intermediateURL?.path ?? "the intermediate certificate"
        let constraints: NameConstraints?
        do { constraints = try intermediate.extensions.nameConstraints } catch {
            throw CertificateAuthorityError.corrupt(path: path, reason: "unreadable Name Constraints: \(error)")
        }
        let layout: Layout
        if let constraints {
            guard let permitted = PermittedNames(constraints) else {
                throw CertificateAuthorityError.unexpectedConstraints(path: path)
            }
            layout = .constrained(permitted)
        } else {
            layout = .unconstrained
        }
        try self.init(signer: intermediate, root: root, layout: layout, privateKey: privateKey, certificateURL: certificateURL)
    }

    private init(signer: Certificate, root: Certificate, layout: Layout, privateKey: P256.Signing.PrivateKey,
                 certificateURL: URL?) throws {
        self.certificate = signer
        self.root = root
        self.layout = layout
        self.privateKeyBytes = privateKey.rawRepresentation
        self.certificatePEM = try signer.serializeAsPEM().pemString
        let rootPEM = try root.serializeAsPEM().pemString
        self.rootPEM = rootPEM.hasSuffix("\n") ? rootPEM : rootPEM + "\n"
        self.chainDER = try (layout == .selfSigned ? [signer] : [signer, root]).map { try Self.der($0) }
        self.certificateURL = certificateURL
        let leafKey = P256.Signing.PrivateKey()
        self.leafPublicKey = Certificate.PublicKey(leafKey.publicKey)
        self.leafPrivateKeyPEM = leafKey.pemRepresentation
    }

    /// Creates a new self-signed CA certificate and key with the properties listed above (no name
    /// constraints): the sandbox's CA and test CAs.
    /// - Parameters:
    ///   - commonName: the subject CN (`tokentap sandbox CA`).
    ///   - now: issue time; the certificate is valid from `now - 2 days` to `now + 10 years`.
    public static func makeCA(commonName: String, now: Date = Date()) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try caName(commonName, unit: "local debugging proxy; never trust on shared machines")
        let cert = try makeCACertificate(subject: name, publicKey: Certificate.PublicKey(key.publicKey), pathLength: 0,
                                         constraints: nil, issuer: name, issuerKey: key, issuerSKI: nil, now: now)
        return (cert, key)
    }

    /// Creates tokentap's CA: a root and, signed by it, an intermediate; the root's key is not
    /// returned (it only exists inside this call).
    ///
    /// Both certificates carry `permitted` as a critical Name Constraints extension (none when
    /// nil: an unconstrained CA). The root has pathLen 1, the intermediate pathLen 0 and an
    /// authority key identifier naming the root. Subjects carry the issue time (UTC), so an old and
    /// a re-issued root are told apart in trust stores.
    /// - Returns: the root, the intermediate and the intermediate's private key.
    public static func makeChain(permitted: PermittedNames?, now: Date = Date()) throws
        -> (root: Certificate, intermediate: Certificate, key: P256.Signing.PrivateKey) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let stamp = formatter.string(from: now)
        let unit = permitted == nil
            ? "UNCONSTRAINED: signs for any name; never trust on shared machines"
            : "local debugging proxy; name-constrained; never trust on shared machines"
        let rootKey = P256.Signing.PrivateKey()
        let rootPublic = Certificate.PublicKey(rootKey.publicKey)
        let rootName = try caName("tokentap CA \(stamp) UTC", unit: unit)
        let root = try makeCACertificate(subject: rootName, publicKey: rootPublic, pathLength: 1, constraints: permitted,
                                         issuer: rootName, issuerKey: rootKey, issuerSKI: nil, now: now)
        let key = P256.Signing.PrivateKey()
        let intermediate = try makeCACertificate(
            subject: try caName("tokentap intermediate CA \(stamp) UTC", unit: unit),
            publicKey: Certificate.PublicKey(key.publicKey), pathLength: 0, constraints: permitted,
            issuer: rootName, issuerKey: rootKey, issuerSKI: SubjectKeyIdentifier(hash: rootPublic).keyIdentifier, now: now)
        return (root, intermediate, key)
    }

    private static func caName(_ commonName: String, unit: String) throws -> DistinguishedName {
        try DistinguishedName {
            CommonName(commonName)
            OrganizationName("tokentap")
            OrganizationalUnitName(unit)
        }
    }

    private static func makeCACertificate(subject: DistinguishedName, publicKey: Certificate.PublicKey, pathLength: Int,
                                          constraints: PermittedNames?, issuer: DistinguishedName,
                                          issuerKey: P256.Signing.PrivateKey, issuerSKI: ArraySlice<UInt8>?,
                                          now: Date) throws -> Certificate {
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
            if let issuerSKI { AuthorityKeyIdentifier(keyIdentifier: issuerSKI) }
            if let constraints { Critical(constraints.nameConstraints) }
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-2 * 86_400),
            notValidAfter: now.addingTimeInterval(caLifetime),
            issuer: issuer,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(issuerKey)
        )
    }

    /// Loads tokentap's CA from `files`, or creates a root + intermediate when none of the three
    /// files exists (or when `reissue`).
    ///
    /// An existing CA is never replaced silently: a missing root or key, an unreadable or corrupt
    /// file, a key that does not match its certificate, or an intermediate the root did not sign
    /// throws `CertificateAuthorityError` naming the file and the fix. A root + key pair without an
    /// intermediate file whose key matches the root is a CA of before name constraints: it loads as
    /// `Layout.selfSigned`.
    ///
    /// Files are written atomically, the key (mode 0600) first, then the intermediate, then the
    /// root: a crash in between leaves files that no longer match, which the next start reports.
    /// The root's private key is never written.
    ///
    /// - Parameters:
    ///   - permitting: the names a new CA permits (`PermittedNames.tokentap(adding:)`); nil for an
    ///     unconstrained CA. Ignored when an existing CA is loaded.
    ///   - reissue: create a new CA even when one exists, replacing all three files.
    /// - Returns: the CA and whether it was created by this call.
    public static func loadOrCreate(files: ChainFiles, permitting: PermittedNames?, reissue: Bool = false,
                                    now: Date = Date()) throws -> (CertificateAuthority, created: Bool) {
        let fm = FileManager.default
        let haveRoot = fm.fileExists(atPath: files.root.path)
        let haveIntermediate = fm.fileExists(atPath: files.intermediate.path)
        let haveKey = fm.fileExists(atPath: files.key.path)
        if !reissue && (haveRoot || haveKey || haveIntermediate) {
            guard haveRoot else {
                throw CertificateAuthorityError.missingHalf(present: (haveKey ? files.key : files.intermediate).path,
                                                            missing: files.root.path)
            }
            guard haveKey else { throw CertificateAuthorityError.missingHalf(present: files.root.path, missing: files.key.path) }
            return (try load(files: files), false)
        }
        let (root, intermediate, key) = try makeChain(permitted: permitting, now: now)
        try FileSystem.writeAtomically(Data(key.pemRepresentation.utf8), to: files.key, mode: 0o600)
        try FileSystem.writeAtomically(Data((try intermediate.serializeAsPEM().pemString + "\n").utf8),
                                       to: files.intermediate, mode: 0o644)
        try FileSystem.writeAtomically(Data((try root.serializeAsPEM().pemString + "\n").utf8), to: files.root, mode: 0o644)
        return (try CertificateAuthority(root: root, intermediate: intermediate, privateKey: key, certificateURL: files.root,
                                         intermediateURL: files.intermediate), true)
    }

    /// Loads tokentap's CA (see `loadOrCreate(files:permitting:reissue:now:)`); throws
    /// `CertificateAuthorityError` naming the bad file.
    public static func load(files: ChainFiles) throws -> CertificateAuthority {
        let root = try readCertificate(files.root)
        let key = try readKey(files.key)
        guard FileManager.default.fileExists(atPath: files.intermediate.path) else {
            // Before name constraints: one self-signed CA whose key is on disk.
            guard root.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw CertificateAuthorityError.intermediateMissing(intermediate: files.intermediate.path, key: files.key.path,
                                                                    root: files.root.path)
            }
            try checkMode(files.key)
            return try CertificateAuthority(certificate: root, privateKey: key, certificateURL: files.root)
        }
        let intermediate = try readCertificate(files.intermediate)
        guard intermediate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw CertificateAuthorityError.mismatch(certificate: files.intermediate.path, key: files.key.path)
        }
        guard intermediate.issuer == root.subject, root.publicKey.isValidSignature(intermediate.signature, for: intermediate) else {
            throw CertificateAuthorityError.notIssuedByRoot(intermediate: files.intermediate.path, root: files.root.path)
        }
        try checkMode(files.key)
        return try CertificateAuthority(root: root, intermediate: intermediate, privateKey: key, certificateURL: files.root,
                                        intermediateURL: files.intermediate)
    }

    /// Loads a self-signed CA from `certificateURL` + `keyURL`, or creates both when neither exists
    /// (the sandbox's CA).
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

    /// Loads an existing self-signed CA; throws `CertificateAuthorityError` naming the bad file.
    public static func load(certificateURL: URL, keyURL: URL) throws -> CertificateAuthority {
        let certificate = try readCertificate(certificateURL)
        let key = try readKey(keyURL)
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw CertificateAuthorityError.mismatch(certificate: certificateURL.path, key: keyURL.path)
        }
        try checkMode(keyURL)
        return try CertificateAuthority(certificate: certificate, privateKey: key, certificateURL: certificateURL)
    }

    private static func readCertificate(_ url: URL) throws -> Certificate {
        do {
            return try Certificate(pemEncoded: try String(contentsOf: url, encoding: .utf8))
        } catch {
            throw CertificateAuthorityError.corrupt(path: url.path, reason: String(describing: error))
        }
    }

    private static func readKey(_ url: URL) throws -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOf: url, encoding: .utf8))
        } catch {
            throw CertificateAuthorityError.corrupt(path: url.path, reason: String(describing: error))
        }
    }

    private static func checkMode(_ keyURL: URL) throws {
        if let mode = FileSystem.mode(of: keyURL.path), mode & 0o077 != 0 {
            throw CertificateAuthorityError.keyTooOpen(path: keyURL.path, mode: mode)
        }
    }

    private static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
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
        // No IP address in a common name: under name constraints OpenSSL checks a common name as a
        // DNS name when the leaf has no DNS SAN, and an IP is outside every permitted domain.
        let subject = try DistinguishedName {
            if IPAddress(name) == nil { CommonName(String(name.prefix(64))) }
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
        return IssuedLeaf(name: name, certificate: leaf, derBytes: try Self.der(leaf), notValidAfter: notAfter)
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
    /// A file that is not a readable PEM certificate or P-256 key.
    case corrupt(path: String, reason: String)
    /// The key does not belong to the certificate.
    case mismatch(certificate: String, key: String)
    /// One file of the CA exists, another is missing.
    case missingHalf(present: String, missing: String)
    /// The key file is readable by others than its owner.
    case keyTooOpen(path: String, mode: mode_t)
    /// There is no intermediate certificate, and the key does not match the root either: the
    /// intermediate of a name-constrained CA was deleted (or the key belongs to another CA).
    case intermediateMissing(intermediate: String, key: String, root: String)
    /// The intermediate certificate was not signed by the root beside it.
    case notIssuedByRoot(intermediate: String, root: String)
    /// The intermediate carries a Name Constraints extension tokentap does not write.
    case unexpectedConstraints(path: String)

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
        case .intermediateMissing(let intermediate, let key, let root):
            return "\(intermediate) is missing and the CA key \(key) does not match the root \(root): restore the intermediate certificate, or \(reissue)"
        case .notIssuedByRoot(let intermediate, let root):
            return "the intermediate certificate \(intermediate) was not signed by the root \(root): restore the matching files, or \(reissue)"
        case .unexpectedConstraints(let path):
            return "the intermediate certificate \(path) carries name constraints tokentap does not write: restore it from a backup, or \(reissue)"
        }
    }
}

/// An IPv4 or IPv6 address (parsed and printed with `inet_pton`/`inet_ntop`).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]

    /// Parses an address literal (IPv6 in brackets allowed); nil when `text` is not one.
    public init?(_ text: String) {
        guard let bytes = ipAddressBytes(text) else { return nil }
        self.bytes = bytes
    }

    /// An address from its 4 (IPv4) or 16 (IPv6) bytes, network order.
    /// - Precondition: `bytes.count` is 4 or 16.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 4 || bytes.count == 16, "an IP address has 4 or 16 bytes")
        self.bytes = bytes
    }

    /// `127.0.0.1`, `::1` (no brackets).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) } != nil
        guard ok else { return bytes.map(String.init).joined(separator: ".") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
