/// The kinds of `Message` Raft members exchange (Raft Figure 2 RPCs, the thesis
/// extensions, and requests forwarded to the leader).
public enum MessageKind: UInt8, Sendable, Hashable, CaseIterable {
    /// Pre-vote request (thesis §9.6): "would you vote for me at `term`?" No state changes.
    case preVote = 1
    case preVoteResponse = 2
    /// RequestVote RPC (§5.2). `index`/`logTerm` describe the candidate's last entry.
    case vote = 3
    case voteResponse = 4
    /// AppendEntries RPC (§5.3): `index`/`logTerm` name the entry preceding `entries`.
    case append = 5
    /// `index` = the follower's last matching index on success, or the rejected `index`
    /// with `rejectHint`/`logTerm` pointing at a likely match on failure.
    case appendResponse = 6
    /// Leader liveness and commit propagation; `context` carries a pending ReadIndex id.
    case heartbeat = 7
    case heartbeatResponse = 8
    /// InstallSnapshot RPC (§7); `snapshot` is set.
    case snapshot = 9
    /// Leadership transfer: "campaign now, skipping pre-vote and leases" (thesis §3.10).
    case timeoutNow = 10
    /// ReadIndex request forwarded by a follower to the leader (`term` 0).
    case readIndex = 11
    /// The leader's answer to a forwarded ReadIndex: `index` and the request's `context`.
    case readIndexResponse = 12
    /// Leadership transfer request forwarded to the leader (`term` 0). By etcd's
    /// convention `from` is the transferee, not the forwarder.
    case transferLeader = 13
    /// Proposal forwarded to the leader (`term` 0); `entries` carry the data.
    case propose = 14
}
