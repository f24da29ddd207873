import ArgumentParser

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List recorded exchanges.")
    func run() throws { throw CLIFailure.runtime("not built yet") }
}
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one exchange.")
    func run() throws { throw CLIFailure.runtime("not built yet") }
}
struct SandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sandbox", abstract: "Imitate Miro's OAuth locally.")
    func run() throws { throw CLIFailure.runtime("not built yet") }
}
