import ArgumentParser
import Capture
import CertificateAuthority
import Foundation
import Logging
import NIOCore
import NIOPosix
import OAuthDiagnosis
import ProxyServer
import Recording
import TokentapCore

/// The options `proxy` and `run` share (design.md, "Command line").
struct ProxyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Address to listen on; port 0 picks a free port.", valueName: "HOST:PORT"))
    var listen: String?

    @Option(help: ArgumentHelp("Also intercept hosts matching this pattern (exact, *.domain or *); miro.com and *.miro.com always are.", valueName: "PATTERN"))
    var intercept: [String] = []

    @Option(name: .customLong("map-remote"), help: ArgumentHelp("Connect to ADDR:PORT instead of HOST, keeping SNI, Host and certificate checks for HOST.", valueName: "HOST[:PORT]=ADDR:PORT"))
    var mapRemote: [String] = []

    @Option(name: .customLong("upstream-ca"), help: ArgumentHelp("Also trust this PEM CA for upstream TLS.", valueName: "FILE"))
    var upstreamCA: [String] = []

    @Option(help: ArgumentHelp("Session name (default: the start time, YYYYMMDD-HHMMSS).", valueName: "NAME"))
    var session: String?

    @Option(name: .customLong("max-body"), help: ArgumentHelp("Bytes of each body to record (default: 1048576).", valueName: "BYTES"))
    var maxBody: Int?

    @Flag(name: .customLong("keep-secrets"), help: "Store raw secrets locally (exports stay redacted). Loud on purpose.")
    var keepSecrets = false

    @Option(name: .customLong("upstream-timeout"), help: ArgumentHelp("Seconds to wait for an upstream to connect or answer (504 after; default: 30).", valueName: "SECONDS"))
    var upstreamTimeout: Double?

    @Option(name: .customLong("client-timeout"), help: ArgumentHelp("Close client connections idle this long (default: 60).", valueName: "SECONDS"))
    var clientTimeout: Double?

    @Flag(name: .customLong("allow-remote"), help: "Allow listening on a non-loopback address.")
    var allowRemote = false

    @Flag(name: .customLong("insecure-upstream"), help: "Do NOT verify upstream certificates (printed on every line it affects).")
    var insecureUpstream = false

    @Option(name: .customLong("profile"), help: ArgumentHelp("Add or override a provider profile (JSON, the format of the built-in ones; repeatable; after the home's profiles/*.json).", valueName: "FILE"))
    var profiles: [String] = []

    /// True when any proxy option was given (`run` then starts its own proxy instead of attaching).
    var isSpecified: Bool {
        listen != nil || !intercept.isEmpty || !mapRemote.isEmpty || !upstreamCA.isEmpty || session != nil || maxBody != nil
            || keepSecrets || upstreamTimeout != nil || clientTimeout != nil || allowRemote || insecureUpstream || !profiles.isEmpty
    }

    /// Validates every option and builds the proxy configuration. Bad values: `CLIFailure.usage`.
    func configuration(defaultListen: String, now: Date = Date()) throws -> ProxyConfiguration {
        var config = ProxyConfiguration()
        do {
            config.listen = try HostPort(parsing: listen ?? defaultListen, option: "--listen")
            config.intercept = try intercept.map { try HostPattern(parsing: $0) }
            config.mapRemote = try mapRemote.map { try MapRemoteRule(parsing: $0) }
        } catch let error as ConfigurationError {
            throw CLIFailure.usage(error.description)
        }
        if !allowRemote && !isLoopbackHost(config.listen.host) {
            throw CLIFailure.usage("--listen \(config.listen) is not a loopback address: anyone who can reach it could use the proxy; add --allow-remote if you mean it")
        }
        for path in upstreamCA {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") else {
                throw CLIFailure.usage("--upstream-ca \(path): not a readable PEM certificate file")
            }
        }
        config.upstreamCAs = upstreamCA.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        if let session {
            guard !session.isEmpty, session.count <= 100,
                  session.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:@".contains($0)) }) else {
                throw CLIFailure.usage("invalid value '\(session)' for --session: use letters, digits and - _ . : @ (at most 100)")
            }
            config.session = session
        } else {
            config.session = Self.defaultSessionName(now)
        }
        let maxBody = self.maxBody ?? (1 << 20)
        let upstreamTimeout = self.upstreamTimeout ?? 30
        let clientTimeout = self.clientTimeout ?? 60
        guard maxBody >= 0 else { throw CLIFailure.usage("invalid value '\(maxBody)' for --max-body: expected a byte count >= 0") }
        config.maxBody = maxBody
        guard upstreamTimeout > 0, upstreamTimeout.isFinite else {
            throw CLIFailure.usage("invalid value '\(upstreamTimeout)' for --upstream-timeout: expected seconds > 0")
        }
        guard clientTimeout > 0, clientTimeout.isFinite else {
            throw CLIFailure.usage("invalid value '\(clientTimeout)' for --client-timeout: expected seconds > 0")
        }
        config.upstreamTimeout = upstreamTimeout
        config.clientTimeout = clientTimeout
        config.insecureUpstream = insecureUpstream
        return config
    }

    /// `YYYYMMDD-HHMMSS` in UTC.
    static func defaultSessionName(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }

}

/// The provider profiles in force where findings are computed (`proxy`, `run`, `browser`, `import`):
/// the built-in ones, then the home's `profiles/*.json` (by name), then each `--profile FILE` in
/// order. A file that cannot be used is a usage error (exit 2) naming the file, the field and (for a
/// syntax error) the line.
func loadProfiles(home: Home, files: [String]) throws -> [ProviderProfile] {
    let homeFiles = ProfileLoader.files(inFolder: home.profiles.path)
    do {
        // Absolute paths: the session records them, and `doctor` reads them again from any folder.
        return try ProfileLoader.load(files: homeFiles + files.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
    } catch let error as ProfileFileError {
        throw CLIFailure.usage(error.description)
    }
}

/// The profile files a session recorded (`origin` of an added profile, or the file of an overridden
/// field) that are not in the home's `profiles/` (which `loadProfiles` reads anyway), by name:
/// those still readable (`present`) and those gone (`missing`).
func sessionProfileFiles(_ recorded: [SessionProfile], home: Home) -> (present: [String], missing: [String]) {
    let homeFiles = Set(ProfileLoader.files(inFolder: home.profiles.path))
    let files = Set(recorded.flatMap { p in (p.origin == "built-in" ? [] : [p.origin]) + Array(p.overrides.values) })
        .subtracting(homeFiles).subtracting(["built-in"]).sorted()
    return (files.filter { FileManager.default.isReadableFile(atPath: $0) }, files.filter { !FileManager.default.isReadableFile(atPath: $0) })
}

/// Prints to stderr.
func warn(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the intercepting proxy; record and diagnose Miro OAuth traffic.")

    @OptionGroup var options: ProxyOptions
    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        let config = try options.configuration(defaultListen: "127.0.0.1:8877")
        let home = try homeOptions.resolve()
        let profiles = try loadProfiles(home: home, files: options.profiles)
        let signals = TerminationSignals.install()
        let running = try await RunningProxy.start(config: config, home: home, keepSecrets: options.keepSecrets,
                                                   profiles: profiles, announce: true, writeStateFile: true)
        await signals.wait()
        await running.stop()
    }
}

/// A started proxy with its capture pipeline; shared by `proxy` and `run`.
final class RunningProxy: Sendable {
    let server: ProxyServer
    let pipeline: CapturePipeline
    let group: MultiThreadedEventLoopGroup
    let address: String
    let paths: CertificatePaths
    /// What the identity request answers (and `recordings/proxy.json` holds when this proxy wrote it).
    let status: ProxyStatus
    /// The state file this proxy wrote and removes on exit (nil: it wrote none).
    let stateFile: ProxyStateFile?

    private init(server: ProxyServer, pipeline: CapturePipeline, group: MultiThreadedEventLoopGroup, address: String,
                 paths: CertificatePaths, status: ProxyStatus, stateFile: ProxyStateFile?) {
        self.server = server
        self.pipeline = pipeline
        self.group = group
        self.address = address
        self.paths = paths
        self.status = status
        self.stateFile = stateFile
    }

    /// Loads the CA, opens the store, binds the listener and prints the start-up lines, the last
    /// one being `listening on HOST:PORT` (when `announce`). With `writeStateFile` (`tokentap
    /// proxy`), writes `recordings/proxy.json` before that line, unless it names another live proxy.
    ///
    /// - Throws: `CLIFailure.usage` (exit 2) when the CA's name constraints do not permit an
    ///   `--intercept` pattern (`CertificatePaths.authority(for:)`); a CA without constraints gets
    ///   one warning line on stderr instead.
    static func start(config: ProxyConfiguration, home: Home, keepSecrets: Bool, profiles: [ProviderProfile],
                      announce: Bool, writeStateFile: Bool = false) async throws -> RunningProxy {
        let paths = CertificatePaths(home: home)
        // Exit 2 when the CA cannot sign for an --intercept pattern (name constraints).
        let (authority, created) = try paths.authority(for: config)
        if let warning = paths.startupWarning(authority.layout) { warn(warning) }
        var logger = Logger(label: "tokentap") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["TOKENTAP_DEBUG"] != nil ? .debug : .notice
        let pipeline: CapturePipeline
        do {
            pipeline = try CapturePipeline(database: home.database, fingerprintKey: paths.fingerprintKey, session: config.session,
                                           keepSecrets: keepSecrets, insecureUpstream: config.insecureUpstream, echo: announce,
                                           maxBody: config.maxBody, profiles: profiles, logger: logger)
        } catch let error as CaptureSetupError {
            throw CLIFailure.runtime(error.description)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server: ProxyServer
        let bound: SocketAddress
        do {
            server = try ProxyServer(configuration: config, authority: authority, sink: BenchSwitch.recordingOff ? nil : pipeline,
                                     logger: logger, group: group)
            bound = try await server.start()
        } catch let error as IOError {
            try? await group.shutdownGracefully()
            throw CLIFailure.runtime("cannot listen on \(config.listen): \(error.description); choose another --listen HOST:PORT (port 0 picks a free one)")
        } catch {
            try? await group.shutdownGracefully()
            throw CLIFailure.runtime("cannot start the proxy: \(error)")
        }
        let address = ProxyServer.describe(bound)
        let status = ProxyStatus(address: address, pid: getpid(), session: config.session, home: home.url.path,
                                 version: Tokentap.version, started: Date(),
                                 intercept: config.interceptPatterns.map(\.description))
        server.setStatus(status)
        var stateFile: ProxyStateFile?
        if writeStateFile {
            let file = ProxyStateFile(home: home)
            // (A stale file may name this very address: then it is this proxy that answers.)
            if let other = await file.liveProxy(), other.pid != status.pid {
                warn("tokentap: another proxy (pid \(other.pid), session \(other.session)) is running at \(other.address) and owns \(file.url.path); this one writes no state file, so `tokentap run` attaches to that one")
            } else {
                do {
                    try file.write(status)
                    stateFile = file
                } catch {
                    warn("tokentap: cannot write \(file.url.path) (\(error)): `tokentap run` will not find this proxy; use `tokentap run --attach \(address)`")
                }
            }
        }
        if announce {
            if created { print("created a new CA: \(paths.caCertificate.path) (see `tokentap ca` to trust it)") }
            print("tokentap \(Tokentap.version), home \(home.url.path)")
            print("CA: \(paths.caCertificate.path)")
            print("intercepting: \(config.interceptPatterns.map(\.description).joined(separator: ", "))")
            for rule in config.mapRemote {
                print("map-remote: \(rule.host)\(rule.port.map { ":\($0)" } ?? "") -> \(rule.target)")
            }
            if config.insecureUpstream { print("WARNING: --insecure-upstream: upstream certificates are NOT verified") }
            if keepSecrets { print("WARNING: --keep-secrets: raw secrets are stored in \(home.database.path); exports stay redacted") }
            for p in profiles where p.origin != "built-in" || !p.overrides.isEmpty {
                print("profile: \(p.name) from \(p.origin == "built-in" ? Set(p.overrides.values).sorted().joined(separator: ", ") + " (over the built-in one)" : p.origin)")
            }
            if BenchSwitch.recordingOff {
                print("recording OFF (\(BenchSwitch.noRecordVariable)=1, bench only): exchanges are relayed, not stored")
            } else {
                print("recording to \(home.database.path)")
            }
            print("session: \(config.session)")
            print("listening on \(address)")
        }
        return RunningProxy(server: server, pipeline: pipeline, group: group, address: address, paths: paths,
                            status: status, stateFile: stateFile)
    }



    /// Closes the listener, lets in-flight exchanges finish (5 s at most), flushes the recording.
    func stop() async {
        stateFile?.remove(ifItNames: status)
        await server.shutdown(grace: .seconds(5))
        let backlog = pipeline.backlog
        if backlog > 0 { warn("stopping: recording the last \(backlog) exchange(s) to \(pipeline.store.path.path)") }
        await pipeline.close()
        try? await group.shutdownGracefully()
    }
}

/// SIGINT/SIGTERM caught from the moment `install()` returns (before `listening on` is printed,
/// so a supervisor that signals right after start-up still gets a clean exit 0).
final class TerminationSignals: @unchecked Sendable {
    private let first = FirstOf<Bool>()
    /// Written by `install` only, before it returns.
    private var sources: [DispatchSourceSignal] = []

    static func install(_ caught: [Int32] = [SIGINT, SIGTERM]) -> TerminationSignals {
        let signals = TerminationSignals()
        for sig in caught {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { signals.fire() }
            source.resume()
            signals.sources.append(source)
        }
        return signals
    }

    private func fire() {
        first.fire(true)
    }

    /// Returns once a signal has arrived (at once if one already did).
    func wait() async {
        _ = await first.wait()
    }
}

/// `recordings/proxy.json`: how `run` (and `browser`) find the running `tokentap proxy` of a home
/// (design.md, "State file"). Written atomically, mode 0600; removed on exit. Whether the proxy it
/// names is alive is decided by the identity request, not by the PID.
struct ProxyStateFile: Sendable {
    let url: URL

    init(home: Home) {
        url = home.recordings.appendingPathComponent("proxy.json")
    }

    /// The status the file holds, or nil when there is none (or it does not parse).
    func read() -> ProxyStatus? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return ProxyStatus.decode(data)
    }

    /// The proxy the file names, when it answers the identity request (a stale file: nil).
    func liveProxy() async -> ProxyStatus? {
        guard let named = read(), let address = try? HostPort(parsing: named.address, option: "proxy.json") else { return nil }
        return await ProxyStatus.probe(address)
    }

    func write(_ status: ProxyStatus) throws {
        var data = status.encoded()
        data.append(0x0A)
        try FileSystem.writeAtomically(data, to: url, mode: 0o600)
    }

    /// Removes the file when it still names `status` (another proxy may have taken it over).
    func remove(ifItNames status: ProxyStatus) {
        guard let current = read(), current.pid == status.pid, current.address == status.address else { return }
        try? FileManager.default.removeItem(at: url)
    }
}

/// Bench-only switches, read from the environment and never offered by the CLI (bench/README.md).
enum BenchSwitch {
    /// `TOKENTAP_BENCH_NO_RECORD=1`: the proxy relays without recording (no sink: nothing is
    /// decoded, diagnosed, redacted or stored, and there is no back-pressure), so `bench/run` can
    /// measure the relay's own ceiling in the same run as the recording proxy (issue 25). Any other
    /// value, or none, records as usual.
    static let noRecordVariable = "TOKENTAP_BENCH_NO_RECORD"

    /// Whether `TOKENTAP_BENCH_NO_RECORD` is `1` in this process's environment.
    static var recordingOff: Bool { ProcessInfo.processInfo.environment[noRecordVariable] == "1" }
}
