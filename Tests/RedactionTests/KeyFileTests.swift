import Foundation
import Testing
import Redaction

@Suite struct KeyFileTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redaction-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func createsA0600KeyAndReusesIt() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokentap-fingerprint.key")
        let key = try Redactor.loadOrCreateKey(at: url)
        #expect(key.count == 32)
        #expect(key != Data(repeating: 0, count: 32))
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try Data(contentsOf: url) == key)
        #expect(try Redactor.loadOrCreateKey(at: url) == key)
        // No temporary files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["tokentap-fingerprint.key"])
        // The convenience initializer reads the same key: same fingerprints.
        #expect(try Redactor(keyFile: url).fingerprint("abc") == Redactor(key: key).fingerprint("abc"))
        // Another install gets another key.
        let other = dir.appendingPathComponent("other.key")
        #expect(try Redactor.loadOrCreateKey(at: other) != key)
    }

    @Test func corruptKeyFileIsAnErrorNamingTheFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokentap-fingerprint.key")
        try Data("short".utf8).write(to: url)
        do {
            _ = try Redactor.loadOrCreateKey(at: url)
            Issue.record("a 5-byte key file was accepted")
        } catch {
            #expect("\(error)".contains(url.path))
            #expect(error as? FingerprintKeyError == .wrongSize(path: url.path, size: 5))
        }
        // The corrupt file is left alone (never silently overwritten).
        #expect(try Data(contentsOf: url) == Data("short".utf8))
    }

    @Test func missingFolderIsAnErrorNamingTheFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/tokentap-fingerprint.key")
        #expect(throws: FingerprintKeyError.self) { try Redactor.loadOrCreateKey(at: url) }
        do { _ = try Redactor.loadOrCreateKey(at: url) } catch { #expect("\(error)".contains(url.path)) }
    }
}
