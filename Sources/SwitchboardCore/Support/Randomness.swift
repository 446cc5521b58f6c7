/// Random identifiers from the system's cryptographic generator.
public enum Randomness {
    /// `count` random bytes as lower-case hex (`2 × count` characters).
    public static func hex(bytes count: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        for _ in 0..<count {
            let byte = UInt8.random(in: 0...255, using: &rng)
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Seconds on the monotonic clock since this process started: for deadlines and windows that
/// must not jump with the wall clock.
public enum MonotonicClock {
    private static let origin = ContinuousClock.now

    public static func seconds() -> Double {
        let d = ContinuousClock.now - origin
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
