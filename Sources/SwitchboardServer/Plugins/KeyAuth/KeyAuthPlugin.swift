import HTTPTypes
import Hummingbird
import SwitchboardCore

/// `key-auth`: identifies the consumer by an API key in a header (default `apikey`) or query
/// argument, as APISIX does, with its 401 messages. Keys are looked up in the snapshot's hash
/// index, so the cost does not grow with the number of consumers.
public struct KeyAuthPlugin: Plugin {
    public static let name = "key-auth"

    public let spec = PluginSpec(
        name: KeyAuthPlugin.name,
        priority: 2500,
        isAuth: true,
        schema: Schema(
            type: .object,
            properties: [
                "header": Schema(type: .string, default: "apikey"),
                "query": Schema(type: .string, default: "apikey"),
                "hide_credentials": Schema(type: .boolean, default: false),
                "realm": Schema(
                    type: .string, minLength: 1, maxLength: 128, pattern: "^[ -!#-\\[\\]-~]+$", default: "key"),
                "anonymous_consumer": Schema(type: .string, minLength: 1),
            ]),
        consumerSchema: Schema(
            type: .object,
            properties: ["key": Schema(type: .string)],
            required: ["key"]),
        uniqueConsumerField: "key")

    public init() {}

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        Handler(
            header: HTTPField.Name(config["header"]?.stringValue ?? "apikey"),
            query: config["query"]?.stringValue ?? "apikey",
            hideCredentials: config["hide_credentials"]?.boolValue ?? false,
            realm: config["realm"]?.stringValue ?? "key",
            anonymousConsumer: config["anonymous_consumer"]?.stringValue)
    }

    struct Handler: PluginHandler {
        let header: HTTPField.Name?
        let query: String
        let hideCredentials: Bool
        let realm: String
        let anonymousConsumer: String?
        var name: String { KeyAuthPlugin.name }
        var priority: Int { 2500 }

        func rewrite(_ exchange: Exchange) async throws -> Response? {
            // The key parameter's value never reaches a log line, valid or not.
            exchange.redactedQueryArgs.insert(query)
            if let header { exchange.credentialHeaders.insert(header.canonicalName) }
            var key: String?
            var fromHeader = false
            if let header, let value = exchange.request.headers[header] {
                key = value
                fromHeader = true
            } else if let value = exchange.args[query] {
                key = value
            }
            guard let key else { return reject(exchange, "Missing API key in request") }
            guard let identity = exchange.snapshot.authKeys[KeyAuthPlugin.name]?[key],
                let consumer = exchange.snapshot.consumers[identity.consumer]
            else {
                return reject(exchange, "Invalid API key in request")
            }
            if hideCredentials {
                if fromHeader, let header {
                    exchange.upstreamHeaderEdits.append((header, nil))
                } else {
                    exchange.removedQueryArgs.insert(query)
                }
            }
            attach(consumer, credential: identity.credentialID, to: exchange)
            return nil
        }

        private func attach(_ consumer: CompiledConsumer, credential: String?, to exchange: Exchange) {
            exchange.consumer = consumer
            exchange.credentialID = credential
            exchange.upstreamHeaderEdits.append((.xConsumerUsername, consumer.username))
            if let credential { exchange.upstreamHeaderEdits.append((.xCredentialIdentifier, credential)) }
            if let custom = consumer.customID { exchange.upstreamHeaderEdits.append((.xConsumerCustomID, custom)) }
        }

        private func reject(_ exchange: Exchange, _ message: String) -> Response? {
            if let anonymousConsumer {
                guard let consumer = exchange.snapshot.consumers[anonymousConsumer] else {
                    return GatewayResponse.json(
                        .unauthorized, ["message": "Invalid user authorization"], headers: challenge)
                }
                attach(consumer, credential: nil, to: exchange)
                return nil
            }
            return GatewayResponse.json(.unauthorized, ["message": .string(message)], headers: challenge)
        }

        private var challenge: HTTPFields {
            [.wwwAuthenticate: "apikey realm=\"\(realm)\""]
        }
    }
}

extension HTTPField.Name {
    static let xConsumerUsername = HTTPField.Name("X-Consumer-Username")!
    static let xCredentialIdentifier = HTTPField.Name("X-Credential-Identifier")!
    static let xConsumerCustomID = HTTPField.Name("X-Consumer-Custom-ID")!
}
