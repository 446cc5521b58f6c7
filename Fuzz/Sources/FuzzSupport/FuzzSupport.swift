/// What the fuzz targets share: their `main`, the input as bytes, a check that fails the run
/// (libFuzzer then saves the input that broke it), and cutting an input into chunks as a
/// network would.
import CLibFuzzer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The signature of `LLVMFuzzerTestOneInput`.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// A fuzz target's `main`: libFuzzer's driver with this process's command line, running
/// `target` on every input. (SwiftPM links an executable's `main` to the module's own entry
/// point, so libFuzzer's `main` is never the one that runs.)
public func runLibFuzzer(_ target: FuzzTarget) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}

/// The fuzzer's input, copied into an array.
public func inputBytes(_ start: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: start, count: count))
}

/// Stops the run when `condition` does not hold: a trap, which libFuzzer reports as a crash and
/// saves the input of.
public func check(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { fatalError(message(), file: file, line: line) }
}

/// Bytes shown in a failure message: printable ASCII as is, the rest as `\xNN`, at most `limit`.
public func show(_ bytes: some Collection<UInt8>, limit: Int = 400) -> String {
    var out = ""
    for byte in bytes.prefix(limit) {
        if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return bytes.count > limit ? out + "... (\(bytes.count) bytes)" : out
}

/// SplitMix64: a tiny deterministic generator, so a saved input replays the same chunking.
public struct SplitMix64 {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (`bound` > 0).
    public mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}

/// `bytes` cut into consecutive chunks, as reads from a socket would deliver them. Seed 0 cuts
/// every byte apart; any other seed draws sizes from 0 (an empty read) up to `seed % 64 + 1`.
/// The chunks always add up to `bytes`.
public func chunks(of bytes: ArraySlice<UInt8>, seed: UInt8) -> [ArraySlice<UInt8>] {
    var out: [ArraySlice<UInt8>] = []
    var start = bytes.startIndex
    if seed == 0 {
        while start < bytes.endIndex {
            out.append(bytes[start..<start + 1])
            start += 1
        }
        return out
    }
    var random = SplitMix64(seed: UInt64(seed))
    let largest = Int(seed % 64) + 1
    while start < bytes.endIndex {
        let size = min(random.next(below: largest + 1), bytes.endIndex - start)
        out.append(bytes[start..<start + size])
        start += size
    }
    return out
}
