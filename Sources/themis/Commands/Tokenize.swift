import ArgumentParser
import Foundation
import ThemisModel

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of a text as a JSON array.")

    @Option(name: .long, help: "Model name or GGUF path.") var model: String = "smollm2-135m"
    @Flag(help: "Parse special tokens such as <|im_start|> in the text.") var special = false
    @Argument(help: "The text.") var text: String

    func run() throws {
        reportingErrors {
            var options = ModelOptions()
            options.model = model
            let file = try GGUFFile(path: try options.modelPath())
            let tokenizer = try Tokenizer(gguf: file)
            let ids = tokenizer.encode(text, parseSpecial: special)
            print("[" + ids.map(String.init).joined(separator: ", ") + "]")
        }
    }
}
