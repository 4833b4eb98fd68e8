// The durable side of one chain's Raft group: one LevelDB at <directory>/raft.ldb.
//
// Grammar (big-endian integers; the encoder is RaftLogStore+Layout.swift, the page is
// Docs/storage-format.md, "Raft log"):
//
//   "e" index(u64)  -> term(u64) kind(u8) data
//   "h"             -> term(u64) vote(u64) commit(u64)
//   "s"             -> index(u64) term(u64) n-voters(u32) voter(u64)* n-learners(u32) learner(u64)* data
//   "a"             -> applied index(u64)

import Synchronization

/// Stable storage for one Raft group, as byte records (`RaftLogStore+Records.swift`): what a
/// `Ready` hands out for persistence (hard state, entries, snapshot), local log compaction,
/// and how far the chain store has applied the log. `load()` gives back exactly the records
/// last persisted; the Raft shell (`Sources/Node/Raft/RaftLogRecords.swift`) turns them into
/// the `PersistentState` a restarted node passes to `RaftNode.init`. This target knows no
/// Raft types.
///
/// Thread safety / Invariants:
/// - Every method may be called from any thread; they are serialized internally (one lock
///   held across each write and each `load`), so each sees and leaves a consistent store.
///   The node calls them from its single Ready loop.
/// - Invariant: the stored entries are exactly the consecutive indexes
///   `firstIndex ... lastIndex` = `(snapshot index, lastIndex]`, with non-decreasing terms
///   no lower than the snapshot's term; nothing at or below the snapshot index is stored.
/// - Invariant: the stored `commit <= lastIndex` (the snapshot index counts as an index).
/// - Invariant: `firstIndex`, `lastIndex` and the cached commit, applied and snapshot
///   position equal what is on disk whenever no call is running.
///
/// Durability:
/// - `persist` and `compact` write **one** LevelDB batch with `sync = true`: when they
///   return, everything they wrote survives a process crash, a kernel crash and power loss
///   (on a disk that honours flushes). This is what the `Ready` persistence contract (step 1)
///   requires before the Ready's messages are sent: send only after `persist` returned.
/// - A batch is atomic: after any crash the store holds exactly the state left by some
///   prefix of the returned (and possibly the one in-flight) `persist`/`compact` calls,
///   never part of one. A crash loses nothing that `persist` returned for.
/// - `setApplied(_:sync: false)` may be lost on a crash of the machine (not of the process);
///   `load()` then reports an older applied index and the node re-applies entries above it,
///   which the chain store must recognise (a block at or below its head is already there).
/// - Closing (dropping the object) needs no flush; LevelDB replays its log on the next open.
///
/// Errors: `StoreError.io` / `.corrupt` from LevelDB or a malformed record;
/// `.invalidArgument` for a call that would break an invariant (nothing is written then).
public final class RaftLogStore: Sendable {
    /// What is on disk, summarized (see the invariants).
    struct Position: Sendable, Equatable {
        var snapshotIndex: UInt64 = 0
        var snapshotTerm: UInt64 = 0
        var lastIndex: UInt64 = 0
        var lastTerm: UInt64 = 0
        var hardState = HardStateRecord()
        var applied: UInt64 = 0
        var commit: UInt64 { hardState.commit }
    }

    /// The underlying database. Exposed for tests and tools; writing through it bypasses
    /// every invariant of this type.
    public let database: LevelDB
    /// The directory given at open; the database is `<directory>/raft.ldb`.
    public let directory: String

    private let position: Mutex<Position>

    /// Opens (or creates, empty) the Raft log store in `directory`, creating the directory if
    /// missing.
    ///
    /// - Throws: `StoreError.io` when LevelDB cannot open the database (e.g. another process
    ///   holds it); `.corrupt` when a record is malformed or an entry is stored at or below
    ///   the snapshot index. Holes in the log are detected by `load()`, which reads it all.
    public init(directory: String, cacheBytes: Int = 8 << 20, writeBufferBytes: Int = 4 << 20) throws {
        try FileSystem.createDirectories(directory)
        let database = try LevelDB(
            path: directory + "/raft.ldb", createIfMissing: true,
            cacheBytes: cacheBytes, writeBufferBytes: writeBufferBytes)
        var position = Position()
        if let bytes = try database.get(Layout.snapshotKey) {
            let snapshot = try Layout.decodeSnapshot(bytes)
            position.snapshotIndex = snapshot.index
            position.snapshotTerm = snapshot.term
        }
        if let bytes = try database.get(Layout.hardStateKey) {
            position.hardState = try Layout.decodeHardState(bytes)
        }
        if let bytes = try database.get(Layout.appliedKey) {
            position.applied = try Layout.decodeApplied(bytes)
        }
        var first: UInt64?
        var last: UInt64?
        var lastTerm: UInt64?
        try database.scan(prefix: [Layout.entryPrefix], limit: 1) { key, _ in
            first = try Layout.decodeEntryKey(key)
            return false
        }
        try database.scan(prefix: [Layout.entryPrefix], reverse: true, limit: 1) { key, value in
            let index = try Layout.decodeEntryKey(key)
            last = index
            lastTerm = try Layout.decodeEntryTerm(index: index, value)
            return false
        }
        if let first, first <= position.snapshotIndex {
            throw StoreError.corrupt("raft log: entry \(first) is stored at or below the snapshot index \(position.snapshotIndex)")
        }
        position.lastIndex = last ?? position.snapshotIndex
        position.lastTerm = lastTerm ?? position.snapshotTerm
        self.database = database
        self.directory = directory
        self.position = Mutex(position)
    }

    /// Index of the first stored entry: the snapshot index + 1 (1 without a snapshot). When
    /// `firstIndex > lastIndex` no entry is stored.
    public var firstIndex: UInt64 { position.withLock { $0.snapshotIndex + 1 } }

    /// Index of the last stored entry, or the snapshot index (0 without one) when no entry
    /// is stored.
    public var lastIndex: UInt64 { position.withLock { $0.lastIndex } }

    /// The applied index last recorded by `setApplied` (or carried by `compact`); not
    /// necessarily durable if it was recorded with `sync: false`.
    public var applied: UInt64 { position.withLock { $0.applied } }

    /// What is durable now: the hard state, snapshot position and last entry written by the
    /// returned `persist` / `compact` calls (they sync before returning).
    public var durable: Durable {
        position.withLock {
            Durable(hardState: $0.hardState, snapshotIndex: $0.snapshotIndex, snapshotTerm: $0.snapshotTerm,
                    lastIndex: $0.lastIndex, lastTerm: $0.lastTerm)
        }
    }

    // MARK: Reading

    /// Everything stored: the hard state (all zero if none), the snapshot, the entries
    /// `firstIndex ... lastIndex` in order, and the applied index (0 if none). Translated,
    /// this is the state to hand to `RaftNode.init` after a restart.
    ///
    /// Reads one consistent view. An `applied` below the snapshot index is legal: the crash
    /// came between persisting a snapshot and installing it (the core's `PersistentState`).
    ///
    /// - Throws: `StoreError.corrupt` when a record is malformed or an invariant of the
    ///   layout does not hold (a hole in the log, a decreasing term, an entry at or below
    ///   the snapshot, a commit beyond the last index); `.io` on a read error.
    public func load() throws -> Contents {
        try position.withLock { _ in
            let view = database.snapshot()
            let snapshot = try database.get(Layout.snapshotKey, snapshot: view).map(Layout.decodeSnapshot)
            let hardState = try database.get(Layout.hardStateKey, snapshot: view).map(Layout.decodeHardState) ?? HardStateRecord()
            let applied = try database.get(Layout.appliedKey, snapshot: view).map(Layout.decodeApplied) ?? 0
            let base = snapshot?.index ?? 0
            var previousTerm = snapshot?.term ?? 0
            var entries: [EntryRecord] = []
            try database.scan(prefix: [Layout.entryPrefix], snapshot: view, fillCache: false) { key, value in
                let index = try Layout.decodeEntryKey(key)
                let expected = base + UInt64(entries.count) + 1
                guard index == expected else {
                    throw StoreError.corrupt("raft log: entry \(index) is stored where \(expected) was expected")
                }
                let entry = try Layout.decodeEntry(index: index, value)
                guard entry.term >= previousTerm else {
                    throw StoreError.corrupt("raft log: the term decreases at entry \(index) (\(previousTerm) to \(entry.term))")
                }
                previousTerm = entry.term
                entries.append(entry)
                return true
            }
            let last = base + UInt64(entries.count)
            guard hardState.commit <= last else {
                throw StoreError.corrupt("raft log: commit \(hardState.commit) is beyond the last index \(last)")
            }
            return Contents(hardState: hardState, snapshot: snapshot, entries: entries, applied: applied)
        }
    }

    // MARK: Writing

    /// Durably persists what a `Ready` hands out, as ONE batch synced before this returns
    /// (step 1 of the `Ready` persistence contract; send the Ready's messages only after
    /// this returned). Applied in this order:
    ///
    /// 1. `snapshot` (a snapshot received from the leader, `Ready.snapshotToPersist`): every
    ///    entry at or below its index is deleted and it becomes the stored snapshot. The
    ///    entries above it are kept only if the stored log holds the snapshot's last entry
    ///    (same index and term, or the same snapshot already stored): Raft §7 InstallSnapshot
    ///    rule 6, which covers persisting the same snapshot again after a restart
    ///    (`PersistentState`). Otherwise the whole stored log is discarded (rule 7), as the
    ///    core does with its in-memory log.
    /// 2. `entries` (`Ready.entriesToPersist`, consecutive): each overwrites the entry at its
    ///    index, and every stored entry above the last one is deleted (Raft §5.3: a
    ///    follower's conflicting suffix is replaced).
    /// 3. `hardState` (`Ready.hardState`), when given.
    ///
    /// Nothing to persist (no snapshot, no entries, no hard state) writes nothing.
    ///
    /// - Throws: `StoreError.invalidArgument`, writing nothing, when the result would break
    ///   the store's invariants: a snapshot with index or term 0, below the stored snapshot,
    ///   or at the stored snapshot's index with another term; entries that are not
    ///   consecutive, start at or below the snapshot index, leave a hole after the last
    ///   index, or decrease the term; a commit beyond the resulting last index.
    ///   `.io` / `.corrupt` from LevelDB (nothing of the batch is stored then).
    public func persist(hardState: HardStateRecord?, entries: [EntryRecord], snapshot: SnapshotRecord?) throws {
        guard hardState != nil || !entries.isEmpty || snapshot != nil else { return }
        try position.withLock { position in
            var next = position
            let batch = WriteBatch()

            if let snapshot {
                let index = snapshot.index
                let term = snapshot.term
                guard index >= 1, term >= 1 else {
                    throw StoreError.invalidArgument("raft log: a snapshot needs index and term >= 1 (got \(index), \(term))")
                }
                guard index >= position.snapshotIndex else {
                    throw StoreError.invalidArgument(
                        "raft log: snapshot at \(index) is below the stored snapshot at \(position.snapshotIndex)")
                }
                if index == position.snapshotIndex, term != position.snapshotTerm {
                    throw StoreError.invalidArgument(
                        "raft log: snapshot at \(index) has term \(term), the stored one has \(position.snapshotTerm)")
                }
                try Self.checkMembers(snapshot)
                let keepSuffix = try storedTerm(at: index, position) == term  // §7 rule 6
                let deleteThrough = keepSuffix ? index : position.lastIndex
                if position.snapshotIndex < deleteThrough {
                    for i in (position.snapshotIndex + 1)...deleteThrough {
                        batch.delete(Layout.entryKey(i))
                    }
                }
                batch.put(Layout.snapshotKey, Layout.snapshotValue(snapshot))
                next.snapshotIndex = index
                next.snapshotTerm = term
                next.lastIndex = keepSuffix ? max(position.lastIndex, index) : index
                next.lastTerm = keepSuffix && position.lastIndex > index ? position.lastTerm : term
            }

            if let first = entries.first, let lastEntry = entries.last {
                guard first.index > next.snapshotIndex else {
                    throw StoreError.invalidArgument(
                        "raft log: entry \(first.index) is at or below the snapshot index \(next.snapshotIndex)")
                }
                guard first.index <= next.lastIndex + 1 else {
                    throw StoreError.invalidArgument(
                        "raft log: entry \(first.index) would leave a hole after the last index \(next.lastIndex)")
                }
                // The entry before `first` is the snapshot's last entry or a stored entry the
                // batch keeps (entries above a discarded suffix are not read: first <= last + 1).
                var previousTerm =
                    first.index - 1 == next.snapshotIndex
                    ? next.snapshotTerm : try storedTerm(at: first.index - 1, position) ?? 0
                for (k, entry) in entries.enumerated() {
                    guard entry.index == first.index + UInt64(k) else {
                        throw StoreError.invalidArgument(
                            "raft log: entries are not consecutive (\(entry.index) after \(first.index + UInt64(k) - 1))")
                    }
                    guard entry.term >= previousTerm else {
                        throw StoreError.invalidArgument(
                            "raft log: the term decreases at entry \(entry.index) (\(previousTerm) to \(entry.term))")
                    }
                    previousTerm = entry.term
                    batch.put(Layout.entryKey(entry.index), Layout.entryValue(entry))
                }
                if lastEntry.index < next.lastIndex {
                    for i in (lastEntry.index + 1)...next.lastIndex {
                        batch.delete(Layout.entryKey(i))
                    }
                }
                next.lastIndex = lastEntry.index
                next.lastTerm = lastEntry.term
            }

            if let hardState {
                batch.put(Layout.hardStateKey, Layout.hardStateValue(hardState))
                next.hardState = hardState
            }
            guard next.commit <= next.lastIndex else {
                throw StoreError.invalidArgument(
                    "raft log: commit \(next.commit) would be beyond the last index \(next.lastIndex)")
            }

            try database.write(batch, sync: true)
            position = next
        }
    }

    /// Records that the chain store has applied every entry up to `index`.
    ///
    /// Durability per `sync`: `true` fsyncs before returning; `false` survives a process
    /// crash but may be lost on a machine crash (the node then re-applies from an older
    /// index; see the type's documentation). Either way the chain store's own commit must
    /// be durable before its index is recorded here.
    ///
    /// - Throws: `StoreError.invalidArgument` when `index` is below the recorded applied
    ///   index or beyond what is committed (the stored commit, or the snapshot index);
    ///   `.io` from LevelDB.
    public func setApplied(_ index: UInt64, sync: Bool) throws {
        try position.withLock { position in
            guard index >= position.applied else {
                throw StoreError.invalidArgument("raft log: applied index \(index) is below the recorded \(position.applied)")
            }
            let committed = max(position.commit, position.snapshotIndex)
            guard index <= committed else {
                throw StoreError.invalidArgument("raft log: applied index \(index) is beyond the committed index \(committed)")
            }
            try database.put(Layout.appliedKey, Layout.appliedValue(index), sync: sync)
            position.applied = index
        }
    }

    /// Log compaction: records `snapshot` (a snapshot of the applied state at `index`) and
    /// deletes every entry at or below `index`; the entries above it stay. One batch, synced
    /// before this returns; it also carries the current applied index, so after any crash
    /// the stored applied index is at least the snapshot's.
    ///
    /// - Throws: `StoreError.invalidArgument`, writing nothing, unless
    ///   `snapshot.index == index`, `firstIndex <= index <= min(applied, lastIndex)`
    ///   and the stored entry at `index` has `snapshot.term`. `.io` from LevelDB.
    public func compact(upTo index: UInt64, snapshot: SnapshotRecord) throws {
        try position.withLock { position in
            guard snapshot.index == index else {
                throw StoreError.invalidArgument("raft log: compacting to \(index) with a snapshot at \(snapshot.index)")
            }
            guard index > position.snapshotIndex, index <= position.lastIndex else {
                throw StoreError.invalidArgument(
                    "raft log: compacting to \(index) outside the stored entries \(position.snapshotIndex + 1)...\(position.lastIndex)")
            }
            guard index <= position.applied else {
                throw StoreError.invalidArgument("raft log: compacting to \(index) beyond the applied index \(position.applied)")
            }
            try Self.checkMembers(snapshot)
            let term = try storedTerm(at: index, position)
            guard term == snapshot.term else {
                throw StoreError.invalidArgument(
                    "raft log: snapshot term \(snapshot.term) differs from entry \(index)'s term \(term ?? 0)")
            }
            let batch = WriteBatch()
            for i in (position.snapshotIndex + 1)...index {
                batch.delete(Layout.entryKey(i))
            }
            batch.put(Layout.snapshotKey, Layout.snapshotValue(snapshot))
            batch.put(Layout.appliedKey, Layout.appliedValue(position.applied))
            try database.write(batch, sync: true)
            position.snapshotIndex = index
            position.snapshotTerm = snapshot.term
        }
    }

    // MARK: Helpers

    /// The layout's rule for a snapshot's member lists: sorted, unique, disjoint.
    private static func checkMembers(_ snapshot: SnapshotRecord) throws {
        guard Layout.membersAreWellFormed(voters: snapshot.voters, learners: snapshot.learners) else {
            throw StoreError.invalidArgument("raft log: snapshot members must be sorted, unique and disjoint")
        }
    }

    /// The term of the stored log at `index`: the snapshot's term at the snapshot index, a
    /// stored entry's term above it, nil below the snapshot or beyond the last index.
    /// Called with the lock held.
    private func storedTerm(at index: UInt64, _ position: Position) throws -> UInt64? {
        if index == position.snapshotIndex { return position.snapshotTerm }
        guard index > position.snapshotIndex, index <= position.lastIndex else { return nil }
        guard let bytes = try database.get(Layout.entryKey(index)) else {
            throw StoreError.corrupt("raft log: entry \(index) is missing below the last index \(position.lastIndex)")
        }
        return try Layout.decodeEntryTerm(index: index, bytes)
    }
}
