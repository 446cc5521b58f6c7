import Crypto
import Foundation
import SwitchboardCore

/// AWS Signature Version 4 for a request as it will be sent (HMAC-SHA256 and SHA-256 from
/// swift-crypto). Checked against AWS's published test vectors and botocore's signatures.
enum AWSSigV4 {
    struct Signed {
        /// Headers to add: `x-amz-date`, `x-amz-security-token` (temporary credentials), and
        /// `authorization`.
        var headers: [(name: String, value: String)]
    }

    /// Signs `method path?query` with `headers` (lower-case names; `host` among them) and `body`.
    /// `path` and `query` are as written on the wire (already percent-encoded). Every given
    /// header is signed.
    static func sign(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], body: [UInt8],
        service: String, region: String, credentials: AWSAuth, amzDate: String
    ) -> Signed {
        var signed = headers.map { (name: $0.name.lowercased(), value: $0.value) }
        signed.append(("x-amz-date", amzDate))
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        signed.sort { $0.name < $1.name }
        let names = signed.map(\.name).joined(separator: ";")
        let canonicalHeaders = signed.map { "\($0.name):\(trimmed($0.value))\n" }.joined()
        let canonical = [
            method, canonicalURI(path), canonicalQuery(query), canonicalHeaders, names, hex(SHA256.hash(data: body)),
        ].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Data(canonical.utf8)))].joined(
            separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: key))
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        added.append(
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(names), Signature=\(signature)"
            ))
        return Signed(headers: added)
    }

    /// `20150830T123600Z` for a Unix time, in UTC.
    static func amzDate(_ seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondsOfDay = seconds - days * 86400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return
            "\(year)\(two(month))\(two(day))T\(two(secondsOfDay / 3600))\(two(secondsOfDay / 60 % 60))\(two(secondsOfDay % 60))Z"
    }

    /// Each segment of the path as sent, URI-encoded again (every service but S3 signs the
    /// encoded path encoded once more: `%3A` is signed as `%253A`).
    static func canonicalURI(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { uriEncode(String($0)) }.joined(
            separator: "/")
    }

    /// Parameters decoded, then encoded strictly and sorted by name, then value.
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in text.removingPercentEncoding ?? String(text) }
            return (uriEncode(decode(parts[0])), uriEncode(parts.count > 1 ? decode(parts[1]) : ""))
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(
            separator: "&")
    }

    /// RFC 3986 unreserved characters kept, everything else `%XX` (upper case).
    static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 0xf)]))
            }
        }
        return out
    }

    /// A header value as signed: trimmed, inner runs of spaces collapsed to one.
    static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xf)]], as: UTF8.self)
        }.joined()
    }
}
