import Foundation

/// The folder that holds `certs/` and `recordings/` (design.md, "Data on disk").
///
/// Resolution order: `--home DIR`, then `TOKENTAP_HOME`, then the tokentap checkout the running
/// binary was built in (the folder with tokentap's `Package.swift` above the executable's `.build/`),
/// then `~/.tokentap`.
public struct Home: Sendable, Hashable {
    /// Where a home came from, for messages such as `tokentap ca`.
    public enum Source: String, Sendable, Hashable {
        case option = "--home"
        case environment = "TOKENTAP_HOME"
        case checkout = "the tokentap checkout"
        case userHome = "~/.tokentap"
    }

    /// Absolute, standardized path of the home folder.
    public let url: URL
    public let source: Source

    public init(url: URL, source: Source) {
        self.url = url.standardizedFileURL
        self.source = source
    }

    /// `<home>/certs`.
    public var certs: URL { url.appendingPathComponent("certs", isDirectory: true) }
    /// `<home>/recordings`.
    public var recordings: URL { url.appendingPathComponent("recordings", isDirectory: true) }
    /// `<home>/recordings/tokentap.sqlite`.
    public var database: URL { recordings.appendingPathComponent("tokentap.sqlite") }
    /// `<home>/profiles`: the user's provider profiles (`*.json`), read where findings are computed.
    public var profiles: URL { url.appendingPathComponent("profiles", isDirectory: true) }

    /// Resolves the home without touching the disk except to look for `Package.swift`.
    ///
    /// - Parameters:
    ///   - option: the value of `--home`, if given.
    ///   - environment: the process environment (`TOKENTAP_HOME`, `HOME`).
    ///   - executablePath: the running binary's absolute path (`/proc/self/exe`).
    ///   - currentDirectory: base for a relative `--home` or `TOKENTAP_HOME`.
    public static func resolve(option: String?, environment: [String: String], executablePath: String?,
                               currentDirectory: String = FileManager.default.currentDirectoryPath) -> Home {
        func absolute(_ path: String) -> URL {
            let expanded = (path as NSString).expandingTildeInPath
            if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded, isDirectory: true) }
            return URL(fileURLWithPath: currentDirectory, isDirectory: true).appendingPathComponent(expanded, isDirectory: true)
        }
        if let option, !option.isEmpty { return Home(url: absolute(option), source: .option) }
        if let env = environment["TOKENTAP_HOME"], !env.isEmpty { return Home(url: absolute(env), source: .environment) }
        if let executablePath, let checkout = checkout(containing: executablePath) {
            return Home(url: checkout, source: .checkout)
        }
        let userHome = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return Home(url: URL(fileURLWithPath: userHome, isDirectory: true).appendingPathComponent(".tokentap", isDirectory: true),
                    source: .userHome)
    }

    /// The tokentap checkout an executable under `<checkout>/.build/…` was built in, or nil when the
    /// path has no `.build` component or the folder above it holds no tokentap `Package.swift`.
    public static func checkout(containing executablePath: String) -> URL? {
        let components = URL(fileURLWithPath: executablePath).standardizedFileURL.pathComponents
        guard let buildIndex = components.lastIndex(where: { $0 == ".build" || $0.hasPrefix(".build-") || $0.hasPrefix(".build_") }),
              buildIndex > 0 else { return nil }
        let root = NSString.path(withComponents: Array(components[..<buildIndex]))
        let manifest = URL(fileURLWithPath: root).appendingPathComponent("Package.swift")
        guard let text = try? String(contentsOf: manifest, encoding: .utf8),
              text.contains("name: \"tokentap\"") else { return nil }
        return URL(fileURLWithPath: root, isDirectory: true)
    }

    /// The running executable's absolute path (Linux: `/proc/self/exe`).
    public static var currentExecutablePath: String? {
        if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return link }
        return CommandLine.arguments.first.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    /// Creates the home, `certs/` and `recordings/` when missing. Every folder created here gets a
    /// `.gitignore` of `*`, so an install never leaks keys or recordings into a repository.
    /// - Throws: `HomeError.notWritable` naming the folder when it cannot be created.
    public func prepare() throws {
        for dir in [url, certs, recordings] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) {
                if !isDir.boolValue { throw HomeError.notADirectory(dir.path) }
                continue
            }
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
                try FileSystem.writeAtomically(Data("*\n".utf8), to: dir.appendingPathComponent(".gitignore"), mode: 0o644)
            } catch {
                throw HomeError.notWritable(dir.path, String(describing: error))
            }
        }
    }
}

/// Problems with the home folder; messages say what to do.
public enum HomeError: Error, CustomStringConvertible, Equatable {
    case notADirectory(String)
    case notWritable(String, String)

    public var description: String {
        switch self {
        case .notADirectory(let path):
            return "\(path) exists but is not a folder: move it away or choose another home with --home DIR"
        case .notWritable(let path, let reason):
            return "cannot create \(path) (\(reason)): choose a writable home with --home DIR or TOKENTAP_HOME"
        }
    }
}

/// Small file-system helpers shared by the modules that write secrets to disk.
public enum FileSystem {
    /// Writes `data` to `url` atomically: a temporary file in the same folder, created with `mode`
    /// from the start (a key is never readable by others, not even briefly), fsynced, then renamed.
    /// - Throws: `POSIXError` from `open`, `write`, `fsync` or `rename`.
    public static func writeAtomically(_ data: Data, to url: URL, mode: mode_t) throws {
        let dir = url.deletingLastPathComponent().path
        let temp = dir + "/.\(url.lastPathComponent).\(UInt64.random(in: 0 ... .max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
                    }
                    offset += n
                }
            }
            fchmod(fd, mode)  // umask may have narrowed the mode given to open
            guard fsync(fd) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
        guard rename(temp, url.path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        ok = true
    }

    /// The permission bits of the file at `path` (`0o600`), or nil when it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }
}
