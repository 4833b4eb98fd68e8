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

    /// Brings the applied state up to `snapshot`, received from `leader`. Throws
    /// `SnapshotSourceUnavailable` when the state could not be fetched (retried later);
    /// any other error halts the replica.
    func install(_ snapshot: Snapshot, from leader: NodeID) async throws
}

/// Thrown by `RaftStateMachine.install` when no source of the snapshot's state could be
/// reached (the leader went down or away during block transfer) and nothing was applied
/// wrongly: the shell keeps the replica, reloads its core from storage (which hands the
/// snapshot out again) and retries later, instead of halting as it must for a block that
/// fails verification.
struct SnapshotSourceUnavailable: Error, CustomStringConvertible {
    let reason: String
    var description: String { "no source for the snapshot's blocks: \(reason)" }
}
