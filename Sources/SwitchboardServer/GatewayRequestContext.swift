import Hummingbird
import Logging
import NIOCore

/// Hummingbird request context of every Switchboard listener: the core storage plus the
/// peer address, which route matching (`remote_addrs`) and the access log need.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection, to notice a streaming client leaving (see ``ConnectionWatch``).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.channel = source.channel
    }

    /// Bodies are read by the gateway itself, with its own limits.
    public var maxUploadSize: Int { .max }
}
