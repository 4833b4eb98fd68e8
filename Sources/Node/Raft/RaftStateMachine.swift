import Consensus

/// What a Raft group replicates: the state machine `RaftDriver` applies committed entries
/// to (Raft §5.3: "apply log[lastApplied] to state machine", in log order), snapshots for
/// log compaction and brings up to a leader's snapshot (Raft §7). Today's implementation is
/// `ChainReplica` (the ledger and the member registry).
protocol RaftStateMachine: Sendable {
    /// Applies one committed normal entry with data, in log order, on the driver task. The
    /// core's own entries (membership changes, a leader's empty no-op) are not passed.
    /// Throwing halts the driver: the replica stops rather than diverge.
    func apply(_ entry: Entry) throws

    /// What a snapshot of the applied state carries.
    func snapshotData() -> [UInt8]

    /// Brings the applied state up to `snapshot`, received from `leader`.
    func install(_ snapshot: Snapshot, from leader: NodeID) async throws
}
