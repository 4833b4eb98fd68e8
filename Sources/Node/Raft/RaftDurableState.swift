import Consensus

/// What a `RaftStorage` holds durably, as the storage itself reports it: the hard state, the
/// snapshot's position and the last entry's (the snapshot's when no entry is stored).
/// `RaftPersistenceRule` checks each `Ready` against it before its messages are sent.
struct RaftDurableState: Sendable, Equatable {
    var hardState = HardState()
    var snapshotIndex: UInt64 = 0
    var snapshotTerm: UInt64 = 0
    var lastIndex: UInt64 = 0
    var lastTerm: UInt64 = 0
}
