import Chain
import Consensus
import GridBase
import Logging
import Store
import Synchronization
import Wire

/// The shell around one chain's `RaftNode`: it owns the pure core, feeds it ticks,
/// messages and proposals from a single task, and performs what each `Ready` asks, in the
/// order of the persistence contract on `Ready`: persist (one synced batch) → send →
/// apply → advance. It works over three seams: `RaftStorage` (persist, load, compact),
/// `RaftNetwork` (send) and `RaftStateMachine` (apply, snapshot, install).
///
/// Thread safety: the core lives only inside the driver task; other threads talk to it
/// through the input stream. `status` is a snapshot behind a mutex.
/// Invariant: no message of a `Ready` leaves before its entries, snapshot and hard state are
/// durable: `RaftPersistenceRule` checks each `Ready` against what the storage reports
/// durable before sending, and a violation halts the driver (nothing of that Ready is sent).
final class RaftDriver: Sendable {
    enum Input: Sendable {
        case tick
        case messages([Message])
        case propose([UInt8], CheckedContinuation<Void, Error>)
        case unreachable(NodeID)
        case transfer(NodeID, CheckedContinuation<Void, Error>)
        case readIndex(CheckedContinuation<UInt64, Error>)
        case confChange(ConfChange, CheckedContinuation<Void, Error>)
        case stop
    }

    /// What status reports about the group.
    struct Status: Sendable {
        var id: NodeID = 0
        var role: RaftRole = .follower
        var term: UInt64 = 0
        var leader: NodeID = 0
        var commit: UInt64 = 0
        var applied: UInt64 = 0
        var lastIndex: UInt64 = 0
        var progress: [NodeID: UInt64] = [:]
        var voters: [NodeID] = []
        var learners: [NodeID] = []
        var halted: String?
        /// Since when this member has known no leader (nil while it knows one). Set from the
        /// driver's first round on, so a group that never elects one counts from its start.
        var noLeaderSince: ContinuousClock.Instant?
    }

    let configuration: RaftConfiguration
    private let storage: any RaftStorage
    private let network: any RaftNetwork
    private let stateMachine: any RaftStateMachine
    /// Entries kept in the log behind the applied index; beyond `compactEvery` more, the log
    /// is compacted so memory and disk stay bounded.
    private let keepEntries: UInt64
    private let compactEvery: UInt64
    private let logger: Logger
    private let tickInterval: Duration
    private let seed: UInt64
    private let inputs: AsyncStream<Input>
    private let inputsIn: AsyncStream<Input>.Continuation
    private let statusBox = Mutex(Status())
    /// Waiters for the applied index, resumed as `status` publishes it.
    private let appliedWaiters = IndexWaiters()
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// - Parameters:
    ///   - storage: the group's stable storage; `start` loads from it.
    ///   - network: where each `Ready`'s messages go, after its must-sync part is durable.
    ///   - stateMachine: applies committed normal entries in order on the driver task
    ///     (throwing halts the driver: the chain stops rather than diverge), says what a
    ///     snapshot carries, and installs a snapshot received from the leader.
    init(configuration: RaftConfiguration, storage: any RaftStorage, network: any RaftNetwork,
         stateMachine: any RaftStateMachine, tickInterval: Duration,
         seed: UInt64, logger: Logger, keepEntries: UInt64 = 64, compactEvery: UInt64 = 256) {
        self.configuration = configuration
        self.storage = storage
        self.network = network
        self.stateMachine = stateMachine
        self.keepEntries = keepEntries
        self.compactEvery = compactEvery
        self.logger = logger
        self.tickInterval = tickInterval
        self.seed = seed
        (inputs, inputsIn) = AsyncStream<Input>.makeStream()
    }

    /// Loads (or, on the founders' first start, bootstraps) the durable state and starts
    /// the driver and tick tasks.
    func start(bootstrapVoters: [NodeID]) throws {
        var state = try storage.load()
        if state.entries.isEmpty, state.snapshot == nil, state.hardState.term == 0, !bootstrapVoters.isEmpty {
            let boot = PersistentState.bootstrap(voters: bootstrapVoters)
            try storage.persist(hardState: boot.hardState, entries: boot.entries, snapshot: nil)
            state = boot
        }
        let node = try RaftNode(configuration: configuration, state: state, randomSeed: seed)
        let inputsIn = self.inputsIn
        let tickInterval = self.tickInterval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: tickInterval)
                inputsIn.yield(.tick)
            }
        }
        let runner = Task { await self.run(node) }
        tasks.withLock { $0 = [ticker, runner] }
    }

    func deliver(_ messages: [Message]) { inputsIn.yield(.messages(messages)) }

    func reportUnreachable(_ peer: NodeID) { inputsIn.yield(.unreachable(peer)) }

    /// Hands `data` to the leader's log; returns when the core accepted it (not committed).
    /// Throws `UNAVAILABLE` on a follower (with the leader's id) or while halted.
    func propose(_ data: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { inputsIn.yield(.propose(data, $0)) }
    }

    /// A linearizable read point (Raft ReadIndex): returns an index such that reading the
    /// local state once it has applied that index reflects every entry committed before the
    /// call. Throws `UNAVAILABLE` when no leader confirms within two election timeouts.
    func readIndex() async throws -> UInt64 {
        try await withCheckedThrowingContinuation { inputsIn.yield(.readIndex($0)) }
    }

    /// Proposes a membership change (leader only); returns when the core accepted it.
    func proposeConfChange(_ change: ConfChange) async throws {
        try await withCheckedThrowingContinuation { inputsIn.yield(.confChange(change, $0)) }
    }

    func transferLeadership(to target: NodeID) async throws {
        try await withCheckedThrowingContinuation { inputsIn.yield(.transfer(target, $0)) }
    }

    var status: Status { statusBox.withLock { $0 } }

    /// Returns `true` once `status.applied` is at least `index` (resumed when the driver
    /// publishes it, not by polling), `false` after `timeout`.
    func waitApplied(_ index: UInt64, timeout: Duration) async -> Bool {
        await appliedWaiters.wait(for: index, timeout: timeout)
    }

    /// How long the group may be without a leader before the chain is reported not serving
    /// (`ChainHealth`).
    var noLeaderGrace: Duration { ChainHealth.noLeaderGrace(tick: tickInterval, electionTicks: configuration.electionTicks) }

    func stop() async {
        inputsIn.yield(.stop)
        let running = tasks.withLock { t in defer { t.removeAll() }; return t }
        for task in running {
            task.cancel()
            await task.value
        }
        inputsIn.finish()
    }

    private func run(_ initial: RaftNode) async {
        var node = initial
        // ReadIndex requests waiting for the leader's confirmation: context → (continuation, tick deadline).
        var pendingReads: [[UInt8]: (continuation: CheckedContinuation<UInt64, Error>, deadline: UInt64)] = [:]
        var ticks: UInt64 = 0
        var readCounter: UInt64 = 0
        // A snapshot must carry the current membership, or a member added after the last
        // compaction would refuse it ("not for us"): compact again after a change applies.
        var membershipChanged = false
        for await input in inputs {
            if statusBox.withLock({ $0.halted }) != nil {
                if case .propose(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .transfer(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .readIndex(let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .confChange(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .stop = input { return }
                continue
            }
            switch input {
            case .tick:
                node.tick()
                ticks += 1
                for (context, pending) in pendingReads where pending.deadline <= ticks {
                    pendingReads.removeValue(forKey: context)
                    pending.continuation.resume(throwing: RPCError(.unavailable, "no leader confirmed the read in time; retry"))
                }
            case .confChange(let change, let continuation):
                do {
                    try node.proposeConfChange(change)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.failedPrecondition, "membership change refused: \(error) (leader is node \(node.leader))"))
                }
            case .readIndex(let continuation):
                readCounter += 1
                let context = BigEndianWriter.bytes(of: configuration.id) + BigEndianWriter.bytes(of: readCounter)
                do {
                    try node.readIndex(context: context)
                    pendingReads[context] = (continuation, ticks + UInt64(2 * configuration.electionTicks))
                } catch {
                    continuation.resume(throwing: RPCError(.unavailable, "cannot serve a linearizable read now: \(error)"))
                }
            case .messages(let messages):
                for m in messages {
                    do {
                        try node.step(m)
                    } catch {
                        logger.debug("raft message dropped", metadata: ["from": "\(m.from)", "kind": "\(m.kind)", "error": "\(error)"])
                    }
                }
            case .propose(let data, let continuation):
                do {
                    try node.propose(data)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.unavailable, "not the leader of this chain (leader is node \(node.leader)): \(error)"))
                }
            case .unreachable(let peer):
                node.reportUnreachable(peer)
            case .transfer(let target, let continuation):
                do {
                    try node.transferLeadership(to: target)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.failedPrecondition, "cannot transfer leadership to \(target): \(error)"))
                }
            case .stop:
                for pending in pendingReads.values { pending.continuation.resume(throwing: RPCError(.unavailable, "node is stopping")) }
                return
            }
            while node.hasReady {
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
                    }
                    for entry in ready.committedEntries {
                        if entry.kind == .configChange { membershipChanged = true }
                        if entry.kind == .normal && !entry.data.isEmpty { try stateMachine.apply(entry) }
                    }
                    if let last = ready.committedEntries.last {
                        try storage.setApplied(last.index, sync: false)
                    }
                    // 4. Reads confirmed by the leader are safe once this Ready is applied.
                    for state in ready.readStates {
                        pendingReads.removeValue(forKey: state.context)?.continuation.resume(returning: state.index)
                    }
                } catch {
                    logger.critical("raft driver halted: the chain stops here rather than diverge", metadata: ["error": "\(error)"])
                    statusBox.withLock { $0.halted = "\(error)" }
                    break
                }
                node.advance(ready)
                // The transport hands a snapshot message to the connection; delivery is
                // confirmed by the follower's next response, so report it sent.
                for m in ready.messages where m.kind == .snapshot {
                    node.reportSnapshot(to: m.to, success: true)
                }
            }
            if compactIfDue(&node, force: membershipChanged) { membershipChanged = false }
            publishStatus(node)
        }
    }

    /// Log compaction (Raft §7): once `compactEvery` entries pile up behind the applied
    /// index, everything up to `applied` is replaced by a snapshot naming the chain's head
    /// (the blocks themselves are the state; a follower behind it fetches them). Only applied,
    /// durable entries are compacted.
    /// - Parameter force: compact even below the threshold (after a membership change, so
    ///   the snapshot names the current members). Returns whether a compaction happened or
    ///   nothing was left to compact.
    @discardableResult
    private func compactIfDue(_ node: inout RaftNode, force: Bool = false) -> Bool {
        let applied = node.log.applied
        guard statusBox.withLock({ $0.halted }) == nil else { return false }
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

    private func publishStatus(_ node: RaftNode) {
        let role = node.role
        let progress = node.progress.mapValues(\.match)
        let conf = node.confState
        let now = ContinuousClock.now
        statusBox.withLock { s in
            if node.leader == 0 {
                if s.noLeaderSince == nil { s.noLeaderSince = now }
            } else {
                s.noLeaderSince = nil
            }
            s.id = node.id
            s.role = role
            s.term = node.term
            s.leader = node.leader
            s.commit = node.log.committed
            s.applied = node.log.applied
            s.lastIndex = node.log.lastIndex
            s.progress = progress
            s.voters = conf.voters
            s.learners = conf.learners
        }
        appliedWaiters.advance(to: node.log.applied)
    }
}
