import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The node's plain-HTTP operations listener (`metrics_listen`): `/metrics` (Prometheus'
/// text format), `/livez` and `/readyz` (Docs/operations.md). It has an event loop of its own,
/// so a scrape never waits behind RPC traffic, nor RPC traffic behind a scrape.
///
/// It carries no chain data and no authentication: bind it to loopback or a management
/// network (Docs/security.md, "Metrics listener"). Bounded: at most `maxConnections`
/// connections at once (more are closed at accept), each closed after `idleTimeout` silent.
///
/// Thread safety: `start` and `stop` may be called from any task; `respond` is called on the
/// listener's event loop, one request at a time per connection.
final class MetricsServer: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }
    /// Answers one GET for `path` (the request target without its query).
    typealias Responder = @Sendable (_ path: String) -> Response

    static let maxConnections = 64
    static let idleTimeout: TimeAmount = .seconds(60)

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let respond: Responder
    private let listener = Mutex<Channel?>(nil)
    private let open = Atomic<Int>(0)

    init(respond: @escaping Responder) {
        self.respond = respond
    }

    /// Binds `host:port` (port 0 = any free port) and serves; returns the bound address.
    func start(host: String, port: Int) async throws -> SocketAddress {
        let respond = self.respond
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                guard open.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                    open.subtract(1, ordering: .relaxed)
                    return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
                }
                channel.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(MetricsHTTPHandler(respond: respond))
                }
            }
            .bind(host: host, port: port).get()
        listener.withLock { $0 = channel }
        guard let address = channel.localAddress else { throw ChannelError.ioOnClosedChannel }
        return address
    }

    /// Closes the listener and every connection, and shuts the event loop down.
    func stop() async {
        let channel = listener.withLock { c in defer { c = nil }; return c }
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }
}
