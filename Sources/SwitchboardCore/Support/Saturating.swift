/// Arithmetic on numbers that come from outside — a client's `max_tokens`, a provider's usage,
/// a configured limit — which must never reach a Swift overflow trap (one request would end
/// the process). Counts are clamped to ``ceiling`` where they enter, and sums saturate.
public enum Saturating {
    /// The largest token count the gateway believes: 2^40 (about 10^12) tokens, far beyond any
    /// real request, and small enough that millions of them still add up without overflow.
    public static let ceiling = 1 << 40

    /// `value` clamped to `0...ceiling`.
    @inline(__always)
    public static func count(_ value: Int) -> Int {
        min(max(value, 0), ceiling)
    }

    /// A count from a JSON number (integer or not), clamped; `nil` when absent or not a number.
    public static func count(_ value: JSONValue?) -> Int? {
        switch value {
        case .int(let n)?: return count(n)
        case .double(let d)?: return int(d)
        default: return nil
        }
    }

    /// `d` rounded and clamped to `0...ceiling`; 0 for NaN.
    public static func int(_ d: Double) -> Int {
        guard !d.isNaN else { return 0 }
        if d >= Double(ceiling) { return ceiling }
        if d <= 0 { return 0 }
        return Int(d.rounded())
    }

    /// `a + b`, stopping at `Int.max` / `Int.min` instead of trapping.
    @inline(__always)
    public static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int.max : Int.min) : sum
    }

    /// `a - b`, stopping at the bounds instead of trapping.
    @inline(__always)
    public static func subtract(_ a: Int, _ b: Int) -> Int {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b > 0 ? Int.min : Int.max) : difference
    }

    /// `a * b`, stopping at the bounds instead of trapping.
    @inline(__always)
    public static func multiply(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? ((a < 0) != (b < 0) ? Int.min : Int.max) : product
    }

    /// Milliseconds for `seconds` when it is a finite, non-negative number no larger than
    /// `maxSeconds`; `nil` for NaN, infinity or a negative value.
    public static func milliseconds(_ seconds: Double, maxSeconds: Double) -> Int? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        return Int(min(seconds, maxSeconds) * 1000)
    }
}

extension FixedWidthInteger where Self: UnsignedInteger {
    /// `self + other`, stopping at `max` instead of trapping.
    public func saturatingAdd(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
