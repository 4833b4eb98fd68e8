// Leadership transfer (Raft thesis §3.10).

extension RaftNode {
    /// Asks the leader to hand leadership to `target` (a voter): the leader stops accepting
    /// proposals, brings `target` up to date, then sends it `timeoutNow`, on which `target`
    /// campaigns at once. The transfer is abandoned after an election timeout.
    /// On a follower the request is forwarded to the leader.
    /// - Throws: `.notLeader(leader: noNode)` when no leader is known.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        if role == .leader {
            handleTransferLeader(to: target)
        } else if leader != noNode {
            // By etcd's convention `from` is the transferee; `send` keeps it.
            send(Message(kind: .transferLeader, from: target, to: leader))
        } else {
            throw .notLeader(leader: noNode)
        }
    }

    mutating func handleTransferLeader(to target: NodeID) {
        guard tracker.conf.isVoter(target) else { return }  // learners and strangers cannot lead
        if leadTransferee != noNode {
            if leadTransferee == target { return }  // already in progress
            abortLeaderTransfer()
        }
        if target == id { return }  // already leader
        // The transfer must finish within one election timeout.
        electionElapsed = 0
        leadTransferee = target
        if tracker.progress[target]?.match == log.lastIndex {
            send(Message(kind: .timeoutNow, from: id, to: target, term: term))
        } else {
            sendAppend(to: target, sendIfEmpty: true)
        }
    }

    mutating func abortLeaderTransfer() {
        leadTransferee = noNode
    }
}
