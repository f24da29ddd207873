import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How `tokentap browser` finds and starts Chromium (issue 20; README "tokentap browser"). Pure
/// apart from the file checks of ``find(explicit:path:isExecutable:)``: the command line and the
/// environment are values, unit-tested without a browser.
public enum BrowserLaunch {
    /// The names looked for in `PATH`, in order, when `--browser` is not given.
    public static let candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    /// The Debian/Ubuntu package that provides `chromium`.
    public static let debianPackage = "chromium"

    /// Why no browser could be used.
    public enum FindError: Error, Equatable, CustomStringConvertible {
        /// `--browser PATH` names no file (a usage error: exit 2).
        case explicitMissing(String)
        /// `--browser PATH` names a file that cannot be executed (exit 2).
        case explicitNotExecutable(String)
        /// None of ``candidates`` is in PATH (exit 1).
        case noneFound

        public var isUsage: Bool { self != .noneFound }

        public var description: String {
            switch self {
            case .explicitMissing(let path):
                return "--browser \(path): no such file; give the path of a Chromium or Chrome executable"
            case .explicitNotExecutable(let path):
                return "--browser \(path): not an executable file; give the path of a Chromium or Chrome executable"
            case .noneFound:
                return "no Chromium or Chrome found: looked for \(candidates.joined(separator: ", ")) in PATH; "
                    + "install one (Debian/Ubuntu: apt-get install \(debianPackage)) or give --browser PATH"
            }
        }
    }

    /// The executable to start: `explicit` (`--browser`; a bare name is looked up in `path`), else
    /// the first of ``candidates`` found in `path` (the `PATH` variable's value).
    public static func find(explicit: String?, path: String?,
                            isExecutable: (String) -> Bool = { FileManager.default.isExecutableFile(atPath: $0) },
                            exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) throws -> String {
        let folders = (path ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        func lookUp(_ name: String) -> String? {
            for folder in folders {
                let candidate = URL(fileURLWithPath: folder).appendingPathComponent(name).path
                if isExecutable(candidate), !isDirectory(candidate) { return candidate }
            }
            return nil
        }
        if let explicit {
            if explicit.contains("/") {
                guard exists(explicit) else { throw FindError.explicitMissing(explicit) }
                guard isExecutable(explicit), !isDirectory(explicit) else { throw FindError.explicitNotExecutable(explicit) }
                return explicit
            }
            guard let found = lookUp(explicit) else { throw FindError.explicitMissing(explicit) }
            return found
        }
        for name in candidates {
            if let found = lookUp(name) { return found }
        }
        throw FindError.noneFound
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// The browser's arguments (without the executable): a profile of its own in `profile`, the
    /// proxy for every URL (loopback included: `<-loopback>` removes Chromium's implicit bypass, so
    /// the app's callback goes through the proxy and is recorded), tokentap's root trusted by its
    /// SPKI hash in that profile only, no first-run or background traffic; `--headless=new` and
    /// `--no-sandbox` (root) when asked; `url` last.
    public static func arguments(profile: String, proxy: String, spkiPin: String, headless: Bool, noSandbox: Bool,
                                 url: String?) -> [String] {
        var args = [
            "--user-data-dir=\(profile)",
            "--proxy-server=http://\(proxy)",
            "--proxy-bypass-list=<-loopback>",
            "--ignore-certificate-errors-spki-list=\(spkiPin)",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        if headless { args.append("--headless=new") }
        if noSandbox { args.append("--no-sandbox") }
        if let url { args.append(url) }
        return args
    }

    /// The browser's environment: `base` with `HOME`, the XDG folders and `TMPDIR` inside `folder` (Chromium
    /// writes crash-report settings, a dconf cache and an NSS database under `HOME` whatever
    /// `--user-data-dir` says), proxy variables removed (the flags decide), and `XAUTHORITY`
    /// kept pointing at the user's X cookie when it was implied by the old `HOME`.
    public static func environment(base: [String: String], folder: String,
                                   exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> [String: String] {
        var env = base
        let home = folder + "/home"
        env["HOME"] = home
        env["XDG_CONFIG_HOME"] = home + "/.config"
        env["XDG_CACHE_HOME"] = home + "/.cache"
        env["XDG_DATA_HOME"] = home + "/.local/share"
        // Chromium's singleton socket folder (org.chromium.Chromium.XXXXXX) goes to TMPDIR and stays
        // there when the browser is killed: inside the folder, unless the socket's path would be
        // longer than a Unix socket path may be (Chromium then stops); ``singletonFolder(profile:)``
        // finds it then.
        if (folder + "/tmp/" + singletonSuffix).utf8.count <= maxSocketPath {
            env["TMPDIR"] = folder + "/tmp"
        }
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"] {
            env[name] = nil
        }
        if env["XAUTHORITY"] == nil, let oldHome = base["HOME"], exists(oldHome + "/.Xauthority") {
            env["XAUTHORITY"] = oldHome + "/.Xauthority"
        }
        return env
    }

    /// `sun_path` holds 108 bytes, the terminating NUL included.
    static let maxSocketPath = 107
    /// What Chromium adds under TMPDIR for its singleton socket.
    static let singletonSuffix = "org.chromium.Chromium.XXXXXX/SingletonSocket"

    /// The folder holding Chromium's singleton socket, from the profile's `SingletonSocket` link
    /// (`TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket`); nil when there is none (Chromium
    /// removes both when it exits cleanly). Removed with the temporary folder when it is elsewhere.
    public static func singletonFolder(profile: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: profile + "/SingletonSocket") else { return nil }
        let folder = URL(fileURLWithPath: target).deletingLastPathComponent()
        guard folder.lastPathComponent.hasPrefix("org.chromium.Chromium.") || folder.lastPathComponent.hasPrefix("com.google.Chrome.") else {
            return nil
        }
        return folder.path
    }

    /// The folders `environment(base:folder:)` names, to create before the browser starts.
    public static func folders(in folder: String) -> [String] {
        let home = folder + "/home"
        return [folder + "/profile", folder + "/tmp", home, home + "/.config", home + "/.cache", home + "/.local/share"]
    }

    /// Creates a new temporary folder (mode 0700) under `TMPDIR` (else `/tmp`), never in the
    /// tokentap home or the user's `HOME`.
    public static func makeTemporaryFolder(environment: [String: String]) throws -> String {
        var base = environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array((base + "/tokentap-browser-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: base,
                                                             NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        for sub in folders(in: path) {
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        return path
    }
}
