import Crypto
import Foundation
import SwitchboardCore

/// Encrypts the secret fields of configuration (``SensitiveFields``) before they reach the
/// store, with AES-GCM from swift-crypto: the first key of `data_encryption.keyring` seals,
/// every key opens, so a key is rotated by putting the new one first and keeping the old one
/// until every object has been written again. A sealed value reads
/// `$aes-gcm$<base64 of nonce, ciphertext and tag>`; a value without that prefix (a store written
/// before encryption was turned on, a standalone file) is read as written.
public struct FieldEncryption: Sendable {
    static let prefix = "$aes-gcm$"
    let keys: [SymmetricKey]
    let fields: SensitiveFields

    public init(keyring: [[UInt8]], fields: SensitiveFields) {
        self.keys = keyring.map { SymmetricKey(data: $0) }
        self.fields = fields
    }

    public var isEnabled: Bool { !keys.isEmpty }

    /// A stored value that no key of the keyring opens.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The record as it is stored: secret fields sealed (references stay readable). Every
    /// other string is sealed, even one that already looks sealed (it comes from a client: the
    /// gateway's own state is always opened), and a value that cannot be sealed fails the write
    /// rather than reaching the store in clear.
    func seal(_ record: StoredResource) throws(Failure) -> StoredResource {
        guard let key = keys.first else { return record }
        var sealed = record
        sealed.value = try fields.mapSecrets(record.kind, record.value) { (text) throws(Failure) -> String in
            if SensitiveFields.isReference(text) { return text }
            guard let box = try? AES.GCM.seal(Data(text.utf8), using: key), let combined = box.combined else {
                throw Failure(description: "\(record.kind.singular) \(record.id): a secret field could not be sealed")
            }
            return Self.prefix + combined.base64EncodedString()
        }
        return sealed
    }

    /// Whether a stored record holds a secret in clear, or sealed with a key other than the
    /// first (after a rotation).
    func needsReseal(_ record: StoredResource) -> Bool {
        guard let first = keys.first else { return false }
        var needed = false
        _ = fields.mapSecrets(record.kind, record.value) { (text) throws(Never) -> String in
            if SensitiveFields.isReference(text) { return text }
            guard text.hasPrefix(Self.prefix),
                let combined = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))),
                let box = try? AES.GCM.SealedBox(combined: combined), (try? AES.GCM.open(box, using: first)) != nil
            else {
                needed = true
                return text
            }
            return text
        }
        return needed
    }

    /// The record as the gateway uses it: sealed fields opened.
    func open(_ record: StoredResource) throws(Failure) -> StoredResource {
        var opened = record
        opened.value = try fields.mapSecrets(record.kind, record.value) { (text) throws(Failure) -> String in
            guard text.hasPrefix(Self.prefix) else { return text }
            guard let combined = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))),
                let box = try? AES.GCM.SealedBox(combined: combined)
            else {
                throw Failure(description: "\(record.kind.singular) \(record.id): an encrypted field is corrupt")
            }
            for key in keys {
                if let plain = try? AES.GCM.open(box, using: key) { return String(decoding: plain, as: UTF8.self) }
            }
            throw Failure(
                description: keys.isEmpty
                    ? "\(record.kind.singular) \(record.id) has encrypted fields but no data_encryption.keyring is set"
                    : "\(record.kind.singular) \(record.id): no key of data_encryption.keyring decrypts it")
        }
        return opened
    }
}
