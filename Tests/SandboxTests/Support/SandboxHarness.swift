import Foundation
import NIOCore
import NIOPosix
import Sandbox
import Testing

/// What one curl call saw.
struct CurlResult {
    var status: Int
    /// Response headers of the final response, lower-cased names (last value wins).
    var headers: [String: String]
    var body: String

    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

/// A sandbox server started in-process on 127.0.0.1:0 with a fresh certs folder, driven with curl
/// resolving miro.com and api.miro.com to it.
final class SandboxHarness {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let directory: URL
    let server: SandboxServer
    private(set) var port = 0

    static let demo = SandboxApp.demo

    init(_ configure: (inout SandboxConfiguration) -> Void = { _ in }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-tests-\(UUID().uuidString)")
        var configuration = SandboxConfiguration()
        configure(&configuration)
        server = try SandboxServer(configuration: configuration,
                                   certificatesDirectory: directory.appendingPathComponent("certs"), group: group)
    }

    static func start(_ configure: (inout SandboxConfiguration) -> Void = { _ in }) async throws -> SandboxHarness {
        let harness = try SandboxHarness(configure)
        harness.port = try #require(try await harness.server.start().port)
        return harness
    }

    /// Starts a sandbox, runs `body` with it, and stops it (also when `body` throws).
    static func with(_ configure: (inout SandboxConfiguration) -> Void = { _ in },
                     _ body: (SandboxHarness) async throws -> Void) async throws {
        let harness = try await start(configure)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    func stop() async {
        try? await server.shutdown()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: directory)
    }

    var api: String { "https://api.miro.com:\(port)" }
    var web: String { "https://miro.com:\(port)" }

    /// Runs `/usr/bin/curl` against the sandbox and returns status, headers and body.
    func curl(_ arguments: [String]) async throws -> CurlResult {
        let id = UUID().uuidString
        let headerFile = directory.appendingPathComponent("h-\(id)"), bodyFile = directory.appendingPathComponent("b-\(id)")
        defer {
            try? FileManager.default.removeItem(at: headerFile)
            try? FileManager.default.removeItem(at: bodyFile)
        }
        let fixed = ["-sS", "--cacert", server.caCertificatePath,
                     "--resolve", "miro.com:\(port):127.0.0.1", "--resolve", "api.miro.com:\(port):127.0.0.1",
                     "-D", headerFile.path, "-o", bodyFile.path, "-w", "%{http_code}"]
        let (code, stdout, stderr) = try await Self.run("/usr/bin/curl", fixed + arguments)
        guard code == 0 else { throw CurlFailure(message: "curl exited \(code): \(stderr)") }
        let headerText = (try? String(contentsOf: headerFile, encoding: .utf8)) ?? ""
        // The last header block is the final response (a 100 Continue may precede it).
        let blocks = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        var headers: [String: String] = [:]
        for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = (try? String(contentsOf: bodyFile, encoding: .utf8)) ?? ""
        return CurlResult(status: Int(stdout) ?? -1, headers: headers, body: body)
    }

    static func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, stdout, stderr)
    }

    // MARK: - Flow steps

    /// Percent-encodes a query value (RFC 3986 unreserved kept).
    static func enc(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn:
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? text
    }

    /// `GET https://miro.com/oauth/authorize`; returns the response and the redirect's query items.
    func authorize(app: SandboxApp = demo, redirectURI: String? = nil, state: String? = "xyz-state",
                   teamID: String? = nil) async throws -> (CurlResult, [String: String]) {
        var url = "\(web)/oauth/authorize?response_type=code&client_id=\(Self.enc(app.clientID))"
            + "&redirect_uri=\(Self.enc(redirectURI ?? app.redirectURI))"
        if let state { url += "&state=\(Self.enc(state))" }
        if let teamID { url += "&team_id=\(Self.enc(teamID))" }
        let result = try await curl([url])
        var items: [String: String] = [:]
        if let location = result.headers["location"], let components = URLComponents(string: location) {
            for item in components.queryItems ?? [] { items[item.name] = item.value ?? "" }
        }
        return (result, items)
    }

    /// A fresh authorization code for the demo app.
    func code(app: SandboxApp = demo) async throws -> String {
        let (result, items) = try await authorize(app: app)
        #expect(result.status == 302)
        return try #require(items["code"])
    }

    /// Exchanges a code with every parameter in the query string of a POST with an empty body
    /// (what Miro's own examples and SDKs do).
    func exchangeInQuery(code: String, app: SandboxApp = demo, redirectURI: String? = nil,
                         secret: String? = nil) async throws -> CurlResult {
        let url = "\(api)/v1/oauth/token?grant_type=authorization_code&client_id=\(Self.enc(app.clientID))"
            + "&client_secret=\(Self.enc(secret ?? app.clientSecret))&code=\(Self.enc(code))"
            + "&redirect_uri=\(Self.enc(redirectURI ?? app.redirectURI))"
        return try await curl(["-X", "POST", url])
    }

    /// Refreshes with a form body and HTTP Basic client authentication.
    func refresh(_ token: String, app: SandboxApp = demo) async throws -> CurlResult {
        try await curl(["-u", "\(app.clientID):\(app.clientSecret)", "--data-urlencode", "grant_type=refresh_token",
                        "--data-urlencode", "refresh_token=\(token)", "\(api)/v1/oauth/token"])
    }

    func boards(_ token: String?) async throws -> CurlResult {
        var arguments = ["\(api)/v2/boards"]
        if let token { arguments = ["-H", "Authorization: Bearer \(token)"] + arguments }
        return try await curl(arguments)
    }

    func advance(_ seconds: Double) async throws -> CurlResult {
        try await curl(["-X", "POST", "\(api)/__sandbox/advance?seconds=\(seconds)"])
    }
}

struct CurlFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Checks a Miro error envelope: `{"status":S,"code":C,"message":M,"type":"error"}`.
func expectEnvelope(_ result: CurlResult, status: Int, code: String, message: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "body: \(result.body)", sourceLocation: sourceLocation)
    let json = result.json
    #expect(json["status"] as? Int == status, "body: \(result.body)", sourceLocation: sourceLocation)
    #expect(json["code"] as? String == code, "body: \(result.body)", sourceLocation: sourceLocation)
    #expect(json["type"] as? String == "error", "body: \(result.body)", sourceLocation: sourceLocation)
    if let message {
        #expect(json["message"] as? String == message, "body: \(result.body)", sourceLocation: sourceLocation)
    } else {
        #expect(!(json["message"] as? String ?? "").isEmpty, "body: \(result.body)", sourceLocation: sourceLocation)
    }
    #expect(json.count == 4, "body: \(result.body)", sourceLocation: sourceLocation)
}
