import FuzzSupport

@testable import SwitchboardCore

/// ``ResponseSummary``, which reads usage, model, tool calls and text from a provider's whole
/// (non-streamed) answer, on arbitrary bytes.
///
/// Input: the answer body. Checks that reading never traps; that it answers `nil` exactly when
/// the body is not JSON; and that the in-place reading (``JSONCursor``), whenever it decides,
/// agrees with the reading of the JSON tree, with and without text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseSummary(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    let json = try? JSONParser.parse(input)
    for keepText in [false, true] {
        input.withUnsafeBufferPointer { body in
            let summary = ResponseSummary.read(body, keepText: keepText)
            check((summary == nil) == (json == nil), "read answers \(String(describing: summary)) for \(show(input))")
            guard let inPlace = ResponseSummary.inPlace(body, keepText: keepText) else { return }
            guard let json else { fatalError("the in-place reading accepts what the parser refuses: \(show(input))") }
            let tree = ResponseSummary(json, keepText: keepText)
            check(inPlace == tree, "in place \(inPlace), tree \(tree) for \(show(input))")
        }
    }
    return 0
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzResponseSummary) }
}
