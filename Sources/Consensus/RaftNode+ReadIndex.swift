// Linearizable reads without log writes: ReadIndex (Raft thesis §6.4).

extension RaftNode {
    /// Requests a linearizable read identified by `context` (unique per pending request).
    ///
    /// The leader records its commit index, confirms it is still leader with a heartbeat
    /// round acknowledged by a quorum, and then a `ReadState(index, context)` appears in a
    /// `Ready` whose committed entries bring the applied index to at least `index`. A new
    /// leader answers only after committing an entry of its own term (its commit index is
    /// not known current before). Followers forward the request to the leader. A request
    /// can be lost (leader change, dropped message): callers retry with a timeout.
    /// - Throws: `.notLeader(leader: noNode)` when no leader is known.
    public mutating func readIndex(context: [UInt8]) throws(RaftError) {
        if role == .leader {
            handleReadIndexRequest(from: id, context: context)
        } else if leader != noNode {
            send(Message(kind: .readIndex, from: id, to: leader, context: context))
        } else {
            throw .notLeader(leader: noNode)
        }
    }

    var committedEntryInCurrentTerm: Bool { log.term(at: log.committed) == term }

    mutating func handleReadIndexRequest(from requester: NodeID, context: [UInt8]) {
        if tracker.conf.voters == [id] {
            respondToRead(from: requester, index: log.committed, context: context)
            return
        }
        guard committedEntryInCurrentTerm else {
            pendingReadIndexMessages.append(Message(kind: .readIndex, from: requester, to: id, context: context))
            return
        }
        if readOnly.add(index: log.committed, from: requester, context: context) {
            _ = readOnly.ack(id, context: context)
            broadcastHeartbeat()
        }
    }

    mutating func handleReadIndexAck(from peer: NodeID, context: [UInt8]) {
        guard let acks = readOnly.ack(peer, context: context), tracker.hasQuorum(acks) else { return }
        for request in readOnly.release(through: context) {
            respondToRead(from: request.from, index: request.index, context: request.context)
        }
    }

    mutating func respondToRead(from requester: NodeID, index: UInt64, context: [UInt8]) {
        if requester == id {
            readStates.append(ReadState(index: index, context: context))
        } else {
            send(Message(kind: .readIndexResponse, from: id, to: requester, term: term, index: index, context: context))
        }
    }

    /// Serves the reads that waited for this leader's first commit.
    mutating func releasePendingReadIndexMessages() {
        guard !pendingReadIndexMessages.isEmpty, committedEntryInCurrentTerm else { return }
        let waiting = pendingReadIndexMessages
        pendingReadIndexMessages = []
        for m in waiting { handleReadIndexRequest(from: m.from, context: m.context) }
    }
}
