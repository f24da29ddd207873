import ArgumentParser

struct SandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sandbox", abstract: "Imitate Miro's OAuth locally.")
    func run() throws { throw CLIFailure.runtime("not built yet") }
}
