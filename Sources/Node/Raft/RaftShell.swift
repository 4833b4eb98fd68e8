import Consensus
import Logging

/// The synchronous heart of the Raft shell: one `RaftNode` and the three seams it is
/// driven over (`RaftStorage`, `RaftNetwork`, `RaftStateMachine`). It takes ticks, messages
/// and requests, and performs each `Ready` in the order of the persistence contract on
/// `Ready`: persist (one synced batch) → check (`RaftPersistenceRule`) → send → install a
/// snapshot → apply → advance; then compacts the log when due.
///
/// It owns no task and reads no clock: `RaftDriver` runs it on one task with real ticks; the
/// deterministic cluster simulation (Tests/ClusterSimulationTests) runs several of them in one
/// task with a manual clock and a seeded network, so both exercise this same code.
///
/// Thread safety: none; confined to the one task that drives it.
/// Invariants: nothing of a `Ready` is sent before its must-sync part is durable as the
/// storage reports it; committed entries reach the state machine in log order, once per
/// incarnation; after a failure the shell is `halted` and performs nothing more.
final class RaftShell {
    private(set) var node: RaftNode
    private let storage: any RaftStorage
    private let network: any RaftNetwork
    private let stateMachine: any RaftStateMachine
    /// Entries kept in the log behind the applied index; beyond `compactEvery` more, the log
    /// is compacted so memory and disk stay bounded.
    private let keepEntries: UInt64
    private let compactEvery: UInt64
    private let logger: Logger
    /// Why the shell stopped (a storage or state-machine failure, a broken rule); nil while running.
    private(set) var halted: String?
    /// A snapshot must carry the current membership, or a member added after the last
    /// compaction would refuse it ("not for us"): compact again after a change applies.
    private var membershipChanged = false
    private let configuration: RaftConfiguration
    private var seed: UInt64
    /// Ticks seen, for the snapshot install's retry backoff.
    private var ticks: UInt64 = 0
    /// After an install found no source: no `Ready` is performed before this tick.
    private var installRetryAt: UInt64 = 0
    /// The next wait after a failed install, in ticks (doubling up to `maxInstallBackoff`).
    private var installBackoff: UInt64 = 2
    private static let maxInstallBackoff: UInt64 = 64

    /// Loads (or, on the founders' first start, bootstraps) the durable state from `storage`.
    init(configuration: RaftConfiguration, storage: any RaftStorage, network: any RaftNetwork,
         stateMachine: any RaftStateMachine, bootstrapVoters: [NodeID], seed: UInt64, logger: Logger,
         keepEntries: UInt64 = 64, compactEvery: UInt64 = 256) throws {
        var state = try storage.load()
        if state.entries.isEmpty, state.snapshot == nil, state.hardState.term == 0, !bootstrapVoters.isEmpty {
            let boot = PersistentState.bootstrap(voters: bootstrapVoters)
            try storage.persist(hardState: boot.hardState, entries: boot.entries, snapshot: nil)
            state = boot
        }
        node = try RaftNode(configuration: configuration, state: state, randomSeed: seed)
        self.configuration = configuration
        self.seed = seed
        self.storage = storage
        self.network = network
        self.stateMachine = stateMachine
        self.keepEntries = keepEntries
        self.compactEvery = compactEvery
        self.logger = logger
    }

    // MARK: Inputs (each followed by `drain`)

    func tick() {
        node.tick()
        ticks += 1
    }

    /// Steps each message into the core; a message the core refuses (stale term, unknown
    /// sender) is dropped and logged at debug level.
    func step(_ messages: [Message]) {
        for m in messages {
            do {
                try node.step(m)
            } catch {
                logger.debug("raft message dropped", metadata: ["from": "\(m.from)", "kind": "\(m.kind)", "error": "\(error)"])
            }
        }
    }

    func propose(_ data: [UInt8]) throws { try node.propose(data) }

    func proposeConfChange(_ change: ConfChange) throws { try node.proposeConfChange(change) }

    func readIndex(context: [UInt8]) throws { try node.readIndex(context: context) }

    func transferLeadership(to target: NodeID) throws { try node.transferLeadership(to: target) }

    func reportUnreachable(_ peer: NodeID) { node.reportUnreachable(peer) }

    // MARK: Performing Readies

    /// Performs every pending `Ready` and returns the read states it confirmed (safe to
    /// answer: their entries are applied here). On a failure the shell halts, logs why, and
    /// returns what was confirmed before it; nothing of the failing `Ready` is sent. The one
    /// failure that does not halt is a snapshot install that found no source for its blocks
    /// (`SnapshotSourceUnavailable`): the core is reloaded from storage, as after a restart
    /// (it hands the durable snapshot out again), and the install is retried after a backoff
    /// of 2, 4, … 64 ticks.
    func drain() async -> [ReadState] {
        var confirmed: [ReadState] = []
        guard ticks >= installRetryAt else { return confirmed }
        while halted == nil, node.hasReady {
            let ready = node.ready()
            do {
                // 1. Persist, as one synced batch.
                if ready.hardState != nil || !ready.entriesToPersist.isEmpty || ready.snapshotToPersist != nil {
                    try storage.persist(hardState: ready.hardState, entries: ready.entriesToPersist, snapshot: ready.snapshotToPersist)
                }
                // 2. Send, once the storage reports everything step 1 must sync durable.
                if ready.mustSync || !ready.messages.isEmpty {
                    try RaftPersistenceRule.check(ready, durable: storage.durable)
                }
                network.send(ready.messages)
                // 3. Install a snapshot (block transfer from the leader), then apply
                //    committed entries in order.
                if let snapshot = ready.snapshotToPersist {
                    try await stateMachine.install(snapshot, from: node.leader)
                    try storage.setApplied(snapshot.metadata.index, sync: true)
                    installBackoff = 2
                }
                for entry in ready.committedEntries {
                    if entry.kind == .configChange { membershipChanged = true }
                    if entry.kind == .normal && !entry.data.isEmpty { try stateMachine.apply(entry) }
                }
                if let last = ready.committedEntries.last {
                    try storage.setApplied(last.index, sync: false)
                }
                // 4. Reads confirmed by the leader are safe once this Ready is applied.
                confirmed += ready.readStates
            } catch let unavailable as SnapshotSourceUnavailable {
                logger.warning("snapshot install deferred", metadata: ["error": "\(unavailable)", "retry_in_ticks": "\(installBackoff)"])
                do {
                    seed = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
                    node = try RaftNode(configuration: configuration, state: storage.load(), randomSeed: seed)
                } catch {
                    logger.critical("raft driver halted: cannot reload the core after a deferred install", metadata: ["error": "\(error)"])
                    halted = "\(error)"
                }
                installRetryAt = ticks + installBackoff
                installBackoff = min(installBackoff * 2, Self.maxInstallBackoff)
                return confirmed
            } catch {
                logger.critical("raft driver halted: the chain stops here rather than diverge", metadata: ["error": "\(error)"])
                halted = "\(error)"
                break
            }
            node.advance(ready)
            // The transport hands a snapshot message to the connection; delivery is
            // confirmed by the follower's next response, so report it sent.
            for m in ready.messages where m.kind == .snapshot {
                node.reportSnapshot(to: m.to, success: true)
            }
        }
        if compactIfDue(force: membershipChanged) { membershipChanged = false }
        return confirmed
    }

    /// Log compaction (Raft §7): once `compactEvery` entries pile up behind the applied
    /// index, everything up to `applied` is replaced by a snapshot naming the chain's head
    /// (the blocks themselves are the state; a follower behind it fetches them). Only applied,
    /// durable entries are compacted.
    /// - Parameter force: compact even below the threshold (after a membership change, so
    ///   the snapshot names the current members). Returns whether a compaction happened or
    ///   nothing was left to compact.
    private func compactIfDue(force: Bool) -> Bool {
        let applied = node.log.applied
        guard halted == nil else { return false }
        if force {
            // Only once the log holds entries up to the change (and nothing is pending).
            guard node.log.snapshot != nil, applied > node.log.offset else { return node.log.snapshot == nil }
        } else {
            guard applied > node.log.offset + compactEvery + keepEntries else { return false }
        }
        do {
            let snapshot = try node.compact(upTo: applied, snapshotData: stateMachine.snapshotData())
            try storage.compact(upTo: applied, snapshot: snapshot)
            return true
        } catch {
            logger.warning("raft log compaction skipped", metadata: ["error": "\(error)"])
            return false
        }
    }
}
