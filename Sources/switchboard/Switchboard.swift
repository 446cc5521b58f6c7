import ArgumentParser
import Foundation
import Logging
import SwitchboardCore
import SwitchboardServer
import SwitchboardStore

/// `switchboard`: the gateway's command line. `switchboard` alone is `switchboard serve`.
@main
struct Switchboard: AsyncParsableCommand {
    static let version = Gateway.version

    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "An AI gateway with an APISIX-compatible Admin API.",
        version: version,
        subcommands: [Serve.self, Validate.self],
        defaultSubcommand: Serve.self)
}

/// Prints one line naming the problem and exits non-zero.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("switchboard: \(message)\n".utf8))
    exit(1)
}

func loadConfig(_ path: String?) -> GatewayConfig {
    guard let path else { return GatewayConfig() }
    do {
        return try GatewayConfig.load(path: path)
    } catch {
        fail(error.message)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (the default command).")

    @Option(name: .shortAndLong, help: "Path of the YAML configuration file (every key optional).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func run() async throws {
        let gatewayConfig = loadConfig(config)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "switchboard")
        let gateway: Gateway
        do {
            gateway = try await Gateway.prepare(config: gatewayConfig, logger: logger)
        } catch {
            fail("\(error)")
        }
        let addresses = gatewayConfig.proxyListen.map { $0.tls ? "\($0) (TLS, HTTP/2)" : $0.description }
            .joined(separator: ", ")
        let location = gateway.manager.store.location
        // The startup line is written once every listener is bound, so a startup problem (a
        // port in use) is the only line the process prints.
        let announce = Task {
            await gateway.waitUntilReady()
            guard !Task.isCancelled else { return }
            logger.info(
                "Switchboard \(Switchboard.version): proxy on \(addresses), admin on \(gatewayConfig.adminListen), store \(location)"
            )
            if gatewayConfig.dataEncryptionKeys.isEmpty, gateway.manager.store.isWritable {
                logger.notice(
                    "no data_encryption.keyring: provider and consumer keys are stored as written in \(location)")
            }
        }
        do {
            try await gateway.run()
        } catch {
            announce.cancel()
            fail("\(error)")
        }
    }
}

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration file (and a standalone routes file it names) without starting.")

    @Option(name: .shortAndLong, help: "Path of the YAML configuration file.")
    var config: String

    func run() async throws {
        let gatewayConfig = loadConfig(config)
        do {
            _ = try LogFormat(gatewayConfig.accessLogFormat)
        } catch {
            fail("\(config): access_log.format: \(error)")
        }
        if case .file(let path) = gatewayConfig.store {
            let store = FileConfigStore(path: path, logger: Logger(label: "validate"))
            let manager = ConfigManager(
                store: store, registry: .builtIn, holder: SnapshotHolder(),
                services: .inert(logger: Logger(label: "validate")))
            do {
                try await manager.start(strict: true)
            } catch {
                fail("\(error)")
            }
        }
        print("\(config): configuration is valid")
    }
}
