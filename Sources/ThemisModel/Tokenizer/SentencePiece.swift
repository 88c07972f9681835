import HeapModule

/// SentencePiece encoding as llama.cpp implements it (`llm_tokenizer_spm`): spaces become U+2581,
/// the text is split into UTF-8 characters, and the adjacent pair whose concatenation is the
/// highest-scoring vocabulary entry is merged (leftmost first on ties) until no pair is an entry;
/// a character that is no entry falls back to its bytes' `<0xNN>` tokens.
enum SentencePiece {
    /// SentencePiece's spelling of a space, "▁" (U+2581).
    static let space = "\u{2581}"
    private static let spaceBytes: [UInt8] = [0xE2, 0x96, 0x81]

    /// Appends the tokens of one run of plain text (no special tokens in it) to `output`.
    static func encode(_ text: ArraySlice<UInt8>, prefixSpace: Bool, tokenizer t: Tokenizer, into output: inout [Int32]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count + 16)
        if prefixSpace { bytes += spaceBytes }
        for b in text {
            if b == 0x20 { bytes += spaceBytes } else { bytes.append(b) }
        }
        guard !bytes.isEmpty else { return }
        // one symbol per UTF-8 character, by its lead byte as llama.cpp counts (a stray
        // continuation byte is a character of its own)
        var start: [Int] = [], length: [Int] = []
        var offset = 0
        while offset < bytes.count {
            let lead = bytes[offset]
            let width = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let n = min(width, bytes.count - offset)
            start.append(offset)
            length.append(n)
            offset += n
        }
        let count = start.count
        var previous = (0..<count).map { $0 - 1 }
        var next = (0..<count).map { $0 + 1 < count ? $0 + 1 : -1 }

        func token(_ from: Int, _ n: Int) -> Int32? {
            t.idForBytes[Array(bytes[from..<from + n])]
        }
        var queue = Heap<Bigram>()
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let size = length[left] + length[right]
            guard let id = token(start[left], size) else { return }
            queue.insert(Bigram(score: t.scores[Int(id)], left: left, right: right, size: size))
        }
        for i in 1..<max(1, count) { consider(i - 1, i) }
        while let bigram = queue.popMin() {
            let l = bigram.left, r = bigram.right
            // skip pairs made stale by an earlier merge on either side
            guard length[l] > 0, length[r] > 0, length[l] + length[r] == bigram.size, next[l] == r else { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { previous[next[r]] = l }
            consider(previous[l], l)
            consider(l, next[l])
        }
        var i = 0
        while i >= 0 {
            if let id = token(start[i], length[i]) {
                output.append(id)
            } else {
                for b in bytes[start[i]..<start[i] + length[i]] where t.byteTokens[Int(b)] >= 0 {
                    output.append(t.byteTokens[Int(b)])
                }
            }
            i = next[i]
        }
    }

    /// A candidate merge; the heap's minimum is the highest score, then the leftmost pair.
    private struct Bigram: Comparable {
        let score: Float
        let left: Int, right: Int
        let size: Int

        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score != b.score ? a.score > b.score : a.left < b.left
        }
    }
}
