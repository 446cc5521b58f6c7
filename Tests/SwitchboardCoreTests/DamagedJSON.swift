/// Deterministic copies of `corpus` damaged at random: a byte or a few dropped, doubled, or
/// replaced by a JSON delimiter. For holding an in-place reading to the parser's on text that
/// is almost right, where a reader that is too lenient would show.
func damagedCopies(of corpus: [String], count: Int) -> [String] {
    var seed: UInt64 = 0x5357_4254
    func next(_ bound: Int) -> Int {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((seed >> 33) % UInt64(bound))
    }
    let delimiters = Array(#"{}[]:,"\ 0-.en"#.utf8)
    return (0..<count).map { _ in
        var bytes = Array(corpus[next(corpus.count)].utf8)
        for _ in 0...next(2) where !bytes.isEmpty {
            let at = next(bytes.count)
            switch next(3) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(bytes[at], at: at)
            default: bytes[at] = delimiters[next(delimiters.count)]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
