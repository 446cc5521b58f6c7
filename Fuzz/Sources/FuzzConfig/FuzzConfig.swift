import FuzzSupport
import SwitchboardCore

/// The gateway's YAML configuration: ``GatewayConfig/parse(_:source:environment:)`` and the YAML
/// reader under it, ``YAMLDocument`` (which also reads the standalone `file:` store's routes
/// file), on arbitrary text.
///
/// Checks that neither traps; that what ``YAMLDocument/parse(_:environment:)`` builds serializes
/// to JSON that reads back as an equal value (the Admin API and the stores hold it as JSON), as
/// long as it nests no deeper than the JSON parser allows; that ``YAMLDocument/expand(_:environment:)``
/// and ``GatewayConfig/referencedVariables(_:)`` take any text; and that a config that loads
/// keeps its own invariants (keys 16 or 32 bytes, no empty admin key, a listener to serve on).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    // Files are read as `String(decoding:as:)` of their bytes.
    let text = String(decoding: input, as: UTF8.self)

    if let document = try? YAMLDocument.parse(text, environment: environment),
        document.nestingDepth(limit: JSONParser.maximumDepth) <= JSONParser.maximumDepth
    {
        let json = document.serializedBytes()
        guard let reparsed = try? JSONParser.parse(json) else {
            fatalError("a YAML document's JSON does not parse: \(show(json)) from \(show(input))")
        }
        check(reparsed == document, "a YAML document's JSON reads back differently: \(show(input))")
    }
    _ = try? YAMLDocument.expand(text, environment: environment)
    _ = GatewayConfig.referencedVariables(text)

    guard let config = try? GatewayConfig.parse(text, source: "fuzz", environment: environment) else { return 0 }
    check(config.dataEncryptionKeys.allSatisfy { $0.count == 16 || $0.count == 32 }, "a key of another size")
    check(config.adminKeys.allSatisfy { !$0.key.isEmpty }, "an empty admin key")
    check(!config.proxyListen.isEmpty, "no proxy listener")
    check(config.proxyMaxBodySize >= 1 && config.proxyMaxBodySizeBeforeAuth >= 1, "a body limit below 1")
    check((0...100_000).contains(config.traceCapacity), "trace_size \(config.traceCapacity) out of range")
    return 0
}

/// The environment `${VAR}` reads: set, empty and hexadecimal values.
let environment = [
    "SWITCHBOARD_ADMIN_KEY": "admin-key-1", "SWITCHBOARD_DATA_KEY": String(repeating: "0f", count: 32),
    "EMPTY": "", "PORT": "9080", "HOST": "127.0.0.1", "DSN": "postgres://u:p@localhost:5432/db",
]

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzConfig) }
}
