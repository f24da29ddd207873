import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ProxyServer
import Sandbox

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sandbox", abstract: "Imitate Miro's OAuth and REST endpoints locally (HTTPS).")

    @Option(help: ArgumentHelp("Address to listen on; port 0 picks a free port.", valueName: "HOST:PORT"))
    var listen = "127.0.0.1:9443"
    @Option(help: ArgumentHelp("Register an app (repeatable); split at the first two colons.", valueName: "CLIENT_ID:CLIENT_SECRET:REDIRECT_URI"))
    var app: [String] = []
    @Option(name: .customLong("code-ttl"), help: ArgumentHelp("Authorization code lifetime.", valueName: "SECONDS")) var codeTTL: Double = 600
    @Option(name: .customLong("access-ttl"), help: ArgumentHelp("Access token lifetime (expires_in).", valueName: "SECONDS")) var accessTTL: Double = 3599
    @Option(name: .customLong("refresh-ttl"), help: ArgumentHelp("Refresh token lifetime.", valueName: "SECONDS")) var refreshTTL: Double = 60 * 86_400
    @Option(name: .customLong("clock-offset"), help: ArgumentHelp("Seconds added to the wall clock.", valueName: "SECONDS")) var clockOffset: Double = 0
    @Option(name: .customLong("rate-budget"), help: ArgumentHelp("REST requests per minute per user per app before 429.", valueName: "N")) var rateBudget = 100_000
    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        var config = SandboxConfiguration()
        do {
            let hostPort = try HostPort(parsing: listen, option: "--listen")
            (config.host, config.port) = (hostPort.host, hostPort.port)
            config.apps = [.demo] + (try app.map { try SandboxApp(parsing: $0) })
        } catch let error as ConfigurationError { throw CLIFailure.usage(error.description) }
        catch let error as SandboxAppParseError { throw CLIFailure.usage(error.description) }
        for (name, value) in [("--code-ttl", codeTTL), ("--access-ttl", accessTTL), ("--refresh-ttl", refreshTTL)] where !(value > 0 && value.isFinite) {
            throw CLIFailure.usage("invalid value '\(value)' for \(name): expected seconds > 0")
        }
        guard clockOffset.isFinite else { throw CLIFailure.usage("invalid value for --clock-offset: expected seconds") }
        guard rateBudget >= 0 else { throw CLIFailure.usage("invalid value '\(rateBudget)' for --rate-budget: expected a count >= 0") }
        (config.codeTTL, config.accessTTL, config.refreshTTL, config.clockOffset, config.rateBudget) =
            (codeTTL, accessTTL, refreshTTL, clockOffset, rateBudget)
        let home = try homeOptions.resolve()
        var logger = Logger(label: "tokentap.sandbox") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["TOKENTAP_DEBUG"] != nil ? .debug : .notice
        let signals = TerminationSignals.install()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server: SandboxServer
        let bound: SocketAddress
        do {
            server = try SandboxServer(configuration: config, certificatesDirectory: home.certs, group: group, logger: logger)
            bound = try await server.start()
        } catch let error as IOError {
            try? await group.shutdownGracefully()
            throw CLIFailure.runtime("cannot listen on \(listen): \(error.description); choose another --listen HOST:PORT (port 0 picks a free one)")
        } catch {
            try? await group.shutdownGracefully()
            throw CLIFailure.runtime("cannot start the sandbox: \(error)")
        }
        let demo = SandboxApp.demo
        print("demo app: \(demo.clientID) \(demo.clientSecret) \(demo.redirectURI)")
        print("sandbox CA: \(server.caCertificatePath)")
        print("listening on \(ProxyServer.describe(bound))")
        await signals.wait()
        try? await server.shutdown()
        try? await group.shutdownGracefully()
    }
}
