/// Interleaved weighted round robin, as `resty.roundrobin` does it (and so APISIX): over any
/// `sum(weights)/gcd` consecutive picks each node is chosen exactly `weight/gcd` times.
/// All-zero weights rotate evenly; a zero weight among positive ones is never chosen.
///
/// A value type so the owner decides where it lives (e.g. behind a `Mutex` per route).
public struct WeightedRoundRobin: Sendable {
    public let weights: [Int]
    private let gcd: Int
    private let maxWeight: Int
    private var currentWeight: Int
    private var index: Int

    /// - Parameter start: index of the node the first pick starts at (APISIX picks it randomly).
    public init(weights: [Int], start: Int = 0) {
        self.weights = weights
        let positive = weights.filter { $0 > 0 }
        self.gcd = positive.reduce(0) { Self.gcd($0, $1) }
        self.maxWeight = positive.max() ?? 0
        // Start just before `start` in a state that lies on the cycle, so that the exact
        // per-cycle proportions hold from the very first pick.
        let n = max(weights.count, 1)
        let first = (start % n + n) % n
        self.index = (first - 1 + n) % n
        self.currentWeight = first == 0 ? 0 : positive.max() ?? 0
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        b == 0 ? a : gcd(b, a % b)
    }

    /// The index of the next node, or `nil` when there are none.
    public mutating func next() -> Int? {
        guard !weights.isEmpty else { return nil }
        if maxWeight == 0 {
            index = (index + 1) % weights.count
            return index
        }
        while true {
            index = (index + 1) % weights.count
            if index == 0 {
                currentWeight -= gcd
                if currentWeight <= 0 { currentWeight = maxWeight }
            }
            if weights[index] >= currentWeight && weights[index] > 0 { return index }
        }
    }
}
