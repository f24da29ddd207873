import ArgumentParser
#if canImport(Glibc)
@preconcurrency import Glibc  // `stdout` is a C global: safe to touch once at start-up
#endif
import Foundation

/// Exit codes: 0 success, 1 a runtime failure (missing database, unknown id), 2 bad usage.
@main
struct Main {
    static func main() async {
        setvbuf(stdout, nil, _IOLBF, 0)  // line-buffered even into a pipe or file (design.md)
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try Tokentap.parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("tokentap: \(failure.message)\n".utf8))
            exit(failure.code)
        } catch {
            let code = Tokentap.exitCode(for: error)
            let message = Tokentap.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            // Usage errors (ArgumentParser's validation failures) exit 2, as the contract says.
            exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// An error with a message that says what to do, and an exit code (1 runtime, 2 usage).
struct CLIFailure: Error {
    var message: String
    var code: Int32

    static func usage(_ message: String) -> CLIFailure { CLIFailure(message: message, code: 2) }
    static func runtime(_ message: String) -> CLIFailure { CLIFailure(message: message, code: 1) }
}

struct Tokentap: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "tokentap",
        abstract: "A local intercepting proxy that records and diagnoses Miro OAuth traffic.",
        discussion: """
        Point an app at it (HTTPS_PROXY=http://127.0.0.1:8877, or `tokentap run -- COMMAND`); it intercepts \
        miro.com and *.miro.com, records every exchange with secrets redacted, and explains failed token exchanges.
        """,
        version: version,
        subcommands: [ProxyCommand.self, RunCommand.self, BrowserCommand.self, CACommand.self, ListCommand.self, ShowCommand.self, DoctorCommand.self,
                      SandboxCommand.self, ExportCommand.self, ImportCommand.self,
                      SessionsCommand.self, DeleteCommand.self, TailCommand.self]
    )
}

/// `--home DIR`, accepted by every subcommand (after the subcommand name).
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Folder holding certs/ and recordings/ (default: TOKENTAP_HOME, the checkout tokentap was built in, else ~/.tokentap).", valueName: "DIR"))
    var home: String?

    /// The resolved home, created if needed.
    func resolve(prepare: Bool = true) throws -> Home {
        let home = Home.resolve(option: home, environment: ProcessInfo.processInfo.environment,
                                executablePath: Home.currentExecutablePath)
        if prepare {
            do { try home.prepare() } catch { throw CLIFailure.runtime("\(error)") }
        }
        return home
    }
}

import TokentapCore
