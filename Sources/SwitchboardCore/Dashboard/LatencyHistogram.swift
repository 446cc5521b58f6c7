import Foundation

/// Counts of durations in fixed logarithmic bins (each √2 wider than the last, from 1 ms to about
/// three minutes), so that p50 and p95 of any number of requests — and of any sum of buckets —
/// come from 36 counters. A quantile is the upper bound of its bin: at most 41 % above the true
/// value, which is what a chart needs.
public struct LatencyHistogram: Sendable, Equatable {
    public static let binCount = 36
    public private(set) var counts: [UInt32]

    public init() {
        counts = Array(repeating: 0, count: Self.binCount)
    }

    /// The bin of `milliseconds`: 0 for under 1 ms, then one per factor √2, the last open-ended.
    static func bin(_ milliseconds: Double) -> Int {
        guard milliseconds.isFinite else { return binCount - 1 }
        guard milliseconds >= 1 else { return 0 }
        return min(Int((2 * log2(milliseconds)).rounded(.down)) + 1, binCount - 1)
    }

    /// The upper bound of bin `index` in milliseconds.
    public static func upperBound(_ index: Int) -> Double {
        pow(2, Double(index) / 2)
    }

    public mutating func record(milliseconds: Double) {
        let index = Self.bin(milliseconds)
        if counts[index] < .max { counts[index] += 1 }
    }

    public mutating func add(_ other: LatencyHistogram) {
        for i in counts.indices {
            let (sum, overflow) = counts[i].addingReportingOverflow(other.counts[i])
            counts[i] = overflow ? .max : sum
        }
    }

    public var total: Int { counts.reduce(0) { $0 + Int($1) } }

    /// The `q` quantile (0…1) in milliseconds; `nil` without samples.
    public func quantile(_ q: Double) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = max(1, Int((q * Double(total)).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += Int(count)
            if seen >= rank { return Self.upperBound(index) }
        }
        return Self.upperBound(Self.binCount - 1)
    }
}
