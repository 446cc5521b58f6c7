/// Random identifiers from the system's cryptographic generator.
public enum Randomness {
    /// `count` random bytes as lower-case hex (`2 × count` characters).
    /// Eight bytes per draw from the generator (one `getrandom` call each; drawing per byte
    /// cost 16 system calls per request id).
    public static func hex(bytes count: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: count * 2) { out in
            var written = 0
            var word: UInt64 = 0
            for i in 0..<count {
                if i % 8 == 0 { word = rng.next() }
                let byte = UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8))
                out[written] = digits.utf8Start[Int(byte >> 4)]
                out[written + 1] = digits.utf8Start[Int(byte & 0xF)]
                written += 2
            }
            return written
        }
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
