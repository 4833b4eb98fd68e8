import ArgumentParser
import Foundation
import Logging
import Node
import ServiceLifecycle

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node until SIGTERM or SIGINT, then shut down gracefully.")

    @Option(help: "Configuration file (YAML or JSON); flags override it.")
    var config: String?
    @Option(help: "Node id (default: the certificate's CN).")
    var nodeId: String?
    @Option(help: "host:port to listen on.")
    var listen: String?
    @Option(help: "Data directory.")
    var dataDir: String?
    @Option(help: "Node certificate (PEM).")
    var cert: String?
    @Option(help: "Node private key (PEM).")
    var key: String?
    @Option(help: "Deployment CA certificate (PEM).")
    var ca: String?
    @Option(help: "Largest accepted message in bytes.")
    var maxMessageBytes: Int?
    @Option(help: "Concurrent calls per connection.")
    var maxConcurrentStreams: Int?
    @Option(help: "Keepalive ping interval (ms).")
    var keepaliveIntervalMs: Int?
    @Option(help: "Keepalive timeout (ms).")
    var keepaliveTimeoutMs: Int?
    @Option(help: "Idle connection timeout (ms).")
    var idleTimeoutMs: Int?
    @Option(help: "TLS handshake timeout (ms).")
    var handshakeTimeoutMs: Int?
    @Option(help: "Shutdown grace period for calls in flight (ms).")
    var shutdownGraceMs: Int?
    @Option(help: "Event loop threads (0 = one per core).")
    var threads: Int?
    @Option(help: "Authenticated connections at once (lowered to fit the descriptor limit).")
    var maxConnections: Int?
    @Option(help: "Connections kept for roles node, ops and admin (of --max-connections).")
    var reservedConnections: Int?
    @Option(help: "Authenticated connections of one certificate.")
    var maxConnectionsPerIdentity: Int?
    @Option(help: "Connections still in their TLS handshake.")
    var maxHandshakes: Int?
    @Option(help: "Ceiling of buffered request and response bytes, all connections together.")
    var memoryBudgetBytes: Int?
    @Option(help: "trace | debug | info | notice | warning | error | critical")
    var logLevel: String?
    @Option(help: "text | json (one JSON object per line).")
    var logFormat: String?
    @Option(help: "host:port of the plain-HTTP /metrics, /livez and /readyz listener (default: none).")
    var metricsListen: String?
    @Option(help: "Chain id (district id); default: the node certificate's district, or main.")
    var chainId: String?
    @Option(help: "Block closes at this many transactions.")
    var maxBlockTransactions: Int?
    @Option(help: "Block closes at this many bytes.")
    var maxBlockBytes: Int?
    @Option(help: "Block closes this many ms after its first transaction.")
    var maxBlockDelayMs: Int?
    @Option(help: "Pending transactions before RESOURCE_EXHAUSTED.")
    var maxPendingTransactions: Int?
    @Option(help: "Readings per batch.")
    var maxBatchReadings: Int?
    @Option(help: "This node's id in the chain's Raft group.")
    var raftId: UInt64?
    @Option(name: .customLong("member"), help: "A Raft member of the chain: ID=NAME@HOST:PORT (repeatable; none = solo).")
    var members: [String] = []
    @Option(help: "Raft tick in ms.")
    var tickMs: Int?
    @Option(help: "Compact the Raft log after this many applied entries.")
    var raftCompactEvery: Int?
    @Option(help: "Hash suite of a new chain: sha256 or sm3.")
    var hashSuite: String?
    @Option(help: "Chain kind: district or main.")
    var chainKind: String?
    @Option(help: "Id of the main chain this district anchors on (default main when --main-endpoint is given).")
    var mainChain: String?
    @Option(name: .customLong("main-endpoint"), help: "host:port of a main-chain node (repeatable); enables anchoring and the downlink.")
    var mainEndpoints: [String] = []
    @Option(help: "Anchor after this many new blocks.")
    var anchorEveryBlocks: Int?
    @Option(help: "Anchor when the oldest unanchored block is this old (ms).")
    var anchorEveryMs: Int?
    @Flag(help: "Join an existing Raft group (added by Admin.AddMember on its leader) instead of bootstrapping one.")
    var join = false

    func resolvedConfiguration() throws -> NodeConfiguration {
        var c = try config.map(NodeConfiguration.load(path:)) ?? NodeConfiguration()
        if let nodeId { c.nodeID = nodeId }
        if let listen { c.listen = listen }
        if let dataDir { c.dataDir = dataDir }
        if let cert { c.tls.cert = cert }
        if let key { c.tls.key = key }
        if let ca { c.tls.ca = ca }
        if let maxMessageBytes { c.rpc.maxMessageBytes = maxMessageBytes }
        if let maxConcurrentStreams { c.rpc.maxConcurrentStreams = maxConcurrentStreams }
        if let keepaliveIntervalMs { c.rpc.keepaliveIntervalMs = keepaliveIntervalMs }
        if let keepaliveTimeoutMs { c.rpc.keepaliveTimeoutMs = keepaliveTimeoutMs }
        if let idleTimeoutMs { c.rpc.idleTimeoutMs = idleTimeoutMs }
        if let handshakeTimeoutMs { c.tls.handshakeTimeoutMs = handshakeTimeoutMs }
        if let shutdownGraceMs { c.rpc.shutdownGraceMs = shutdownGraceMs }
        if let threads { c.rpc.threads = threads }
        if let maxConnections { c.rpc.maxConnections = maxConnections }
        if let reservedConnections { c.rpc.reservedConnections = reservedConnections }
        if let maxConnectionsPerIdentity { c.rpc.maxConnectionsPerIdentity = maxConnectionsPerIdentity }
        if let maxHandshakes { c.rpc.maxHandshakes = maxHandshakes }
        if let memoryBudgetBytes { c.rpc.memoryBudgetBytes = memoryBudgetBytes }
        if let logLevel { c.logLevel = logLevel }
        if let logFormat { c.logFormat = logFormat }
        if let metricsListen { c.metricsListen = metricsListen }
        if let chainId { c.chain.id = chainId }
        if let maxBlockTransactions { c.chain.maxBlockTransactions = maxBlockTransactions }
        if let maxBlockBytes { c.chain.maxBlockBytes = maxBlockBytes }
        if let maxBlockDelayMs { c.chain.maxBlockDelayMs = maxBlockDelayMs }
        if let maxPendingTransactions { c.chain.maxPendingTransactions = maxPendingTransactions }
        if let maxBatchReadings { c.chain.maxBatchReadings = maxBatchReadings }
        if let raftId { c.chain.raftID = raftId }
        if !members.isEmpty { c.chain.members = try members.map(NodeConfiguration.Chain.Member.init(parsing:)) }
        if let tickMs { c.chain.tickMs = tickMs }
        if let raftCompactEvery { c.chain.compactEvery = raftCompactEvery }
        if join { c.chain.join = true }
        if let hashSuite { c.chain.hashSuite = hashSuite }
        if let chainKind { c.chain.kind = chainKind }
        if !mainEndpoints.isEmpty || mainChain != nil || anchorEveryBlocks != nil || anchorEveryMs != nil {
            var link = c.chain.mainChain ?? NodeConfiguration.Chain.MainChainLink()
            if let mainChain { link.id = mainChain }
            if !mainEndpoints.isEmpty { link.endpoints = mainEndpoints }
            if let anchorEveryBlocks { link.anchorEveryBlocks = anchorEveryBlocks }
            if let anchorEveryMs { link.anchorEveryMs = anchorEveryMs }
            c.chain.mainChain = link
        }
        return c
    }

    func run() async throws {
        let configuration = try resolvedConfiguration()
        guard let level = Logger.Level(rawValue: configuration.logLevel) else {
            throw ValidationError("unknown log level '\(configuration.logLevel)'")
        }
        guard ["text", "json"].contains(configuration.logFormat) else {
            throw ValidationError("unknown log format '\(configuration.logFormat)' (text or json)")
        }
        let json = configuration.logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "gridledger")
        let node = try GridNode(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: node)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
