import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of the fingerprint key file (`certs/tokentap-fingerprint.key`).
public enum FingerprintKeyError: Error, CustomStringConvertible, Equatable {
    /// The file exists but does not hold exactly 32 bytes.
    case wrongSize(path: String, size: Int)
    /// The file could not be read or created.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .wrongSize(path, size):
            return "fingerprint key \(path) holds \(size) bytes, expected 32: it is damaged or not a "
                + "tokentap key. Move it away to let tokentap create a new one (placeholders recorded "
                + "with the old key will no longer match new ones)."
        case let .io(path, reason):
            return "cannot read or create fingerprint key \(path): \(reason). Check that its folder "
                + "exists and is writable."
        }
    }
}

extension Redactor {
    /// Size of the fingerprint key in bytes.
    public static let keySize = 32

    /// File name of the key inside the home's `certs/` folder (design.md, "Data on disk").
    public static let keyFileName = "tokentap-fingerprint.key"

    /// A redactor keyed with the key file at `url`, created when missing (`loadOrCreateKey(at:)`).
    public init(keyFile url: URL) throws {
        self.init(key: try Redactor.loadOrCreateKey(at: url))
    }

    /// Reads the per-install fingerprint key at `url` (`certs/tokentap-fingerprint.key`), or
    /// creates it when missing: 32 bytes from `SystemRandomNumberGenerator`, written to a temporary
    /// file of mode 0600 in the same folder and linked into place, so a reader never sees a partial
    /// key and an existing key is never overwritten (if another process created it first, that key
    /// is read and returned). The folder must exist.
    ///
    /// - Throws: `FingerprintKeyError.wrongSize` (naming the file) when it exists but is not 32
    ///   bytes; `FingerprintKeyError.io` when it cannot be read or written.
    public static func loadOrCreateKey(at url: URL) throws -> Data {
        let path = url.path
        if FileManager.default.fileExists(atPath: path) {
            return try readKey(path)
        }
        var generator = SystemRandomNumberGenerator()
        var key = Data(capacity: keySize)
        for _ in 0..<(keySize / 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { key.append(contentsOf: $0) }
        }
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp").path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FingerprintKeyError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { unlink(tmp) }
        fchmod(fd, 0o600)  // whatever the umask
        var offset = 0
        var failure: String?
        key.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure { throw FingerprintKeyError.io(path: path, reason: failure) }
        // link(2) never replaces an existing file: if another process created the key meanwhile,
        // that key wins and is read back.
        if link(tmp, path) != 0 {
            let err = errno
            if err == EEXIST { return try readKey(path) }
            // File systems without hard links: fall back to rename(2) while the key is still absent.
            guard !FileManager.default.fileExists(atPath: path), rename(tmp, path) == 0 else {
                if FileManager.default.fileExists(atPath: path) { return try readKey(path) }
                throw FingerprintKeyError.io(path: path, reason: String(cString: strerror(err)))
            }
        }
        return key
    }

    private static func readKey(_ path: String) throws -> Data {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw FingerprintKeyError.io(path: path, reason: "\(error)")
        }
        guard data.count == keySize else { throw FingerprintKeyError.wrongSize(path: path, size: data.count) }
        return data
    }
}
