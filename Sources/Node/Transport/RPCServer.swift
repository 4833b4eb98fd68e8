import GridTLS
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Wire

/// The listening side of a node: accepts TCP connections, runs TLS and the RPC protocol on
/// each, and shuts them all down gracefully.
///
/// Thread safety: the connection registry is behind a mutex; every connection's state is on
/// its own event loop.
final class RPCServer: Sendable {
    private struct Connection {
        let channel: Channel
        let handler: NIOLoopBound<RPCServerHandler>
    }

    let stats = RPCServerStats()
    private let group: EventLoopGroup
    private let tls: TLSContext
    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let logger: Logger
    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])
    private let listener = Mutex<Channel?>(nil)

    init(group: EventLoopGroup, tls: TLSContext, router: RPCRouter, configuration: RPCServerConfiguration, logger: Logger) {
        self.group = group
        self.tls = tls
        self.router = router
        self.configuration = configuration
        self.logger = logger
    }

    /// Binds and starts accepting; returns the bound address.
    /// - Parameter accepting: false binds and listens without accepting connections until
    ///   `startAccepting()` (the kernel queues them in the backlog meanwhile): an address that
    ///   cannot be bound fails early, and no client is served before the node is ready.
    func start(host: String, port: Int, accepting: Bool = true) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.autoRead, value: accepting)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { throw ChannelError.ioOnClosedChannel }
                    try self.setUpConnection(channel)
                }
            }
            .bind(host: host, port: port)
            .get()
        listener.withLock { $0 = channel }
        return channel.localAddress!
    }

    /// Starts accepting connections on a listener bound with `accepting: false`.
    func startAccepting() async throws {
        guard let channel = listener.withLock({ $0 }) else { return }
        try await channel.setOption(.autoRead, value: true).get()
    }

    private func setUpConnection(_ channel: Channel) throws {
        var logger = self.logger
        logger[metadataKey: "remote"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
        let id = ObjectIdentifier(channel as AnyObject)
        let handler = RPCServerHandler(
            router: router, configuration: configuration, stats: stats, logger: logger,
            onClose: { [weak self] in _ = self?.connections.withLock { $0.removeValue(forKey: id) } })
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(TLSHandler.serverHandler(context: tls, logger: logger))
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(limits: configuration.limits)))
        try pipeline.addHandler(handler)
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        connections.withLock { $0[id] = Connection(channel: channel, handler: bound) }
    }

    var openConnections: Int { connections.withLock { $0.count } }

    /// Stops accepting, sends GOAWAY on every connection, waits for calls in flight (up to
    /// the grace period) and for the connections to close.
    /// - Parameter afterGoAway: runs once GOAWAY is queued on every connection, e.g. to end
    ///   long-lived streams so the drain finishes early; their trailers follow the GOAWAY.
    ///   - endingMethods: long-lived streaming methods whose calls end at once.
    func shutdownGracefully(endingMethods: Set<String> = [], afterGoAway: () -> Void = {}) async {
        let listening = listener.withLock { l in defer { l = nil }; return l }
        try? await listening?.close()
        let open = connections.withLock { Array($0.values) }
        for connection in open {
            let handler = connection.handler
            connection.channel.eventLoop.execute { handler.value.initiateGracefulShutdown(endingMethods: endingMethods) }
        }
        afterGoAway()
        let deadline = ContinuousClock.now + .milliseconds(configuration.shutdownGracePeriod.nanoseconds / 1_000_000) + .seconds(2)
        for connection in open {
            while connection.channel.isActive, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
            if connection.channel.isActive {
                try? await connection.channel.close()
            }
        }
    }
}
