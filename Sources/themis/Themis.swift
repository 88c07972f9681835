import ArgumentParser
import Foundation

@main
struct Themis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "themis",
        abstract: "Judge language-model output locally, on our own inference engine.",
        version: "0.1.0",
        subcommands: [JudgeCommand.self, MetaEval.self, EvalJudge.self, Serve.self, Distill.self, Generate.self, Merge.self, Train.self, Tokenize.self, Devices.self, Bench.self, ConformanceCommand.self])

    /// Parses and runs the command with the documented exit statuses: 0 all done, 1 fatal error,
    /// 2 usage error or unknown device, 3 some records failed (ArgumentParser's own usage status,
    /// 64, becomes 2).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success || code.rawValue == ExitStatus.recordsFailed || error is ExitCode {
                exit(withError: error)
            }
            // help and version requests end with success above; everything else is a usage error
            // here (errors of a running command exit through `reportingErrors`)
            let message = fullMessage(for: error)
            if !message.isEmpty { printError(message) }
            Foundation.exit(code == .validationFailure ? ExitStatus.usage : code.rawValue)
        }
    }
}
