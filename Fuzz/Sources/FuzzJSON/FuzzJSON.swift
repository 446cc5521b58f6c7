import FuzzSupport
import SwitchboardCore

/// ``JSONParser`` on arbitrary bytes (request bodies, provider answers, Admin API bodies).
///
/// Checks that it never traps; that an error names a real place (line and column from 1); that
/// a document it reads nests no deeper than ``JSONParser/maximumDepth``; the round trip: the
/// value serializes to text that parses back to an equal value, and that text is a fixed point
/// of serialize-after-parse; and that ``JSONCursor`` (the in-place reader of the stream relay
/// and of whole answers) never accepts a document the parser refuses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    var parsed: JSONValue?
    var failure: JSONParseError?
    do {
        parsed = try JSONParser.parse(input)
    } catch {
        check(error.line >= 1 && error.column >= 1, "error without a place: \(error)")
        failure = error
    }
    let cursorAccepts = input.withUnsafeBufferPointer { buffer in
        var cursor = JSONCursor(buffer)
        return cursor.skipValue() && cursor.atEnd()
    }
    if cursorAccepts, let failure {
        fatalError("JSONCursor accepts what JSONParser refuses (\(failure)): \(show(input))")
    }
    guard let value = parsed else { return 0 }

    let depth = value.nestingDepth(limit: JSONParser.maximumDepth)
    check(depth <= JSONParser.maximumDepth, "parsed a document nested \(depth) deep")
    let text = value.serializedBytes()
    check(value.serialized() == String(decoding: text, as: UTF8.self), "serialized() and serializedBytes() differ")
    let reparsed: JSONValue
    do {
        reparsed = try JSONParser.parse(text)
    } catch {
        fatalError("serialized text does not parse (\(error)): \(show(text)) from \(show(input))")
    }
    check(reparsed == value, "round trip changed the value: \(show(input)) -> \(show(text))")
    let again = reparsed.serializedBytes()
    check(again == text, "serialization is not a fixed point: \(show(text)) -> \(show(again))")
    return 0
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzJSON) }
}
