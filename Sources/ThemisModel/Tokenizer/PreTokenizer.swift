/// How text is split into words before byte-level BPE, chosen by `tokenizer.ggml.pre`.
///
/// Each configuration is the list of split patterns llama.cpp's `llama-vocab.cpp` uses for that name, applied in
/// order: every stage splits each piece of the previous one, and the text between matches stays a piece of its own.
/// The patterns are hand-written scanners over Unicode scalars rather than regular expressions, for speed; each
/// stage documents the pattern it implements.
struct PreTokenizer: Sendable {
    enum Stage: Sendable {
        /// `\p{N}`: every number scalar on its own.
        case isolateNumbers
        /// `\p{N}+`: runs of number scalars.
        case isolateNumberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols.
        case isolatePunctuationRuns
        /// `[0-9][0-9][0-9]`: ASCII digit triples, left to right.
        case isolateDigitTriples
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|`
        /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// (Llama 3 uses at most 3 digits per number piece, Qwen2 one).
        case llama3(maxDigits: Int)
    }

    let name: String
    let stages: [Stage]
    /// Llama 3 style: a word that is a whole vocabulary entry is emitted as is, without running the merges.
    let ignoresMerges: Bool
    /// Whether BOS is added when the file has no `tokenizer.ggml.add_bos_token`.
    let addsBOSByDefault: Bool

    /// The configuration for a `tokenizer.ggml.pre` value; nil when the name is not supported.
    init?(name: String) {
        self.name = name
        switch name {
        case "default", "":
            stages = [.isolatePunctuationRuns, .gpt2, .isolateNumberRuns, .isolateDigitTriples]
            ignoresMerges = false
            addsBOSByDefault = false
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo":
            stages = [.gpt2]
            ignoresMerges = false
            addsBOSByDefault = false
        case "smollm", "starcoder", "refact", "codeshell", "command-r", "exaone", "minerva-7b":
            stages = [.isolateNumbers, .gpt2]
            ignoresMerges = false
            addsBOSByDefault = false
        case "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan":
            stages = [.llama3(maxDigits: 1)]
            ignoresMerges = false
            addsBOSByDefault = false
        case "llama3", "llama-v3", "llama-bpe", "falcon3":
            stages = [.llama3(maxDigits: 3)]
            ignoresMerges = true
            addsBOSByDefault = true
        case "dbrx", "smaug-bpe":
            stages = [.llama3(maxDigits: 3)]
            ignoresMerges = false
            addsBOSByDefault = false
        default:
            return nil
        }
    }

    /// The names `init(name:)` accepts, for error messages.
    static let supportedNames = [
        "default", "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "smollm", "starcoder", "refact", "codeshell", "command-r",
        "exaone", "minerva-7b", "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan", "llama3", "llama-v3",
        "llama-bpe", "falcon3", "dbrx", "smaug-bpe",
    ]

    /// Splits `scalars` (with their classes) into word ranges covering all of it, in order.
    func split(_ scalars: [Unicode.Scalar], classes: [CharacterClass]) -> [Range<Int>] {
        var pieces = scalars.isEmpty ? [] : [0..<scalars.count]
        for stage in stages {
            var next: [Range<Int>] = []
            next.reserveCapacity(pieces.count * 2)
            for piece in pieces {
                var scanner = Scanner(scalars: scalars, classes: classes, piece: piece)
                scanner.run(stage)
                next.append(contentsOf: scanner.output)
            }
            pieces = next
        }
        return pieces
    }
}

/// One stage over one piece. Positions outside the piece read as "no character", so lookahead stops at its end.
private struct Scanner {
    let scalars: [Unicode.Scalar]
    let classes: [CharacterClass]
    let end: Int
    var position: Int
    var pieceStart: Int
    var output: [Range<Int>] = []

    init(scalars: [Unicode.Scalar], classes: [CharacterClass], piece: Range<Int>) {
        self.scalars = scalars
        self.classes = classes
        self.end = piece.upperBound
        self.position = piece.lowerBound
        self.pieceStart = piece.lowerBound
    }

    /// Closes the current piece at `position` (empty pieces are dropped).
    mutating func cut() {
        if position > pieceStart { output.append(pieceStart..<position) }
        pieceStart = position
    }

    func classAt(_ index: Int) -> CharacterClass? { index < end ? classes[index] : nil }
    func scalarAt(_ index: Int) -> Unicode.Scalar? { index < end ? scalars[index] : nil }
    func has(_ index: Int, _ wanted: CharacterClass) -> Bool { index < end && classes[index].contains(wanted) }
    func isOther(_ index: Int) -> Bool { index < end && classes[index].isDisjoint(with: .wordOrSpace) }
    func isNewline(_ index: Int) -> Bool { index < end && (scalars[index] == "\r" || scalars[index] == "\n") }

    mutating func run(_ stage: PreTokenizer.Stage) {
        switch stage {
        case .isolateNumbers: isolate { $0.has($1, .number) ? 1 : 0 }
        case .isolateNumberRuns: isolate { $0.runLength(from: $1) { s, i in s.has(i, .number) } }
        case .isolatePunctuationRuns: isolate { $0.runLength(from: $1) { s, i in s.isPunctuationLike(i) } }
        case .isolateDigitTriples:
            isolate { s, i in (0..<3).allSatisfy { s.isASCIIDigit(i + $0) } ? 3 : 0 }
        case .gpt2: scanGPT2()
        case .llama3(let maxDigits): scanLlama3(maxDigits: maxDigits)
        }
        position = end
        cut()
    }

    func runLength(from index: Int, _ matches: (Scanner, Int) -> Bool) -> Int {
        var i = index
        while matches(self, i) { i += 1 }
        return i - index
    }

    func isPunctuationLike(_ index: Int) -> Bool {
        guard index < end else { return false }
        if classes[index].contains(.punctuation) { return true }
        switch scalars[index] {
        case "$", "+", "<", "=", ">", "^", "~", "|": return true
        default: return false
        }
    }

    func isASCIIDigit(_ index: Int) -> Bool {
        index < end && scalars[index].value >= 0x30 && scalars[index].value <= 0x39
    }

    /// Regex-iterator semantics for a pattern that never matches empty: `matchLength` at each position, the
    /// unmatched text in between kept as pieces.
    mutating func isolate(_ matchLength: (Scanner, Int) -> Int) {
        while position < end {
            let length = matchLength(self, position)
            if length > 0 {
                cut()
                position += length
                cut()
            } else {
                position += 1
            }
        }
    }

    /// Contractions `'s 't 're 've 'm 'll 'd` at `position`; returns the length matched, 0 if none.
    func contractionLength(caseInsensitive: Bool) -> Int {
        guard scalars[position] == "'", position + 1 < end else { return 0 }
        func lower(_ s: Unicode.Scalar) -> Unicode.Scalar {
            caseInsensitive && s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s
        }
        let next = lower(scalars[position + 1])
        if next == "s" || next == "t" || next == "m" || next == "d" { return 2 }
        guard position + 2 < end else { return 0 }
        let third = lower(scalars[position + 2])
        if (next == "r" && third == "e") || (next == "v" && third == "e") || (next == "l" && third == "l") {
            return 3
        }
        return 0
    }

    mutating func scanGPT2() {
        while position < end {
            let scalar = scalars[position]
            let contraction = contractionLength(caseInsensitive: false)
            if contraction > 0 {
                position += contraction
                cut()
                continue
            }
            // ` ?X+`: a space joins the run that follows it.
            let lead = scalar == " " ? position + 1 : position
            if has(lead, .letter) || has(lead, .number) {
                let wanted: CharacterClass = has(lead, .letter) ? .letter : .number
                position = lead
                while has(position, wanted) { position += 1 }
                cut()
                continue
            }
            if isOther(lead) {
                position = lead
                while isOther(position) { position += 1 }
                cut()
                continue
            }
            cutWhitespace(splitNewlines: false)
        }
    }

    mutating func scanLlama3(maxDigits: Int) {
        while position < end {
            let scalar = scalars[position]
            let here = classes[position]
            let contraction = contractionLength(caseInsensitive: true)
            if contraction > 0 {
                position += contraction
                cut()
                continue
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !(scalar == "\r" || scalar == "\n" || here.contains(.number)),
                here.contains(.letter) || has(position + 1, .letter)
            {
                position += 1
                while has(position, .letter) { position += 1 }
                cut()
                continue
            }
            // `\p{N}{1,maxDigits}`
            if here.contains(.number) {
                var groupStart = position
                while has(position, .number) {
                    position += 1
                    if position - groupStart >= maxDigits {
                        cut()
                        groupStart = position
                    }
                }
                cut()
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; a trailing lone space also ends up alone, as with `\s+`.
            let lead = scalar == " " ? position + 1 : position
            if lead >= end || classes[lead].isDisjoint(with: .wordOrSpace) {
                position = lead
                while isOther(position) { position += 1 }
                while isNewline(position) { position += 1 }
                cut()
                continue
            }
            cutWhitespace(splitNewlines: true)
        }
    }

    /// `\s*[\r\n]+` (when `splitNewlines`), then `\s+(?!\S)`, then `\s+`; anything else is a one-scalar piece.
    mutating func cutWhitespace(splitNewlines: Bool) {
        var count = 0
        var afterLastNewline: Int?
        while has(position + count, .whitespace) {
            if splitNewlines && isNewline(position + count) { afterLastNewline = position + count + 1 }
            count += 1
        }
        if let afterLastNewline {
            position = afterLastNewline
        } else if count > 1 && position + count < end {
            // Leave the last space to start the next word.
            position += count - 1
        } else if count > 0 {
            position += count
        } else {
            position += 1
        }
        cut()
    }
}
