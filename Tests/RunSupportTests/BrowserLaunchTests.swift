import Foundation
@testable import RunSupport
import Testing

@Suite("tokentap browser: finding and starting Chromium")
struct BrowserLaunchTests {
    @Test("the first of chromium, chromium-browser, google-chrome, google-chrome-stable in PATH order; --browser wins")
    func find() throws {
        let present: Set<String> = ["/opt/bin/google-chrome", "/usr/bin/chromium-browser", "/usr/bin/google-chrome-stable"]
        let path = "/opt/bin:/usr/bin"
        let isExecutable = { (p: String) in present.contains(p) }
        // Names first, then folders: chromium-browser beats google-chrome although /opt/bin comes first.
        #expect(try BrowserLaunch.find(explicit: nil, path: path, isExecutable: isExecutable, exists: isExecutable)
                == "/usr/bin/chromium-browser")
        #expect(try BrowserLaunch.find(explicit: "/usr/bin/google-chrome-stable", path: path, isExecutable: isExecutable,
                                       exists: isExecutable) == "/usr/bin/google-chrome-stable")
        #expect(try BrowserLaunch.find(explicit: "google-chrome", path: path, isExecutable: isExecutable, exists: isExecutable)
                == "/opt/bin/google-chrome")
        #expect(throws: BrowserLaunch.FindError.explicitMissing("/nonexistent")) {
            try BrowserLaunch.find(explicit: "/nonexistent", path: path, isExecutable: isExecutable, exists: isExecutable)
        }
        #expect(throws: BrowserLaunch.FindError.explicitNotExecutable("/etc/hosts")) {
            try BrowserLaunch.find(explicit: "/etc/hosts", path: path, isExecutable: { _ in false }, exists: { _ in true })
        }
        #expect(throws: BrowserLaunch.FindError.noneFound) {
            try BrowserLaunch.find(explicit: nil, path: "/empty", isExecutable: isExecutable, exists: isExecutable)
        }
        #expect(throws: BrowserLaunch.FindError.noneFound) {
            try BrowserLaunch.find(explicit: nil, path: nil, isExecutable: isExecutable, exists: isExecutable)
        }
        #expect(BrowserLaunch.FindError.noneFound.isUsage == false)
        #expect(BrowserLaunch.FindError.explicitMissing("x").isUsage)
        let message = BrowserLaunch.FindError.noneFound.description
        for needle in ["chromium, chromium-browser, google-chrome, google-chrome-stable", "apt-get install chromium", "--browser PATH"] {
            #expect(message.contains(needle))
        }
        #expect(!message.contains("\n"))
    }

    @Test("the command line: own profile, the proxy for loopback too, the CA's SPKI pin, no background traffic; headless, no-sandbox and URL when asked")
    func arguments() {
        let args = BrowserLaunch.arguments(profile: "/tmp/t/profile", proxy: "127.0.0.1:8877", spkiPin: "PIN=", headless: true,
                                           noSandbox: true, url: "http://127.0.0.1:3000/login")
        #expect(args == ["--user-data-dir=/tmp/t/profile", "--proxy-server=http://127.0.0.1:8877", "--proxy-bypass-list=<-loopback>",
                         "--ignore-certificate-errors-spki-list=PIN=", "--no-first-run", "--no-default-browser-check",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--headless=new", "--no-sandbox", "http://127.0.0.1:3000/login"])
        let plain = BrowserLaunch.arguments(profile: "/p", proxy: "[::1]:9", spkiPin: "X", headless: false, noSandbox: false, url: nil)
        #expect(!plain.contains { $0.hasPrefix("--headless") || $0 == "--no-sandbox" })
        #expect(plain.contains("--proxy-server=http://[::1]:9"))
        #expect(plain.last == "--disable-dev-shm-usage")
    }

    @Test("the environment: HOME and the XDG folders inside the temporary folder, no proxy variables, the X cookie kept")
    func environment() {
        let base = ["HOME": "/home/u", "PATH": "/usr/bin", "DISPLAY": ":0", "HTTPS_PROXY": "http://x:1", "no_proxy": "localhost",
                    "XDG_CONFIG_HOME": "/home/u/.config"]
        let env = BrowserLaunch.environment(base: base, folder: "/tmp/tb", exists: { $0 == "/home/u/.Xauthority" })
        #expect(env["HOME"] == "/tmp/tb/home")
        #expect(env["XDG_CONFIG_HOME"] == "/tmp/tb/home/.config")
        #expect(env["XDG_CACHE_HOME"] == "/tmp/tb/home/.cache")
        #expect(env["XDG_DATA_HOME"] == "/tmp/tb/home/.local/share")
        #expect(env["TMPDIR"] == "/tmp/tb/tmp")
        #expect(env["HTTPS_PROXY"] == nil && env["no_proxy"] == nil)
        #expect(env["DISPLAY"] == ":0" && env["PATH"] == "/usr/bin")
        #expect(env["XAUTHORITY"] == "/home/u/.Xauthority")
        #expect(BrowserLaunch.environment(base: base, folder: "/t", exists: { _ in false })["XAUTHORITY"] == nil)
        // A folder so deep that Chromium's singleton socket would not fit a socket path: TMPDIR is left alone.
        let deep = "/tmp/" + String(repeating: "d", count: 60) + "/tokentap-browser-abcdef"
        #expect(BrowserLaunch.environment(base: base.merging(["TMPDIR": "/var/tmp"]) { $1 }, folder: deep)["TMPDIR"] == "/var/tmp")
        let folders = BrowserLaunch.folders(in: "/tmp/tb")
        for value in [env["HOME"], env["XDG_CONFIG_HOME"], env["XDG_CACHE_HOME"], env["XDG_DATA_HOME"], env["TMPDIR"]] {
            #expect(folders.contains(value!))
        }
    }

    @Test("the temporary folder is made under TMPDIR, mode 0700, with the profile and HOME folders")
    func temporaryFolder() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("browser-launch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let folder = try BrowserLaunch.makeTemporaryFolder(environment: ["TMPDIR": base.path + "/"])
        #expect(folder.hasPrefix(base.path + "/tokentap-browser-"))
        let mode = try FileManager.default.attributesOfItem(atPath: folder)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        for sub in BrowserLaunch.folders(in: folder) {
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: sub, isDirectory: &isDirectory) && isDirectory.boolValue)
        }
    }
}
