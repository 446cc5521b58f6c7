import Synchronization

/// A switch a fake's handler reads: the test flips it to make an instance fail or recover.
final class Flag: Sendable {
    private let state: Mutex<Bool>
    init(_ initial: Bool) { state = Mutex(initial) }
    var isOn: Bool { state.withLock { $0 } }
    func set(_ on: Bool) { state.withLock { $0 = on } }
}

/// A count that fake handlers and concurrent client tasks bump.
final class Counter: Sendable {
    private let count = Mutex(0)

    /// The number of earlier calls (0 on the first): "fail the first call, then succeed".
    func next() -> Int {
        count.withLock { count in
            defer { count += 1 }
            return count
        }
    }

    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
