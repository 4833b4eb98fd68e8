/// The in-memory Raft log of one member: an optional snapshot covering indexes
/// `1...offset`, followed by the entries `offset+1 ... lastIndex`, of which a prefix is
/// known durable (`stableIndex`) and the rest still has to be handed out in a `Ready`.
///
/// Invariants:
/// - `entries[k].index == offset + 1 + k`; terms are non-decreasing.
/// - `offset <= applied <= committed <= lastIndex` once the pending snapshot (if any) is
///   applied; while a snapshot is pending, `applied < offset == committed` is possible.
/// - `offset <= stableIndex <= lastIndex`: entries in `(stableIndex, lastIndex]` are
///   unstable (not yet handed out / not yet acknowledged by `advance`).
/// - Committed entries are never truncated.
public struct RaftLog: Sendable {
    /// The latest snapshot (nil: nothing compacted).
    public private(set) var snapshot: Snapshot?
    /// Whether `snapshot` is already durable (false right after a leader sent it to us).
    public private(set) var snapshotIsStable: Bool = true
    private var entries: [Entry]
    /// Index covered by the snapshot, 0 if none.
    public private(set) var offset: UInt64
    private var offsetTerm: UInt64
    /// Highest index known committed.
    public private(set) var committed: UInt64
    /// Highest index handed to the application (through `Ready.committedEntries`).
    public private(set) var applied: UInt64
    /// Highest index known durable.
    public private(set) var stableIndex: UInt64

    /// Rebuilds the log from persisted state; see `PersistentState` for the invariants.
    init(_ state: PersistentState) throws(RaftError) {
        snapshot = state.snapshot
        let base = state.snapshot?.metadata.index ?? 0
        offset = base
        offsetTerm = state.snapshot?.metadata.term ?? 0
        entries = state.entries.filter { $0.index > base }
        for (k, e) in entries.enumerated() where e.index != offset + 1 + UInt64(k) {
            throw .corruptState("entry index \(e.index) where \(offset + 1 + UInt64(k)) was expected")
        }
        var previousTerm = offsetTerm
        for e in entries {
            if e.term < previousTerm { throw .corruptState("term decreases at index \(e.index)") }
            previousTerm = e.term
        }
        stableIndex = offset + UInt64(entries.count)
        let last = stableIndex
        if state.hardState.commit > last {
            throw .corruptState("commit \(state.hardState.commit) beyond last index \(last)")
        }
        committed = max(state.hardState.commit, offset)
        if state.applied < offset {
            // The snapshot was persisted but the crash came before the state machine
            // installed it: hand it out again (`Ready.snapshotToPersist`).
            applied = state.applied
            snapshotIsStable = false
        } else {
            applied = state.applied
        }
        if applied > committed { throw .corruptState("applied \(applied) beyond commit \(committed)") }
    }

    // MARK: Queries

    /// First index still held as an entry (`offset + 1`).
    public var firstIndex: UInt64 { offset + 1 }
    public var lastIndex: UInt64 { offset + UInt64(entries.count) }
    public var lastTerm: UInt64 { term(at: lastIndex) ?? 0 }

    /// Term of the entry at `index`: the snapshot's term at `offset`, nil when compacted
    /// away (`index < offset`) or beyond the log.
    public func term(at index: UInt64) -> UInt64? {
        if index == offset { return offsetTerm }
        if index < offset || index > lastIndex { return nil }
        return entries[Int(index - offset - 1)].term
    }

    /// The entry at `index`, nil unless `firstIndex <= index <= lastIndex`.
    public func entry(at index: UInt64) -> Entry? {
        guard index > offset, index <= lastIndex else { return nil }
        return entries[Int(index - offset - 1)]
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool {
        self.term(at: index) == term
    }

    /// Entries in the closed range `[low, high]` whose payloads sum to at most `maxBytes`
    /// (always at least one when the range is non-empty); nil when `low` was compacted.
    func entries(from low: UInt64, through high: UInt64, maxBytes: Int = Int.max) -> [Entry]? {
        if low <= offset { return nil }
        let hi = min(high, lastIndex)
        if low > hi { return [] }
        var out: [Entry] = []
        var size = 0
        for i in low...hi {
            let e = entries[Int(i - offset - 1)]
            size += e.payloadSize
            if !out.isEmpty && size > maxBytes { break }
            out.append(e)
        }
        return out
    }

    /// Entries not yet handed out for persistence, `(stableIndex, lastIndex]`.
    var unstableEntries: [Entry] {
        stableIndex >= lastIndex ? [] : Array(entries[Int(stableIndex - offset)...])
    }

    /// Committed entries not yet applied; empty while a snapshot is pending.
    var nextCommittedEntries: [Entry] {
        if !snapshotIsStable || applied >= committed { return [] }
        return entries(from: max(applied, offset) + 1, through: committed) ?? []
    }

    /// Raft §5.4.1: a log with last entry (`lastIndex`, `lastTerm`) is at least as
    /// up-to-date as ours when its last term is higher, or equal with an index at least ours.
    func isUpToDate(lastIndex index: UInt64, lastTerm term: UInt64) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// The first entry of `ents` that is absent from or conflicts with our log; 0 if none.
    func findConflict(_ ents: [Entry]) -> UInt64 {
        for e in ents where !matchTerm(e.index, e.term) { return e.index }
        return 0
    }

    /// The largest index `<= index` whose term is `<= term`, and that term (fast
    /// backtracking; etcd-io/raft `findConflictByTerm`). Stops at the snapshot.
    func findConflictByTerm(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var i = min(index, lastIndex)
        while i > offset {
            guard let t = self.term(at: i) else { break }
            if t <= term { return (i, t) }
            i -= 1
        }
        return (i, self.term(at: i) ?? 0)
    }

    // MARK: Mutations

    /// Appends `ents` (consecutive), first truncating any entries at or after
    /// `ents[0].index`. Precondition (kept by callers): `offset < ents[0].index <=
    /// lastIndex + 1` and `ents[0].index > committed`.
    mutating func append(_ ents: [Entry]) {
        guard let first = ents.first else { return }
        let keep = Int(first.index - offset - 1)
        if keep < entries.count { entries.removeSubrange(keep...) }
        entries.append(contentsOf: ents)
        stableIndex = min(stableIndex, first.index - 1)
    }

    /// AppendEntries receiver rules 2–5 (Raft Figure 2). Returns the index of the last
    /// entry now known to match the leader, or nil when the entry at `index` does not have
    /// `logTerm` (the caller rejects), or when the leader's entries conflict with a
    /// committed entry (a protocol violation; nothing is changed).
    mutating func maybeAppend(index: UInt64, logTerm: UInt64, committed leaderCommit: UInt64, entries ents: [Entry]) -> UInt64? {
        guard matchTerm(index, logTerm) else { return nil }
        let lastNew = index + UInt64(ents.count)
        let conflict = findConflict(ents)
        if conflict != 0 {
            if conflict <= committed { return nil }
            append(Array(ents[Int(conflict - index - 1)...]))
        }
        commit(to: min(leaderCommit, lastNew))
        return lastNew
    }

    /// Raises `committed` (never lowers it, never beyond `lastIndex`).
    mutating func commit(to index: UInt64) {
        if index > committed && index <= lastIndex { committed = index }
    }

    /// Records that the application applied everything up to `index`.
    mutating func applied(to index: UInt64) {
        if index > applied && index <= committed { applied = index }
    }

    /// Acknowledges durability of entries up to `index` handed out with term `term`; no-op
    /// when the log changed there since (a truncation raced the write).
    mutating func stable(to index: UInt64, term: UInt64) {
        if index > stableIndex, matchTerm(index, term) { stableIndex = index }
    }

    /// Acknowledges durability (and installation) of the pending snapshot at `index`.
    mutating func stableSnapshot(at index: UInt64) {
        guard !snapshotIsStable, offset == index else { return }
        snapshotIsStable = true
        applied = max(applied, index)
    }

    /// Replaces the whole log by a snapshot received from the leader (InstallSnapshot
    /// receiver rule 7: discard the entire log). The snapshot becomes unstable.
    mutating func restore(_ s: Snapshot) {
        snapshot = s
        snapshotIsStable = false
        offset = s.metadata.index
        offsetTerm = s.metadata.term
        entries = []
        stableIndex = offset
        committed = offset
    }

    /// Log compaction: drops entries up to `s.metadata.index` (≤ applied, ≤ stable) and
    /// keeps `s` as the (already durable) snapshot.
    mutating func compact(to s: Snapshot) {
        let index = s.metadata.index
        entries.removeFirst(Int(index - offset))
        offset = index
        offsetTerm = s.metadata.term
        snapshot = s
        snapshotIsStable = true
    }
}
