import Foundation
import Hummingbird
import SwitchboardCore

/// `GET …/models` and `GET …/models/<id>` on an AI route: tools such as Open WebUI, LibreChat
/// and Continue list models at start-up. Answered from the configuration (each instance's
/// `options.model`, de-duplicated, owned by its provider) without calling any upstream.
struct ModelList: Sendable {
    /// Model id → provider name, in instance order.
    let models: [(id: String, owner: String)]
    /// The whole list, serialised once.
    let listBody: JSONValue
    /// The configured models: the only model label values metrics take (else `other`), so a
    /// client choosing `model` strings cannot create series without bound.
    let known: Set<String>

    /// `logValues` keys of the metric labels `request_llm_model` and `llm_model`.
    static let requestLabelKey = "metric_request_llm_model"
    static let modelLabelKey = "metric_llm_model"

    /// The metric label value for `model`.
    func label(_ model: String?) -> String? {
        guard let model else { return nil }
        return known.contains(model) ? model : "other"
    }

    init(_ instances: [AIInstance]) {
        var seen = Set<String>()
        var models: [(id: String, owner: String)] = []
        for instance in instances {
            guard let model = instance.model(clientModel: nil), seen.insert(model).inserted else { continue }
            models.append((model, instance.provider.name))
        }
        self.models = models
        self.known = seen
        listBody = ["object": "list", "data": .array(models.map(Self.entry))]
    }

    static func entry(_ model: (id: String, owner: String)) -> JSONValue {
        ["id": .string(model.id), "object": "model", "created": 0, "owned_by": .string(model.owner)]
    }

    /// The answer for `path`, or `nil` when it is not a models path.
    func answer(path: String) -> Response? {
        if path.hasSuffix("/models") { return GatewayResponse.json(.ok, listBody) }
        guard let range = path.range(of: "/models/", options: .backwards) else { return nil }
        let id = String(path[range.upperBound...])
        guard !id.isEmpty else { return GatewayResponse.json(.ok, listBody) }
        if let model = models.first(where: { $0.id == id }) { return GatewayResponse.json(.ok, Self.entry(model)) }
        return GatewayResponse.json(
            .notFound,
            [
                "error": [
                    "message": .string("The model '\(id)' does not exist"), "type": "invalid_request_error",
                    "param": "model", "code": "model_not_found",
                ]
            ])
    }
}
