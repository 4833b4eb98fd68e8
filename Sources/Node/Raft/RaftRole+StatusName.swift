import Consensus

extension RaftRole {
    /// The role's name in `ChainStatus.role` (Ops status, `gridnode status`): "leader",
    /// "follower", "learner", "candidate", "pre-candidate". Only status output uses it; the
    /// node's own decisions compare the typed role.
    var statusName: String {
        switch self {
        case .leader: "leader"
        case .follower: "follower"
        case .learner: "learner"
        case .candidate: "candidate"
        case .preCandidate: "pre-candidate"
        }
    }
}
