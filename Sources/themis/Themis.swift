import ArgumentParser

@main
struct Themis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "themis",
        abstract: "Judge language-model output locally, on our own inference engine.",
        version: "0.1.0",
        subcommands: [JudgeCommand.self, MetaEval.self, EvalJudge.self, Serve.self, Distill.self, Generate.self, Tokenize.self, Devices.self, Bench.self, ConformanceCommand.self])
}
