/// Why a request to the Raft core was refused. No error leaves the core in an inconsistent
/// state: the refused call has no effect.
public enum RaftError: Error, Sendable, Hashable {
    /// Proposals, configuration changes and (on a leader-less follower) reads need a leader.
    /// `leader` is the leader this member knows of, or `noNode`; the node may forward there.
    case notLeader(leader: NodeID)
    /// A leadership transfer is in progress; proposals are refused until it ends.
    case transferInProgress
    /// The leader's uncommitted entries exceed `maxUncommittedEntriesSize`, or this
    /// member is no longer in the membership.
    case proposalDropped
    /// A configuration change is appended but not yet applied; one change at a time.
    case configChangePending
    /// The change does not fit the membership (promoting a non-learner, removing a stranger,
    /// removing the last voter, adding an existing member, bootstrapping).
    case invalidConfigChange(String)
    /// `RaftConfiguration.validate()` failed.
    case invalidConfiguration(String)
    /// The persisted state handed to `RaftNode.init` is inconsistent (gaps, commit beyond
    /// the log, ...).
    case corruptState(String)
    /// A message that this member cannot have been sent by a correct peer (wrong
    /// addressee, sender id 0, response from a non-member, malformed content). Ignored.
    case invalidMessage(String)
    /// `compact(upTo:)` outside `(snapshot index, applied]`.
    case compactionOutOfRange(requested: UInt64, applied: UInt64)
}
