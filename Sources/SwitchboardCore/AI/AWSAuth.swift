/// `auth.aws` of an instance: the credentials its Bedrock calls are signed with.
public struct AWSAuth: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Temporary credentials' session token (`x-amz-security-token`).
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public init?(_ json: JSONValue) {
        guard let id = json["access_key_id"]?.stringValue, let secret = json["secret_access_key"]?.stringValue else {
            return nil
        }
        self.init(accessKeyID: id, secretAccessKey: secret, sessionToken: json["session_token"]?.stringValue)
    }

    public static let schema = Schema(
        type: .object,
        properties: [
            "access_key_id": Schema(type: .string, minLength: 1),
            "secret_access_key": Schema(type: .string, minLength: 1),
            "session_token": Schema(type: .string),
        ], required: ["access_key_id", "secret_access_key"])
}
