/// A point-in-time image of the applied state that replaces the log prefix up to
/// `metadata.index` (Raft §7). The data is opaque to Raft: GridLedger puts a block height
/// there and transfers the blocks themselves out of band.
///
/// Invariant: `metadata.index >= 1` and `metadata.term >= 1` for any snapshot in a log
/// (index 0 is "nothing compacted").
public struct Snapshot: Sendable, Hashable {
    /// Where the snapshot sits in the log and which membership was in force there.
    public struct Metadata: Sendable, Hashable {
        /// Index of the last entry the snapshot covers.
        public var index: UInt64
        /// Term of that entry.
        public var term: UInt64
        /// Membership as of `index` (all configuration changes at or below it applied).
        public var confState: ConfState

        public init(index: UInt64, term: UInt64, confState: ConfState) {
            self.index = index
            self.term = term
            self.confState = confState
        }
    }

    public var metadata: Metadata
    public var data: [UInt8]

    public init(metadata: Metadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}
