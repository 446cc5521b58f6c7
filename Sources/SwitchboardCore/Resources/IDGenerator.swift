/// Makes the ids of objects created with `POST`: 20 digits, zero-padded, increasing, like
/// APISIX's etcd-revision ids (`"00000000000000000025"`), so they sort by creation time.
public struct IDGenerator: Sendable {
    public private(set) var last: Int

    public init(last: Int = 0) {
        self.last = last
    }

    /// The next id; never below `floor` (e.g. the store's revision, so ids survive restarts).
    public mutating func next(atLeast floor: Int = 0) -> String {
        last = max(last + 1, floor)
        return Self.format(last)
    }

    public static func format(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
}
