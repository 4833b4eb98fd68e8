/// A confirmed linearizable read (ReadIndex, Raft thesis §6.4): the read identified by
/// `context` may be served from the state machine once it has applied `index`. The core
/// emits a ReadState in a `Ready` only when applying that Ready's `committedEntries`
/// brings the applied index to at least `index`.
public struct ReadState: Sendable, Hashable {
    /// The commit index at the time the read was requested (leader-confirmed).
    public var index: UInt64
    /// The caller's request id, as passed to `RaftNode.readIndex(context:)`.
    public var context: [UInt8]

    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}
