/// What the node hands to `RaftNode.init` after a (re)start: exactly what it persisted
/// under the `Ready` contract, plus how far its state machine has applied.
///
/// Membership is not stored separately: it is the snapshot's `ConfState` with every
/// `.configChange` entry in `(snapshot index, applied]` applied on top, so it can never
/// disagree with the log.
///
/// Invariant (checked by `RaftNode.init`): `entries` are consecutive; entries at or below
/// the snapshot index are ignored; `hardState.commit <= last index`;
/// `applied <= hardState.commit`. An `applied` below the snapshot index means the crash
/// came between persisting a snapshot and installing it: the first `Ready` then hands the
/// snapshot out again in `snapshotToPersist` (persist it idempotently, install it).
public struct PersistentState: Sendable, Hashable {
    public var hardState: HardState
    public var snapshot: Snapshot?
    public var entries: [Entry]
    /// The highest index the state machine has applied (durably, with the state machine).
    public var applied: UInt64

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = [], applied: UInt64 = 0) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.applied = applied
    }

    /// The state every founding member of a new group persists before its first start: one
    /// committed entry at index 1, term 1 carrying `ConfChange.bootstrap(voters)`. All
    /// founders write the identical entry, so their logs match; members added later receive
    /// it (or a snapshot covering it) from the leader. A member joining an existing group
    /// starts from `PersistentState()` instead.
    public static func bootstrap(voters: [NodeID]) -> PersistentState {
        let entry = Entry(term: 1, index: 1, kind: .configChange, data: ConfChange.bootstrap(voters: voters.sorted()).encoded)
        return PersistentState(hardState: HardState(term: 1, vote: noNode, commit: 1), entries: [entry], applied: 0)
    }
}
