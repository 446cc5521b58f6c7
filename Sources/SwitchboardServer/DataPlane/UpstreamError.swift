import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Says in plain words what went wrong with an upstream call — `connection refused by
/// 127.0.0.1:8001`, `no response headers within 3000 ms` — instead of NIO's and
/// AsyncHTTPClient's internal error descriptions. The error class is decided elsewhere.
enum UpstreamError {
    /// Where the call was when it failed.
    enum Stage {
        /// Connecting or waiting for the response head, which was due within `waitMs`.
        case head(waitMs: Int, budgetBound: Bool)
        /// Reading the response body; `idleMs` is the read timeout.
        case body(idleMs: Int)
    }

    static func describe(_ error: any Error, target: String, stage: Stage) -> String {
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .connectTimeout: return "could not connect to \(target) in time"
            case .deadlineExceeded, .readTimeout:
                switch stage {
                case .head(let waitMs, let budgetBound):
                    return budgetBound
                        ? "request_timeout_ms spent before \(target) sent response headers (waited \(waitMs) ms)"
                        : "no response headers from \(target) within \(waitMs) ms"
                case .body(let idleMs): return "no data from \(target) for \(idleMs) ms while reading the response"
                }
            case .remoteConnectionClosed:
                return "\(target) closed the connection before the response was complete"
            case .cancelled: return "the request to \(target) was cancelled"
            default: break
            }
        }
        if let connection = error as? NIOConnectionError {
            if connection.dnsAError != nil && connection.dnsAAAAError != nil && connection.connectionErrors.isEmpty {
                return "could not resolve \(connection.host)"
            }
            if let first = connection.connectionErrors.first {
                return describe(first.error, target: target, stage: stage)
            }
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused by \(target)"
            case ECONNRESET, EPIPE: return "connection reset by \(target)"
            case EHOSTUNREACH, ENETUNREACH: return "\(target) is unreachable (no route)"
            case ETIMEDOUT: return "could not connect to \(target) in time"
            default: return "connection to \(target) failed: \(String(cString: strerror(io.errnoCode)))"
            }
        }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout(let timeout):
                return "could not connect to \(target) within \(timeout.nanoseconds / 1_000_000) ms"
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed:
                return "\(target) closed the connection before the response was complete"
            default: break
            }
        }
        if error is NIOSSLError || error is BoringSSLError {
            return "TLS handshake with \(target) failed: \(error)"
        }
        return "request to \(target) failed: \(error)"
    }
}
