import CertificateAuthority
import Crypto
import Foundation
import Testing
import TokentapCore
import X509

/// A fresh temporary folder per test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-ca-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs a command and returns its stdout; fails the test on a non-zero exit.
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(executable) \(arguments) exited \(process.terminationStatus)")
    return String(decoding: data, as: UTF8.self)
}

@Suite("Certificate authority")
struct CertificateAuthorityTests {
    let dir: URL
    var cert: URL { dir.appendingPathComponent("tokentap-ca.pem") }
    var key: URL { dir.appendingPathComponent("tokentap-ca-key.pem") }

    init() throws { dir = try temporaryDirectory() }

    @Test("a new CA has the listed properties, a 0600 key, and is reused on the next start")
    func createdCA() throws {
        let now = Date()
        let (ca, created) = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key, now: now)
        #expect(created)
        let c = ca.certificate
        let constraints = try #require(try c.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(c.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        let usage = try #require(try c.extensions.keyUsage)
        #expect(usage.keyCertSign && usage.cRLSign && !usage.digitalSignature)
        #expect(c.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        let ski = try #require(try c.extensions.subjectKeyIdentifier)
        #expect(ski == SubjectKeyIdentifier(hash: c.publicKey))
        #expect(abs(c.notValidBefore.timeIntervalSince(now) + 2 * 86_400) < 5)
        let years = c.notValidAfter.timeIntervalSince(now) / (365.25 * 86_400)
        #expect(abs(years - 10) < 0.01)
        #expect(P256.Signing.PublicKey(c.publicKey) != nil)
        #expect(c.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(FileSystem.mode(of: key.path) == 0o600)

        // openssl agrees.
        let text = try run("/usr/bin/openssl", ["x509", "-in", cert.path, "-noout", "-text"])
        #expect(text.contains("CA:TRUE"))
        #expect(text.contains("Certificate Sign, CRL Sign"))
        #expect(text.contains("Subject Key Identifier"))
        #expect(text.contains("prime256v1") || text.contains("P-256"))
        #expect(text.contains("X509v3 Basic Constraints: critical"))
        #expect(text.contains("X509v3 Key Usage: critical"))

        let (again, createdAgain) = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        #expect(!createdAgain)
        #expect(again.certificate == ca.certificate)
    }

    @Test("a truncated key file fails naming the file, and creates no new CA")
    func truncatedKey() throws {
        _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        let original = try Data(contentsOf: cert)
        let keyText = try String(contentsOf: key, encoding: .utf8)
        try String(keyText.prefix(keyText.count / 2)).write(to: key, atomically: true, encoding: .utf8)
        chmod(key.path, 0o600)
        #expect {
            _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        } throws: { error in
            guard case .corrupt(let path, _) = error as? CertificateAuthorityError else { return false }
            return path == key.path && "\(error)".contains(key.path) && "\(error)".contains("--reissue")
        }
        #expect(try Data(contentsOf: cert) == original)
    }

    @Test("a key that does not match the certificate fails naming both files")
    func mismatchedKey() throws {
        _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        let other = try temporaryDirectory()
        _ = try CertificateAuthority.loadOrCreate(certificateURL: other.appendingPathComponent("c.pem"),
                                                  keyURL: other.appendingPathComponent("k.pem"))
        try FileManager.default.removeItem(at: key)
        try FileManager.default.copyItem(at: other.appendingPathComponent("k.pem"), to: key)
        #expect(throws: CertificateAuthorityError.mismatch(certificate: cert.path, key: key.path)) {
            _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        }
    }

    @Test("a certificate without its key is reported, not silently replaced")
    func missingKey() throws {
        _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        try FileManager.default.removeItem(at: key)
        #expect(throws: CertificateAuthorityError.missingHalf(present: cert.path, missing: key.path)) {
            _ = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        }
        let (_, created) = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key, reissue: true)
        #expect(created)
    }

    @Test("leaves for a name and an IP verify against the CA with RFC 5280 and server-identity policies",
          arguments: ["api.miro.com", "127.0.0.1", "::1"])
    func leafVerifies(host: String) async throws {
        let (ca, _) = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        let start = ContinuousClock.now
        let leaf = try ca.leaf(for: host)
        print("minted a leaf for \(host) in \(ContinuousClock.now - start)")
        let isIP = IPAddress(host) != nil
        var verifier = Verifier(rootCertificates: CertificateStore([ca.certificate])) {
            RFC5280Policy(validationTime: Date())
            ServerIdentityPolicy(serverHostname: isIP ? nil : host, serverIP: isIP ? host : nil)
        }
        let result = await verifier.validate(leaf: leaf.certificate, intermediates: CertificateStore())
        guard case .validCertificate = result else {
            Issue.record("leaf for \(host) did not verify: \(result)")
            return
        }
        let eku = try #require(try leaf.certificate.extensions.extendedKeyUsage)
        #expect(eku.contains(.serverAuth))
        let aki = try #require(try leaf.certificate.extensions.authorityKeyIdentifier)
        #expect(aki.keyIdentifier == (try ca.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier)
        let lifetime = leaf.certificate.notValidAfter.timeIntervalSince(leaf.certificate.notValidBefore)
        #expect(lifetime <= 199 * 86_400)
        #expect(leaf.certificate.notValidBefore < Date())

        // A leaf for one name does not pass for another.
        var other = Verifier(rootCertificates: CertificateStore([ca.certificate])) {
            RFC5280Policy(validationTime: Date())
            ServerIdentityPolicy(serverHostname: "evil.example", serverIP: nil)
        }
        if case .validCertificate = await other.validate(leaf: leaf.certificate, intermediates: CertificateStore()) {
            Issue.record("a leaf for \(host) verified for evil.example")
        }
    }

    @Test("concurrent callers get the same cached leaf; a leaf near expiry is re-minted")
    func cache() async throws {
        let (ca, _) = try CertificateAuthority.loadOrCreate(certificateURL: cert, keyURL: key)
        let leaves = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<32 { group.addTask { try ca.leaf(for: "API.miro.com").derBytes } }
            return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        #expect(Set(leaves).count == 1)
        let first = try ca.leaf(for: "api.miro.com")
        let later = try ca.leaf(for: "api.miro.com", now: Date().addingTimeInterval(195 * 86_400))
        #expect(later.derBytes != first.derBytes)
        #expect(later.notValidAfter > first.notValidAfter)
    }
}
