/// One Raft log entry.
///
/// Invariant: within a log, indexes are consecutive and terms never decrease with the index.
/// Index 0 is never an entry (the empty log's "previous entry" is index 0, term 0).
public struct Entry: Sendable, Hashable {
    /// What an entry carries.
    public enum Kind: UInt8, Sendable, Hashable {
        /// Application data (a block, for GridLedger), or empty for a leader's no-op.
        case normal = 0
        /// An encoded `ConfChange`; takes effect when the entry is applied.
        case configChange = 1
    }

    public var term: UInt64
    public var index: UInt64
    public var kind: Kind
    /// Opaque to Raft for `.normal`; `ConfChange.encoded` for `.configChange`.
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: Kind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes counted against message, in-flight and uncommitted limits.
    public var payloadSize: Int { data.count }
}
