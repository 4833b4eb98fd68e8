/// Static settings of one Raft member. Times are in ticks: the node decides how long a tick
/// is (for example 100 ms) and calls `RaftNode.tick()` that often.
///
/// Invariant (checked by `validate()`): `id != noNode`, `heartbeatTicks >= 1`,
/// `electionTicks > heartbeatTicks`, `maxInflightMessages >= 1`, `maxSizePerMessage >= 1`.
public struct RaftConfiguration: Sendable, Hashable {
    /// This member's id.
    public var id: NodeID
    /// Base election timeout. A follower that hears nothing from a leader for a randomized
    /// timeout in the half-open range `[electionTicks, 2 * electionTicks)` starts an
    /// election (Raft §5.2); a leader with check-quorum steps down if it has not heard from
    /// a quorum within `electionTicks`.
    public var electionTicks: Int
    /// A leader sends heartbeats every `heartbeatTicks` ticks.
    public var heartbeatTicks: Int
    /// Soft limit on the summed payload bytes of the entries in one append message. A
    /// message always carries at least one entry when any is due, even if larger.
    public var maxSizePerMessage: Int
    /// Maximum number of unacknowledged append messages to one follower in the replicate
    /// state (the pipelining window).
    public var maxInflightMessages: Int
    /// Maximum summed payload bytes of unacknowledged appends to one follower; `0` means
    /// no byte limit (only `maxInflightMessages`).
    public var maxInflightBytes: Int
    /// Run a pre-vote round before a real election so that a partitioned member that
    /// rejoins does not disrupt a stable leader by bumping the term (Ongaro thesis §9.6).
    public var preVote: Bool
    /// A leader that has not heard from a quorum of voters for `electionTicks` steps down;
    /// followers that have a live leader ignore vote requests (the leader lease).
    public var checkQuorum: Bool
    /// Bound on the summed payload bytes of entries the leader has appended but not yet
    /// seen committed; proposals beyond it fail with `RaftError.proposalDropped`.
    /// `0` means unbounded. A single proposal is always admitted when nothing is pending.
    public var maxUncommittedEntriesSize: Int

    #if DEBUG
    /// Debug builds only, for tests only: a leader commits what it holds itself without
    /// waiting for a quorum of voters — the rule of Raft §5.3 ("replicated it on a majority")
    /// deliberately broken, so the simulated cluster can show that it catches a replica
    /// acknowledging before quorum (Tests/ClusterSimulationTests). Absent from release builds.
    public var testingCommitsWithoutQuorum = false
    #endif

    public init(
        id: NodeID,
        electionTicks: Int = 10,
        heartbeatTicks: Int = 1,
        maxSizePerMessage: Int = 1 << 20,
        maxInflightMessages: Int = 256,
        maxInflightBytes: Int = 0,
        preVote: Bool = true,
        checkQuorum: Bool = true,
        maxUncommittedEntriesSize: Int = 0
    ) {
        self.id = id
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
        self.maxSizePerMessage = maxSizePerMessage
        self.maxInflightMessages = maxInflightMessages
        self.maxInflightBytes = maxInflightBytes
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.maxUncommittedEntriesSize = maxUncommittedEntriesSize
    }

    /// Throws `RaftError.invalidConfiguration` when an invariant above does not hold.
    public func validate() throws(RaftError) {
        if id == noNode { throw .invalidConfiguration("id must not be 0") }
        if heartbeatTicks < 1 { throw .invalidConfiguration("heartbeatTicks must be >= 1") }
        if electionTicks <= heartbeatTicks {
            throw .invalidConfiguration("electionTicks must be greater than heartbeatTicks")
        }
        if maxInflightMessages < 1 { throw .invalidConfiguration("maxInflightMessages must be >= 1") }
        if maxSizePerMessage < 1 { throw .invalidConfiguration("maxSizePerMessage must be >= 1") }
        if maxInflightBytes < 0 || maxUncommittedEntriesSize < 0 {
            throw .invalidConfiguration("byte limits must be >= 0")
        }
    }
}
