import HeapModule

extension Tokenizer {
    /// Token ids of `text`.
    ///
    /// - Parameters:
    ///   - parseSpecial: when true, the spellings of control tokens (`<|im_start|>`) in the text become those
    ///     tokens; when false they are tokenized as plain text. User-defined tokens are matched either way, as in
    ///     llama.cpp and Hugging Face tokenizers.
    ///   - addBOS: whether to prepend BOS; nil follows the file (`addsBOS`). Nothing is added when the file names
    ///     no BOS token.
    public func encode(_ text: String, parseSpecial: Bool, addBOS: Bool? = nil) -> [Int32] {
        encode(text, parseSpecial: parseSpecial, protected: [], addBOS: addBOS)
    }

    /// Token ids of text that continues a prompt (a label, an answer to score): no BOS, special
    /// tokens not parsed, and no SentencePiece space prefix, which belongs to the start of a text
    /// and would put a space the model never saw before the continuation.
    public func encodeContinuation(_ text: String) -> [Int32] {
        encode(text, parseSpecial: false, protected: [], addBOS: false, spacePrefix: false)
    }

    /// Token ids of a templated chat prompt: special tokens are parsed in the template's own text
    /// but not inside the messages, so a message cannot inject `<|im_end|>` or similar. Text runs
    /// are tokenized whole across template/message boundaries, as llama.cpp does.
    public func encode(_ prompt: RenderedPrompt, addBOS: Bool? = nil) -> [Int32] {
        encode(prompt.text, parseSpecial: true, protected: prompt.contentRanges, addBOS: addBOS)
    }

    private func encode(_ text: String, parseSpecial: Bool, protected: [Range<Int>], addBOS: Bool?,
                        spacePrefix: Bool = true) -> [Int32] {
        var output: [Int32] = []
        if addBOS ?? addsBOS, let bosID { output.append(bosID) }
        let bytes = Array(text.utf8)
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        // SentencePiece: text at the start or after a special token gets the space prefix
        var afterSpecial = spacePrefix
        for fragment in partition(bytes, parseSpecial: parseSpecial, protected: protected) {
            switch fragment {
            case .token(let id):
                output.append(id)
                afterSpecial = true
            case .text(let range) where kind == .sentencePiece:
                SentencePiece.encode(bytes[range], prefixSpace: addsSpacePrefix && afterSpecial, tokenizer: self,
                                     into: &output)
                afterSpecial = false
            case .text(let range):
                encodeText(bytes[range], into: &output, cache: &cache)
            }
        }
        return output
    }

    private enum Fragment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Splits `bytes` at every occurrence of a special token, trying the longest tokens first over the whole
    /// text (llama.cpp's order, which decides overlaps).
    /// A special-token match that overlaps a `protected` byte range stays text.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool, protected: [Range<Int>]) -> [Fragment] {
        var fragments: [Fragment] = bytes.isEmpty ? [] : [.text(0..<bytes.count)]
        for special in specialTokens where parseSpecial || !special.needsParseSpecial {
            var next: [Fragment] = []
            var changed = false
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    next.append(fragment)
                    continue
                }
                var start = range.lowerBound
                var searchFrom = start
                while let match = Tokenizer.find(special.bytes, in: bytes, from: searchFrom, to: range.upperBound) {
                    let span = match..<(match + special.bytes.count)
                    if special.needsParseSpecial && protected.contains(where: { $0.overlaps(span) }) {
                        searchFrom = match + 1
                        continue
                    }
                    if match > start { next.append(.text(start..<match)) }
                    next.append(.token(special.id))
                    start = match + special.bytes.count
                    if special.stripsRight {
                        while start < range.upperBound && Tokenizer.isSpace(bytes[start]) { start += 1 }
                    }
                    searchFrom = start
                    changed = true
                }
                if start < range.upperBound { next.append(.text(start..<range.upperBound)) }
            }
            if changed { fragments = next }
        }
        return fragments
    }

    /// C's `isspace`: what llama.cpp's strip attributes swallow.
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, to end: Int) -> Int? {
        guard let first = needle.first, end - start >= needle.count else { return nil }
        var index = start
        let last = end - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index }
            }
            index += 1
        }
        return nil
    }

    /// Pre-tokenizes one run of plain text and appends the BPE tokens of each word.
    private func encodeText(
        _ bytes: ArraySlice<UInt8>, into output: inout [Int32], cache: inout [ArraySlice<UInt8>: [Int32]]
    ) {
        let text = String(decoding: bytes, as: UTF8.self)
        var scalars: [Unicode.Scalar] = []
        var classes: [CharacterClass] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var offset = bytes.startIndex
        for scalar in text.unicodeScalars {
            scalars.append(scalar)
            classes.append(CharacterClass(scalar))
            offsets.append(offset)
            offset += UTF8.width(scalar)
        }
        offsets.append(offset)
        for word in preTokenizer.split(scalars, classes: classes) {
            let wordBytes = bytes[offsets[word.lowerBound]..<offsets[word.upperBound]]
            if let ids = cache[wordBytes] {
                output.append(contentsOf: ids)
                continue
            }
            var ids: [Int32] = []
            encodeWord(wordBytes, into: &ids)
            cache[wordBytes] = ids
            output.append(contentsOf: ids)
        }
    }

    /// BPE over one word: start from single bytes and repeatedly apply the lowest-ranked merge among adjacent
    /// symbols (leftmost first on ties) until none applies.
    private func encodeWord(_ word: ArraySlice<UInt8>, into output: inout [Int32]) {
        if preTokenizer.ignoresMerges, let id = idForToken[ByteLevel.encode(word)] {
            output.append(id)
            return
        }
        let count = word.count
        var symbols = word.map { byteSymbols[Int($0)] }
        guard count > 1 else {
            for symbol in symbols { emit(symbol, into: &output) }
            return
        }
        // Doubly linked list over `symbols`; a merged-away symbol gets id -1.
        var previous = (0..<count).map { Int32($0) - 1 }
        var next = (0..<count).map { $0 + 1 < count ? Int32($0 + 1) : -1 }
        var queue = Heap<MergeCandidate>()
        func consider(_ left: Int32) {
            // the first symbol has no left neighbour (-1): check before indexing
            guard left >= 0 else { return }
            let right = next[Int(left)]
            guard right >= 0 else { return }
            let leftID = symbols[Int(left)]
            let rightID = symbols[Int(right)]
            guard let rule = merges[Tokenizer.mergeKey(leftID, rightID)] else { return }
            queue.insert(
                MergeCandidate(rank: rule.rank, left: left, leftID: leftID, rightID: rightID, result: rule.result))
        }
        for index in 0..<(count - 1) { consider(Int32(index)) }
        while let candidate = queue.popMin() {
            let left = Int(candidate.left)
            let right = Int(next[left])
            // Skip candidates made stale by an earlier merge on either side.
            guard symbols[left] == candidate.leftID, right >= 0, symbols[right] == candidate.rightID else { continue }
            symbols[left] = candidate.result
            symbols[right] = -1
            let after = next[right]
            next[left] = after
            if after >= 0 { previous[Int(after)] = Int32(left) }
            consider(previous[left])
            consider(Int32(left))
        }
        var index: Int32 = 0
        while index >= 0 {
            emit(symbols[Int(index)], into: &output)
            index = next[Int(index)]
        }
    }

    /// Appends the token for a final symbol. A symbol that is not a vocabulary entry falls back to the tokens of
    /// its single ASCII characters, as llama.cpp does.
    private func emit(_ symbol: Int32, into output: inout [Int32]) {
        if Int(symbol) < vocabularySize {
            output.append(symbol)
            return
        }
        for byte in extraSymbols[Int(symbol) - vocabularySize].utf8 where byte < 0x80 {
            if let id = idForToken[String(Unicode.Scalar(byte))] { output.append(id) }
        }
    }
}

/// A candidate BPE merge; the heap's minimum is the lowest rank, then the leftmost pair.
private struct MergeCandidate: Comparable {
    let rank: Int32
    let left: Int32
    let leftID: Int32
    let rightID: Int32
    let result: Int32

    static func < (a: MergeCandidate, b: MergeCandidate) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.left < b.left
    }
}
