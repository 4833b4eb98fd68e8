/// The membership of a Raft group at some log index.
///
/// Invariant: `voters` and `learners` are disjoint and sorted ascending without duplicates
/// (so that equal memberships compare equal and iterate deterministically).
public struct ConfState: Sendable, Hashable {
    /// Members that vote and count towards quorums.
    public private(set) var voters: [NodeID]
    /// Members that receive the log but neither vote nor count towards quorums.
    public private(set) var learners: [NodeID]

    public init(voters: [NodeID] = [], learners: [NodeID] = []) {
        self.voters = Array(Set(voters)).sorted()
        let voterSet = Set(voters)
        self.learners = Array(Set(learners).subtracting(voterSet)).sorted()
    }

    /// Voters and learners, ascending.
    public var members: [NodeID] { (voters + learners).sorted() }

    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    public func contains(_ id: NodeID) -> Bool { isVoter(id) || isLearner(id) }

    /// The membership after `change`. Total: changes that make no sense for this membership
    /// (promoting a voter, removing a stranger) leave it unchanged, so every replica that
    /// applies the same committed entries reaches the same membership.
    public func applying(_ change: ConfChange) -> ConfState {
        switch change {
        case .bootstrap(let newVoters):
            return ConfState(voters: newVoters)
        case .addLearner(let id):
            if contains(id) { return self }
            return ConfState(voters: voters, learners: learners + [id])
        case .promote(let id):
            guard isLearner(id) else { return self }
            return ConfState(voters: voters + [id], learners: learners.filter { $0 != id })
        case .remove(let id):
            return ConfState(voters: voters.filter { $0 != id }, learners: learners.filter { $0 != id })
        }
    }
}
