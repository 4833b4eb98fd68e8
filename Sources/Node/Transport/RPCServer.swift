import GridTLS
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Wire

/// The listening side of a node: accepts TCP connections, runs TLS and the RPC protocol on
/// each, and shuts them all down gracefully.
///
/// Limits (Docs/security.md, "Limits"): every accepted connection takes a slot of the
/// `ConnectionLimiter` (closed at once, before TLS, when `maxHandshakes` are taken); once
/// authenticated its peer is admitted against the total, the reserve for node/ops/admin and
/// the per-certificate cap (or refused with GOAWAY `RESOURCE_EXHAUSTED`). Every connection
/// shares one `MemoryBudget` for buffered messages. Accept errors (EMFILE, ENFILE …) back
/// off for a second instead of spinning, and are logged.
///
/// Thread safety: the connection registry is behind a mutex; every connection's state is on
/// its own event loop.
package final class RPCServer: Sendable {
    private struct Connection {
        let channel: Channel
        let handler: NIOLoopBound<RPCServerHandler>
    }

    let stats: RPCServerStats
    let limiter: ConnectionLimiter
    let budget: MemoryBudget
    /// Rate limit of refusal log lines, shared by every connection.
    private let refusalLog = LogRateLimiter()
    private let group: EventLoopGroup
    private let tls: TLSContext
    private let router: RPCRouter

    /// Every method path this server routes, sorted.
    var methodPaths: [String] { router.paths }
    private let configuration: RPCServerConfiguration
    private let logger: Logger
    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])
    private let listener = Mutex<Channel?>(nil)

    package init(
        group: EventLoopGroup, tls: TLSContext, router: RPCRouter, configuration: RPCServerConfiguration, logger: Logger,
        connectionLimits: ConnectionLimits = ConnectionLimits(), memoryBudgetBytes: Int = 256 << 20,
        observer: (any RPCServerObserver)? = nil
    ) {
        self.stats = RPCServerStats(observer: observer)
        self.group = group
        self.tls = tls
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.limiter = ConnectionLimiter(limits: connectionLimits)
        self.budget = MemoryBudget(ceiling: memoryBudgetBytes)
    }

    /// Binds and starts accepting; returns the bound address.
    /// - Parameter accepting: false binds and listens without accepting connections until
    ///   `startAccepting()` (the kernel queues them in the backlog meanwhile): an address that
    ///   cannot be bound fails early, and no client is served before the node is ready.
    package func start(host: String, port: Int, accepting: Bool = true) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.autoRead, value: accepting)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .serverChannelInitializer { [logger, refusalLog] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: true))
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger, rateLimit: refusalLog))
                }
            }
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
        guard let admission = limiter.beginHandshake() else {
            stats.recordConnectionOverLimit()
            let over = ConnectionOverLimit(handshaking: limiter.handshaking, limit: limiter.limits.maxHandshakes)
            let (log, suppressed) = refusalLog.shouldLog("connection refused before the handshake")
            if log {
                var metadata: Logger.Metadata = ["reason": "\(over)", "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"]
                if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
                logger.warning("connection refused before the handshake", metadata: metadata)
            }
            // NIO closes the accepted channel when its initializer fails.
            throw over
        }
        var logger = self.logger
        logger[metadataKey: "remote"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
        let id = ObjectIdentifier(channel as AnyObject)
        let handler = RPCServerHandler(
            router: router, configuration: configuration, stats: stats, logger: logger,
            onClose: { [weak self] in _ = self?.connections.withLock { $0.removeValue(forKey: id) } },
            admission: admission, budget: budget, refusalLog: refusalLog)
        let pipeline = channel.pipeline.syncOperations
        do {
            try pipeline.addHandler(TLSHandler.serverHandler(context: tls, logger: logger))
        } catch {
            admission.release()
            throw error
        }
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(limits: configuration.limits, budget: budget)))
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
    package func shutdownGracefully(endingMethods: Set<String> = [], afterGoAway: () -> Void = {}) async {
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

/// A connection closed at accept because `maxHandshakes` connections are already in their
/// handshake (or refused and closing).
struct ConnectionOverLimit: Error, CustomStringConvertible {
    var handshaking: Int
    var limit: Int
    var description: String { "\(handshaking) connections are in their TLS handshake (limit \(limit))" }
}

/// On the listening channel: logs accept failures such as EMFILE, at most once every 10 s
/// (`AcceptBackoffHandler`, before it, answers them with a second's pause).
private final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = Any

    private let logger: Logger
    private let rateLimit: LogRateLimiter

    init(logger: Logger, rateLimit: LogRateLimiter) {
        self.logger = logger
        self.rateLimit = rateLimit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let (log, suppressed) = rateLimit.shouldLog("accept failed")
        if log {
            var metadata: Logger.Metadata = ["reason": "\(error)"]
            if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
            logger.warning("accept failed; pausing accepts for a second", metadata: metadata)
        }
        context.fireErrorCaught(error)
    }
}
