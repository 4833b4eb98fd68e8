/// Identifies one member of a Raft group. Assigned by the deployment, stable for the
/// lifetime of the member, never reused after removal.
///
/// Invariant: `0` (`noNode`) is never a valid member id; it means "none" (no vote, no
/// known leader), as in the Raft paper's `votedFor = null`.
public typealias NodeID = UInt64

/// The "no node" id: no vote cast, no leader known.
public let noNode: NodeID = 0
