import Chain
import Consensus
import GridBase
import Logging
import Store
import Synchronization
import Wire

/// The shell around one chain's `RaftNode` in a running node: it owns a `RaftShell` (the
/// core and the three seams, `RaftStorage`, `RaftNetwork`, `RaftStateMachine`, performing
/// each `Ready` in the order of the persistence contract) on a single task, feeds it real
/// ticks, messages and requests, answers the requests' callers, and publishes a status.
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
        let shell = try RaftShell(
            configuration: configuration, storage: storage, network: network, stateMachine: stateMachine,
            bootstrapVoters: bootstrapVoters, seed: seed, logger: logger, keepEntries: keepEntries, compactEvery: compactEvery)
        let inputsIn = self.inputsIn
        let tickInterval = self.tickInterval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: tickInterval)
                inputsIn.yield(.tick)
            }
        }
        let runner = Task { await self.run(shell) }
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

    /// The driver task: each input goes to the shell, then the shell performs what became
    /// ready (`RaftShell.drain`) and the status is published.
    private func run(_ shell: RaftShell) async {
        // ReadIndex requests waiting for the leader's confirmation: context → (continuation, tick deadline).
        var pendingReads: [[UInt8]: (continuation: CheckedContinuation<UInt64, Error>, deadline: UInt64)] = [:]
        var ticks: UInt64 = 0
        var readCounter: UInt64 = 0
        for await input in inputs {
            if shell.halted != nil {
                if case .propose(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .transfer(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .readIndex(let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .confChange(_, let c) = input { c.resume(throwing: RPCError(.unavailable, "chain halted")) }
                if case .stop = input { return }
                continue
            }
            switch input {
            case .tick:
                shell.tick()
                ticks += 1
                for (context, pending) in pendingReads where pending.deadline <= ticks {
                    pendingReads.removeValue(forKey: context)
                    pending.continuation.resume(throwing: RPCError(.unavailable, "no leader confirmed the read in time; retry"))
                }
            case .confChange(let change, let continuation):
                do {
                    try shell.proposeConfChange(change)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.failedPrecondition, "membership change refused: \(error) (leader is node \(shell.node.leader))"))
                }
            case .readIndex(let continuation):
                readCounter += 1
                let context = BigEndianWriter.bytes(of: configuration.id) + BigEndianWriter.bytes(of: readCounter)
                do {
                    try shell.readIndex(context: context)
                    pendingReads[context] = (continuation, ticks + UInt64(2 * configuration.electionTicks))
                } catch {
                    continuation.resume(throwing: RPCError(.unavailable, "cannot serve a linearizable read now: \(error)"))
                }
            case .messages(let messages):
                shell.step(messages)
            case .propose(let data, let continuation):
                do {
                    try shell.propose(data)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.unavailable, "not the leader of this chain (leader is node \(shell.node.leader)): \(error)"))
                }
            case .unreachable(let peer):
                shell.reportUnreachable(peer)
            case .transfer(let target, let continuation):
                do {
                    try shell.transferLeadership(to: target)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: RPCError(.failedPrecondition, "cannot transfer leadership to \(target): \(error)"))
                }
            case .stop:
                for pending in pendingReads.values { pending.continuation.resume(throwing: RPCError(.unavailable, "node is stopping")) }
                return
            }
            for state in await shell.drain() {
                pendingReads.removeValue(forKey: state.context)?.continuation.resume(returning: state.index)
            }
            if let reason = shell.halted {
                statusBox.withLock { $0.halted = reason }
            }
            publishStatus(shell.node)
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
