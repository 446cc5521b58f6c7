import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

/// `mocking`: answers from the gateway with a fixed response instead of proxying (APISIX's
/// plugin of the same name, `response_example` form). Useful for trying routes and for tests.
public struct MockingPlugin: Plugin {
    public static let name = "mocking"

    public let spec = PluginSpec(
        name: MockingPlugin.name,
        priority: 10900,
        schema: Schema(
            type: .object,
            properties: [
                "delay": Schema(type: .integer, minimum: 0, default: 0),
                "response_status": Schema(type: .integer, minimum: 100, maximum: 599, default: 200),
                "content_type": Schema(type: .string, default: "application/json;charset=utf8"),
                "response_example": Schema(type: .string),
                "response_schema": Schema(type: .object),
                "with_mock_header": Schema(type: .boolean, default: true),
                "response_headers": Schema(
                    type: .object, patternProperties: [(".*", Schema(types: [.string, .number]))]),
            ],
            anyOf: [Schema(required: ["response_example"]), Schema(required: ["response_schema"])]))

    public init() {}

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        var headers = HTTPFields()
        headers[.contentType] = config["content_type"]?.stringValue ?? "application/json;charset=utf8"
        if config["with_mock_header"]?.boolValue ?? true {
            headers[HTTPField.Name("x-mock-by")!] = "Switchboard"
        }
        for (name, value) in config["response_headers"]?.objectValue ?? [:] {
            guard let field = HTTPField.Name(name) else { continue }
            headers[field] = value.stringValue ?? value.serialized()
        }
        let example = config["response_example"]?.stringValue ?? config["response_schema"]?.serialized() ?? ""
        return Handler(
            status: config["response_status"]?.intValue ?? 200, headers: headers, body: example,
            delay: config["delay"]?.intValue ?? 0)
    }

    struct Handler: PluginHandler {
        let status: Int
        let headers: HTTPFields
        let body: String
        let delay: Int
        var name: String { MockingPlugin.name }
        var priority: Int { 10900 }

        func access(_ exchange: Exchange) async throws -> Response? {
            if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
            return Response(
                status: HTTPResponse.Status(code: status), headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
    }
}
