import Foundation
import Logging
import NIOSSL
import SwitchboardCore
import Synchronization

/// The server certificates of the `ssls` resource, compiled into TLS contexts once per
/// configuration and looked up by the client's SNI on every TLS handshake: an exact name first,
/// then a wildcard (`*.example.com` covers one more label, as certificates do). A new certificate
/// is served from the next handshake, without a restart. A handshake whose name no certificate
/// covers (or with no SNI at all) fails, as in APISIX.
public struct CertificateTable: Sendable {
    struct Entry: Sendable {
        var id: String
        var context: NIOSSLContext
        var requiresClientCertificate: Bool
        var notValidAfter: time_t
    }

    private var exact: [String: Entry] = [:]
    private var wildcard: [String: Entry] = [:]

    public static let empty = CertificateTable()

    private init() {}

    public var isEmpty: Bool { exact.isEmpty && wildcard.isEmpty }

    /// - Parameter cache: contexts of earlier compiles, by object and revision: a configuration
    ///   change elsewhere does not build every TLS context again.
    init(_ state: ConfigState, cache: CertificateContexts, logger: Logger) {
        var used = Set<String>()
        for record in state.list(.ssls) {
            let value = record.value
            guard value["status"]?.intValue != 0, value["type"]?.stringValue ?? "server" == "server" else { continue }
            do {
                let key = "\(record.id)#\(record.modifiedIndex)"
                used.insert(key)
                let entry = try cache.entry(key) { () throws -> Entry in
                    let made = try Self.entry(record.id, value)
                    if made.notValidAfter < time(nil) {
                        logger.error("ssl \(record.id) has expired: clients will refuse it; replace it")
                    }
                    return made
                }
                let names = value["snis"]?.arrayValue?.compactMap(\.stringValue) ?? [value["sni"]?.stringValue ?? ""]
                for name in names.map({ $0.lowercased() }) where !name.isEmpty {
                    if name.hasPrefix("*.") {
                        wildcard[String(name.dropFirst(2))] = wildcard[String(name.dropFirst(2))] ?? entry
                    } else {
                        exact[name] = exact[name] ?? entry
                    }
                }
            } catch {
                logger.error("ssl \(record.id) left out of the configuration: \(error)")
            }
        }
        cache.keep(only: used)
    }

    static func entry(_ id: String, _ value: JSONValue) throws -> Entry {
        let chain = try TLSCertificates.certificates(value["cert"]?.stringValue ?? "", field: "cert")
        let key = try TLSCertificates.privateKey(value["key"]?.stringValue ?? "")
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let protocols = value["ssl_protocols"]?.arrayValue {
            if !protocols.contains(.string("TLSv1.2")) { configuration.minimumTLSVersion = .tlsv13 }
            if !protocols.contains(.string("TLSv1.3")) { configuration.maximumTLSVersion = .tlsv12 }
        }
        configuration.applicationProtocols = ["h2", "http/1.1"]
        var mutual = false
        if let ca = value["client"]?["ca"]?.stringValue {
            configuration.trustRoots = .certificates(try TLSCertificates.certificates(ca, field: "client.ca"))
            configuration.certificateVerification = .noHostnameVerification
            mutual = true
        }
        return Entry(
            id: id, context: try NIOSSLContext(configuration: configuration), requiresClientCertificate: mutual,
            notValidAfter: chain[0].notValidAfter)
    }

    /// The context for a client that asked for `serverName`.
    func entry(for serverName: String?) -> Entry? {
        guard let name = serverName?.lowercased(), !name.isEmpty else { return nil }
        if let found = exact[name] { return found }
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return wildcard[String(name[name.index(after: dot)...])]
    }
}

/// The TLS contexts built so far, kept across configuration compiles (see
/// ``CertificateTable/init(_:cache:logger:)``).
final class CertificateContexts: Sendable {
    private let entries = Mutex<[String: CertificateTable.Entry]>([:])

    init() {}

    func entry(_ key: String, make: () throws -> CertificateTable.Entry) throws -> CertificateTable.Entry {
        if let found = entries.withLock({ $0[key] }) { return found }
        let made = try make()
        entries.withLock { $0[key] = made }
        return made
    }

    func keep(only keys: Set<String>) {
        entries.withLock { entries in entries = entries.filter { keys.contains($0.key) } }
    }
}
