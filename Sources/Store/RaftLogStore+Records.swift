// The records the Raft log store keeps: plain bytes and integers, no Raft types. The Raft
// shell (Sources/Node/Raft/RaftLogRecords.swift) translates the core's `Entry`,
// `HardState`, `Snapshot` and `PersistentState` to and from these; the store only checks
// the layout's invariants (indexes, terms, commit), which need nothing else.

extension RaftLogStore {
    /// One log entry: "e" index -> term kind data.
    public struct EntryRecord: Sendable, Equatable {
        public var term: UInt64
        public var index: UInt64
        /// The entry kind byte as stored (the grammar allows 0x00 and 0x01; what they mean
        /// is the Raft shell's business).
        public var kind: UInt8
        public var data: [UInt8]

        public init(term: UInt64, index: UInt64, kind: UInt8 = 0, data: [UInt8] = []) {
            self.term = term
            self.index = index
            self.kind = kind
            self.data = data
        }
    }

    /// The hard state: "h" -> term vote commit. All zero in a fresh store.
    public struct HardStateRecord: Sendable, Equatable {
        public var term: UInt64
        public var vote: UInt64
        public var commit: UInt64

        public init(term: UInt64 = 0, vote: UInt64 = 0, commit: UInt64 = 0) {
            self.term = term
            self.vote = vote
            self.commit = commit
        }
    }

    /// The latest snapshot: "s" -> index term voters learners data. `voters` and `learners`
    /// are strictly increasing and disjoint (a malformed record is `.corrupt`).
    public struct SnapshotRecord: Sendable, Equatable {
        public var index: UInt64
        public var term: UInt64
        public var voters: [UInt64]
        public var learners: [UInt64]
        public var data: [UInt8]

        public init(index: UInt64, term: UInt64, voters: [UInt64], learners: [UInt64] = [], data: [UInt8] = []) {
            self.index = index
            self.term = term
            self.voters = voters
            self.learners = learners
            self.data = data
        }
    }

    /// Everything stored, as `load()` returns it.
    public struct Contents: Sendable, Equatable {
        public var hardState: HardStateRecord
        public var snapshot: SnapshotRecord?
        /// `firstIndex ... lastIndex`, in order.
        public var entries: [EntryRecord]
        public var applied: UInt64

        public init(hardState: HardStateRecord = HardStateRecord(), snapshot: SnapshotRecord? = nil,
                    entries: [EntryRecord] = [], applied: UInt64 = 0) {
            self.hardState = hardState
            self.snapshot = snapshot
            self.entries = entries
            self.applied = applied
        }
    }

    /// What the store holds durably right now: what every returned `persist` / `compact`
    /// wrote (both sync before they return). The Raft shell checks a `Ready`'s must-sync
    /// part against this before sending its messages.
    public struct Durable: Sendable, Equatable {
        public var hardState: HardStateRecord
        public var snapshotIndex: UInt64
        public var snapshotTerm: UInt64
        /// The last stored entry's index and term (the snapshot's without entries).
        public var lastIndex: UInt64
        public var lastTerm: UInt64

        public init(hardState: HardStateRecord = HardStateRecord(), snapshotIndex: UInt64 = 0, snapshotTerm: UInt64 = 0,
                    lastIndex: UInt64 = 0, lastTerm: UInt64 = 0) {
            self.hardState = hardState
            self.snapshotIndex = snapshotIndex
            self.snapshotTerm = snapshotTerm
            self.lastIndex = lastIndex
            self.lastTerm = lastTerm
        }
    }
}
