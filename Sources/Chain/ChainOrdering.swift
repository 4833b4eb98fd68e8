import GridProto

/// How a ledger orders its blocks when the chain has members: the seam between the ledger
/// core and the consensus shell (the node implements it over its Raft driver). Without one,
/// the ledger orders solo: it is its own leader and commits blocks directly.
///
/// The ledger proposes each block it builds as leader, learns that the block committed when
/// it applies it (`Ledger.applyCommitted`, called by the shell for every committed block),
/// and reads the group's role and leader to decide whether to queue a submission or forward
/// it.
///
/// Thread safety: every requirement may be called from any task.
/// Errors: `propose` and `readIndex` throw `ChainError` (UNAVAILABLE while halted, not the
/// leader, or timed out); `forward` throws what the leader answered.
package protocol ChainOrdering: Sendable {
    /// Proposes a serialized block to the group; returns once it is in the leader's log (not
    /// once committed).
    func propose(_ block: [UInt8]) async throws
    /// A leader-confirmed index for a linearizable read (ReadIndex).
    func readIndex() async throws -> UInt64
    /// Waits until this replica has applied `index`; false when `timeout` passes first.
    func waitApplied(_ index: UInt64, timeout: Duration) async -> Bool
    /// The group as this replica sees it now.
    var status: OrderingStatus { get }
    /// How long the group may be without a leader before the chain is not serving
    /// (`ChainHealth.noLeaderGrace`).
    var noLeaderGrace: Duration { get }
    /// How long a leader waits for its proposed block to be applied.
    var proposeTimeout: Duration { get }
    /// A follower's submission, sent to the leader (`leader`: the one this node knows, 0
    /// when none) and followed through leader changes; nil when this node became the
    /// leader meanwhile (the ledger then queues it itself).
    func forward(_ transaction: SignedTransaction, leader: UInt64) async throws -> SubmitResponse?
}

/// What the ledger reads of its ordering group: its role, the leader, the Raft indexes and
/// the halt reason (for `Ledger.status()` and `ChainHealth`).
package struct OrderingStatus: Sendable {
    package var nodeID: UInt64 = 0
    package var isLeader = false
    /// The role's name in status output (`ChainStatus.role`).
    package var roleName = "follower"
    package var term: UInt64 = 0
    /// The leader this replica knows; 0 when none.
    package var leader: UInt64 = 0
    package var commit: UInt64 = 0
    package var applied: UInt64 = 0
    package var lastIndex: UInt64 = 0
    /// Match index per member (on the leader).
    package var progress: [UInt64: UInt64] = [:]
    /// Why the group stopped on this replica; nil while it runs.
    package var halted: String?
    /// Since when no leader is known; nil while one is.
    package var noLeaderSince: ContinuousClock.Instant?

    package init() {}
}
