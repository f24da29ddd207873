import CertificateAuthority
import Crypto
import Foundation
import SwiftASN1
import Testing
import TokentapCore
import X509

/// Runs a command to completion; returns its exit status and stdout + stderr.
func runStatus(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Certificate authority: root + name-constrained intermediate")
struct ChainTests {
    let dir: URL
    var files: CertificateAuthority.ChainFiles {
        CertificateAuthority.ChainFiles(root: dir.appendingPathComponent("tokentap-ca.pem"),
                                        intermediate: dir.appendingPathComponent("tokentap-ca-intermediate.pem"),
                                        key: dir.appendingPathComponent("tokentap-ca-key.pem"))
    }
    static let permitted = PermittedNames.tokentap(adding: [.dns("example.com")])

    init() throws { dir = try temporaryDirectory() }

    func create(_ permitted: PermittedNames? = ChainTests.permitted, now: Date = Date()) throws -> CertificateAuthority {
        let (ca, created) = try CertificateAuthority.loadOrCreate(files: files, permitting: permitted, now: now)
        #expect(created)
        return ca
    }

    func write(_ leaf: IssuedLeaf, _ name: String) throws -> String {
        let path = dir.appendingPathComponent("leaf-\(name).pem").path
        try (try leaf.certificate.serializeAsPEM().pemString + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a new CA is a root and an intermediate, both with critical name constraints; only the intermediate's key is on disk")
    func createdChain() throws {
        let now = Date()
        let ca = try create(now: now)
        #expect(ca.layout == .constrained(Self.permitted))
        #expect(ca.root != ca.certificate)
        #expect(ca.chainDER.count == 2)

        let root = ca.root, intermediate = ca.certificate
        #expect(root.issuer == root.subject)
        #expect(intermediate.issuer == root.subject)
        #expect(intermediate.subject != root.subject)
        #expect(root.publicKey.isValidSignature(intermediate.signature, for: intermediate))
        #expect(try root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
        #expect(try intermediate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        for certificate in [root, intermediate] {
            #expect(certificate.extensions[oid: .X509ExtensionID.nameConstraints]?.critical == true)
            #expect(certificate.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
            #expect(certificate.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
            let constraints = try #require(try certificate.extensions.nameConstraints)
            #expect(Array(constraints.permittedDNSDomains) == ["miro.com", "example.com", "localhost"])
            #expect(constraints.permittedIPRanges.map { Array($0.bytes) } == [
                [127, 0, 0, 0, 255, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 255, count: 16),
            ])
            #expect(constraints.excludedSubtrees.isEmpty)
            #expect(abs(certificate.notValidBefore.timeIntervalSince(now) + 2 * 86_400) < 5)
            #expect(abs(certificate.notValidAfter.timeIntervalSince(now) / (365.25 * 86_400) - 10) < 0.01)
        }
        let aki = try #require(try intermediate.extensions.authorityKeyIdentifier)
        #expect(aki.keyIdentifier == (try root.extensions.subjectKeyIdentifier)?.keyIdentifier)

        // On disk: the two certificates and the intermediate's key (0600); nothing holds the root's key.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["tokentap-ca-intermediate.pem", "tokentap-ca-key.pem", "tokentap-ca.pem"])
        #expect(FileSystem.mode(of: files.key.path) == 0o600)
        let key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOf: files.key, encoding: .utf8))
        #expect(Certificate.PublicKey(key.publicKey) == intermediate.publicKey)
        #expect(Certificate.PublicKey(key.publicKey) != root.publicKey)

        // openssl agrees.
        for file in [files.root, files.intermediate] {
            let text = try run("/usr/bin/openssl", ["x509", "-in", file.path, "-noout", "-text"])
            #expect(text.contains("X509v3 Name Constraints: critical"))
            #expect(text.contains("DNS:miro.com") && text.contains("DNS:example.com") && text.contains("DNS:localhost"))
            #expect(text.contains("IP:127.0.0.0/255.0.0.0"))
        }

        let (again, created) = try CertificateAuthority.loadOrCreate(files: files, permitting: nil)
        #expect(!created)
        #expect(again.root == root && again.certificate == intermediate)
        #expect(again.layout == .constrained(Self.permitted))
        #expect(again.rootPEM == (try String(contentsOf: files.root, encoding: .utf8)))
    }

    @Test("the root's SPKI pin (Chromium's --ignore-certificate-errors-spki-list) is the one openssl computes")
    func spkiPin() throws {
        _ = try create()
        let pem = try String(contentsOf: files.root, encoding: .utf8)
        let pin = try CertificateAuthority.spkiSHA256Base64(pem: pem)
        let openssl = try runStatus("/bin/sh", ["-c", "openssl x509 -in '\(files.root.path)' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
        #expect(openssl.status == 0, "\(openssl.output)")
        #expect(pin == openssl.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(pin.count == 44)
        #expect(throws: (any Error).self) { try CertificateAuthority.spkiSHA256Base64(pem: "not a certificate") }
    }

    @Test("openssl verify -untrusted: leaves inside the constraints verify, one for example.org minted with the intermediate's key does not")
    func opensslVerify() throws {
        let ca = try create()
        for host in ["api.miro.com", "miro.com", "auth.example.com", "localhost", "127.0.0.1", "::1"] {
            let leaf = try write(try ca.leaf(for: host), host)
            let check = IPAddress(host) != nil ? ["-verify_ip", host] : ["-verify_hostname", host]
            let result = try runStatus("/usr/bin/openssl", ["verify", "-CAfile", files.root.path, "-untrusted", files.intermediate.path] + check + [leaf])
            #expect(result.status == 0 && result.output.contains("\(leaf): OK"), "\(host): \(result.output)")
        }
        for host in ["example.org", "xmiro.com", "10.0.0.1"] {
            let leaf = try write(try ca.mint(name: host), host)
            let result = try runStatus("/usr/bin/openssl", ["verify", "-CAfile", files.root.path, "-untrusted", files.intermediate.path, leaf])
            #expect(result.status != 0, "\(host) verified: \(result.output)")
            #expect(result.output.contains("permitted subtree violation"), "\(host): \(result.output)")
        }
    }

    @Test("swift-certificates' RFC 5280 verifier enforces the constraints too", arguments: [
        ("api.miro.com", true), ("127.0.0.1", true), ("::1", true), ("localhost", true), ("example.org", false), ("192.168.1.1", false),
    ])
    func verifierEnforces(host: String, permitted: Bool) async throws {
        let ca = try create()
        let leaf = try ca.mint(name: host)
        var verifier = Verifier(rootCertificates: CertificateStore([ca.root])) { RFC5280Policy(validationTime: Date()) }
        let result = await verifier.validate(leaf: leaf.certificate, intermediates: CertificateStore([ca.certificate]))
        if case .validCertificate(let chain) = result {
            #expect(permitted, "\(host) verified")
            #expect(chain.count == 3)
        } else {
            #expect(!permitted, "\(host) did not verify: \(result)")
        }
    }

    @Test("a leaf for an IP address has an IP SAN and no common name; a leaf for a name has both")
    func ipLeafHasNoCommonName() throws {
        let ca = try create()
        let ip = try ca.leaf(for: "127.0.0.1").certificate
        #expect(!ip.subject.description.contains("CN="))
        let san = try #require(try ip.extensions.subjectAlternativeNames)
        #expect(Array(san) == [.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
        let named = try ca.leaf(for: "api.miro.com").certificate
        #expect(named.subject.description.contains("CN=api.miro.com"))
        #expect(Array(try #require(try named.extensions.subjectAlternativeNames)) == [.dnsName("api.miro.com")])
        let aki = try #require(try named.extensions.authorityKeyIdentifier)
        #expect(aki.keyIdentifier == (try ca.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier)
    }

    @Test("--unconstrained: root and intermediate without name constraints; any name verifies")
    func unconstrained() async throws {
        let ca = try create(nil)
        #expect(ca.layout == .unconstrained)
        #expect(try ca.certificate.extensions.nameConstraints == nil)
        #expect(try ca.root.extensions.nameConstraints == nil)
        let leaf = try write(try ca.leaf(for: "example.org"), "example.org")
        let result = try runStatus("/usr/bin/openssl", ["verify", "-CAfile", files.root.path, "-untrusted", files.intermediate.path, leaf])
        #expect(result.status == 0, "\(result.output)")
        let again = try CertificateAuthority.load(files: files)
        #expect(again.layout == .unconstrained)
    }

    @Test("a self-signed CA of before name constraints (no intermediate file) loads as it is")
    func legacy() throws {
        let (certificate, key) = try CertificateAuthority.makeCA(commonName: "tokentap CA")
        try FileSystem.writeAtomically(Data(key.pemRepresentation.utf8), to: files.key, mode: 0o600)
        try FileSystem.writeAtomically(Data((try certificate.serializeAsPEM().pemString + "\n").utf8), to: files.root, mode: 0o644)
        let (ca, created) = try CertificateAuthority.loadOrCreate(files: files, permitting: Self.permitted)
        #expect(!created)
        #expect(ca.layout == .selfSigned)
        #expect(ca.root == certificate && ca.certificate == certificate)
        #expect(ca.chainDER.count == 1)
        #expect(!FileManager.default.fileExists(atPath: files.intermediate.path))
        let leaf = try write(try ca.leaf(for: "example.org"), "legacy")
        let result = try runStatus("/usr/bin/openssl", ["verify", "-CAfile", files.root.path, leaf])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("--reissue replaces all three files with a new root")
    func reissue() throws {
        let old = try create()
        let (new, created) = try CertificateAuthority.loadOrCreate(files: files, permitting: PermittedNames.tokentap(adding: []), reissue: true)
        #expect(created)
        #expect(new.root != old.root && new.root.publicKey != old.root.publicKey)
        #expect(new.layout == .constrained(PermittedNames.tokentap(adding: [])))
        #expect(try CertificateAuthority.load(files: files).root == new.root)
    }

    @Test("damaged chains fail naming the file, and nothing is replaced")
    func damaged() throws {
        _ = try create()
        let snapshot = try [files.root, files.intermediate, files.key].map { try Data(contentsOf: $0) }
        func restore() throws {
            for (url, data) in zip([files.root, files.intermediate, files.key], snapshot) {
                try FileSystem.writeAtomically(data, to: url, mode: url == files.key ? 0o600 : 0o644)
            }
        }
        func expectError(_ expected: CertificateAuthorityError) {
            #expect(throws: expected) { _ = try CertificateAuthority.loadOrCreate(files: files, permitting: Self.permitted) }
        }

        // Intermediate deleted: the key matches no certificate left.
        try FileManager.default.removeItem(at: files.intermediate)
        expectError(.intermediateMissing(intermediate: files.intermediate.path, key: files.key.path, root: files.root.path))
        #expect("\(CertificateAuthorityError.intermediateMissing(intermediate: "I", key: "K", root: "R"))".contains("--reissue"))
        try restore()

        // Another CA's root beside this intermediate.
        let other = try temporaryDirectory()
        let otherFiles = CertificateAuthority.ChainFiles(root: other.appendingPathComponent("r.pem"),
                                                         intermediate: other.appendingPathComponent("i.pem"),
                                                         key: other.appendingPathComponent("k.pem"))
        _ = try CertificateAuthority.loadOrCreate(files: otherFiles, permitting: Self.permitted)
        try FileSystem.writeAtomically(try Data(contentsOf: otherFiles.root), to: files.root, mode: 0o644)
        expectError(.notIssuedByRoot(intermediate: files.intermediate.path, root: files.root.path))
        try restore()

        // Another CA's key.
        try FileSystem.writeAtomically(try Data(contentsOf: otherFiles.key), to: files.key, mode: 0o600)
        expectError(.mismatch(certificate: files.intermediate.path, key: files.key.path))
        try restore()

        // A truncated intermediate.
        try FileSystem.writeAtomically(snapshot[1].prefix(100), to: files.intermediate, mode: 0o644)
        #expect {
            _ = try CertificateAuthority.loadOrCreate(files: files, permitting: Self.permitted)
        } throws: { error in
            guard case .corrupt(let path, _) = error as? CertificateAuthorityError else { return false }
            return path == files.intermediate.path
        }
        try restore()

        // A key others can read.
        chmod(files.key.path, 0o644)
        expectError(.keyTooOpen(path: files.key.path, mode: 0o644))
        try restore()

        // The root missing.
        try FileManager.default.removeItem(at: files.root)
        expectError(.missingHalf(present: files.key.path, missing: files.root.path))
        try restore()

        #expect(try [files.root, files.intermediate, files.key].map { try Data(contentsOf: $0) } == snapshot)
        _ = try CertificateAuthority.load(files: files)
    }
}

@Suite("Permitted names")
struct PermittedNamesTests {
    @Test("the tokentap set: miro.com, the extra subtrees, localhost, 127.0.0.0/8, ::1/128; normalized")
    func tokentapSet() {
        let names = PermittedNames.tokentap(adding: [.dns("Example.COM."), .dns("auth.example.com"), .dns("api.miro.com"),
                                                     .ip(IPRange(address: IPAddress("127.0.0.1")!, prefixLength: 32)!),
                                                     .ip(IPRange(address: IPAddress("10.1.2.3")!, prefixLength: 32)!)])
        #expect(names.description == "miro.com, example.com, localhost, 10.1.2.3/32, 127.0.0.0/8, ::1/128")
    }

    @Test("covers and permits follow RFC 5280 dNSName and iPAddress matching")
    func matching() {
        let names = PermittedNames.tokentap(adding: [.dns("example.com")])
        #expect(names.permits(host: "miro.com") && names.permits(host: "a.b.miro.com") && names.permits(host: "API.MIRO.COM"))
        #expect(!names.permits(host: "xmiro.com") && !names.permits(host: "miro.com.evil.org") && !names.permits(host: "com"))
        #expect(names.permits(host: "127.1.2.3") && names.permits(host: "[::1]") && names.permits(host: "localhost"))
        #expect(!names.permits(host: "128.0.0.1") && !names.permits(host: "::2") && !names.permits(host: "example.org"))
        #expect(names.covers(.dns("auth.example.com")) && !names.covers(.dns("example.org")))
        #expect(!names.covers(.ip(IPRange(address: IPAddress("127.0.0.0")!, prefixLength: 7)!)))
    }

    @Test("an IP range round-trips through its address + mask octets; bad masks are refused")
    func ipRange() {
        let range = IPRange(address: IPAddress("192.0.2.77")!, prefixLength: 24)!
        #expect(range.octets == [192, 0, 2, 0, 255, 255, 255, 0])
        #expect(IPRange(octets: range.octets) == range)
        #expect(range.description == "192.0.2.0/24")
        #expect(IPRange(octets: [192, 0, 2, 0, 255, 0, 255, 0]) == nil)
        #expect(IPRange(octets: [1, 2, 3]) == nil)
        #expect(IPRange(address: IPAddress("::1")!, prefixLength: 129) == nil)
    }

    @Test("the extension round-trips; extensions tokentap does not write are not taken for its own")
    func extensionRoundTrip() {
        let names = PermittedNames.tokentap(adding: [.dns("example.com")])
        #expect(PermittedNames(names.nameConstraints) == names)
        #expect(PermittedNames(NameConstraints(permittedDNSDomains: ["miro.com"], excludedDNSDomains: ["a.miro.com"])) == nil)
        #expect(PermittedNames(NameConstraints(permittedEmailAddresses: ["a@b.c"])) == nil)
    }
}
