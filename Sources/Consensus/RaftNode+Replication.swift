// Log replication (Raft §5.3), the commit rule (§5.4.2), proposals, and the leader's and
// follower's message handling.

extension RaftNode {
    // MARK: Requests

    /// Proposes `data` for the log.
    ///
    /// The entry is committed (and appears in `Ready.committedEntries`) only if this member
    /// stays leader long enough; a proposal can be lost on leader change, so the caller
    /// must match committed data to its requests.
    /// - Throws: `.notLeader(leader:)` (forward there), `.transferInProgress`,
    ///   `.proposalDropped` (uncommitted size limit exceeded, or removed from the group).
    public mutating func propose(_ data: [UInt8]) throws(RaftError) {
        try proposeEntries([Entry(term: 0, index: 0, kind: .normal, data: data)])
    }

    mutating func proposeEntries(_ entries: [Entry]) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard tracker.progress[id] != nil else { throw .proposalDropped }
        guard leadTransferee == noNode else { throw .transferInProgress }
        guard appendEntries(entries) else { throw .proposalDropped }
        broadcastAppend()
    }

    /// Term-less requests: forwarded to the leader by followers, handled by the leader.
    mutating func stepLocal(_ m: Message) throws(RaftError) {
        switch m.kind {
        case .propose:
            // Forwarded proposals: only normal entries; configuration changes must go
            // through `proposeConfChange` on the leader itself.
            let ents = m.entries.map { Entry(term: 0, index: 0, kind: .normal, data: $0.data) }
            if ents.isEmpty { return }
            try proposeEntries(ents)
        case .readIndex:
            if role == .leader {
                handleReadIndexRequest(from: m.from, context: m.context)
            } else if leader != noNode {
                send(Message(kind: .readIndex, from: m.from, to: leader, context: m.context))
            } else {
                throw .notLeader(leader: noNode)
            }
        case .transferLeader:
            if role == .leader {
                handleTransferLeader(to: m.from)
            } else if leader != noNode {
                var forward = m
                forward.to = leader
                send(forward)
            } else {
                throw .notLeader(leader: noNode)
            }
        default:
            break
        }
    }

    // MARK: Leader

    /// Appends entries of the current term (assigning term and index), counting them
    /// against `maxUncommittedEntriesSize`. Returns false (appending nothing) when over
    /// the limit.
    mutating func appendEntries(_ entries: [Entry]) -> Bool {
        let size = entries.reduce(0) { $0 + $1.payloadSize }
        let limit = configuration.maxUncommittedEntriesSize
        if limit > 0, uncommittedSize > 0, size > 0, uncommittedSize + size > limit { return false }
        uncommittedSize += size
        var next = log.lastIndex + 1
        var stamped: [Entry] = []
        stamped.reserveCapacity(entries.count)
        for var e in entries {
            e.term = term
            e.index = next
            next += 1
            stamped.append(e)
        }
        log.append(stamped)
        // The leader's own copy counts towards the quorum; it is durable before any
        // follower can acknowledge it because appends are sent only after persisting.
        _ = tracker.progress[id]?.maybeUpdate(log.lastIndex)
        _ = maybeCommit()
        return true
    }

    /// Advances the commit index to the highest index replicated on a majority, but only
    /// if that entry is of the current term (§5.4.2: never commit earlier terms' entries
    /// by counting replicas). Returns true when it moved.
    mutating func maybeCommit() -> Bool {
        var candidate = tracker.committedIndex()
        #if DEBUG
        if configuration.testingCommitsWithoutQuorum { candidate = log.lastIndex }
        #endif
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.commit(to: candidate)
        return true
    }

    mutating func broadcastAppend() {
        for peer in tracker.conf.members where peer != id {
            _ = sendAppend(to: peer, sendIfEmpty: true)
        }
    }

    mutating func broadcastHeartbeat() {
        let context = readOnly.lastContext ?? []
        for peer in tracker.conf.members where peer != id {
            guard let p = tracker.progress[peer] else { continue }
            // Never tell a follower a commit index beyond what it is known to hold.
            send(Message(kind: .heartbeat, from: id, to: peer, term: term, commit: min(p.match, log.committed), context: context))
        }
    }

    /// Sends the next batch to `peer` per its progress state: entries from `next` (at most
    /// `maxSizePerMessage` bytes), or a snapshot when `next - 1` was compacted away.
    /// Returns whether a message was sent.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool) -> Bool {
        guard var p = tracker.progress[peer], !p.isPaused else { return false }
        defer { tracker.progress[peer] = p }
        let prevIndex = p.next - 1
        guard let prevTerm = log.term(at: prevIndex),
              let ents = log.entries(from: p.next, through: log.lastIndex, maxBytes: configuration.maxSizePerMessage)
        else {
            // The entries this member needs were compacted: send the snapshot (§7).
            guard p.recentActive, let snap = log.snapshot, log.snapshotIsStable else { return false }
            p.becomeSnapshot(snap.metadata.index)
            send(Message(kind: .snapshot, from: id, to: peer, term: term, snapshot: snap))
            return true
        }
        if ents.isEmpty && !sendIfEmpty { return false }
        send(Message(kind: .append, from: id, to: peer, term: term, logTerm: prevTerm, index: prevIndex, entries: ents, commit: log.committed))
        p.sentEntries(count: ents.count, lastIndex: ents.last?.index ?? prevIndex, bytes: ents.reduce(0) { $0 + $1.payloadSize })
        return true
    }

    /// An empty append at the end of `peer`'s in-flight window, not counted in it.
    mutating func sendWindowProbe(to peer: NodeID) {
        guard let p = tracker.progress[peer] else { return }
        guard let prevTerm = log.term(at: p.next - 1) else {
            tracker.progress[peer]?.becomeProbe()
            sendAppend(to: peer, sendIfEmpty: true)
            return
        }
        send(Message(kind: .append, from: id, to: peer, term: term, logTerm: prevTerm, index: p.next - 1, commit: log.committed))
    }

    mutating func stepLeader(_ m: Message) {
        guard var p = tracker.progress[m.from] else { return }
        switch m.kind {
        case .appendResponse:
            p.recentActive = true
            if m.reject {
                // Fast backtracking: jump to the follower's hint, refined by its term.
                var nextProbe = m.rejectHint
                if m.logTerm > 0 {
                    nextProbe = log.findConflictByTerm(index: m.rejectHint, term: m.logTerm).index
                }
                if p.maybeDecrease(rejected: m.index, matchHint: nextProbe) {
                    if p.state == .replicate { p.becomeProbe() }
                    tracker.progress[m.from] = p
                    sendAppend(to: m.from, sendIfEmpty: true)
                } else {
                    tracker.progress[m.from] = p
                }
                return
            }
            let wasPaused = p.isPaused
            let updated = p.maybeUpdate(m.index)
            if updated || (p.match == m.index && p.state == .probe) {
                switch p.state {
                case .probe:
                    p.becomeReplicate()
                case .snapshot where p.match + 1 >= log.firstIndex:
                    // The snapshot (or a later append) caught it up; replicate from here.
                    p.becomeProbe()
                    p.becomeReplicate()
                case .replicate:
                    p.inflights.free(upTo: m.index)
                case .snapshot:
                    break
                }
                tracker.progress[m.from] = p
                if maybeCommit() {
                    releasePendingReadIndexMessages()
                    broadcastAppend()
                } else if wasPaused {
                    sendAppend(to: m.from, sendIfEmpty: false)
                }
                // Keep the pipeline full.
                while sendAppend(to: m.from, sendIfEmpty: false) {}
                if m.from == leadTransferee, tracker.progress[m.from]?.match == log.lastIndex {
                    send(Message(kind: .timeoutNow, from: id, to: m.from, term: term))
                }
            } else {
                tracker.progress[m.from] = p
            }
        case .heartbeatResponse:
            p.recentActive = true
            p.msgAppFlowPaused = false
            tracker.progress[m.from] = p
            if p.state == .replicate && p.inflights.isFull {
                // Every append in the window may have been lost: send an empty append at
                // `next - 1` (outside the window); the answer either frees the window or is
                // a rejection that drops the follower back to probing.
                sendWindowProbe(to: m.from)
            } else if p.match < log.lastIndex || p.state == .probe {
                sendAppend(to: m.from, sendIfEmpty: true)
            }
            if !m.context.isEmpty { handleReadIndexAck(from: m.from, context: m.context) }
        default:
            tracker.progress[m.from] = p
        }
    }

    // MARK: Follower

    mutating func stepFollower(_ m: Message) {
        switch m.kind {
        case .append:
            electionElapsed = 0
            leader = m.from
            handleAppend(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshot(m)
        case .timeoutNow:
            // Leadership transfer: campaign at once, skipping pre-vote (thesis §3.10).
            if isPromotable { hup(.transfer) }
        case .readIndexResponse:
            readStates.append(ReadState(index: m.index, context: m.context))
        default:
            break
        }
    }

    /// AppendEntries receiver (Raft Figure 2).
    mutating func handleAppend(_ m: Message) {
        if m.index < log.committed {
            // Already committed here: tell the leader where we are.
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        if let lastMatch = log.maybeAppend(index: m.index, logTerm: m.logTerm, committed: m.commit, entries: m.entries) {
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: lastMatch))
            return
        }
        // Rule 2: reply false if the log has no entry at `index` with `logTerm`; hint the
        // largest index whose term is <= the leader's term there.
        let hint = log.findConflictByTerm(index: min(m.index, log.lastIndex), term: m.logTerm)
        send(Message(kind: .appendResponse, from: id, to: m.from, term: term, logTerm: hint.term, index: m.index, reject: true, rejectHint: hint.index))
    }

    mutating func handleHeartbeat(_ m: Message) {
        // The leader sends min(match, commit), so this index is in our matching prefix.
        log.commit(to: m.commit)
        send(Message(kind: .heartbeatResponse, from: id, to: m.from, term: term, context: m.context))
    }

    /// InstallSnapshot receiver (Raft §7).
    mutating func handleSnapshot(_ m: Message) {
        guard let s = m.snapshot else { return }
        if restore(s) {
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.lastIndex))
        } else {
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
        }
    }

    /// Replaces the log with `s` unless it is not newer than what is committed here, or the
    /// log already contains its last entry (then only the commit index moves).
    mutating func restore(_ s: Snapshot) -> Bool {
        let index = s.metadata.index
        if index <= log.committed { return false }
        if role != .follower && role != .learner { return false }
        // A snapshot whose membership does not include us is not for us (we were removed).
        if !s.metadata.confState.contains(id) { return false }
        if log.matchTerm(index, s.metadata.term) {
            log.commit(to: index)
            return false
        }
        log.restore(s)
        confHistory = [(index, s.metadata.confState)]
        tracker.apply(s.metadata.confState, nextIndex: log.lastIndex + 1)
        role = isPromotable ? .follower : .learner
        return true
    }
}
