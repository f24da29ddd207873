import CertificateAuthority
import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// TLS contexts for both ends of an intercepted connection.
///
/// - Client side: one `NIOSSLContext` per intercepted host name, serving a leaf minted by the
///   `CertificateAuthority` followed by the CA's chain (intermediate, then root: clients that trust
///   the root, or only its SPKI hash as Chromium's `--ignore-certificate-errors-spki-list` does,
///   get every certificate they need); ALPN offers `http/1.1` only. When a client's SNI names another host than
///   its CONNECT request, `sslContextCallback` answers with a leaf for the SNI name.
/// - Upstream side: one shared client context verifying against the system trust store plus every
///   `--upstream-ca` (or nothing at all with `--insecure-upstream`).
public final class TLSProvider: Sendable {
    public let authority: CertificateAuthority
    private let leafKey: NIOSSLPrivateKey
    /// The CA's certificates sent after each leaf (`CertificateAuthority.chainDER`).
    private let chain: [NIOSSLCertificateSource]
    private let serverContexts = Mutex<[String: (serial: [UInt8], context: NIOSSLContext)]>([:])
    /// The context for upstream connections.
    public let upstreamContext: NIOSSLContext

    /// - Throws: `NIOSSLError` when an `--upstream-ca` file cannot be loaded.
    public init(authority: CertificateAuthority, upstreamCAs: [String], insecureUpstream: Bool) throws {
        self.authority = authority
        self.leafKey = try NIOSSLPrivateKey(bytes: Array(authority.leafPrivateKeyPEM.utf8), format: .pem)
        self.chain = try authority.chainDER.map { .certificate(try NIOSSLCertificate(bytes: $0, format: .der)) }
        var client = TLSConfiguration.makeClientConfiguration()
        client.applicationProtocols = ["http/1.1"]
        if insecureUpstream {
            client.certificateVerification = .none
        } else {
            client.trustRoots = .default
            client.additionalTrustRoots = try upstreamCAs.map { path in
                .certificates(try NIOSSLCertificate.fromPEMFile(path))
            }
        }
        upstreamContext = try NIOSSLContext(configuration: client)
    }

    /// The server context presenting a leaf for `host`, minted on first use.
    public func serverContext(for host: String) throws -> NIOSSLContext {
        let leaf = try authority.leaf(for: host)
        let serial = Array(leaf.derBytes.suffix(32))
        if let cached = serverContexts.withLock({ $0[leaf.name] }), cached.serial == serial { return cached.context }
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: leaf.derBytes, format: .der))] + chain,
            privateKey: .privateKey(leafKey)
        )
        config.applicationProtocols = ["http/1.1"]
        let connectHost = leaf.name
        let chain = self.chain
        config.sslContextCallback = { [weak self] values, promise in
            guard let self, let sni = values.serverHostname?.lowercased(), sni != connectHost else {
                promise.succeed(NIOSSLContextConfigurationOverride())
                return
            }
            do {
                let sniLeaf = try self.authority.leaf(for: sni)
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = [.certificate(try NIOSSLCertificate(bytes: sniLeaf.derBytes, format: .der))] + chain
                override.privateKey = .privateKey(self.leafKey)
                promise.succeed(override)
            } catch {
                promise.fail(error)
            }
        }
        let context = try NIOSSLContext(configuration: config)
        serverContexts.withLock { $0[leaf.name] = (serial, context) }
        return context
    }
}
