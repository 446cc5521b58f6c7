import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One plain TCP connection to a gateway listener, to see what HTTP clients hide (whether a
/// connection is reused). Blocking reads with a 10 s receive timeout, each on its own thread:
/// blocking a thread of the (two-thread) concurrency pool would starve the fakes. The socket is
/// close-on-exec: a gateway process another test spawns meanwhile would otherwise inherit it,
/// and `reset()`'s close would then send nothing (the child still holds the socket).
final class RawClient: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    private var isOpen = true

    deinit { if isOpen { close(fd) } }

    /// Sends FIN, as a client that closes its connection does.
    func closeWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes the connection with a reset (RST), as a killed client does.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
        isOpen = false
    }

    func send(_ text: String) {
        sendBytes(Array(text.utf8))
    }

    /// Sends `bytes` (what a `String` cannot hold: invalid UTF-8).
    func sendBytes(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Reads until `marker` has arrived (or the peer closes / 10 s pass); what was read.
    func read(until marker: String) async -> String {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.readBlocking(until: marker)) }.start()
        }
    }

    /// Reads until the peer closes the connection: what was read, and whether it closed (rather
    /// than the 10 s receive timeout passing).
    func readToClose() async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread {
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = Glibc.read(self.fd, &buffer, buffer.count)
                    if n == 0 {
                        return continuation.resume(returning: (String(decoding: received, as: UTF8.self), true))
                    }
                    if n < 0 {
                        // A reset closes too; only the receive timeout leaves it open.
                        let closed = errno != EAGAIN && errno != EWOULDBLOCK
                        return continuation.resume(returning: (String(decoding: received, as: UTF8.self), closed))
                    }
                    received += buffer[0..<n]
                }
            }.start()
        }
    }

    private func readBlocking(until marker: String) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
