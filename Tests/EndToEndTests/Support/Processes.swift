import Foundation
import NIOConcurrencyHelpers
import Testing

/// The checkout this test file lives in.
let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The built `tokentap` binary: `TOKENTAP_BIN`, else `.build/debug/tokentap` of this checkout.
/// `scripts/test` builds it before running the tests.
let tokentapBinary: String = {
    if let bin = ProcessInfo.processInfo.environment["TOKENTAP_BIN"], !bin.isEmpty { return bin }
    return packageRoot.appendingPathComponent(".build/debug/tokentap").path
}()

/// A fresh temporary folder.
func makeTemporaryDirectory(_ prefix: String = "tokentap-e2e") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The outcome of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a command to completion (with a time limit), capturing stdout and stderr.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdin: Data? = nil, timeout: TimeInterval = 120) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try? input.fileHandleForWriting.close()
    let outData = NIOLockedValueBox(Data())
    let errData = NIOLockedValueBox(Data())
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        outData.withLockedValue { $0 = out.fileHandleForReading.readDataToEndOfFile() }
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        errData.withLockedValue { $0 = err.fileHandleForReading.readDataToEndOfFile() }
        group.leave()
    }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        process.terminate()
        group.wait()
    }
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: outData.withLockedValue { $0 },
                         stderr: String(decoding: errData.withLockedValue { $0 }, as: UTF8.self))
}

/// Runs `tokentap ARGS` to completion.
@discardableResult
func tokentap(_ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    try runCommand(tokentapBinary, arguments, environment: environment)
}

/// A long-running tokentap process (`proxy`, `sandbox`) whose start-up lines are read until
/// `listening on HOST:PORT`.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    /// Every stdout line so far.
    let lines = NIOLockedValueBox<[String]>([])
    let errorText = NIOLockedValueBox("")
    private(set) var port = 0
    private(set) var host = ""

    /// Starts `executable ARGS` and waits (up to 60 s) for `listening on`.
    init(_ arguments: [String], executable: String = tokentapBinary, environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // SwiftNIO's strict mode turns misuse it only reports (a task scheduled on an event loop
        // that has shut down) into a crash, so `stop() == 0` checks catch it.
        var env = environment ?? ProcessInfo.processInfo.environment
        env["SWIFTNIO_STRICT"] = "1"
        process.environment = env
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let ready = DispatchSemaphore(value: 0)
        let readyOnce = NIOLockedValueBox(false)
        collectLines(out, into: lines, onLine: { line in
            if line.hasPrefix("listening on ") && !readyOnce.withLockedValue({ $0 }) {
                readyOnce.withLockedValue { $0 = true }
                ready.signal()
            }
        }, onEOF: {
            if !readyOnce.withLockedValue({ $0 }) { ready.signal() }
        })
        collectText(err, into: errorText)
        guard ready.wait(timeout: .now() + 60) == .success,
              let line = lines.withLockedValue({ $0.last(where: { $0.hasPrefix("listening on ") }) }) else {
            process.terminate()
            throw ProcessFailure(message: "no 'listening on' line; stderr: \(errorText.withLockedValue { $0 })")
        }
        let address = String(line.dropFirst("listening on ".count))
        let colon = address.lastIndex(of: ":")!
        host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        port = Int(address[address.index(after: colon)...])!
    }

    /// `http://HOST:PORT` for `--proxy`.
    var proxyURL: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }

    /// The first stdout line starting with `prefix`, without it.
    func line(startingWith prefix: String) -> String? {
        lines.withLockedValue { $0.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Reads `pipe` line by line on a thread of its own until EOF: each line is appended to `lines`,
/// then passed to `onLine`; `onEOF` runs at the end. (Not on GCD's global queue: blocking reads wait
/// there for a free worker, and with many processes' readers there may be none for a long time.)
func collectLines(_ pipe: Pipe, into lines: NIOLockedValueBox<[String]>,
                  onLine: @escaping @Sendable (String) -> Void = { _ in }, onEOF: @escaping @Sendable () -> Void = {}) {
    Thread.detachNewThread {
        var pending = Data()
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...nl)
                lines.withLockedValue { $0.append(line) }
                onLine(line)
            }
        }
        onEOF()
    }
}

/// Reads `pipe` to EOF on a thread of its own, appending its text to `text`.
func collectText(_ pipe: Pipe, into text: NIOLockedValueBox<String>) {
    Thread.detachNewThread {
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text.withLockedValue { $0 += String(decoding: chunk, as: UTF8.self) }
        }
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Waits until `condition` holds, polling every 50 ms, for at most `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
