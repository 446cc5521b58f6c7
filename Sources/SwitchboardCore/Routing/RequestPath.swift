/// Normalises a request path before it is matched and forwarded, as nginx does for APISIX:
/// `.` and `..` segments are resolved (also written `%2e`), repeated slashes merged. Without it
/// `/v1/chat/../../v1/organization/admin_api_keys` matches route `/v1/chat/*` and reaches the
/// provider at another endpoint with the operator's key.
public enum RequestPath {
    /// The normalised path, or `nil` when `..` climbs above the root (the request gets 400).
    /// Paths without a dot segment, an encoded dot or a double slash come back unchanged
    /// without allocating.
    public static func normalize(_ path: String) -> String? {
        guard needsWork(path) else { return path }
        var segments: [Substring] = []
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for (i, part) in parts.enumerated() {
            let isLast = i == parts.count - 1
            switch dots(part) {
            case 1:
                if isLast { segments.append("") }
            case 2:
                guard !segments.isEmpty else { return nil }
                segments.removeLast()
                if isLast { segments.append("") }
            default:
                // An empty segment is a repeated (or the leading) slash; a trailing one stays.
                if part.isEmpty && !(isLast && i > 0) { continue }
                segments.append(part)
            }
        }
        return "/" + segments.joined(separator: "/")
    }

    /// Whether `path` has anything to normalise: `//`, `/.` or `%2e`.
    static func needsWork(_ path: String) -> Bool {
        var previous: UInt8 = 0
        var beforePrevious: UInt8 = 0
        for byte in path.utf8 {
            if previous == UInt8(ascii: "/") && (byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".")) {
                return true
            }
            if beforePrevious == UInt8(ascii: "%") && previous == UInt8(ascii: "2")
                && (byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E"))
            {
                return true
            }
            beforePrevious = previous
            previous = byte
        }
        return !path.hasPrefix("/")
    }

    /// 1 for a `.` segment, 2 for `..` (either dot may be written `%2e`), else 0.
    static func dots(_ segment: Substring) -> Int {
        var count = 0
        var rest = segment[...]
        while !rest.isEmpty {
            if rest.hasPrefix(".") {
                rest = rest.dropFirst()
            } else if rest.count >= 3, rest.hasPrefix("%2e") || rest.hasPrefix("%2E") {
                rest = rest.dropFirst(3)
            } else {
                return 0
            }
            count += 1
            if count > 2 { return 0 }
        }
        return count
    }
}
