import Foundation
import ProxyServer
import TokentapCore

/// Which proxy `run` and `browser` use (design.md, "State file"): `--attach HOST:PORT`, else the
/// live `tokentap proxy` of this home's `recordings/proxy.json` (unless proxy options were given),
/// else a proxy of their own on a free loopback port (which writes no state file).
struct ProxyChoice {
    /// The proxy started by this command (nil when attached).
    let running: RunningProxy?
    /// `HOST:PORT` of the proxy.
    let address: String
    let session: String
    /// The patterns the proxy intercepts.
    let intercept: [HostPattern]
    /// The database the proxy records into (the attached proxy's home's).
    let database: URL
    /// The root certificate of the proxy's CA (the attached proxy's home's).
    let caFile: URL

    var attached: Bool { running == nil }

    /// Resolves the proxy and says on stderr which one it is.
    ///
    /// - Parameters:
    ///   - command: the subcommand's name, for messages (`run`, `browser`).
    /// - Throws: `CLIFailure.usage` for `--attach` with proxy options or a bad `--attach` value;
    ///   `CLIFailure.runtime` when no tokentap answers at `--attach`; what starting a proxy throws.
    static func resolve(options: ProxyOptions, attach: String?, home: Home, command: String) async throws -> ProxyChoice {
        try checkUsage(options: options, attach: attach)
        var attached: ProxyStatus?
        if let attach {
            let target: HostPort
            do { target = try HostPort(parsing: attach, option: "--attach") } catch let error as ConfigurationError {
                throw CLIFailure.usage(error.description)
            }
            guard let status = await ProxyStatus.probe(target) else {
                throw CLIFailure.runtime("no tokentap proxy answers at \(target): start one there with `tokentap proxy --listen \(target)`, or leave out --attach and `\(command)` starts its own")
            }
            attached = status
        } else {
            let stateFile = ProxyStateFile(home: home)
            if let named = stateFile.read() {
                let live = await stateFile.liveProxy()
                if let live, options.isSpecified {
                    warn("tokentap: proxy options given, so starting a separate proxy (the one at \(live.address), session \(live.session), is left alone)")
                } else if let live {
                    attached = live
                } else {
                    warn("tokentap: ignoring \(stateFile.url.path): no tokentap answers at \(named.address) any more")
                }
            }
        }

        if let attached {
            let proxyHome = Home(url: URL(fileURLWithPath: attached.home, isDirectory: true), source: .option)
            warn("tokentap: attached to the proxy at \(attached.address) (pid \(attached.pid)), session \(attached.session); its options apply")
            return ProxyChoice(
                running: nil, address: attached.address, session: attached.session,
                intercept: (attached.intercept ?? HostPattern.defaults.map(\.pattern)).compactMap { try? HostPattern(parsing: $0) },
                database: proxyHome.database, caFile: CertificatePaths(home: proxyHome).caCertificate)
        }
        let config = try options.configuration(defaultListen: "127.0.0.1:0")
        let profiles = try loadProfiles(home: home, files: options.profiles)
        let proxy = try await RunningProxy.start(config: config, home: home, keepSecrets: options.keepSecrets, profiles: profiles,
                                                 announce: false)
        warn("tokentap: proxy on \(proxy.address), session \(config.session), recording to \(home.database.path)")
        return ProxyChoice(running: proxy, address: proxy.address, session: config.session, intercept: config.interceptPatterns,
                           database: home.database, caFile: proxy.paths.caCertificate)
    }

    /// `--attach` together with proxy options is a usage error (checked before anything is created).
    static func checkUsage(options: ProxyOptions, attach: String?) throws {
        if attach != nil && options.isSpecified {
            throw CLIFailure.usage("--attach uses a running proxy as it was started: drop the proxy options, or drop --attach to start a proxy with them")
        }
    }

    /// The proxy's root certificate (PEM), or a runtime failure naming the file and the fix.
    func caPEM() throws -> String {
        guard let pem = try? String(contentsOf: caFile, encoding: .utf8) else {
            throw CLIFailure.runtime("cannot read tokentap's CA \(caFile.path): run `tokentap ca --home \(caFile.deletingLastPathComponent().deletingLastPathComponent().path)`")
        }
        return pem
    }

    /// Stops the proxy this command started (nothing when attached).
    func stop() async {
        await running?.stop()
    }
}
