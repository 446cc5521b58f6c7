import NIOCore

extension AdaptiveRecvByteBufferAllocator {
    /// Read buffers of data-plane connections, the clients' and the providers'. A connection
    /// keeps its read buffer between reads: 1 KB to start (NIO's default is 2 KB), growing with
    /// the reads that fill it. An open slow stream holds two (its client's connection and its
    /// provider's), so this is 2 KB less per stream.
    static let dataPlane = AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 65536)
}
