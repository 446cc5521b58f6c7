/// `auth.gcp` of an instance: the Google service account whose OAuth2 access tokens
/// authenticate calls to Vertex AI.
public struct GCPAuth: Sendable {
    /// The account's JSON key; `nil` means the `GCP_SERVICE_ACCOUNT` environment variable.
    public var serviceAccountJSON: String?
    /// The longest a token is used, in seconds (Google's tokens live an hour).
    public var maxTTL: Int?
    /// A token is refreshed this many seconds before it expires.
    public var expireEarlySecs: Int

    public init(_ json: JSONValue) {
        serviceAccountJSON = json["service_account_json"]?.stringValue
        maxTTL = json["max_ttl"]?.intValue
        expireEarlySecs = json["expire_early_secs"]?.intValue ?? 60
    }

    public static let schema = Schema(
        type: .object,
        properties: [
            "service_account_json": Schema(type: .string, minLength: 1),
            "max_ttl": Schema(type: .integer, minimum: 1),
            "expire_early_secs": Schema(type: .integer, minimum: 0, default: 60),
        ])
}

/// The parts of a service account key the gateway uses.
public struct GCPServiceAccount: Sendable, Equatable {
    public var clientEmail: String
    public var privateKeyPEM: String
    public var tokenURI: String

    public static let defaultTokenURI = "https://oauth2.googleapis.com/token"

    /// Reads a service account's JSON key; the error says what is missing.
    public init(json text: String) throws(SchemaError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw SchemaError("\(error)")
        }
        guard case .object = json else { throw SchemaError("expected a JSON object") }
        guard let email = json["client_email"]?.stringValue, !email.isEmpty else {
            throw SchemaError("client_email is missing")
        }
        guard let key = json["private_key"]?.stringValue, key.contains("PRIVATE KEY") else {
            throw SchemaError("private_key is missing or not a PEM private key")
        }
        clientEmail = email
        privateKeyPEM = key
        tokenURI = json["token_uri"]?.stringValue ?? Self.defaultTokenURI
    }
}
