import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ProxyServer
import Recording
import RunSupport
import TokentapCore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one command with its HTTP(S) traffic going through tokentap.",
        discussion: """
        Without proxy options or --attach, uses the `tokentap proxy` of this home when it answers (recordings/proxy.json), \
        else starts a proxy of its own on a free loopback port. COMMAND runs in tokentap's process group, with the terminal, \
        and with HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, a CA bundle (system roots + certificates the environment named + tokentap's \
        CA) in SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO, AWS_CA_BUNDLE, DENO_CERT, \
        NODE_EXTRA_CA_CERTS, a wgetrc (WGETRC), a Python hook (PYTHONPATH) that routes urllib3, aiohttp and certifi users, \
        NODE_USE_ENV_PROXY=1 and a Node preload (NODE_OPTIONS) for Node before 22.21/24.5, and JAVA_TOOL_OPTIONS (proxy \
        properties and a trust store made with the JDK's keytool). \
        Exits with the command's status (126 not executable, 127 not found, 128+N killed by signal N) after one summary line \
        on stderr.
        """)

    @OptionGroup var options: ProxyOptions

    @Option(help: ArgumentHelp("Use the tokentap proxy running there (no proxy options then).", valueName: "HOST:PORT"))
    var attach: String?

    @OptionGroup var homeOptions: HomeOptions

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func run() async throws {
        guard let executable = command.first else {
            throw CLIFailure.usage("give the command to run after --, e.g. tokentap run -- python app.py")
        }
        try ProxyChoice.checkUsage(options: options, attach: attach)
        let home = try homeOptions.resolve()
        let started = Date()

        // Which proxy: --attach, the live proxy of proxy.json, or one of our own.
        let proxy = try await ProxyChoice.resolve(options: options, attach: attach, home: home, command: "run")

        let environment: [String: String]
        let javaConfigured: Bool
        do {
            let caPEM = try proxy.caPEM()
            let (runEnvironment, notes) = try RunEnvironment.prepare(
                base: ProcessInfo.processInfo.environment, proxyURL: "http://\(proxy.address)", intercept: proxy.intercept,
                caPEM: caPEM, files: GeneratedFiles(home: home))
            for note in notes { warn("tokentap: \(note)") }
            environment = runEnvironment.apply(to: ProcessInfo.processInfo.environment)
            javaConfigured = runEnvironment.javaTrustStore != nil
        } catch {
            await proxy.stop()
            if let failure = error as? CLIFailure { throw failure }
            throw CLIFailure.runtime("cannot write the files for the command's environment in \(GeneratedFiles(home: home).folder.path): \(error); choose a writable home with --home DIR")
        }

        // The terminal sends SIGINT/SIGQUIT to the whole process group: the command decides, and
        // tokentap outlives it to write the last exchanges. SIGTERM/SIGHUP are passed on.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        let forwarder = SignalForwarder(signals: [SIGTERM, SIGHUP])
        let status: Int32
        var ran = true
        do {
            let child = try ChildProcess.spawn(command, environment: environment)
            forwarder.start(forwardingTo: child)
            status = await child.wait()
        } catch let error as ChildProcess.SpawnError {
            warn("tokentap: \(error)")
            status = error.exitStatus
            ran = false
        }
        forwarder.stop()
        await proxy.stop()
        if ran {
            await RunSummary.print(database: proxy.database, session: proxy.session, since: started, intercept: proxy.intercept,
                                   command: executable, settle: proxy.attached, javaConfigured: javaConfigured)
        }
        Glibc.exit(status)
    }
}

/// Passes SIGTERM and SIGHUP on to the command while it runs.
final class SignalForwarder: @unchecked Sendable {
    private let signals: [Int32]
    private var sources: [DispatchSourceSignal] = []

    init(signals: [Int32]) {
        self.signals = signals
        for sig in signals { signal(sig, SIG_IGN) }  // until the sources are in place
    }

    func start(forwardingTo child: ChildProcess) {
        for sig in signals {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { child.send(sig) }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        for source in sources { source.cancel() }
        sources = []
    }
}

/// The one line `run` prints on stderr when the command has exited.
enum RunSummary {
    /// - Parameters:
    ///   - javaConfigured: false when no JDK was found for `JAVA_TOOL_OPTIONS` (named among the reasons).
    ///   - emptyHint: the likely reason when nothing reached an intercepted host (default: the
    ///     reasons a command's client ignores proxy settings).
    static func print(database: URL, session: String, since: Date, intercept: [HostPattern], command: String,
                      settle: Bool, javaConfigured: Bool = true, emptyHint: String? = nil) async {
        func rows() -> [Exchange]? {
            guard let store = try? ExchangeStore.openReadOnly(path: database) else { return [] }
            return try? store.exchanges(ExchangeQuery(session: session, kinds: Set(ExchangeKind.allCases), since: since,
                                                      includeBodies: true))
        }
        var found = rows()
        if settle {
            // An attached proxy writes off its event loop: give its last exchanges a moment.
            var previous = -1
            for _ in 0..<20 where (found?.count ?? 0) != previous {
                previous = found?.count ?? 0
                try? await Task.sleep(nanoseconds: 200_000_000)
                found = rows()
            }
        }
        guard let found else {
            warn("tokentap: cannot read \(database.path) for the summary; `tokentap list --session \(session)` shows what was recorded")
            return
        }
        let http = found.filter { $0.kind == .http }
        let oauth = http.filter(\.isOAuthRelated).count
        let tlsErrors = found.filter { $0.kind == .tlsError }.count
        let tunnels = found.filter { $0.kind == .tunnel }.count
        let hosts = intercept.map(\.description).joined(separator: ", ")
        if http.isEmpty {
            var line = "tokentap: nothing reached an intercepted host (\(hosts)) through the proxy while \(command) ran (session \(session))"
            if tlsErrors > 0 {
                line += "; \(tlsErrors) TLS handshake(s) failed: the client does not trust tokentap's CA (`tokentap ca` says how)"
            } else if let emptyHint {
                line += ": " + emptyHint
            } else {
                line += ": the client may ignore proxy settings (a requests Session with trust_env=False, a Python started with -I, -E or -S, fetch() on Node before 22.21 or 24.5, an Apache HttpClient built without useSystemProperties()\(javaConfigured ? "" : ", a JVM (no JDK's keytool found, so no JAVA_TOOL_OPTIONS)"), a client with its own proxy or transport settings), or it made no such request"
            }
            if tunnels > 0 { line += "; \(tunnels) connection(s) to other hosts were tunnelled" }
            warn(line)
        } else {
            var line = "tokentap: \(http.count) exchange(s) recorded (\(oauth) OAuth) in session \(session)"
            if tlsErrors > 0 { line += "; \(tlsErrors) TLS handshake(s) failed (client does not trust tokentap's CA)" }
            warn(line + "; browse with `tokentap list --session \(session)`")
        }
    }
}
