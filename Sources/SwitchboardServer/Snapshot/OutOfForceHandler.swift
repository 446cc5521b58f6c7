import HTTPTypes
import Hummingbird
import SwitchboardCore

/// Stands in for a global rule that could not be compiled (a secret reference with no value
/// at start, say): every request is answered 503 naming the rule, rather than served without
/// the rule — global rules usually carry authentication, so leaving one out would fail open.
struct OutOfForceHandler: PluginHandler {
    let name: String
    let message: String
    var priority: Int { Int.max }

    /// The reason is in the gateway's log; clients learn only which rule (the reason may name
    /// configuration they have no business seeing).
    init(globalRule id: String) {
        name = "global-rule-\(id)"
        message = "global rule \(id) is not in force; see the gateway's log"
    }

    func rewrite(_ exchange: Exchange) async throws -> Response? {
        GatewayResponse.json(.serviceUnavailable, ["error_msg": .string(message)])
    }
}
