import Crypto
import CryptoExtras
import Foundation
import NIOSSL
import SwitchboardCore

/// Checks an `ssls` object when it is written, so that a certificate the proxy could not serve
/// is a 400 naming the problem rather than a failed handshake later: the PEM parses, the private
/// key is the certificate's, and the certificate has not expired.
enum TLSCertificates {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// Throws a ``Problem`` naming what is wrong with `value`'s `cert`, `key` and `client.ca`;
    /// the validity dates only with `checkExpiry` (on Admin writes).
    @Sendable static func check(_ value: JSONValue, checkExpiry: Bool) throws {
        let chain = try certificates(value["cert"]?.stringValue ?? "", field: "cert")
        _ = try privateKey(value["key"]?.stringValue ?? "")
        let leaf = chain[0]
        let now = time(nil)
        if checkExpiry, leaf.notValidAfter < now {
            throw Problem(description: "the certificate expired at \(date(leaf.notValidAfter))")
        }
        if checkExpiry, leaf.notValidBefore > now {
            throw Problem(description: "the certificate is not valid before \(date(leaf.notValidBefore))")
        }
        let certificateKey: [UInt8]
        do { certificateKey = try leaf.extractPublicKey().toSPKIBytes() } catch {
            throw Problem(description: "cannot read the certificate's public key: \(error)")
        }
        guard let keyPublic = publicKeyDER(ofPEM: value["key"]?.stringValue ?? "") else {
            throw Problem(description: "key: unsupported private key type (RSA, P-256, P-384 and P-521 are)")
        }
        guard keyPublic == certificateKey else {
            throw Problem(description: "key does not match the certificate")
        }
        if let ca = value["client"]?["ca"]?.stringValue { _ = try certificates(ca, field: "client.ca") }
    }

    static func certificates(_ pem: String, field: String) throws -> [NIOSSLCertificate] {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)) } catch {
            throw Problem(description: "\(field): not a PEM certificate")
        }
        guard !chain.isEmpty else { throw Problem(description: "\(field): no certificate in the PEM") }
        return chain
    }

    static func privateKey(_ pem: String) throws -> NIOSSLPrivateKey {
        do { return try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem) } catch {
            throw Problem(description: "key: not a PEM private key (or it is encrypted)")
        }
    }

    /// The SubjectPublicKeyInfo of a PEM private key, for comparing it with a certificate's.
    static func publicKeyDER(ofPEM pem: String) -> [UInt8]? {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        return nil
    }

    private static func date(_ t: time_t) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }
}
