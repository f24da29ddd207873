import ArgumentParser
import CertificateAuthority
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import ProxyServer
import RunSupport
import TokentapCore

/// `tokentap browser`: the browser half of an OAuth flow (authorize, consent, the redirect with the
/// code, the callback to the app) recorded into the same session as the app's half (issue 20).
struct BrowserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "browser",
        abstract: "Start Chromium (or Chrome) through tokentap, trusting its CA in a temporary profile only.",
        discussion: """
        Finds chromium, chromium-browser, google-chrome or google-chrome-stable in PATH (or --browser PATH). Without proxy \
        options or --attach, uses the `tokentap proxy` of this home when it answers (recordings/proxy.json), else starts a \
        proxy of its own. The browser gets a new temporary profile, with HOME and the XDG folders inside it, sends every \
        request through the proxy (the app's loopback callback included, so it is recorded), and trusts tokentap's CA by \
        its key hash (--ignore-certificate-errors-spki-list) in that profile only: no trust store is touched. On Ctrl-C or \
        SIGTERM, or when the browser exits, tokentap ends the browser's process group, deletes the temporary folder and \
        exits 0.
        """)

    @OptionGroup var options: ProxyOptions

    @Option(help: ArgumentHelp("Use the tokentap proxy running there (no proxy options then).", valueName: "HOST:PORT"))
    var attach: String?

    @Option(name: .customLong("browser"), help: ArgumentHelp("The Chromium or Chrome executable (default: the first of chromium, chromium-browser, google-chrome, google-chrome-stable in PATH).", valueName: "PATH"))
    var browserPath: String?

    @Flag(help: "Run the browser without a window (--headless=new).")
    var headless = false

    @OptionGroup var homeOptions: HomeOptions

    @Argument(help: ArgumentHelp("The page to open, e.g. your app's login page.", valueName: "URL"))
    var url: String?

    /// How the wait for the browser ended.
    enum End: Sendable {
        case signal
        case exited(Int32)
    }

    func run() async throws {
        try ProxyChoice.checkUsage(options: options, attach: attach)
        let environment = ProcessInfo.processInfo.environment
        let executable: String
        do {
            executable = try BrowserLaunch.find(explicit: browserPath, path: environment["PATH"])
        } catch let error as BrowserLaunch.FindError {
            throw error.isUsage ? CLIFailure.usage(error.description) : CLIFailure.runtime(error.description)
        }
        let home = try homeOptions.resolve()
        let started = Date()
        // Caught from now on: a signal during start-up still ends in a clean exit.
        let signals = TerminationSignals.install([SIGINT, SIGTERM, SIGHUP])

        let proxy = try await ProxyChoice.resolve(options: options, attach: attach, home: home, command: "browser")
        let pin: String
        let folder: String
        do {
            let pem = try proxy.caPEM()
            do { pin = try CertificateAuthority.spkiSHA256Base64(pem: pem) } catch {
                throw CLIFailure.runtime("cannot read tokentap's CA \(proxy.caFile.path) (\(error)): check it with `tokentap ca`")
            }
            do { folder = try BrowserLaunch.makeTemporaryFolder(environment: environment) } catch {
                throw CLIFailure.runtime("cannot create a temporary folder for the browser's profile (\(error)); set TMPDIR to a writable folder")
            }
        } catch {
            await proxy.stop()
            throw error
        }

        let noSandbox = geteuid() == 0
        if noSandbox {
            warn("tokentap: running as root, so the browser starts with --no-sandbox (Chromium's sandbox does not run as root)")
        }
        let arguments = BrowserLaunch.arguments(profile: folder + "/profile", proxy: proxy.address, spkiPin: pin,
                                                headless: headless, noSandbox: noSandbox, url: url)
        let browserEnvironment = BrowserLaunch.environment(base: environment, folder: folder)
        let log = folder + "/browser.log"
        // Orphaned helpers of the browser are re-parented to tokentap, which reaps them.
        ChildProcess.becomeSubreaper()
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn([executable] + arguments, environment: browserEnvironment, newProcessGroup: true,
                                           input: "/dev/null", output: log)
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            await proxy.stop()
            throw CLIFailure.runtime("cannot start \(executable): \(error)")
        }
        warn("tokentap: started \(executable) (pid \(child.pid)) through the proxy at \(proxy.address), session \(proxy.session); "
             + "temporary profile \(folder) (deleted when it exits), trusting tokentap's CA there only")

        let end = FirstOf<End>()
        Task {
            let status = await child.wait()
            end.fire(.exited(status))
        }
        Task {
            await signals.wait()
            end.fire(.signal)
        }
        switch await end.wait() {
        case .signal:
            warn("tokentap: stopping the browser")
        case .exited(let status):
            if status == 0 {
                warn("tokentap: the browser exited")
            } else {
                warn("tokentap: the browser exited with status \(status)")
                for line in Self.lastLines(of: log, count: 10) { warn("  browser: \(line)") }
            }
        }
        await child.endGroup()
        // A killed Chromium leaves its singleton socket folder behind (in TMPDIR when the folder's
        // own was too long a path for a socket).
        if let singleton = BrowserLaunch.singletonFolder(profile: folder + "/profile"), !singleton.hasPrefix(folder + "/") {
            try? FileManager.default.removeItem(atPath: singleton)
        }
        do {
            try FileManager.default.removeItem(atPath: folder)
        } catch {
            warn("tokentap: cannot delete the browser's temporary folder \(folder): \(error)")
        }
        await proxy.stop()
        await RunSummary.print(database: proxy.database, session: proxy.session, since: started, intercept: proxy.intercept,
                               command: "the browser", settle: proxy.attached,
                               emptyHint: "open a page that leads to Miro (your app's login page), or give its URL to `tokentap browser`")
        Glibc.exit(0)
    }

    /// The last `count` non-empty lines of a text file (the browser's own output).
    static func lastLines(of path: String, count: Int) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let lines = String(decoding: data.suffix(16_384), as: UTF8.self).split(separator: "\n").map(String.init)
        return Array(lines.suffix(count))
    }
}

/// The first of several events (each may fire from any thread; later ones are ignored).
/// (Also `TerminationSignals`' one event.)
final class FirstOf<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var continuation: CheckedContinuation<Value, Never>?
    }
    private let state = Mutex(State())

    func fire(_ event: Value) {
        let waiting: CheckedContinuation<Value, Never>?? = state.withLock { state in
            guard state.value == nil else { return .none }
            state.value = event
            defer { state.continuation = nil }
            return .some(state.continuation)
        }
        if case .some(let waiting?) = waiting { waiting.resume(returning: event) }
    }

    func wait() async -> Value {
        await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
            let value: Value? = state.withLock { state in
                if let value = state.value { return value }
                state.continuation = c
                return nil
            }
            if let value { c.resume(returning: value) }
        }
    }
}
