/// A Raft message between two members. Which fields are meaningful depends on `kind`
/// (see `MessageKind`); unused fields are zero / empty.
///
/// Invariant for messages the core emits: `from` is the sender's id (except
/// `.transferLeader`, see there), `to != from`, `to != noNode`; `term` is the sender's
/// term except for forwarded requests (`.propose`, `.readIndex`, `.transferLeader`),
/// which carry term 0, and pre-vote requests/grants, which carry the proposed term.
public struct Message: Sendable, Hashable {
    public var kind: MessageKind
    public var from: NodeID
    public var to: NodeID
    public var term: UInt64
    /// Term of the entry at `index` (append: previous entry; vote: last entry;
    /// rejected appendResponse: term of the follower's entry at `rejectHint`).
    public var logTerm: UInt64
    public var index: UInt64
    public var entries: [Entry]
    /// Leader's commit index (append, heartbeat).
    public var commit: UInt64
    /// True when a vote / append is refused.
    public var reject: Bool
    /// On a rejected append: the index the leader should probe next.
    public var rejectHint: UInt64
    /// Set for `.snapshot`.
    public var snapshot: Snapshot?
    /// ReadIndex request id (readIndex, heartbeat, heartbeatResponse, readIndexResponse),
    /// or `Message.campaignTransferContext` on vote requests of a leadership transfer.
    public var context: [UInt8]

    /// Marks a vote request sent because of `timeoutNow`: voters skip their leader lease.
    public static let campaignTransferContext: [UInt8] = Array("CampaignTransfer".utf8)

    public init(
        kind: MessageKind, from: NodeID, to: NodeID, term: UInt64 = 0, logTerm: UInt64 = 0,
        index: UInt64 = 0, entries: [Entry] = [], commit: UInt64 = 0, reject: Bool = false,
        rejectHint: UInt64 = 0, snapshot: Snapshot? = nil, context: [UInt8] = []
    ) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.snapshot = snapshot
        self.context = context
    }
}
