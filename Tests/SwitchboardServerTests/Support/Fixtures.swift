import AsyncHTTPClient
import Synchronization

/// Something a test starts and must stop before the next test measures anything: gateways,
/// fake providers and their ping loops keep running (and using the two cores) until stopped.
protocol Stoppable: Sendable {
    func stop() async
}

extension TestGateway: Stoppable {}
extension FakeLLM: Stoppable {}
extension FakeUpstream: Stoppable {}
extension HTTPClient: Stoppable {
    /// Shut down once: a test that already did so is not an error here.
    func stop() async { try? await shutdown() }
}
extension RawUpstream: Stoppable {
    func stop() async { stopListening() }
}

/// What one test owns; ``withFixture(_:)`` stops it all, newest first.
final class Fixtures: Sendable {
    private let owned = Mutex<[any Stoppable]>([])

    /// Registers `thing` to be stopped when the test ends and hands it back, so that
    /// `let gw = try await fx.own(TestGateway.start())` reads like the plain call.
    @discardableResult
    func own<T: Stoppable>(_ thing: T) -> T {
        owned.withLock { $0.append(thing) }
        return thing
    }

    fileprivate func stopAll() async {
        let things = owned.withLock { owned in
            defer { owned = [] }
            return owned
        }
        for thing in things.reversed() { await thing.stop() }
    }
}

/// Runs `body` and then awaits the stop of everything it registered with ``Fixtures/own(_:)``
/// — also when `body` throws — so that no test leaves servers running behind it.
func withFixture<R>(_ body: (Fixtures) async throws -> R) async throws -> R {
    let fixtures = Fixtures()
    do {
        let result = try await body(fixtures)
        await fixtures.stopAll()
        return result
    } catch {
        await fixtures.stopAll()
        throw error
    }
}
