/// Reads a verdict from text the judge model generated (never from the prompt).
public enum VerdictParser {
    /// Outcome of parsing.
    public enum Status: String, Sendable, Codable {
        /// One verdict, allowed by the scale.
        case ok
        /// No verdict in double square brackets.
        case missing
        /// Verdict sentences that disagree.
        case ambiguous
        /// A verdict that is not on the scale (or not a number / label).
        case outOfRange = "out_of_range"
    }

    public struct Parsed: Sendable, Equatable {
        public var status: Status
        /// The verdict (`4`, `A`, `B`, `C`) when `status` is ok.
        public var value: String?
    }

    /// The overall rating: the value of "overall rating ... [[N]]", else the first [[...]] (the
    /// format puts the verdict first). Quoted text is ignored.
    public static func rating(_ text: String, scale: RatingScale) -> Parsed {
        parse(text, sentence: "overall rating") { Int($0).map { scale.values.contains($0) } ?? false }
    }

    /// The pairwise verdict: [[A]], [[B]] or [[C]] (also "tie"), after "verdict is" if present.
    public static func pairwise(_ text: String) -> Parsed {
        var parsed = parse(text, sentence: "verdict") { ["A", "B", "C", "TIE"].contains($0.uppercased()) }
        if let v = parsed.value { parsed.value = v.uppercased() == "TIE" ? "C" : v.uppercased() }
        return parsed
    }

    static func parse(_ raw: String, sentence: String, allowed: (String) -> Bool) -> Parsed {
        let text = unquoted(normalized(raw))
        let brackets = bracketed(text)
        guard !brackets.isEmpty else { return Parsed(status: .missing, value: nil) }
        // verdict sentences: the key phrase, then within the same line a bracket
        let lower = text.lowercased()
        var sentenceValues: [String] = []
        var searchStart = lower.startIndex
        while let r = lower.range(of: sentence, range: searchStart..<lower.endIndex) {
            let offset = lower.distance(from: lower.startIndex, to: r.upperBound)
            if let b = brackets.first(where: { $0.offset >= offset }) {
                let between = text.dropFirst(offset).prefix(b.offset - offset)
                if between.count <= 60 && !between.contains("\n") { sentenceValues.append(b.value) }
            }
            searchStart = r.upperBound
        }
        let candidates = sentenceValues.isEmpty ? [brackets[0].value] : sentenceValues
        if Set(candidates.map { $0.uppercased() }).count > 1 { return Parsed(status: .ambiguous, value: nil) }
        let value = candidates[0]
        return allowed(value) ? Parsed(status: .ok, value: value) : Parsed(status: .outOfRange, value: nil)
    }

    /// Full-width and lenticular brackets as ASCII.
    static func normalized(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "［", "【", "〚": out.append("[")
            case "］", "】", "〛": out.append("]")
            default: out.append(ch)
            }
        }
        return out
    }

    /// The text with quoted passages ("...", “...”) on a line blanked out, so a verdict the
    /// model quotes (from the instruction, say) is not taken for its own.
    static func unquoted(_ text: String) -> String {
        var out = ""
        var inQuote = false
        var closing: Character = "\""
        for ch in text {
            if ch == "\n" { inQuote = false; out.append(ch); continue }
            if inQuote {
                if ch == closing { inQuote = false }
                out.append(" ")
            } else if ch == "\"" || ch == "“" {
                inQuote = true
                closing = ch == "“" ? "”" : "\""
                out.append(" ")
            } else {
                out.append(ch)
            }
        }
        return out
    }

    /// Every `[[ value ]]` with its character offset, in order.
    static func bracketed(_ text: String) -> [(offset: Int, value: String)] {
        let chars = Array(text)
        var found: [(Int, String)] = []
        var i = 0
        while i + 1 < chars.count {
            if chars[i] == "[", chars[i + 1] == "[" {
                var j = i + 2
                while j < chars.count, chars[j] != "]", chars[j] != "[", j - i < 24 { j += 1 }
                if j + 1 < chars.count, chars[j] == "]", chars[j + 1] == "]" {
                    let value = String(chars[(i + 2)..<j]).trimmingCharacters(in: .whitespaces)
                    found.append((i, value))
                    i = j + 2
                    continue
                }
            }
            i += 1
        }
        return found
    }
}

import Foundation
