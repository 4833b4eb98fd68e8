import Chain
import Contracts
import Foundation
import GridProto
import GridTLS
import GridCrypto
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Consensus
import GridClient
import Store
import Synchronization
import Wire

/// An embeddable GridLedger node.
///
/// Lifecycle: `init(configuration:)` validates the configuration and loads the TLS identity
/// (failing early with a clear error); `start()` binds and serves; `stop()` shuts down
/// gracefully (health NOT_SERVING, GOAWAY, calls in flight finish within the grace period,
/// connections closed, data directory unlocked). `run()` does both around a
/// ServiceLifecycle graceful-shutdown signal, so a node can sit in a `ServiceGroup`.
///
/// Thread safety: every method may be called from any task.
public final class GridNode: Service, Sendable {
    public let configuration: NodeConfiguration
    /// The id reported in status: `configuration.nodeID`, or the certificate's CN.
    public let nodeID: String
    package let health = HealthService()

    let logger: Logger
    private let tls: TLSContext
    private let host: String
    private let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let startedAt = Mutex<(wall: Date, clock: ContinuousClock.Instant)?>(nil)
    private let server = Mutex<RPCServer?>(nil)
    private let boundAddress = Mutex<SocketAddress?>(nil)
    private let dataDirLock = Mutex<DataDirectoryLock?>(nil)
    private let stopped = Mutex<[CheckedContinuation<Void, Never>]?>([])
    /// Where `stop()` is: a stopping or stopped node cannot start again, and once its event
    /// loops are shut down `deinit` has nothing left to shut.
    private enum StopPhase { case running, stopping, stopped }
    private let stopPhase = Mutex(StopPhase.running)
    let chainSet = ChainSet()
    private let healthMonitor = ChainHealthMonitor()
    /// Security refusals by kind, for `status()`.
    private let securityRefusals = SecurityRefusals()
    /// This node's Prometheus registry and recorders (its own: never a global bootstrap).
    let metrics: NodeMetrics
    /// The `/metrics`, `/livez`, `/readyz` listener while it runs (`metrics_listen`).
    let metricsServer = Mutex<(server: MetricsServer, address: SocketAddress)?>(nil)
    /// What `openChain` needs again to reopen a chain (set once the chains are open).
    private let opener = Mutex<(SignerVerifier, TLSContext)?>(nil)
    /// The chains this node serves, in configuration order.
    public let chainIDs: [String]
    /// The first (or only) chain this node serves.
    public var chainID: String { chainIDs[0] }

    public init(configuration: NodeConfiguration, logger: Logger = Logger(label: "gridledger.node")) throws {
        self.configuration = configuration
        (host, port) = try configuration.validate()
        let tlsConfiguration = TLSConfiguration(
            certificatePath: configuration.tls.cert, privateKeyPath: configuration.tls.key,
            trustRootPath: configuration.tls.ca, handshakeTimeout: .milliseconds(Int64(configuration.tls.handshakeTimeoutMs)))
        tls = try TLSContext(configuration: tlsConfiguration, mode: .server)
        guard tls.localIdentity.role == .node else {
            throw ConfigurationError("\(configuration.tls.cert) is a \(tls.localIdentity.role.rawValue) certificate; a node needs role node")
        }
        nodeID = configuration.nodeID.isEmpty ? tls.localIdentity.name : configuration.nodeID
        let district = tls.localIdentity.district
        chainIDs = configuration.allChains.map { !$0.id.isEmpty ? $0.id : (district ?? "main") }
        var logger = logger
        logger[metadataKey: "node"] = "\(nodeID)"
        self.logger = logger
        let threads = configuration.rpc.threads > 0 ? configuration.rpc.threads : System.coreCount
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let expiry = [("node", configuration.tls.cert), ("ca", configuration.tls.ca)].map { name, path in
            (name: name, notAfter: (try? OpenSSLCertificate.load(path: path).notAfterUnixSeconds) ?? 0)
        }
        metrics = NodeMetrics(version: GridLedgerVersion.string, certificateExpiry: expiry)
    }

    deinit {
        if stopPhase.withLock({ $0 }) != .stopped { try? group.syncShutdownGracefully() }
    }

    /// The address the node listens on, once started.
    public var localAddress: SocketAddress? { boundAddress.withLock { $0 } }

    /// Binds, locks the data directory, opens the chains, and serves. Throws when the
    /// address cannot be bound, the directory is locked by another node, or a chain cannot
    /// be opened.
    ///
    /// A start that fails leaves the data directory as it was: everything that can fail
    /// before a chain store is opened (configuration and TLS identity in `init`; the signer
    /// CA, the client TLS context and the listener here) is done first, and the directory is
    /// created (or its `LOCK` file taken) only once the listener is bound. Should a chain
    /// then fail to open in a data directory this start created, the directory is removed
    /// again.
    @discardableResult
    public func start() async throws -> SocketAddress {
        if let address = localAddress { return address }
        guard stopPhase.withLock({ $0 }) == .running else {
            throw ConfigurationError("this node was stopped; a new GridNode serves the same data directory")
        }
        let verifier = try SignerVerifier(caPath: configuration.tls.ca)
        let clientTLS = try TLSContext(
            configuration: TLSConfiguration(certificatePath: configuration.tls.cert, privateKeyPath: configuration.tls.key, trustRootPath: configuration.tls.ca),
            mode: .client)
        for service in Self.serviceNames + chainIDs.map(ChainHealth.serviceName) {
            health.set(service, .notServing)
        }
        // The operations listener first: it answers /livez at once and /readyz not ready
        // until the chains serve.
        try await startMetricsServer()
        // Bound, but no connection is accepted until the chains are open (clients wait in
        // the backlog): a node that answers is ready.
        let server = makeServer(verifier: verifier)
        let address: SocketAddress
        do {
            address = try await server.start(host: host, port: port, accepting: false)
        } catch {
            await stopMetricsServer()
            throw ConfigurationError("cannot listen on \(configuration.listen): \(Self.describe(bindError: error))")
        }

        let dataDirExisted = FileManager.default.fileExists(atPath: configuration.dataDir)
        var locked = false
        do {
            let lock = try DataDirectoryLock(directory: configuration.dataDir)
            locked = true
            dataDirLock.withLock { $0 = lock }
            for (chain, id) in zip(configuration.allChains, chainIDs) {
                try openChain(chain, id: id, verifier: verifier, clientTLS: clientTLS)
            }
            opener.withLock { $0 = (verifier, clientTLS) }
        } catch {
            await server.shutdownGracefully()
            await stopChains()
            await stopMetricsServer()
            dataDirLock.withLock { $0 = nil }
            if locked, !dataDirExisted {
                try? FileManager.default.removeItem(atPath: configuration.dataDir)
            }
            throw error
        }
        for service in Self.serviceNames {
            health.set(service, .serving)
        }
        do {
            try await server.startAccepting()
        } catch {
            await server.shutdownGracefully()
            await stopChains()
            await stopMetricsServer()
            dataDirLock.withLock { $0 = nil }
            throw ConfigurationError("cannot accept connections on \(configuration.listen): \(error)")
        }
        self.server.withLock { $0 = server }
        boundAddress.withLock { $0 = address }
        startedAt.withLock { $0 = (Date(), ContinuousClock.now) }
        let chains = chainSet
        let tick = configuration.allChains.filter { !$0.members.isEmpty }.map(\.tickMs).min() ?? 100
        healthMonitor.start(
            health: health, chains: { chains.all }, closed: { chains.closed }, interval: .milliseconds(Int64(min(max(tick, 10), 100))),
            logger: logger, reopen: { [weak self] id, reason in await self?.reopenChain(id, reason: reason) ?? false })
        logger.info("node serving", metadata: [
            "listen": "\(Self.describe(address))", "data_dir": "\(configuration.dataDir)", "version": "\(GridLedgerVersion.string)",
        ])
        return address
    }

    /// The RPC server with every service registered (they find the chains in `chainSet`
    /// at call time).
    private func makeServer(verifier: SignerVerifier) -> RPCServer {
        var router = RPCRouter()
        let chains = chainSet
        let refusals = RefusalLog(logger: logger, counters: securityRefusals)
        RaftService(
            members: { chains.runtime($0)?.raft?.registry },
            deliver: { id, messages in chains.runtime(id)?.raft?.driver.deliver(messages) },
            refusals: refusals
        ).register(in: &router)
        AdminService(chains: chainSet).register(in: &router)
        health.register(in: &router)
        let gate = ReadGate(logger: logger, counters: securityRefusals)
        OpsService(node: self, gate: gate).register(in: &router)
        IngestService(chains: chainSet, refusals: refusals).register(in: &router)
        QueryService(chains: chainSet, gate: gate, verifier: verifier).register(in: &router)
        AnchorService(chains: chainSet, gate: gate, refusals: refusals).register(in: &router)
        FeeControlService(chains: chainSet, gate: gate).register(in: &router)
        DistrictResultsService(chains: chainSet, gate: gate).register(in: &router)

        var rpc = RPCServerConfiguration()
        rpc.limits.maxMessageBytes = configuration.rpc.maxMessageBytes
        rpc.maxConcurrentStreams = configuration.rpc.maxConcurrentStreams
        rpc.keepaliveInterval = .milliseconds(Int64(configuration.rpc.keepaliveIntervalMs))
        rpc.keepaliveTimeout = .milliseconds(Int64(configuration.rpc.keepaliveTimeoutMs))
        rpc.idleTimeout = .milliseconds(Int64(configuration.rpc.idleTimeoutMs))
        rpc.shutdownGracePeriod = .milliseconds(Int64(configuration.rpc.shutdownGraceMs))
        let descriptors = DescriptorBudget.raiseSoftLimit()
        let headroom = DescriptorBudget.headroom(chains: configuration.allChains)
        let limits = DescriptorBudget.derive(ConnectionLimits(
            maxConnections: configuration.rpc.maxConnections, reservedForPrivileged: configuration.rpc.reservedConnections,
            maxPerIdentity: configuration.rpc.maxConnectionsPerIdentity, maxHandshakes: configuration.rpc.maxHandshakes
        ), descriptors: descriptors.soft, headroom: headroom)
        let lowered = limits.maxConnections < configuration.rpc.maxConnections || limits.maxHandshakes < configuration.rpc.maxHandshakes
        logger.log(level: lowered ? .warning : .info, "effective limits", metadata: [
            "max_connections": "\(limits.maxConnections)", "reserved_connections": "\(limits.reservedForPrivileged)",
            "max_connections_per_identity": "\(limits.maxPerIdentity)", "max_handshakes": "\(limits.maxHandshakes)",
            "descriptor_limit": "\(descriptors.soft)", "descriptor_headroom": "\(headroom)",
            "memory_budget_bytes": "\(configuration.rpc.memoryBudgetBytes)",
            "lowered_to_fit_descriptors": "\(lowered)",
        ])
        return RPCServer(
            group: group, tls: tls, router: router, configuration: rpc, logger: logger,
            connectionLimits: limits, memoryBudgetBytes: configuration.rpc.memoryBudgetBytes, observer: metrics)
    }

    /// A bind failure as a sentence ("address already in use"), not NIO's error dump.
    static func describe(bindError error: Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        return "\(error)"
    }

    /// Serves until `stop()` is called or a graceful shutdown is signalled (ServiceLifecycle).
    public func run() async throws {
        try await start()
        await withGracefulShutdownHandler {
            await waitUntilStopped()
        } onGracefulShutdown: {
            Task { await self.stop() }
        }
    }

    /// Graceful shutdown; safe to call more than once. Returns once the chain store is
    /// closed and the data directory unlocked, so the same directory can be reopened at once.
    public func stop() async {
        guard let stats = await shutDownServer() else {
            // Another stop() is under way: return when it has finished, not before.
            if stopPhase.withLock({ $0 }) != .running { await waitUntilStopped() } else { finishStopped() }
            return
        }
        await stopChains()
        await stopMetricsServer()
        dataDirLock.withLock { $0 = nil }
        boundAddress.withLock { $0 = nil }
        lastStats.withLock { $0 = stats }
        // Every connection closed and every event-loop thread gone before stop() returns:
        // a host that exits next must find no thread still freeing TLS objects while
        // OpenSSL's exit handler tears its state down (a rare double free otherwise).
        stopPhase.withLock { $0 = .stopped }
        do {
            try await group.shutdownGracefully()
        } catch {
            logger.warning("event loops did not shut down cleanly", metadata: ["error": "\(error)"])
        }
        logger.info("node stopped", metadata: ["calls_served": "\(stats.callsServed)"])
        finishStopped()
    }

    /// Opens chain `id` from its directory (created empty with its genesis block when new),
    /// joins its Raft group, starts its ledger and sync, and adds it to the chain set.
    private func openChain(_ chain: NodeConfiguration.Chain, id: String, verifier: SignerVerifier, clientTLS: TLSContext) throws {
        let directory = Self.chainDirectory(configuration.dataDir, id)
        let store = try ChainStore(directory: directory, chainID: id)
        if store.database.recoveredDamagedLog {
            logger.warning("chain store recovered: damaged records at the end of its log were dropped (a write torn by a full disk or a crash; such writes were never acknowledged)", metadata: ["chain": "\(id)"])
        }
        let ledger = try Ledger(
            chainID: id, nodeID: nodeID, store: store, verifier: verifier, limits: chain.limits,
            hashSuite: Digest.Suite(rawValue: chain.hashSuite) ?? .sha256,
            kind: ChainKind(rawValue: chain.kind) ?? .district, mainChainID: chain.mainChain?.id, logger: logger)
        ledger.observeCommits(metrics.commitObserver(chain: id))
        let raft = chain.members.isEmpty ? nil : try startRaft(chain, ledger: ledger, directory: directory, clientTLS: clientTLS)
        ledger.start()
        let sync = try chain.mainChain.map { try makeSync($0, ledger: ledger, raft: raft, selfID: chain.raftID, clientTLS: clientTLS) }
        chainSet.add(ChainSet.Runtime(ledger: ledger, raft: raft, sync: sync))
        sync?.start()
    }

    /// Stops chain `runtime` (sync, Raft, then the ledger, which commits what is queued) and
    /// returns a watcher of its store: the store closes once the caller has let go of the
    /// runtime too (and the last connection using it finished).
    private func stopRuntime(_ runtime: ChainSet.Runtime) async -> StoreWatcher {
        let watcher = StoreWatcher(runtime.ledger.store)
        await runtime.sync?.stop()
        if let raft = runtime.raft {
            await raft.driver.stop()
            await raft.transport.stop()
            // Break the ledger → driver → apply closure → ledger cycle.
            runtime.ledger.detachOrdering()
        }
        await runtime.ledger.stop()
        return watcher
    }

    /// Waits up to five seconds for every watched store to close; returns whether they did.
    private static func waitClosed(_ watchers: [StoreWatcher]) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while watchers.contains(where: \.isOpen), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return !watchers.contains(where: \.isOpen)
    }

    /// Closes chain `id` and opens it again from disk: a LevelDB that failed a write (a full
    /// disk) refuses every later write until it is reopened, and a driver halted by a
    /// storage I/O error stays halted. Nothing acknowledged is lost: acknowledgements follow
    /// synced writes, and a reopened store replays its log. Returns whether the chain is open
    /// again; while it is closed its calls are UNAVAILABLE with the reason.
    func reopenChain(_ id: String, reason: String) async -> Bool {
        guard stopPhase.withLock({ $0 }) == .running, let (verifier, clientTLS) = opener.withLock({ $0 }),
            let index = chainIDs.firstIndex(of: id)
        else { return false }
        let chain = configuration.allChains[index]
        var watcher: StoreWatcher?
        if let runtime = chainSet.close(id, reason: reason) { watcher = await stopRuntime(runtime) }
        if let watcher, await !Self.waitClosed([watcher]) {
            logger.warning("chain store still referenced; reopening later", metadata: ["chain": "\(id)"])
            return false
        }
        do {
            try openChain(chain, id: id, verifier: verifier, clientTLS: clientTLS)
            logger.notice("chain reopened after a storage failure", metadata: ["chain": "\(id)", "failure": "\(reason)"])
            return true
        } catch {
            chainSet.setClosed(id, reason: "\(reason); reopening failed: \(error)")
            logger.warning("chain could not be reopened yet", metadata: ["chain": "\(id)", "error": "\(error)"])
            return false
        }
    }

    /// Stops every chain: Raft first, then the ledger (commits what is queued); returns once
    /// every chain store is closed (its last user, a connection finishing on its event
    /// loop, let go of it) or five seconds passed.
    private func stopChains() async {
        var watchers: [StoreWatcher] = []
        for runtime in chainSet.removeAll() { watchers.append(await stopRuntime(runtime)) }
        if await !Self.waitClosed(watchers) { logger.warning("chain store still referenced after shutdown") }
    }

    /// `<data dir>/chains/<chain id>`: one chain's store and Raft log.
    static func chainDirectory(_ dataDir: String, _ chainID: String) -> String {
        ChainDirectory.path(dataDirectory: dataDir, chainID: chainID)
    }

    /// GOAWAY on every connection, then waits for calls in flight; nil when not running.
    private func shutDownServer() async -> RPCServerStats? {
        guard let server = server.withLock({ s in defer { s = nil }; return s }) else { return nil }
        stopPhase.withLock { $0 = .stopping }
        logger.info("node shutting down")
        await handOverLeadership()
        await healthMonitor.stop()
        for service in Self.serviceNames + chainIDs.map(ChainHealth.serviceName) {
            health.set(service, .notServing)
        }
        let feeds = chainSet.all.map(\.ledger.feed)
        await server.shutdownGracefully(endingMethods: [GridMethod.Raft.send], afterGoAway: {
            health.finishWatchers()
            for feed in feeds { feed.finishAll() }
        })
        return server.stats
    }

    private let lastStats = Mutex<RPCServerStats?>(nil)

    private func waitUntilStopped() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = stopped.withLock { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    private func finishStopped() {
        let waiters = stopped.withLock { w in defer { w = nil }; return w ?? [] }
        for w in waiters { w.resume() }
    }

    /// The node's status as `Ops.GetStatus` reports it (without the caller).
    public func status() -> GetStatusResponse {
        let started = startedAt.withLock { $0 }
        let server = self.server.withLock { $0 }
        let stats = server?.stats ?? lastStats.withLock { $0 }
        var status = GetStatusResponse()
        status.nodeId = nodeID
        status.version = GridLedgerVersion.string
        if let started {
            let uptime = ContinuousClock.now - started.clock
            status.uptimeMs = UInt64(uptime.components.seconds * 1000 + uptime.components.attoseconds / 1_000_000_000_000_000)
            status.startedAtUnixMs = UInt64(started.wall.timeIntervalSince1970 * 1000)
        }
        status.listenAddress = localAddress.map(Self.describe) ?? configuration.listen
        status.openConnections = UInt32(server?.openConnections ?? 0)
        status.callsServed = stats?.callsServed ?? 0
        status.callsFailed = stats?.callsFailed ?? 0
        status.securityRefusals = securityRefusals.snapshot.map { RefusalCount(kind: $0.kind.rawValue, count: $0.count) }
        status.securityRefusals.append(RefusalCount(kind: "role", count: stats?.callsRoleRefused ?? 0))
        status.connectionsOverLimit = stats?.connectionsOverLimit ?? 0
        status.callsOverBudget = stats?.callsOverBudget ?? 0
        status.chains = chainSet.all.map { runtime in
            var chain = runtime.ledger.status()
            runtime.sync?.decorate(&chain)
            return chain
        }
        for (id, reason) in chainSet.closed {
            status.chains.append(ChainStatus(chainId: id, serving: false, notServingReason: reason))
        }
        status.chains.sort { $0.chainId < $1.chainId }
        return status
    }

    /// The names `Health.Check` answers for besides `chain/<id>`: the node (`""`) and each
    /// client-facing service (not Admin or Raft).
    static let serviceNames = [""] + [
        GridMethod.Health.check, GridMethod.Ops.getStatus, GridMethod.Ingest.submit, GridMethod.Query.getChainInfo,
        GridMethod.Anchor.sign, GridMethod.FeeControl.getAccount, GridMethod.Control.subscribeCommands, GridMethod.Notices.subscribe,
    ].compactMap(GridMethod.service(of:))

    /// A leader that shuts down gracefully first hands leadership to its most caught-up
    /// voter, so the group does not wait an election timeout (bounded by one second).
    private func handOverLeadership() async {
        for runtime in chainSet.all {
            guard let raft = runtime.raft else { continue }
            let driver = raft.driver
            let status = driver.status
            guard status.role == .leader,
                  let target = status.progress.filter({ entry in entry.key != status.id && status.voters.contains(entry.key) })
                    .max(by: { $0.value < $1.value })?.key
            else { continue }
            do {
                try await driver.transferLeadership(to: target)
            } catch {
                logger.warning("leadership transfer before shutdown failed", metadata: ["chain": "\(runtime.ledger.chainID)", "error": "\(error)"])
                continue
            }
            let deadline = ContinuousClock.now + .seconds(1)
            while driver.status.role == .leader, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
            logger.info("leadership handed over before shutdown", metadata: [
                "chain": "\(runtime.ledger.chainID)", "to": "\(target)", "done": "\(driver.status.role != .leader)",
            ])
        }
    }

    /// The anchoring and downlink agent of a district chain with a main chain.
    private func makeSync(_ link: NodeConfiguration.Chain.MainChainLink, ledger: Ledger, raft: ChainSet.Runtime.Raft?, selfID: UInt64, clientTLS: TLSContext) throws -> ChainSync {
        let registry = raft?.registry
        let driver = raft?.driver
        return try ChainSync(
            ledger: ledger, link: link, certificatePath: configuration.tls.cert, keyPath: configuration.tls.key,
            peers: { registry?.all.filter { $0.key != selfID }.sorted { $0.key < $1.key }.map(\.value) ?? [] },
            isLeader: { driver.map { $0.status.role == .leader } ?? true },
            tls: clientTLS, group: group, logger: logger)
    }

    /// Joins the chain's Raft group: persistent log, transport to the other members, the
    /// `Raft.Send` and `Admin` services, and a driver whose committed entries the chain
    /// replica applies (`ChainReplica`: blocks to the ledger, member records to the registry).
    private func startRaft(_ chain: NodeConfiguration.Chain, ledger: Ledger, directory: String, clientTLS: TLSContext) throws -> ChainSet.Runtime.Raft {
        let chainID = ledger.chainID
        let storage = TimedRaftStorage(base: try LevelDBRaftStorage(directory: directory), observe: metrics.raftPersistObserver(chain: chainID))
        let driverRef = WeakDriver()
        let transport = RaftTransport(chainID: chainID, tls: clientTLS, group: group, logger: logger) { peer in
            driverRef.driver?.reportUnreachable(peer)
        }
        let selfID = chain.raftID
        let binding = MemberBinding(chainID: chainID, kind: ChainKind(rawValue: chain.kind) ?? .district)
        try checkMembers(chain, chainID: chainID, binding: binding)
        let registry = MemberRegistry(chain.members, binding: binding) { members in
            transport.setPeers(members.filter { $0.key != selfID }.mapValues { RaftTransport.Peer(member: $0, binding: binding) })
        }
        var raftConfiguration = RaftConfiguration(id: chain.raftID)
        raftConfiguration.electionTicks = chain.electionTicks
        raftConfiguration.heartbeatTicks = 1
        // Bounded replication: at most 1 MiB of entries per message, 256 messages or 32 MiB
        // in flight per follower, and 64 MiB of proposals not yet committed.
        raftConfiguration.maxSizePerMessage = 1 << 20
        raftConfiguration.maxInflightMessages = 256
        raftConfiguration.maxInflightBytes = 32 << 20
        raftConfiguration.maxUncommittedEntriesSize = 64 << 20
        let transfer = BlockTransfer(ledger: ledger, members: { registry.member($0) }, binding: binding, tls: clientTLS, group: group, logger: logger)
        let driver = RaftDriver(
            configuration: raftConfiguration, storage: storage, network: transport,
            stateMachine: ChainReplica(ledger: ledger, registry: registry, transfer: transfer),
            tickInterval: .milliseconds(chain.tickMs),
            seed: chain.raftID &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(UInt32.random(in: 0...UInt32.max)), logger: logger,
            keepEntries: 0, compactEvery: UInt64(chain.compactEvery))
        driverRef.driver = driver
        let forwarder = LeaderForwarder(members: { registry.member($0) }, binding: binding, tls: clientTLS, group: group, logger: logger)
        let proposeTimeout: Duration = .milliseconds(Int64(chain.tickMs * chain.electionTicks * 10))
        let leaderWait: Duration = .milliseconds(Int64(chain.tickMs * chain.electionTicks * 4))
        ledger.useOrdering(RaftOrdering(
            driver: driver,
            forwardToLeader: { tx, leader in try await forwarder.submit(tx, to: leader) },
            proposeTimeout: proposeTimeout, leaderWait: leaderWait))
        transport.setPeers(registry.all.filter { $0.key != selfID }.mapValues { RaftTransport.Peer(member: $0, binding: binding) })
        // Founders bootstrap the group; a node joining an existing group starts empty and
        // is brought in by Admin.AddMember on the leader.
        try driver.start(bootstrapVoters: chain.join ? [] : chain.members.map(\.id))
        logger.info("raft group joined", metadata: [
            "chain": "\(chainID)", "raft_id": "\(chain.raftID)", "join": "\(chain.join)",
            "members": "\(chain.members.map { "\($0.id)=\($0.name)@\($0.address)\($0.publicKeySHA256.isEmpty ? "" : "#sha256:" + MemberBinding.prefix($0.publicKeySHA256))" })",
        ])
        return ChainSet.Runtime.Raft(driver: driver, transport: transport, registry: registry, members: chain.members)
    }

    /// This node's own certificate must be its member entry (a configuration that names
    /// another CN, district or key would make every peer refuse it); members without a key
    /// pin are accepted on role, district and CN alone, with a warning.
    private func checkMembers(_ chain: NodeConfiguration.Chain, chainID: String, binding: MemberBinding) throws {
        if let me = chain.members.first(where: { $0.id == chain.raftID }), let refusal = binding.mismatch(tls.localIdentity, me) {
            throw ConfigurationError("chain \(chainID): this node's certificate is not member \(me.id): \(refusal)")
        }
        let unpinned = chain.members.filter(\.publicKeySHA256.isEmpty)
        if !unpinned.isEmpty {
            logger.warning("raft members without a key pin: bound by role, district and certificate CN only", metadata: [
                "chain": "\(chainID)", "members": "\(unpinned.map { "\($0.id)=\($0.name)" })",
                "fix": "--member ID=NAME@HOST:PORT#sha256:HEX (printed by gridnode ca issue) or #cert:PATH",
            ])
        }
    }

    // MARK: Embedding API

    private func runningLedger(_ chain: String = "") throws -> Ledger {
        try chainSet.ledger(chain)
    }

    /// Submits a signed transaction as a client would (same checks); returns once its block
    /// is durable. Throws `RPCError` with the statuses of `Ingest.Submit`.
    public func submit(_ transaction: SignedTransaction, chain: String = "") async throws -> SubmitResponse {
        try await answeringChainErrors { try await runningLedger(chain).submit(transaction) }
    }

    /// The block at `height` and its hash, nil above the head.
    public func block(at height: UInt64, chain: String = "") throws -> (block: Block, hash: [UInt8])? {
        let ledger = try runningLedger(chain)
        guard let block = try ledger.store.block(at: height), let header = block.header else { return nil }
        return (block, ledger.hashing.headerHash(header))
    }

    /// The current value of a world-state key with its version (height, transaction index).
    public func state(_ key: String, chain: String = "") throws -> (value: [UInt8], height: UInt64, txIndex: UInt32)? {
        try runningLedger(chain).store.state(key)
    }

    /// What the chain store has written since the node started (for benchmarks).
    package func storeWriteTotals(chain: String = "") throws -> ChainStore.WriteTotals {
        try runningLedger(chain).store.writeTotals
    }

    /// An in-process subscription for an embedding host (the feed behind
    /// `Query.SubscribeBlocks`, without RPC): calls `body` with every block of the chain from
    /// `height` on, in order, then with each new one as it becomes durable, until `body`
    /// throws (that error ends the subscription and is rethrown) or the node stops (returns
    /// normally). `body` is awaited, so a host that takes its time slows its own catch-up;
    /// once caught up, a host more than 256 blocks behind the live chain is cut off with
    /// RESOURCE_EXHAUSTED (subscribe again from the next height).
    public func follow(from height: UInt64, chain: String = "", _ body: (_ block: Block, _ hash: [UInt8]) async throws -> Void) async throws {
        let ledger = try runningLedger(chain)
        try await answeringChainErrors { try await ledger.follow(from: height, body) }
    }

    /// The world-state key of a district chain's newest anchor receipt (`AnchorReceipt`).
    package static let lastReceiptKey = AnchorKeys.lastReceipt

    /// Every method path the running node serves, sorted (empty before `start()`); each is
    /// in `GridMethod.all`.
    var servedMethods: [String] { server.withLock { $0?.methodPaths ?? [] } }

    /// Height and hash of the newest durable block.
    public func head(chain: String = "") throws -> (height: UInt64, hash: [UInt8])? {
        try runningLedger(chain).store.head.map { ($0.height, $0.hash) }
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}

/// The transport's way back to the driver, without keeping it alive.
private final class WeakDriver: @unchecked Sendable {
    weak var driver: RaftDriver?
}

/// Whether a chain store is still referenced, without keeping it alive.
private final class StoreWatcher: @unchecked Sendable {
    weak var store: ChainStore?
    init(_ store: ChainStore) { self.store = store }
    var isOpen: Bool { store != nil }
}
