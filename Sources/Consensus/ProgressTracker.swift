/// Membership, per-member replication progress and election tallies, as seen by one
/// member (etcd-io/raft `tracker/tracker.go`, majority configurations only: membership
/// changes are single-step).
///
/// Invariants: `progress` has exactly one entry per member of `conf`; iteration is always
/// in ascending id order (`conf.members`), never in `Dictionary` order, so runs are
/// deterministic.
struct ProgressTracker: Sendable {
    private(set) var conf: ConfState = ConfState()
    var progress: [NodeID: Progress] = [:]
    /// Votes received in the current (pre-)election: id → granted.
    var votes: [NodeID: Bool] = [:]
    let maxInflight: Int
    let maxInflightBytes: Int

    init(maxInflight: Int, maxInflightBytes: Int) {
        self.maxInflight = maxInflight
        self.maxInflightBytes = maxInflightBytes
    }

    enum VoteResult { case pending, won, lost }

    var quorum: Int { conf.voters.count / 2 + 1 }

    /// Switches to `newConf`, keeping the progress of members that stay and creating
    /// fresh progress (`next = nextIndex`, recently active) for new ones.
    mutating func apply(_ newConf: ConfState, nextIndex: UInt64) {
        conf = newConf
        var updated: [NodeID: Progress] = [:]
        for id in newConf.members {
            var p = progress[id] ?? {
                var fresh = Progress(next: nextIndex, isLearner: false, maxInflight: maxInflight, maxInflightBytes: maxInflightBytes)
                fresh.recentActive = true
                return fresh
            }()
            p.isLearner = newConf.isLearner(id)
            updated[id] = p
        }
        progress = updated
    }

    /// The highest index replicated on a majority of voters (Raft §5.3); 0 without voters.
    func committedIndex() -> UInt64 {
        let voters = conf.voters
        if voters.isEmpty { return 0 }
        let matches = voters.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        return matches[voters.count / 2]
    }

    mutating func recordVote(_ id: NodeID, granted: Bool) {
        if votes[id] == nil { votes[id] = granted }
    }

    func tally() -> (granted: Int, rejected: Int, result: VoteResult) {
        var granted = 0
        var rejected = 0
        for id in conf.voters {
            switch votes[id] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        let q = quorum
        if conf.voters.isEmpty { return (0, 0, .lost) }
        if granted >= q { return (granted, rejected, .won) }
        if conf.voters.count - rejected < q { return (granted, rejected, .lost) }
        return (granted, rejected, .pending)
    }

    /// Check-quorum (thesis §6.2): whether a quorum of voters (counting `selfID`) was heard
    /// from since the last call; clears the flags of the others for the next round.
    mutating func quorumActiveAndReset(selfID: NodeID) -> Bool {
        var active = 0
        for id in conf.voters where id == selfID || progress[id]?.recentActive == true {
            active += 1
        }
        for id in conf.members where id != selfID {
            progress[id]?.recentActive = false
        }
        return active >= quorum
    }

    /// Whether the acks in `acks` (ids) include a quorum of voters.
    func hasQuorum(_ acks: Set<NodeID>) -> Bool {
        if conf.voters.isEmpty { return false }
        return conf.voters.filter { acks.contains($0) }.count >= quorum
    }
}
