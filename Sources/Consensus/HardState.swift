/// The state a member must persist before it sends any message that depends on it
/// (Raft Figure 2, "Persistent state on all servers", plus the commit index).
///
/// Invariant: `term` never decreases; `vote` changes only when `term` changes or from
/// `noNode` to a candidate; `commit` never decreases.
public struct HardState: Sendable, Hashable {
    /// Latest term this member has seen.
    public var term: UInt64
    /// Candidate that received this member's vote in `term`, or `noNode`.
    public var vote: NodeID
    /// Highest log index known to be committed.
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID = noNode, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}
