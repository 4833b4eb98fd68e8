/// Volatile state useful to the node (status, request routing); need not be persisted.
public struct SoftState: Sendable, Hashable {
    /// The leader this member currently follows, or `noNode`.
    public var leader: NodeID
    public var role: RaftRole

    public init(leader: NodeID, role: RaftRole) {
        self.leader = leader
        self.role = role
    }
}
