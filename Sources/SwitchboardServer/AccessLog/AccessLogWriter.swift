import Foundation

/// Writes access log lines from a dedicated thread, so a slow disk never stalls a request:
/// requests append whole lines to a bounded in-memory buffer (lines never interleave) and the
/// thread drains it. When the buffer is full, lines are dropped and counted rather than
/// blocking the caller.
public final class AccessLogWriter: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [UInt8] = []
    private var closed = false
    private let path: String?
    private var descriptor: Int32
    private let maxPending: Int
    private var thread: Thread?
    /// Called (outside the lock) for each dropped line: the gateway counts them in a metric.
    private let onDrop: @Sendable () -> Void

    /// - Parameters:
    ///   - path: a file to append to, or `nil` for standard output.
    ///   - maxPending: bytes buffered before lines are dropped.
    public init(path: String?, maxPending: Int = 8 * 1024 * 1024, onDrop: @escaping @Sendable () -> Void = {}) throws {
        self.path = path
        self.maxPending = maxPending
        self.onDrop = onDrop
        if let path {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            descriptor = fd
        } else {
            descriptor = STDOUT_FILENO
        }
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "access-log"
        self.thread = thread
        thread.start()
    }

    public func write(line: [UInt8]) {
        condition.lock()
        let full = pending.count + line.count > maxPending
        if !full {
            pending.append(contentsOf: line)
            condition.signal()
        }
        condition.unlock()
        if full { onDrop() }
    }

    /// Waits until everything written so far is on disk (tests and shutdown).
    public func flush() {
        condition.lock()
        while !pending.isEmpty { condition.wait() }
        condition.unlock()
    }

    /// Opens the file again by name (log rotation moved the old one away). Lines written in
    /// the meantime are not lost: they are drained into whichever file is open.
    public func reopen() {
        guard let path else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        condition.lock()
        let old = descriptor
        descriptor = fd
        condition.unlock()
        Foundation.close(old)
    }

    public func close() {
        flush()
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        if path != nil { Foundation.close(descriptor) }
    }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty && !closed { condition.wait() }
            if closed && pending.isEmpty {
                condition.unlock()
                return
            }
            let chunk = pending
            pending.removeAll(keepingCapacity: true)
            let fd = descriptor
            condition.unlock()
            chunk.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }
}
