import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokentap-loadgen",
        abstract: "HTTPS load generator for bench/run (SwiftNIO): CONNECT through a proxy or direct TLS, "
            + "keep-alive over N connections, for a duration or a request count; prints one JSON line."
    )

    @Option(help: "HOST:PORT to open TCP to (the proxy, or the server when direct).")
    var connect: String

    @Option(help: "Send CONNECT HOST:PORT first (through a proxy); omit for direct.")
    var proxyTarget: String?

    @Option(help: "TLS server name and Host header.")
    var sni: String = "api.miro.com"

    @Option(help: "PEM CA file the client trusts (the only trust root).")
    var ca: String

    @Option(help: "Connections (each with one request in flight).")
    var connections: Int = 16

    @Option(help: "Event loop threads.")
    var threads: Int = 2

    @Option(help: .hidden)
    var procs: Int?  // loadgen.py's name for --threads; kept so old command lines still run

    @Option(help: "Seconds to run (0 = use --requests).")
    var duration: Double = 0

    @Option(help: "Total requests, split across the connections (0 = use --duration).")
    var requests: Int = 0

    @Option(help: "Request method.")
    var method: String = "GET"

    @Option(help: "Request path; repeat to cycle through several.")
    var path: [String] = []

    @Option(help: "Request body (sent form-encoded, with Content-Length).")
    var body: String = ""

    @Option(help: ArgumentHelp("Text in --body replaced, in every request, by a number no other request of the run "
        + "carries (12 digits, so Content-Length stays the same): e.g. a distinct authorization code per request.",
        valueName: "placeholder"))
    var sequence: String?

    @Flag(help: "A new TCP connection (and CONNECT, and TLS handshake) per request.")
    var newConn = false

    @Option(help: "Seconds a request may take, from its start to the end of its response.")
    var timeout: Double = 30

    @Option(help: ArgumentHelp("Write one line per request to FILE (`STATUS TARGET BYTES FNV1A64` of the body, or "
                                   + "`ERR TARGET reason`) and make every target unique by appending `c=CONNECTION&n=SEQ` "
                                   + "to its query: bench/load compares these lines with what the proxy recorded.",
                               valueName: "FILE"))
    var log: String?

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard (procs ?? threads) >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard duration > 0 || requests > 0 else { throw ValidationError("give --duration S or --requests N") }
        guard duration >= 0, requests >= 0 else { throw ValidationError("--duration and --requests cannot be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let sequence {
            guard !sequence.isEmpty, body.contains(sequence) else {
                throw ValidationError("--sequence '\(sequence)' does not occur in --body")
            }
        }
        _ = try HostPort(parsing: connect, option: "--connect")
        if let proxyTarget { _ = try HostPort(parsing: proxyTarget, option: "--proxy-target") }
    }

    func run() throws {
        let wallStart = NIODeadline.now()
        let config = try makeConfig()
        let threadCount = max(1, min(procs ?? threads, connections))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threadCount)
        defer { try? group.syncShutdownGracefully() }

        let start = NIODeadline.now()
        let deadline: NIODeadline? = duration > 0 ? start + .nanoseconds(Int64(duration * 1e9)) : nil
        let reporter = ErrorReporter(eventLoop: group.next())
        var futures: [EventLoopFuture<WorkerResult>] = []
        for k in 0..<connections {
            let quota: Int? = requests > 0 ? requests / connections + (k < requests % connections ? 1 : 0) : nil
            let loop = group.next()
            futures.append(loop.flatSubmit {
                Worker(config: config, eventLoop: loop, quota: quota, deadline: deadline,
                       pathOffset: k, reporter: reporter).start()
            })
        }
        let results = try EventLoopFuture.whenAllSucceed(futures, on: group.next()).wait()
        let wallEnd = NIODeadline.now()
        if let log {
            let text = results.flatMap(\.log).joined(separator: "\n") + (results.contains { !$0.log.isEmpty } ? "\n" : "")
            guard let file = fopen(log, "w") else { throw ValidationError("cannot write --log \(log)") }
            fputs(text, file)
            fclose(file)
        }
        print(Summary(results: results, start: start, wallStart: wallStart, wallEnd: wallEnd).json())
    }

    private func makeConfig() throws -> Config {
        let target = try HostPort(parsing: connect, option: "--connect")
        let address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        let sslContext = try NIOSSLContext(configuration: tls)

        let httpMethod = HTTPMethod(rawValue: method)
        let bodyBytes = ByteBuffer(string: body)
        var headers = HTTPHeaders([("Host", sni), ("User-Agent", "tokentap-bench"), ("Accept", "*/*")])
        if method != "GET" || !body.isEmpty {
            headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            headers.add(name: "Content-Length", value: String(bodyBytes.readableBytes))
        }
        // With --sequence: the body around the (first) placeholder, the number goes in between.
        let template = sequence.flatMap { body.firstRange(of: $0) }.map {
            (prefix: String(body[..<$0.lowerBound]), suffix: String(body[$0.upperBound...]))
        }
        if template != nil {
            headers.replaceOrAdd(name: "Content-Length",
                                 value: String(bodyBytes.readableBytes - sequence!.utf8.count + PreparedRequest.sequenceDigits))
        }
        let prepared = (path.isEmpty ? ["/"] : path).map { uri in
            PreparedRequest(
                head: HTTPRequestHead(version: .http1_1, method: httpMethod, uri: uri, headers: headers),
                body: bodyBytes.readableBytes > 0 ? bodyBytes : nil,
                template: template
            )
        }
        return Config(
            address: address,
            proxyTarget: proxyTarget,
            sslContext: sslContext,
            serverName: sni,
            requests: prepared,
            connections: connections,
            runSalt: Int.random(in: 0..<10_000),
            newConnectionPerRequest: newConn,
            timeout: .nanoseconds(Int64(timeout * 1e9)),
            maxErrorsPerConnection: max(10, 2000 / connections),
            log: log != nil
        )
    }
}

struct HostPort {
    let host: String
    let port: Int

    init(parsing text: String, option: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port), colon != text.startIndex
        else { throw ValidationError("\(option) wants HOST:PORT, got '\(text)'") }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }
}

/// One request, built once: the encoder serialises the head, the body buffer is shared (no copy).
/// With a `template` (`--sequence`), the body is built per request around a distinct number.
struct PreparedRequest: Sendable {
    /// Width of the number that replaces `--sequence`'s placeholder.
    static let sequenceDigits = 12

    let head: HTTPRequestHead
    let body: ByteBuffer?
    var template: (prefix: String, suffix: String)? = nil

    /// The body of request number `sequence` (zero-padded to `sequenceDigits` digits in the template).
    func body(sequence: Int) -> ByteBuffer? {
        guard let template else { return body }
        let digits = String(sequence)
        let number = String(repeating: "0", count: max(0, Self.sequenceDigits - digits.count)) + digits
        return ByteBuffer(string: template.prefix + number + template.suffix)
    }
}

struct Config: Sendable {
    let address: SocketAddress
    let proxyTarget: String?
    let sslContext: NIOSSLContext
    let serverName: String
    let requests: [PreparedRequest]
    /// Connection slots, and a random number for this run: request numbers are
    /// `runSalt * 10^8 + slot + connections * i`, distinct within the run and unlikely to repeat across runs.
    let connections: Int
    let runSalt: Int
    let newConnectionPerRequest: Bool
    let timeout: TimeAmount
    let maxErrorsPerConnection: Int
    /// `--log`: unique targets, one log line per request.
    let log: Bool
}
