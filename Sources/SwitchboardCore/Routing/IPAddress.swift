#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address as 16 bytes (IPv4 mapped into `::ffff:0:0/96`).
public struct IPAddress: Sendable, Hashable {
    public let bytes: [UInt8]
    public let isIPv4: Bool

    public init?(_ text: String) {
        // inet_pton reads a C string: a NUL inside would end the text early ("10.0.0.1\0junk").
        guard !text.utf8.contains(0) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let raw = withUnsafeBytes(of: &v4) { Array($0) }
            bytes = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + raw
            isIPv4 = true
            return
        }
        var v6 = in6_addr()
        var trimmed = text
        if trimmed.hasPrefix("["), trimmed.hasSuffix("]") { trimmed = String(trimmed.dropFirst().dropLast()) }
        if inet_pton(AF_INET6, trimmed, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            isIPv4 = false
            return
        }
        return nil
    }
}

/// An address range written as `a.b.c.d/n`, `x::y/n`, or a single address.
public struct CIDR: Sendable, Hashable {
    public let network: IPAddress
    /// Prefix length counted over the 128-bit form.
    public let prefixLength: Int

    public init?(_ text: String) {
        // Empty parts kept: "" and "/" are refused (not an index out of range), "10.0.0.0/" too.
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maxBits = address.isIPv4 ? 32 : 128
        var bits = maxBits
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 0, n <= maxBits else { return nil }
            bits = n
        }
        network = address
        prefixLength = address.isIPv4 ? bits + 96 : bits
    }

    public func contains(_ address: IPAddress) -> Bool {
        var remaining = prefixLength
        var i = 0
        while remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - remaining))
            if address.bytes[i] & mask != network.bytes[i] & mask { return false }
            remaining -= 8
            i += 1
        }
        return true
    }
}
