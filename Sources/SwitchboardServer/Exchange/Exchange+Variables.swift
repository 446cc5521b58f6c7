import HTTPTypes
import SwitchboardCore

extension Exchange: RequestVariableSource {
    /// Resolves nginx/APISIX variables for `vars` expressions and the access log.
    public func value(of variable: RequestVariable) -> JSONValue? {
        switch variable {
        case .uri: return .string(path)
        case .requestURI: return .string(rawQuery.map { "\(path)?\($0)" } ?? path)
        case .host: return .string(host)
        case .remoteAddr: return .string(remoteAddress)
        case .remotePort: return .string(String(remotePort))
        case .requestMethod: return .string(method)
        case .scheme: return .string(isTLS ? "https" : "http")
        case .serverPort: return nil
        case .queryString: return rawQuery.map { .string($0) }
        case .arg(let name): return args[name].map { .string($0) }
        case .header(let name):
            guard let field = HTTPField.Name(name) else { return nil }
            let values = request.headers[values: field]
            return values.isEmpty ? nil : .string(values.joined(separator: ", "))
        case .cookie(let name): return cookies[name].map { .string($0) }
        case .postArg(let path):
            guard let body = jsonBodyIfParsed else { return nil }
            return body.value(atPath: path.joined(separator: "."))
        case .other(let name):
            switch name {
            case "route_id": return route.map { .string($0.id) }
            case "route_name": return route?.name.map { .string($0) }
            case "service_id": return route?.serviceID.map { .string($0) }
            case "consumer_name": return consumer.map { .string($0.username) }
            case "consumer_group_id": return consumer?.groupID.map { .string($0) }
            case "apisix_request_id", "request_id": return .string(requestID)
            default:
                if name.hasPrefix("uri_param_") {
                    let key = name.dropFirst("uri_param_".count)
                    return uriParameters.first { $0.name == key }.map { .string($0.value) }
                }
                return logValues[name].map { .string($0) }
            }
        }
    }
}
