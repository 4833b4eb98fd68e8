/// What a member currently is. `learner` is reported for a non-voter that follows.
public enum RaftRole: Sendable, Hashable {
    case follower
    /// Running a pre-vote round (term not yet incremented; Ongaro thesis §9.6).
    case preCandidate
    case candidate
    case leader
    /// A non-voting member (or one not in the membership at all); never campaigns.
    case learner
}
