import Foundation

/// A real local HTTPS upstream (`TestUpstream`) and a temporary tokentap home: what the proxy,
/// recording and redaction suites start from. `api.miro.com` (and `miro.com`) are mapped to it.
final class UpstreamFixture {
    let dir: URL
    let upstream: TestUpstream

    init() throws {
        dir = try makeTemporaryDirectory()
        upstream = try TestUpstream(directory: dir)
        try upstream.start()
    }

    deinit { upstream.stop() }

    var home: String { dir.appendingPathComponent("home").path }
    var proxyCA: String { dir.appendingPathComponent("home/certs/tokentap-ca.pem").path }

    /// Starts `tokentap proxy` on a `:0` port in the fixture's home.
    func startProxy(session: String = "e2e", _ extra: [String] = [], mapTo port: Int? = nil,
                    trustUpstream: Bool = true, environment: [String: String]? = nil) throws -> ServerProcess {
        let target = "127.0.0.1:\(port ?? upstream.port)"
        var args = ["proxy", "--home", home, "--listen", "127.0.0.1:0", "--session", session,
                    "--map-remote", "api.miro.com=\(target)", "--map-remote", "miro.com=\(target)"]
        if trustUpstream { args += ["--upstream-ca", upstream.caFile.path] }
        return try ServerProcess(args + extra, environment: environment)
    }

    /// curl through `proxy`, trusting tokentap's CA; the body is stdout.
    func curl(_ proxy: ServerProcess, _ args: [String]) throws -> CommandResult {
        try runCommand("/usr/bin/curl", ["-sS", "--proxy", proxy.proxyURL, "--cacert", proxyCA, "--max-time", "30"] + args)
    }
}
