import ArgumentParser
import Foundation
import ProxyServer
import TokentapCore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one command with its HTTP(S) traffic going through tokentap.",
        discussion: """
        Starts a proxy on a free loopback port (or uses --attach HOST:PORT), then runs COMMAND with HTTPS_PROXY, \
        HTTP_PROXY, SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and NODE_EXTRA_CA_CERTS set so curl, Python and \
        Node trust tokentap's CA. Exits with the command's exit code.
        """)

    @OptionGroup var options: ProxyOptions

    @Option(help: ArgumentHelp("Use a proxy that is already running instead of starting one.", valueName: "HOST:PORT"))
    var attach: String?

    @OptionGroup var homeOptions: HomeOptions

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func run() async throws {
        guard let executable = command.first else {
            throw CLIFailure.usage("give the command to run after --, e.g. tokentap run -- python app.py")
        }
        let home = try homeOptions.resolve()
        let paths = CertificatePaths(home: home)
        var running: RunningProxy?
        let proxyAddress: String
        if let attach {
            let target: HostPort
            do { target = try HostPort(parsing: attach, option: "--attach") } catch let error as ConfigurationError {
                throw CLIFailure.usage(error.description)
            }
            _ = try paths.loadAuthority()
            proxyAddress = target.description
        } else {
            let config = try options.configuration(defaultListen: "127.0.0.1:0")
            let proxy = try await RunningProxy.start(config: config, home: home, keepSecrets: options.keepSecrets, announce: false)
            running = proxy
            proxyAddress = proxy.address
            warn("tokentap: proxy on \(proxy.address), session \(config.session), recording to \(home.database.path)")
        }
        let (authority, _) = try paths.loadAuthority()
        try writeBundle(caPEM: authority.rootPEM, to: paths.bundle)

        var environment = ProcessInfo.processInfo.environment
        let proxyURL = "http://\(proxyAddress)"
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"] {
            environment[name] = proxyURL
        }
        for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] { environment[name] = paths.bundle.path }
        environment["NODE_EXTRA_CA_CERTS"] = paths.caCertificate.path
        environment["TOKENTAP_PROXY"] = proxyURL

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.environment = environment
        do {
            try process.run()
        } catch {
            await running?.stop()
            throw CLIFailure.runtime("cannot start \(executable): \(error)")
        }
        let status: Int32 = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
        if let running {
            await running.stop()
            warn("tokentap: done; browse with `tokentap list --session \(running.pipeline.session)`")
        }
        throw ExitCode(status)
    }

    /// System roots plus tokentap's CA, for runtimes that take one bundle file.
    private func writeBundle(caPEM: String, to url: URL) throws {
        var bundle = ""
        for path in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                bundle = text
                break
            }
        }
        if !bundle.isEmpty && !bundle.hasSuffix("\n") { bundle += "\n" }
        bundle += "# tokentap CA\n" + caPEM
        try FileSystem.writeAtomically(Data(bundle.utf8), to: url, mode: 0o644)
    }
}
