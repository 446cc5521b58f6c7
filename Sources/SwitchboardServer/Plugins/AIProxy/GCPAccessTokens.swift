import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import NIOCore
import SwitchboardCore
import Synchronization

/// OAuth2 access tokens of Google service accounts, shared by every route: a token is fetched
/// from the account's `token_uri` with a signed JWT (RS256, swift-crypto), kept until shortly
/// before it expires, and fetched once however many requests need it at the same moment.
public final class GCPAccessTokens: Sendable {
    /// Why no token could be had, naming the token endpoint (the client sees it in a 502).
    struct Failure: Error, CustomStringConvertible {
        var tokenURI: String
        var reason: String
        var description: String { "could not get a GCP access token from \(tokenURI): \(reason)" }
    }

    private struct Fetched: Sendable {
        var token: String
        var expiresIn: Int
    }

    private enum Entry {
        case ready(token: String, refreshAt: ContinuousClock.Instant)
        case fetching(Task<Result<Fetched, Failure>, Never>)
    }

    private let entries = Mutex<[String: Entry]>([:])
    static let scope = "https://www.googleapis.com/auth/cloud-platform"
    static let fetchTimeoutMs = 10_000

    public init() {}

    /// A valid access token for `auth`'s service account (or `GCP_SERVICE_ACCOUNT`'s).
    func token(
        for auth: GCPAuth, clients: UpstreamClients, verifyTLS: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(Failure) -> String {
        guard let json = auth.serviceAccountJSON ?? environment["GCP_SERVICE_ACCOUNT"] else {
            throw Failure(
                tokenURI: GCPServiceAccount.defaultTokenURI,
                reason: "auth.gcp has no service_account_json and GCP_SERVICE_ACCOUNT is not set")
        }
        let account: GCPServiceAccount
        do {
            account = try GCPServiceAccount(json: json)
        } catch {
            throw Failure(tokenURI: GCPServiceAccount.defaultTokenURI, reason: "invalid service account: \(error)")
        }
        let key = "\(account.clientEmail)|\(account.tokenURI)|\(SHA256.hash(data: Data(account.privateKeyPEM.utf8)))"
        let lifetime = auth.maxTTL
        let early = auth.expireEarlySecs
        let now = ContinuousClock.now
        let task = entries.withLock { entries -> Task<Result<Fetched, Failure>, Never>? in
            switch entries[key] {
            case .ready(_, let refreshAt)? where now < refreshAt: return nil
            case .fetching(let running)?: return running
            default:
                let task = Task {
                    await self.fetch(account, key: key, maxTTL: lifetime, early: early, clients, verifyTLS)
                }
                entries[key] = .fetching(task)
                return task
            }
        }
        if let task { return try await task.value.get().token }
        let cached = entries.withLock { entries -> String? in
            if case .ready(let token, _)? = entries[key] { return token }
            return nil
        }
        guard let cached else { return try await token(for: auth, clients: clients, verifyTLS: verifyTLS) }
        return cached
    }

    /// One token request; its outcome is stored for the requests that come after.
    private func fetch(
        _ account: GCPServiceAccount, key: String, maxTTL: Int?, early: Int, _ clients: UpstreamClients,
        _ verifyTLS: Bool
    ) async -> Result<Fetched, Failure> {
        let started = ContinuousClock.now
        let result = await request(account, clients, verifyTLS)
        entries.withLock { entries in
            switch result {
            case .success(let fetched):
                let lifetime = min(fetched.expiresIn, maxTTL ?? Int.max)
                // Renewed early, but never so early that every request fetches a new token.
                let seconds = max(lifetime / 2, lifetime - early)
                entries[key] = .ready(token: fetched.token, refreshAt: started + .seconds(seconds))
            case .failure:
                entries[key] = nil  // the next request tries again
            }
        }
        return result
    }

    private func request(_ account: GCPServiceAccount, _ clients: UpstreamClients, _ verifyTLS: Bool) async
        -> Result<Fetched, Failure>
    {
        let fail = { (reason: String) in
            Result<Fetched, Failure>.failure(Failure(tokenURI: account.tokenURI, reason: reason))
        }
        let assertion: String
        do {
            assertion = try Self.assertion(account, issuedAt: Int(Date().timeIntervalSince1970))
        } catch {
            return fail("the service account's private key cannot sign (\(error))")
        }
        var request = HTTPClientRequest(url: account.tokenURI)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(
            ByteBuffer(
                string: "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"))
        let client = clients.client(readTimeoutMs: Self.fetchTimeoutMs, verifyTLS: verifyTLS)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(Self.fetchTimeoutMs)))
            let body = try await response.body.collect(upTo: 1 << 20)
            let answer = try? JSONParser.parse(Array(buffer: body))
            guard response.status == .ok else {
                let detail =
                    answer?["error_description"]?.stringValue ?? answer?["error"]?.stringValue
                    ?? String(buffer: body).prefix(200).description
                return fail("status \(response.status.code): \(detail)")
            }
            guard let token = answer?["access_token"]?.stringValue, !token.isEmpty else {
                return fail("the answer has no access_token")
            }
            let expiresIn = Saturating.count(answer?["expires_in"]) ?? 3600
            return .success(Fetched(token: token, expiresIn: expiresIn))
        } catch {
            return fail("\(error)")
        }
    }

    /// The signed JWT a service account presents for a token (RFC 7523), valid for an hour.
    static func assertion(_ account: GCPServiceAccount, issuedAt: Int) throws -> String {
        let header: JSONValue = ["alg": "RS256", "typ": "JWT"]
        let claims: JSONValue = [
            "iss": .string(account.clientEmail), "scope": .string(scope), "aud": .string(account.tokenURI),
            "iat": .int(issuedAt), "exp": .int(issuedAt + 3600),
        ]
        let input = base64URL(header.serializedBytes()) + "." + base64URL(claims.serializedBytes())
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: account.privateKeyPEM)
        let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + base64URL(Array(signature.rawRepresentation))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
