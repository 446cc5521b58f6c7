import SwitchboardCore

/// The Admin API's keys and their roles. Comparison is constant-time in the key's contents and
/// always walks every configured key, so response timing does not reveal how much of a guessed
/// key was right, nor which key it was close to.
public struct AdminKeyring: Sendable {
    public enum Role: Sendable, Equatable { case admin, viewer }

    public enum Verdict: Sendable, Equatable {
        case allowed(Role)
        case missing
        case wrong
    }

    private let keys: [([UInt8], Role)]

    public init(_ keys: [(key: String, role: Role)]) {
        self.keys = keys.map { (Array($0.key.utf8), $0.role) }
    }

    public func check(_ presented: String?) -> Verdict {
        guard let presented, !presented.isEmpty else { return .missing }
        let candidate = Array(presented.utf8)
        var found: Role?
        for (key, role) in keys {
            if Self.constantTimeEqual(candidate, key) && found == nil { found = role }
        }
        return found.map(Verdict.allowed) ?? .wrong
    }

    /// Compares all bytes of both inputs whatever their contents; lengths leak, contents do not.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let length = max(a.count, b.count)
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | (a.count == b.count ? 0 : 1)
        for i in 0..<length {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    /// A fresh random key: 32 bytes from the system generator, hex-encoded.
    public static func generateKey() -> String { Randomness.hex(bytes: 32) }
}
