// Single-step membership changes (Raft thesis §4.1; etcd-io/raft "simple" confchanges),
// learners, and log compaction.

extension RaftNode {
    /// Proposes one membership change. It takes effect on every member when its entry is
    /// applied (`advance`), so at most one change may be in the log unapplied.
    ///
    /// - `.addLearner(id)`: `id` must not be a member.
    /// - `.promote(id)`: `id` must be a learner (promote it once its match index has caught
    ///   up; see `progress`).
    /// - `.remove(id)`: `id` must be a member and not the last voter. Removing the leader
    ///   itself is allowed: it keeps leading until the change is applied, then steps down.
    /// - Throws: `.notLeader`, `.transferInProgress`, `.configChangePending` (a change is
    ///   appended but not applied, or this leader has not yet applied its predecessors'
    ///   entries), `.invalidConfigChange`, `.proposalDropped`.
    public mutating func proposeConfChange(_ change: ConfChange) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard pendingConfIndex <= log.applied else { throw .configChangePending }
        let conf = tracker.conf
        switch change {
        case .bootstrap:
            throw .invalidConfigChange("bootstrap is only written by PersistentState.bootstrap")
        case .addLearner(let n):
            if n == noNode || conf.contains(n) { throw .invalidConfigChange("\(n) is already a member") }
        case .promote(let n):
            if !conf.isLearner(n) { throw .invalidConfigChange("\(n) is not a learner") }
        case .remove(let n):
            if !conf.contains(n) { throw .invalidConfigChange("\(n) is not a member") }
            if conf.voters == [n] { throw .invalidConfigChange("cannot remove the last voter") }
        }
        try proposeEntries([Entry(term: 0, index: 0, kind: .configChange, data: change.encoded)])
        pendingConfIndex = log.lastIndex
    }

    /// Applies a committed change (called from `advance` as its entry is applied).
    mutating func applyConfChange(_ change: ConfChange, at index: UInt64) {
        let newConf = tracker.conf.applying(change)
        confHistory.append((index, newConf))
        tracker.apply(newConf, nextIndex: log.lastIndex + 1)
        if role == .leader {
            if !newConf.isVoter(id) {
                // The leader was removed (or is no voter): step down; the remaining voters
                // elect a leader among themselves (thesis §4.2.2).
                becomeFollower(term: term, leader: noNode)
                return
            }
            if leadTransferee != noNode && !newConf.isVoter(leadTransferee) { abortLeaderTransfer() }
            // A smaller quorum may commit more; new members need their first append.
            if maybeCommit() { releasePendingReadIndexMessages() }
            broadcastAppend()
        } else {
            if role == .candidate || role == .preCandidate, !isPromotable {
                becomeFollower(term: term, leader: noNode)
            } else if role == .follower || role == .learner {
                role = isPromotable ? .follower : .learner
            }
        }
    }

    /// The membership in force at `index` (which must be within the retained history).
    func confState(at index: UInt64) -> ConfState {
        var result = confHistory[0].conf
        for (i, c) in confHistory where i <= index { result = c }
        return result
    }

    /// Log compaction (Raft §7): replaces the entries up to `index` by a snapshot carrying
    /// `snapshotData` (GridLedger: the block height; the blocks themselves are the state).
    ///
    /// The caller must then durably store the returned snapshot and may delete persisted
    /// entries `<= index` afterwards (a crash in between leaves both, which `init` accepts).
    /// Followers whose next needed entry is compacted away receive this snapshot.
    /// - Precondition-like errors: `index` must be in `(snapshot index, applied]` and
    ///   durable; otherwise `.compactionOutOfRange` and nothing changes.
    @discardableResult
    public mutating func compact(upTo index: UInt64, snapshotData: [UInt8]) throws(RaftError) -> Snapshot {
        guard index > log.offset, index <= log.applied, index <= log.stableIndex, log.snapshotIsStable,
              let t = log.term(at: index)
        else { throw .compactionOutOfRange(requested: index, applied: log.applied) }
        let snap = Snapshot(metadata: .init(index: index, term: t, confState: confState(at: index)), data: snapshotData)
        log.compact(to: snap)
        // Keep the membership in force at `index` as the new base of the history.
        confHistory = [(index, snap.metadata.confState)] + confHistory.filter { $0.index > index }
        return snap
    }

    /// Tells the leader how sending a snapshot to `peer` ended (the transport calls this:
    /// `success` once the snapshot was delivered, false when it failed). After a failure the
    /// leader probes again at the next heartbeat response.
    public mutating func reportSnapshot(to peer: NodeID, success: Bool) {
        guard role == .leader, var p = tracker.progress[peer], p.state == .snapshot else { return }
        if !success { p.pendingSnapshot = 0 }
        p.becomeProbe()
        // Wait for a heartbeat response before probing (etcd-io/raft MsgSnapStatus).
        p.msgAppFlowPaused = true
        tracker.progress[peer] = p
    }

    /// Tells the leader that a message to `peer` could not be delivered: stop streaming to
    /// it optimistically and fall back to probing.
    public mutating func reportUnreachable(_ peer: NodeID) {
        guard role == .leader, var p = tracker.progress[peer], p.state == .replicate else { return }
        p.becomeProbe()
        tracker.progress[peer] = p
    }
}
