import Consensus

/// Raft's safety properties (Raft paper Figure 3), checked against observations of a
/// simulated cluster. Each violation is recorded as a human-readable line.
///
/// - Election safety: at most one leader per term.
/// - Log matching: same index and term ⇒ identical logs up to that index.
/// - Leader completeness: an entry committed by the leader of term U is in the log of
///   every leader of a term > U.
/// - State machine safety: every member applies the same entry at each index, which we
///   check as the same rolling state hash after each index (covers order and snapshots).
struct InvariantChecker {
    private(set) var violations: [String] = []
    /// term → leader id.
    private(set) var leaders: [UInt64: NodeID] = [:]
    /// index → (entry term, state hash after applying it), as first applied anywhere.
    private(set) var applied: [UInt64: (term: UInt64, hash: UInt64)] = [:]
    /// index → lowest leader term under which it was seen committed by a leader.
    private(set) var commitTerm: [UInt64: UInt64] = [:]
    /// index → entry, as committed by a leader (for completeness checks).
    private(set) var committedEntries: [UInt64: Entry] = [:]
    /// Highest index a leader has committed.
    private(set) var maxCommitted: UInt64 = 0
    /// Highest index any member applied.
    private(set) var maxApplied: UInt64 = 0

    var ok: Bool { violations.isEmpty }

    mutating func fail(_ s: String) {
        if violations.count < 20 { violations.append(s) }
    }

    /// Election safety (§5.2).
    mutating func observeLeader(_ id: NodeID, term: UInt64, log: RaftLog) {
        if let other = leaders[term] {
            if other != id { fail("election safety: term \(term) has leaders \(other) and \(id)") }
            return
        }
        leaders[term] = id
        checkCompleteness(leader: id, term: term, log: log)
    }

    /// Records what a leader has committed (only leaders advance commit by counting).
    mutating func observeLeaderCommit(term: UInt64, log: RaftLog, from previous: UInt64) {
        guard log.committed > previous else { return }
        for i in max(previous + 1, log.firstIndex)...log.committed {
            guard let e = log.entry(at: i) else { continue }
            if let t = commitTerm[i], t <= term { continue }
            commitTerm[i] = term
            if let old = committedEntries[i], old != e {
                fail("commit: index \(i) committed as term \(old.term) and term \(e.term)")
            }
            committedEntries[i] = e
        }
        maxCommitted = max(maxCommitted, log.committed)
    }

    /// Leader completeness (§5.4): every entry committed in a term below `term` is in the
    /// new leader's log (or covered by its snapshot).
    mutating func checkCompleteness(leader: NodeID, term: UInt64, log: RaftLog) {
        for (i, t) in commitTerm.sorted(by: { $0.key < $1.key }) where t < term {
            guard i > log.offset else { continue }
            guard let e = log.entry(at: i), let c = committedEntries[i] else {
                fail("leader completeness: leader \(leader) of term \(term) lacks committed index \(i) (committed in term \(t))")
                continue
            }
            if e != c {
                fail("leader completeness: leader \(leader) of term \(term) has term \(e.term) at committed index \(i), expected term \(c.term)")
            }
        }
    }

    /// State machine safety (§5.4.3): `node` applied `e`, reaching state `hash`.
    mutating func observeApply(node: NodeID, entry e: Entry, hash: UInt64) {
        if let known = applied[e.index] {
            if known.term != e.term || known.hash != hash {
                fail("state machine safety: node \(node) applied term \(e.term) at index \(e.index) (state \(hash)); another applied term \(known.term) (state \(known.hash))")
            }
        } else {
            applied[e.index] = (e.term, hash)
        }
        maxApplied = max(maxApplied, e.index)
    }

    /// A snapshot installed by `node` must reproduce the state other members reached.
    mutating func observeSnapshot(node: NodeID, index: UInt64, hash: UInt64) {
        if let known = applied[index], known.hash != hash {
            fail("state machine safety: node \(node) installed snapshot at \(index) with state \(hash), expected \(known.hash)")
        }
    }

    /// Log matching (§5.3) between two logs: if they share an entry (index, term), every
    /// earlier entry both still hold is identical.
    mutating func checkLogMatching(_ a: (NodeID, RaftLog), _ b: (NodeID, RaftLog)) {
        let lo = max(a.1.firstIndex, b.1.firstIndex)
        let hi = min(a.1.lastIndex, b.1.lastIndex)
        guard lo <= hi else { return }
        var i = hi
        var matched = false
        while i >= lo {
            let ea = a.1.entry(at: i)
            let eb = b.1.entry(at: i)
            if matched {
                if ea != eb {
                    fail("log matching: nodes \(a.0) and \(b.0) agree at a later index but differ at \(i)")
                    return
                }
            } else if let ea, let eb, ea.term == eb.term {
                matched = true
                if ea != eb {
                    fail("log matching: nodes \(a.0) and \(b.0) have different entries with term \(ea.term) at \(i)")
                    return
                }
            }
            if i == 0 { break }
            i -= 1
        }
    }
}
