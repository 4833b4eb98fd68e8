import Chain
import CoreMetrics
import Foundation
import GridBase
import GridClient
import GridProto
import Prometheus
import Synchronization
import Wire

/// One node's Prometheus metrics (Docs/operations.md lists every series with its labels).
///
/// Two kinds of series, on one registry of this node's own (never `MetricsSystem.bootstrap`,
/// so several nodes in one process, as in the tests, keep their figures apart):
/// - recorded at the event through swift-metrics (`CoreMetrics.Counter`, `CoreMetrics.Timer`)
///   made by this node's `PrometheusMetricsFactory`: RPC calls and their durations, TLS
///   handshake failures, blocks and transactions committed, block commit, store-write and
///   Raft log persist durations;
/// - sampled at scrape time (`scrape`) from `GridNode.status()`: heights, queue depths, Raft
///   role, term and peer lag, anchor and downlink positions, connections, certificate expiry,
///   and the counters the node already keeps (security refusals, connections over the
///   limit), advanced by their growth since the previous scrape.
///
/// Thread safety: the recording methods are called from every event loop and every chain's
/// commit task at once (the registry and its handlers are thread safe); `scrape` runs one at
/// a time behind a mutex.
/// Cost: a recording is a series lookup under the registry's lock and an atomic add, on the
/// caller's thread. A scrape is one `GridNode.status()` (a few locks per chain and a listing
/// of each chain store's directory) plus formatting every series: O(series).
/// Invariant (bounded memory): every label value comes from a fixed or configured set:
/// methods from `GridMethod.all` (anything else is `other`), statuses from `StatusCode`,
/// causes from `TLSFailureCause`, refusal kinds from `SecurityRefusals.Kind`, chains from the
/// configuration, peers from the chain's Raft membership.
final class NodeMetrics: RPCServerObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let methods = Set(GridMethod.all)
    /// Unix seconds at which the node's certificate and the CA certificate expire (0 = unknown).
    private let certificateExpiry: [(name: String, notAfter: Int64)]
    private let version: String
    private let scrapeState = Mutex(ScrapeState())

    /// Raft roles as `gridledger_raft_role` labels them (`solo`: a chain without a group).
    static let roles = ["leader", "follower", "candidate", "pre-candidate", "learner", "solo"]

    private struct ScrapeState {
        /// The last total exported per sampled counter series, by name and labels.
        var exported: [String: UInt64] = [:]
        /// Per chain, the peers whose lag gauge exists (removed when they stop being reported).
        var lagPeers: [String: Set<UInt64>] = [:]
    }

    /// - Parameter certificateExpiry: names (`node`, `ca`) and Unix expiry times of the
    ///   certificates whose days to expiry are exported.
    init(version: String, certificateExpiry: [(name: String, notAfter: Int64)]) {
        self.version = version
        self.certificateExpiry = certificateExpiry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            Self.rpcDuration: [
                .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
                .seconds(5), .seconds(10),
            ],
            Self.commitDuration: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
            ],
            Self.raftPersistDuration: [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .seconds(1),
            ],
            Self.storeWriteDuration: [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .seconds(1),
            ],
        ]
        self.factory = factory
        // Every cause at zero from the start, so that rate() and alerts see the series.
        for cause in TLSFailureCause.allCases {
            _ = CoreMetrics.Counter(label: Self.tlsFailures, dimensions: [("cause", cause.rawValue)], factory: factory)
        }
    }

    // MARK: Recorded at the event

    static let rpcCalls = "gridledger_rpc_calls_total"
    static let rpcDuration = "gridledger_rpc_call_duration_seconds"
    static let tlsFailures = "gridledger_tls_handshake_failures_total"
    static let blocksCommitted = "gridledger_blocks_committed_total"
    static let transactionsCommitted = "gridledger_transactions_committed_total"
    static let commitDuration = "gridledger_block_commit_duration_seconds"
    static let storeWriteDuration = "gridledger_block_store_write_duration_seconds"
    static let raftPersistDuration = "gridledger_raft_log_persist_duration_seconds"

    func callFinished(method: String?, code: StatusCode, duration: Duration) {
        let method = method.flatMap { methods.contains($0) ? $0 : nil } ?? "other"
        let status = code.rawValue <= StatusCode.unauthenticated.rawValue ? code.description : "UNKNOWN"
        CoreMetrics.Counter(label: Self.rpcCalls, dimensions: [("method", method), ("status", status)], factory: factory).increment()
        CoreMetrics.Timer(label: Self.rpcDuration, dimensions: [("method", method)], factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    func connectionFailed(_ error: any Error) {
        guard let cause = TLSFailureCause(error) else { return }
        CoreMetrics.Counter(label: Self.tlsFailures, dimensions: [("cause", cause.rawValue)], factory: factory).increment()
    }

    /// The commit observer of chain `chainID` (`Ledger.observeCommits`); creates its series
    /// at zero.
    func commitObserver(chain chainID: String) -> @Sendable (LedgerCommitEvent) -> Void {
        let labels = [("chain", chainID)]
        let blocks = CoreMetrics.Counter(label: Self.blocksCommitted, dimensions: labels, factory: factory)
        let transactions = CoreMetrics.Counter(label: Self.transactionsCommitted, dimensions: labels, factory: factory)
        let write = CoreMetrics.Timer(label: Self.storeWriteDuration, dimensions: labels, factory: factory)
        let commit = CoreMetrics.Timer(label: Self.commitDuration, dimensions: labels, factory: factory)
        return { event in
            switch event {
            case let .stored(_, count, writeDuration):
                blocks.increment()
                transactions.increment(by: count)
                write.recordNanoseconds(Self.nanoseconds(writeDuration))
            case let .acknowledged(_, duration):
                commit.recordNanoseconds(Self.nanoseconds(duration))
            }
        }
    }

    /// The observer of chain `chainID`'s Raft log writes (`TimedRaftStorage`).
    func raftPersistObserver(chain chainID: String) -> @Sendable (Duration) -> Void {
        let timer = CoreMetrics.Timer(label: Self.raftPersistDuration, dimensions: [("chain", chainID)], factory: factory)
        return { timer.recordNanoseconds(Self.nanoseconds($0)) }
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    // MARK: Sampled at scrape time

    /// What a scrape needs besides the status: which chains anchor on a main chain and
    /// which follow its downlink (their anchor and downlink series exist only then).
    struct ChainRoles: Sendable {
        var anchoring: Set<String> = []
        var downlink: Set<String> = []
    }

    /// Samples `status` into the gauges and returns the whole registry in Prometheus' text
    /// exposition format (version 0.0.4).
    func scrape(_ status: GetStatusResponse, chains: ChainRoles, now: Date = Date()) -> [UInt8] {
        scrapeState.withLock { state in
            sample(status, chains: chains, now: now, state: &state)
            return registry.emitToBuffer()
        }
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        return labels.isEmpty ? registry.makeGauge(descriptor: descriptor) : registry.makeGauge(descriptor: descriptor, labels: labels)
    }

    /// Advances the counter `name{labels}` to `total` (the node's own running count).
    private func advance(_ name: String, _ help: String, _ labels: [(String, String)], to total: UInt64, state: inout ScrapeState) {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        let counter = labels.isEmpty ? registry.makeCounter(descriptor: descriptor) : registry.makeCounter(descriptor: descriptor, labels: labels)
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let last = state.exported[key] ?? 0
        if total > last { counter.increment(by: Int64(clamping: total - last)) }
        state.exported[key] = max(total, last)
    }

    private func sample(_ status: GetStatusResponse, chains roles: ChainRoles, now: Date, state: inout ScrapeState) {
        gauge("gridledger_build_info", "Always 1; the version label is the node's build.", [("version", version)]).set(Int64(1))
        if status.startedAtUnixMs > 0 {
            gauge("gridledger_start_time_seconds", "When the node started serving, Unix seconds.").set(Double(status.startedAtUnixMs) / 1000)
        }
        gauge("gridledger_open_connections", "Authenticated and handshaking RPC connections open now.").set(Int64(status.openConnections))
        advance("gridledger_connections_over_limit_total", "Connections refused for a connection limit.", [], to: status.connectionsOverLimit, state: &state)
        advance("gridledger_calls_over_budget_total", "Calls ended RESOURCE_EXHAUSTED by the memory budget.", [], to: status.callsOverBudget, state: &state)
        for refusal in status.securityRefusals {
            advance("gridledger_security_refusals_total", "Calls refused for security reasons, by kind (Docs/security.md).",
                    [("kind", refusal.kind)], to: refusal.count, state: &state)
        }
        for certificate in certificateExpiry where certificate.notAfter > 0 {
            gauge("gridledger_certificate_expiry_days", "Days until the certificate expires (negative once expired).", [("certificate", certificate.name)])
                .set((Double(certificate.notAfter) - now.timeIntervalSince1970) / 86_400)
        }
        for chain in status.chains {
            let id = [("chain", chain.chainId)]
            gauge("gridledger_chain_serving", "1 while the chain can make progress here (Health chain/<id>), else 0.", id).set(Int64(chain.serving ? 1 : 0))
            guard chain.serving || chain.height > 0 || !chain.role.isEmpty else { continue }  // closed: no figures
            gauge("gridledger_chain_height", "Height of the newest durable block.", id).set(Int64(clamping: chain.height))
            gauge("gridledger_chain_pending_transactions", "Transactions accepted and not yet in a durable block.", id)
                .set(Int64(chain.pendingTransactions))
            gauge("gridledger_chain_store_bytes", "Approximate bytes of the chain store on disk.", id).set(Int64(clamping: chain.storeBytes))
            for role in Self.roles {
                gauge("gridledger_raft_role", "1 for this node's current role on the chain, 0 for the others.", id + [("role", role)])
                    .set(Int64(chain.role == role ? 1 : 0))
            }
            var peers: Set<UInt64> = []
            if chain.raftNodeId != 0 {
                gauge("gridledger_raft_term", "Current Raft term.", id).set(Int64(clamping: chain.raftTerm))
                gauge("gridledger_raft_leader_id", "Raft id of the known leader, 0 when none is known.", id).set(Int64(clamping: chain.raftLeader))
                gauge("gridledger_raft_commit_index", "Highest Raft log index known committed.", id).set(Int64(clamping: chain.raftCommit))
                gauge("gridledger_raft_applied_index", "Highest Raft log index applied here.", id).set(Int64(clamping: chain.raftApplied))
                for peer in chain.raftPeers where peer.nodeId != chain.raftNodeId {
                    peers.insert(peer.nodeId)
                    gauge(Self.peerLag, Self.peerLagHelp, id + [("peer", "\(peer.nodeId)")]).set(Int64(clamping: peer.lag))
                }
            }
            for gone in state.lagPeers[chain.chainId, default: []].subtracting(peers) {
                registry.unregisterGauge(gauge(Self.peerLag, Self.peerLagHelp, id + [("peer", "\(gone)")]))
            }
            state.lagPeers[chain.chainId] = peers
            if roles.anchoring.contains(chain.chainId) {
                gauge("gridledger_anchored_height", "Newest height anchored on the main chain (receipt recorded).", id)
                    .set(Int64(clamping: chain.anchoredHeight))
                gauge("gridledger_anchor_lag_blocks", "Blocks above the anchored height.", id).set(Int64(clamping: chain.anchorLagBlocks))
                gauge("gridledger_anchor_lag_seconds", "Age of the oldest unanchored block, seconds (0 when none).", id)
                    .set(Double(chain.anchorLagMs) / 1000)
            }
            if roles.downlink.contains(chain.chainId) {
                gauge("gridledger_downlink_main_height", "Main-chain height the district's downlink has taken parameters up to.", id)
                    .set(Int64(clamping: chain.downlinkMainHeight))
            }
        }
    }

    static let peerLag = "gridledger_raft_peer_lag_entries"
    static let peerLagHelp = "On the leader: how many Raft log entries each peer's match index lags the leader's last index."
}
