/// Case-insensitive ASCII comparisons on UTF-8 bytes, for header names and media types on the
/// hot path: no lower-cased copies, no Foundation string search.
public enum ASCII {
    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }

    /// `text` equals `lowercase` ignoring ASCII case (`lowercase` must be lower-case).
    public static func equals(_ text: String, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { pattern in
            let a = text.utf8
            guard a.count == pattern.count else { return false }
            var i = 0
            for byte in a {
                if lower(byte) != pattern[i] { return false }
                i += 1
            }
            return true
        }
    }

    /// `text` starts with `lowercase` ignoring ASCII case.
    public static func hasPrefix(_ text: String, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { pattern in
            var i = 0
            for byte in text.utf8 {
                if i == pattern.count { return true }
                if lower(byte) != pattern[i] { return false }
                i += 1
            }
            return i == pattern.count
        }
    }

    /// `text` contains `lowercase` ignoring ASCII case.
    public static func contains(_ text: String, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { contains(text, needle: $0) }
    }

    private static func contains(_ text: String, needle: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !needle.isEmpty else { return true }
        let bytes = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) {
            var j = 0
            while j < needle.count, lower(bytes[start + j]) == needle[j] { j += 1 }
            if j == needle.count { return true }
        }
        return false
    }
}
