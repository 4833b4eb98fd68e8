// Leader election (Raft §5.2, §5.4.1), pre-vote (thesis §9.6), check-quorum and the
// leader lease (thesis §6.2, §4.2.3).

extension RaftNode {
    enum CampaignKind {
        case preElection, election, transfer
    }

    // MARK: Time

    mutating func tickElection() {
        electionElapsed += 1
        if isPromotable && pastElectionTimeout {
            electionElapsed = 0
            hup(.election)
        }
    }

    mutating func tickHeartbeat() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= configuration.electionTicks {
            electionElapsed = 0
            if configuration.checkQuorum {
                if !tracker.quorumActiveAndReset(selfID: id) {
                    // Check-quorum: a leader cut off from a quorum steps down, so clients
                    // stop waiting on it and reads cannot be served by a deposed leader.
                    becomeFollower(term: term, leader: noNode)
                    return
                }
            }
            // A transfer that did not finish within an election timeout is abandoned.
            if leadTransferee != noNode { abortLeaderTransfer() }
        }
        guard role == .leader else { return }
        if heartbeatElapsed >= configuration.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    // MARK: Role changes

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        leader = newLeader
        role = isPromotable ? .follower : .learner
    }

    mutating func becomePreCandidate() {
        // Pre-vote changes neither term nor vote (thesis §9.6).
        tracker.votes = [:]
        leader = noNode
        role = .preCandidate
    }

    mutating func becomeCandidate() {
        reset(term: term + 1)
        vote = id  // §5.2: a candidate votes for itself
        role = .candidate
    }

    mutating func becomeLeader() {
        reset(term: term)
        leader = id
        role = .leader
        tracker.progress[id]?.becomeReplicate()
        tracker.progress[id]?.recentActive = true
        // Conservatively treat every unapplied entry as a possible configuration change:
        // no new change until this leader has applied everything from earlier terms.
        pendingConfIndex = log.lastIndex
        // §5.4.2 / §8: append a no-op of the new term so earlier entries commit.
        _ = appendEntries([Entry(term: 0, index: 0)])
    }

    // MARK: Campaigning

    /// Starts an election if this member may (etcd-io/raft `hup`).
    mutating func hup(_ kind: CampaignKind) {
        if role == .leader { return }
        guard isPromotable else { return }
        // A committed but unapplied configuration change may remove us or change the quorum.
        if log.applied < log.committed,
           let pending = log.entries(from: log.applied + 1, through: log.committed),
           pending.contains(where: { $0.kind == .configChange }) {
            return
        }
        if kind == .election && configuration.preVote {
            campaign(.preElection)
        } else {
            campaign(kind)
        }
    }

    mutating func campaign(_ kind: CampaignKind) {
        let voteKind: MessageKind
        let voteTerm: UInt64
        if kind == .preElection {
            becomePreCandidate()
            voteKind = .preVote
            voteTerm = term + 1  // the term we would campaign in
        } else {
            becomeCandidate()
            voteKind = .vote
            voteTerm = term
        }
        tracker.recordVote(id, granted: true)
        if tracker.tally().result == .won {
            // Single voter: won outright.
            if kind == .preElection { campaign(.election) } else { becomeLeader() }
            return
        }
        for peer in tracker.conf.voters where peer != id {
            send(Message(
                kind: voteKind, from: id, to: peer, term: voteTerm,
                logTerm: log.lastTerm, index: log.lastIndex,
                context: kind == .transfer ? Message.campaignTransferContext : []))
        }
    }

    /// RequestVote / PreVote receiver (Raft Figure 2; §5.4.1 election restriction).
    mutating func handleVoteRequest(_ m: Message) {
        let canVote = vote == m.from
            || (vote == noNode && leader == noNode)
            || (m.kind == .preVote && m.term > term)
        let responseKind: MessageKind = m.kind == .vote ? .voteResponse : .preVoteResponse
        if canVote && log.isUpToDate(lastIndex: m.index, lastTerm: m.logTerm) {
            // A pre-vote grant carries the proposed term so the pre-candidate counts it.
            send(Message(kind: responseKind, from: id, to: m.from, term: m.term))
            if m.kind == .vote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(Message(kind: responseKind, from: id, to: m.from, term: term, reject: true))
        }
    }

    mutating func stepCandidate(_ m: Message) {
        let myResponse: MessageKind = role == .preCandidate ? .preVoteResponse : .voteResponse
        switch m.kind {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case myResponse:
            tracker.recordVote(m.from, granted: !m.reject)
            switch tracker.tally().result {
            case .won:
                if role == .preCandidate {
                    campaign(.election)
                } else {
                    becomeLeader()
                    broadcastAppend()
                }
            case .lost:
                becomeFollower(term: term, leader: noNode)
            case .pending:
                break
            }
        default:
            break  // timeoutNow, stale responses: ignored
        }
    }
}
