import Consensus  // SplitMix64 only: the store itself knows no Raft types
import Foundation
import GridBase
import XCTest

@testable import Store

/// Rules checked (Docs/storage-format.md, "Raft log"; the `Ready` persistence contract):
/// what `persist` returned for survives reopening; a persisted suffix replaces a conflicting
/// one (Raft §5.3); a snapshot replaces the log it covers (Raft §7, InstallSnapshot rules 6
/// and 7); compaction drops only entries at or below the snapshot; a persist is atomic, so a
/// crash leaves exactly the state of some completed persist (never half a batch).
final class RaftLogStoreTests: XCTestCase {
    typealias EntryRecord = RaftLogStore.EntryRecord
    typealias HardStateRecord = RaftLogStore.HardStateRecord
    typealias SnapshotRecord = RaftLogStore.SnapshotRecord
    typealias Contents = RaftLogStore.Contents

    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(name)
    }

    override func tearDown() {
        directory.remove()
    }

    private func entries(_ range: ClosedRange<UInt64>, term: UInt64, tag: String = "") -> [EntryRecord] {
        range.map { EntryRecord(term: term, index: $0, data: Array("\(tag)\(term)/\($0)".utf8)) }
    }

    private func snapshot(index: UInt64, term: UInt64, voters: [UInt64] = [1, 2, 3], learners: [UInt64] = [], data: String = "")
        -> SnapshotRecord
    {
        SnapshotRecord(
            index: index, term: term, voters: voters, learners: learners,
            data: Array((data.isEmpty ? "height \(index)" : data).utf8))
    }

    private func assertRefused(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case StoreError.invalidArgument = error else {
                return XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
            }
        }
    }

    // MARK: Round trip

    /// Rule (Raft Figure 2, "Persistent state on all servers ... updated on stable storage
    /// before responding to RPCs"): what `persist` returned for is there after the store is
    /// dropped without any flush and reopened.
    func testHardStateEntriesAndSnapshotSurviveReopen() throws {
        let snap = snapshot(index: 4, term: 2, voters: [1, 2, 3], learners: [9], data: "")
        var written = entries(5...7, term: 3)
        written.append(EntryRecord(term: 3, index: 8, kind: 1, data: [2, 0, 0, 0, 0, 0, 0, 0, 9]))
        written.append(EntryRecord(term: 3, index: 9, data: []))  // a leader's empty no-op
        let hard = HardStateRecord(term: 3, vote: 2, commit: 6)
        do {
            let store = try RaftLogStore(directory: directory.path)
            XCTAssertEqual(try store.load(), Contents())
            XCTAssertEqual(store.firstIndex, 1)
            XCTAssertEqual(store.lastIndex, 0)
            try store.persist(hardState: hard, entries: written, snapshot: snap)
            try store.setApplied(5, sync: true)
        }
        let reopened = try RaftLogStore(directory: directory.path)
        let state = try reopened.load()
        XCTAssertEqual(state, Contents(hardState: hard, snapshot: snap, entries: written, applied: 5))
        XCTAssertEqual(state.snapshot?.voters, [1, 2, 3])
        XCTAssertEqual(state.snapshot?.learners, [9])
        XCTAssertEqual(reopened.firstIndex, 5)
        XCTAssertEqual(reopened.lastIndex, 9)
        XCTAssertEqual(reopened.applied, 5)
    }

    /// Layout: a snapshot's member lists are sorted, unique and disjoint; a record that is
    /// not is refused on write (nothing written) and reported as corruption on read.
    func testSnapshotMembersMustBeSortedUniqueAndDisjoint() throws {
        let store = try RaftLogStore(directory: directory.path)
        try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 2), entries: entries(1...3, term: 1), snapshot: nil)
        let before = try dump(store.database)
        assertRefused { try store.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 2, term: 1, voters: [2, 1])) }
        assertRefused { try store.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 2, term: 1, voters: [1, 1])) }
        assertRefused { try store.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 2, term: 1, voters: [1], learners: [1])) }
        try store.setApplied(2, sync: false)
        assertRefused { try store.compact(upTo: 2, snapshot: self.snapshot(index: 2, term: 1, voters: [3, 1])) }
        XCTAssertEqual(try dump(store.database), before.merging([[0x61]: [0, 0, 0, 0, 0, 0, 0, 2]]) { $1 })
        var unsorted = RaftLogStore.Layout.snapshotValue(snapshot(index: 1, term: 1, voters: [1, 2]))
        unsorted.swapAt(27, 35)  // the two voters' last bytes: [2, 1]
        XCTAssertThrowsError(try RaftLogStore.Layout.decodeSnapshot(unsorted)) { error in
            guard case StoreError.corrupt = error else { return XCTFail("\(error)") }
        }
    }

    /// Layout (Docs/storage-format.md): the exact bytes of each record.
    func testRecordsMatchTheGrammar() throws {
        let store = try RaftLogStore(directory: directory.path)
        try store.persist(
            hardState: HardStateRecord(term: 2, vote: 7, commit: 1),
            entries: [EntryRecord(term: 2, index: 1, kind: 1, data: [0xAB])], snapshot: nil)
        let all = try dump(store.database)
        XCTAssertEqual(all[[0x65, 0, 0, 0, 0, 0, 0, 0, 1]], [0, 0, 0, 0, 0, 0, 0, 2, 1, 0xAB])
        XCTAssertEqual(all[[0x68]], [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 0, 0, 0, 0, 7] + [0, 0, 0, 0, 0, 0, 0, 1])
        try store.setApplied(1, sync: false)
        XCTAssertEqual(try store.database.get([0x61]), [0, 0, 0, 0, 0, 0, 0, 1])
        let snap = snapshot(index: 1, term: 2, voters: [5], learners: [6], data: "x")
        try store.compact(upTo: 1, snapshot: snap)
        XCTAssertEqual(
            try store.database.get([0x73]),
            [0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 5]
                + [0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 6] + [UInt8(ascii: "x")])
        XCTAssertEqual(try RaftLogStore.Layout.decodeSnapshot(RaftLogStore.Layout.snapshotValue(snap)), snap)
    }

    // MARK: Truncation

    /// Raft §5.3: "If an existing entry conflicts with a new one (same index but different
    /// terms), delete the existing entry and all that follow it." Entries 1...10 at term 1,
    /// then entries 6...7 at term 2: 8...10 are gone, 6...7 replaced, 1...5 untouched.
    func testConflictingSuffixIsTruncated() throws {
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 3), entries: entries(1...10, term: 1), snapshot: nil)
            try store.persist(hardState: HardStateRecord(term: 2, vote: 2, commit: 3), entries: entries(6...7, term: 2), snapshot: nil)
            XCTAssertEqual(store.lastIndex, 7)
        }
        let store = try RaftLogStore(directory: directory.path)
        let state = try store.load()
        XCTAssertEqual(state.entries, entries(1...5, term: 1) + entries(6...7, term: 2))
        XCTAssertEqual(state.hardState, HardStateRecord(term: 2, vote: 2, commit: 3))
        for index: UInt64 in 8...10 {
            XCTAssertNil(try store.database.get(RaftLogStore.Layout.entryKey(index)))
        }
    }

    /// Raft §5.3 on the overlap: re-persisting entries the log already holds rewrites them in
    /// place; appending right after the last entry extends the log.
    func testOverwriteInPlaceAndExtend() throws {
        let store = try RaftLogStore(directory: directory.path)
        try store.persist(hardState: nil, entries: entries(1...3, term: 1), snapshot: nil)
        try store.persist(hardState: nil, entries: entries(3...3, term: 1, tag: "again"), snapshot: nil)
        try store.persist(hardState: nil, entries: entries(4...5, term: 2), snapshot: nil)
        XCTAssertEqual(
            try store.load().entries,
            entries(1...2, term: 1) + entries(3...3, term: 1, tag: "again") + entries(4...5, term: 2))
    }

    /// Invariants of the log (consecutive indexes, non-decreasing terms, commit within the
    /// log) are refused before anything is written.
    func testRefusedPersistWritesNothing() throws {
        let store = try RaftLogStore(directory: directory.path)
        try store.persist(hardState: HardStateRecord(term: 2, vote: 1, commit: 2), entries: entries(1...4, term: 2), snapshot: nil)
        let before = try dump(store.database)
        assertRefused { try store.persist(hardState: nil, entries: self.entries(6...6, term: 2), snapshot: nil) }  // hole
        assertRefused {
            try store.persist(hardState: nil, entries: [EntryRecord(term: 2, index: 5), EntryRecord(term: 2, index: 7)], snapshot: nil)
        }
        assertRefused { try store.persist(hardState: nil, entries: self.entries(3...3, term: 1), snapshot: nil) }  // term drops
        assertRefused { try store.persist(hardState: HardStateRecord(term: 2, vote: 1, commit: 9), entries: [], snapshot: nil) }
        assertRefused {  // truncating below the stored commit without a new hard state
            try store.persist(hardState: HardStateRecord(term: 3, vote: 1, commit: 3), entries: self.entries(2...2, term: 3), snapshot: nil)
        }
        assertRefused { try store.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 0, term: 0)) }
        assertRefused { try store.setApplied(3, sync: true) }  // beyond commit 2
        assertRefused { try store.compact(upTo: 2, snapshot: self.snapshot(index: 2, term: 2)) }  // beyond applied 0
        XCTAssertEqual(try dump(store.database), before)
        XCTAssertEqual(store.lastIndex, 4)
    }

    // MARK: Snapshots

    /// Raft §7, InstallSnapshot rule 7 ("Discard the entire log"): a snapshot whose last
    /// entry conflicts with the stored log replaces all of it, including entries above the
    /// snapshot index (they belong to a branch the leader's log does not contain); entries
    /// that follow the snapshot in the same batch are stored after it.
    func testInstalledSnapshotDiscardsAConflictingLog() throws {
        let snap = snapshot(index: 5, term: 3)
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 2), entries: entries(1...8, term: 1), snapshot: nil)
            try store.persist(hardState: HardStateRecord(term: 3, vote: 0, commit: 5), entries: [], snapshot: snap)
            XCTAssertEqual(store.firstIndex, 6)
            XCTAssertEqual(store.lastIndex, 5)  // 6...8 (term 1) conflict with the snapshot's branch
            XCTAssertEqual(try store.load().entries, [])
            try store.persist(hardState: nil, entries: entries(6...6, term: 3), snapshot: snap)  // again, with a follower
            XCTAssertEqual(store.lastIndex, 6)
        }
        let store = try RaftLogStore(directory: directory.path)
        XCTAssertEqual(
            try store.load(),
            Contents(hardState: HardStateRecord(term: 3, vote: 0, commit: 5), snapshot: snap, entries: entries(6...6, term: 3)))
        XCTAssertEqual(try dump(store.database).keys.filter { $0.first == 0x65 }, [RaftLogStore.Layout.entryKey(6)])
    }

    /// Raft §7, InstallSnapshot rule 7 with a snapshot beyond the whole log: every entry goes.
    func testSnapshotBeyondTheLogDropsEveryEntry() throws {
        let store = try RaftLogStore(directory: directory.path)
        try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 1), entries: entries(1...3, term: 1), snapshot: nil)
        try store.persist(hardState: HardStateRecord(term: 2, vote: 0, commit: 10), entries: [], snapshot: snapshot(index: 10, term: 2))
        let state = try store.load()
        XCTAssertEqual(state.entries, [])
        XCTAssertEqual(state.snapshot?.index, 10)
        XCTAssertEqual(store.firstIndex, 11)
        XCTAssertEqual(store.lastIndex, 10)
    }

    /// Raft §7, InstallSnapshot rule 6 ("If existing log entry has same index and term as
    /// snapshot's last included entry, retain log entries following it"): covered entries go,
    /// the consistent suffix stays. This is also what makes re-persisting the same snapshot
    /// after a crash between persisting and installing it idempotent (`PersistentState`).
    func testSnapshotMatchingTheLogKeepsTheSuffix() throws {
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.persist(hardState: HardStateRecord(term: 2, vote: 1, commit: 4), entries: entries(1...8, term: 2), snapshot: nil)
            try store.persist(hardState: nil, entries: [], snapshot: snapshot(index: 4, term: 2))
            XCTAssertEqual(try store.load().entries, entries(5...8, term: 2))
        }
        // The crash came before the snapshot was installed: applied stays below it, and the
        // restarted core hands the same snapshot out again.
        let again = try RaftLogStore(directory: directory.path)
        let state = try again.load()
        XCTAssertEqual(state.applied, 0)
        XCTAssertEqual(state.entries, entries(5...8, term: 2))
        try again.persist(hardState: nil, entries: [], snapshot: state.snapshot)
        XCTAssertEqual(try again.load(), state)
        assertRefused { try again.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 3, term: 2)) }  // backwards
        assertRefused { try again.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: 4, term: 3)) }  // same index, other term
    }

    // MARK: Compaction and applied index

    /// Log compaction (Raft §7): entries up to the snapshot are dropped, later entries stay;
    /// the snapshot and applied index survive reopening.
    func testCompactionDropsOnlyCoveredEntries() throws {
        let snap = snapshot(index: 6, term: 1)
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 9), entries: entries(1...10, term: 1), snapshot: nil)
            try store.setApplied(7, sync: false)
            assertRefused { try store.compact(upTo: 8, snapshot: self.snapshot(index: 8, term: 1)) }  // not applied yet
            assertRefused { try store.compact(upTo: 6, snapshot: self.snapshot(index: 6, term: 2)) }  // wrong term
            assertRefused { try store.compact(upTo: 6, snapshot: self.snapshot(index: 5, term: 1)) }  // index mismatch
            try store.compact(upTo: 6, snapshot: snap)
            XCTAssertEqual(store.firstIndex, 7)
            XCTAssertEqual(store.lastIndex, 10)
            assertRefused { try store.compact(upTo: 6, snapshot: snap) }  // nothing left to compact there
        }
        let state = try RaftLogStore(directory: directory.path).load()
        XCTAssertEqual(state, Contents(hardState: HardStateRecord(term: 1, vote: 1, commit: 9), snapshot: snap, entries: entries(7...10, term: 1), applied: 7))
    }

    /// The applied index: never backwards, never beyond the commit (`PersistentState`:
    /// `applied <= hardState.commit`), and persisted with either durability.
    func testAppliedIndex() throws {
        do {
            let store = try RaftLogStore(directory: directory.path)
            XCTAssertEqual(try store.load().applied, 0)
            try store.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 3), entries: entries(1...5, term: 1), snapshot: nil)
            try store.setApplied(2, sync: false)
            try store.setApplied(3, sync: true)
            try store.setApplied(3, sync: true)  // idempotent
            assertRefused { try store.setApplied(2, sync: true) }
            assertRefused { try store.setApplied(4, sync: true) }
        }
        XCTAssertEqual(try RaftLogStore(directory: directory.path).load().applied, 3)
    }

    /// A damaged record is reported as corruption, not loaded as a wrong state.
    func testMalformedRecordsAreCorrupt() throws {
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.persist(hardState: nil, entries: entries(1...3, term: 1), snapshot: nil)
            try store.database.delete(RaftLogStore.Layout.entryKey(2), sync: true)  // a hole
        }
        XCTAssertThrowsError(try RaftLogStore(directory: directory.path).load()) { error in
            guard case StoreError.corrupt = error else { return XCTFail("\(error)") }
        }
        do {
            let store = try RaftLogStore(directory: directory.path)
            try store.database.put(RaftLogStore.Layout.hardStateKey, [1, 2, 3], sync: true)
        }
        XCTAssertThrowsError(try RaftLogStore(directory: directory.path)) { error in
            guard case StoreError.corrupt = error else { return XCTFail("\(error)") }
        }
    }

    // MARK: Fault injection (habit 16)

    /// Rule (the `Ready` contract: "a crash at any point loses at most what step 1 had not
    /// yet made durable"; LevelDB batches are atomic): a crash during persist `k` leaves the
    /// state after persist `k - 1` or after persist `k`, never part of `k`; a crash after it
    /// returned leaves the state after `k`.
    ///
    /// After each operation the store is closed and its directory copied: the "disk at that
    /// moment". Each reopen turns LevelDB's previous log into a table and starts a new log,
    /// so the copy's log holds exactly operation `k`'s batch. The crash *during* `k` is then
    /// simulated by cutting that log at many offsets (what a torn, unsynced write leaves):
    /// every cut short of the full log must load as state `k - 1`, the full log as state `k`.
    func testCrashBetweenAndDuringPersistsLeavesACompletedState() throws {
        let big = [UInt8](repeating: 0x5A, count: 70_000)  // spans several 32 KiB log blocks
        typealias Operation = (String, (RaftLogStore) throws -> Void)
        let operations: [Operation] = [
            ("hard state", { try $0.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 0), entries: [], snapshot: nil) }),
            ("append 1...5", { try $0.persist(hardState: nil, entries: self.entries(1...5, term: 1), snapshot: nil) }),
            ("big entry 6, commit 4", {
                try $0.persist(hardState: HardStateRecord(term: 1, vote: 1, commit: 4), entries: [EntryRecord(term: 1, index: 6, data: big)], snapshot: nil)
            }),
            ("applied 3", { try $0.setApplied(3, sync: true) }),
            ("truncate to 5 at term 2", {
                try $0.persist(hardState: HardStateRecord(term: 2, vote: 2, commit: 4), entries: self.entries(5...5, term: 2), snapshot: nil)
            }),
            ("compact to 3", { try $0.compact(upTo: 3, snapshot: self.snapshot(index: 3, term: 1)) }),
            ("append 6...9 with a big one", {
                try $0.persist(
                    hardState: HardStateRecord(term: 2, vote: 2, commit: 7),
                    entries: self.entries(6...8, term: 2) + [EntryRecord(term: 2, index: 9, data: big)], snapshot: nil)
            }),
            ("snapshot 12 from the leader", {
                try $0.persist(
                    hardState: HardStateRecord(term: 4, vote: 0, commit: 12), entries: self.entries(13...14, term: 4),
                    snapshot: self.snapshot(index: 12, term: 4, data: String(repeating: "s", count: 40_000)))
            }),
        ]

        var states: [Contents] = []
        do {
            let store = try RaftLogStore(directory: directory.path)
            states.append(try store.load())
        }
        var copies: [String] = []
        for (k, (name, operation)) in operations.enumerated() {
            do {
                let store = try RaftLogStore(directory: directory.path)
                try operation(store)
                states.append(try store.load())
            }  // closed here: no flush, LevelDB's files are as a crash would leave them
            let copy = directory.path + "/crash-\(k)"  // the LevelDB directory itself
            try FileManager.default.copyItem(atPath: directory.path + "/raft.ldb", toPath: copy)
            copies.append(copy)
            XCTAssertNotEqual(states[k + 1], states[k], "\(name) changed nothing")
        }

        for (k, copy) in copies.enumerated() {
            let name = operations[k].0
            let logs = try FileManager.default.contentsOfDirectory(atPath: copy).filter { $0.hasSuffix(".log") }
            XCTAssertEqual(logs.count, 1, "\(name): \(logs)")
            let log = copy + "/" + logs[0]
            let full = try Data(contentsOf: URL(fileURLWithPath: log))
            XCTAssertGreaterThan(full.count, 0, name)
            var cuts = Set([0, 1, 6, 7, full.count / 2, full.count - 1, full.count])
            var rng = SplitMix64(seed: UInt64(k))
            for _ in 0..<12 { cuts.insert(Int.random(in: 0...full.count, using: &rng)) }
            for cut in cuts.sorted() {
                let crashed = directory.path + "/cut-\(k)-\(cut)"
                try FileManager.default.createDirectory(atPath: crashed, withIntermediateDirectories: false)
                try FileManager.default.copyItem(atPath: copy, toPath: crashed + "/raft.ldb")
                try full.prefix(cut).write(to: URL(fileURLWithPath: crashed + "/raft.ldb/" + logs[0]))
                let loaded = try RaftLogStore(directory: crashed).load()
                let expected = cut == full.count ? states[k + 1] : states[k]
                XCTAssertEqual(loaded, expected, "\(name): log cut at \(cut) of \(full.count) bytes")
                try FileManager.default.removeItem(atPath: crashed)
            }
        }
    }

    // MARK: Property test

    /// The same rules, written as plainly as possible: the model the store is checked against.
    struct Model: Equatable {
        var hardState = HardStateRecord()
        var snapshot: SnapshotRecord?
        var log: [EntryRecord] = []  // consecutive, after the snapshot
        var applied: UInt64 = 0

        var snapshotIndex: UInt64 { snapshot?.index ?? 0 }
        var lastIndex: UInt64 { log.last?.index ?? snapshotIndex }
        var committed: UInt64 { max(hardState.commit, snapshotIndex) }

        func term(at index: UInt64) -> UInt64? {
            if index == snapshotIndex { return snapshot?.term ?? 0 }
            return log.first { $0.index == index }?.term
        }

        mutating func persist(hardState: HardStateRecord?, entries: [EntryRecord], snapshot: SnapshotRecord?) {
            if let snapshot {
                let index = snapshot.index
                if term(at: index) == snapshot.term {  // §7 rule 6
                    log.removeAll { $0.index <= index }
                } else {  // §7 rule 7
                    log = []
                }
                self.snapshot = snapshot
            }
            if let first = entries.first {  // §5.3
                log.removeAll { $0.index >= first.index }
                log += entries
            }
            if let hardState { self.hardState = hardState }
        }

        mutating func compact(_ snapshot: SnapshotRecord) {
            log.removeAll { $0.index <= snapshot.index }
            self.snapshot = snapshot
        }

        var state: Contents {
            Contents(hardState: hardState, snapshot: snapshot, entries: log, applied: applied)
        }
    }

    /// A random sequence of persists (new terms, appends, conflicting suffixes, leader
    /// snapshots matching or conflicting with the log, re-persisted snapshots, compactions,
    /// applied indexes, invalid calls) against `Model`, reopening at random points. Replay
    /// one seed by narrowing `seeds`.
    func testRandomPersistsMatchTheModel() throws {
        let seeds: [UInt64] = [1, 2, 3, 0xC0FFEE]
        for seed in seeds {
            try runModelCheck(seed: seed, operations: 300)
        }
    }

    private func runModelCheck(seed: UInt64, operations: Int) throws {
        var rng = SplitMix64(seed: seed)
        let path = directory.path + "/seed-\(seed)"
        var store: RaftLogStore! = try RaftLogStore(directory: path)
        var model = Model()
        var currentTerm: UInt64 = 1
        var counts: [String: Int] = [:]

        for step in 0..<operations {
            let context = "seed \(seed) step \(step)"
            let roll = Int.random(in: 0..<100, using: &rng)
            var refused = false
            func attempt(_ name: String, _ body: () throws -> Void) throws {
                counts[name, default: 0] += 1
                do {
                    try body()
                } catch StoreError.invalidArgument {
                    refused = true
                }
            }

            switch roll {
            case 0..<40:  // append, possibly truncating an uncommitted suffix, maybe a new term
                if Int.random(in: 0..<4, using: &rng) == 0 { currentTerm += 1 }
                let low = max(model.snapshotIndex, model.hardState.commit) + 1
                let first = UInt64.random(in: low...(model.lastIndex + 1), using: &rng)
                let count = UInt64.random(in: 1...5, using: &rng)
                let term = max(currentTerm, model.term(at: first - 1) ?? 0)
                currentTerm = term
                let new = entries(first...(first + count - 1), term: term, tag: "s\(step)-")
                let commit = UInt64.random(in: model.hardState.commit...(first + count - 1), using: &rng)
                let hard = Bool.random(using: &rng) ? HardStateRecord(term: term, vote: UInt64.random(in: 0...3, using: &rng), commit: commit) : nil
                try attempt(first <= model.lastIndex ? "truncate" : "append") {
                    try store.persist(hardState: hard, entries: new, snapshot: nil)
                }
                XCTAssertFalse(refused, context)
                model.persist(hardState: hard, entries: new, snapshot: nil)
            case 40..<50:  // a hard state alone
                if Bool.random(using: &rng) { currentTerm += 1 }
                let commit = UInt64.random(in: model.hardState.commit...model.lastIndex, using: &rng)
                let hard = HardStateRecord(term: currentTerm, vote: UInt64.random(in: 0...3, using: &rng), commit: commit)
                try attempt("hard state") { try store.persist(hardState: hard, entries: [], snapshot: nil) }
                XCTAssertFalse(refused, context)
                model.persist(hardState: hard, entries: [], snapshot: nil)
            case 50..<60:  // a snapshot from the leader (above the commit, as the core requires)
                let low = max(model.snapshotIndex, model.hardState.commit) + 1
                let index = UInt64.random(in: low...(model.lastIndex + 4), using: &rng)
                let matching = model.term(at: index)
                let term: UInt64
                if let matching, Bool.random(using: &rng) {
                    term = matching  // rule 6
                } else {
                    currentTerm += 1
                    term = currentTerm  // rule 7
                }
                currentTerm = max(currentTerm, term)
                let snap = snapshot(index: index, term: term, voters: [1, 2, UInt64(step % 5 + 3)], data: "s\(step)")
                var followers: [EntryRecord] = []
                if Bool.random(using: &rng) {
                    followers = entries((index + 1)...(index + UInt64.random(in: 1...3, using: &rng)), term: currentTerm, tag: "f\(step)-")
                }
                let hard = HardStateRecord(term: currentTerm, vote: 0, commit: index)
                try attempt(matching == term ? "snapshot (rule 6)" : "snapshot (rule 7)") {
                    try store.persist(hardState: hard, entries: followers, snapshot: snap)
                }
                XCTAssertFalse(refused, context)
                model.persist(hardState: hard, entries: followers, snapshot: snap)
            case 60..<64:  // the same snapshot persisted again (restart before installing it)
                guard let snap = model.snapshot else { continue }
                try attempt("snapshot again") { try store.persist(hardState: nil, entries: [], snapshot: snap) }
                XCTAssertFalse(refused, context)
                model.persist(hardState: nil, entries: [], snapshot: snap)
            case 64..<76:  // applied index
                let index = UInt64.random(in: model.applied...model.committed, using: &rng)
                try attempt("applied") { try store.setApplied(index, sync: Bool.random(using: &rng)) }
                XCTAssertFalse(refused, context)
                model.applied = index
            case 76..<84:  // compaction
                let high = min(model.applied, model.lastIndex)
                guard high > model.snapshotIndex else { continue }
                let index = UInt64.random(in: (model.snapshotIndex + 1)...high, using: &rng)
                let snap = snapshot(index: index, term: model.term(at: index)!, data: "c\(step)")
                try attempt("compact") { try store.compact(upTo: index, snapshot: snap) }
                XCTAssertFalse(refused, context)
                model.compact(snap)
            case 84..<92:  // an invalid call: refused, nothing changes
                let choice = Int.random(in: 0..<5, using: &rng)
                try attempt("invalid") {
                    switch choice {
                    case 0: try store.persist(hardState: nil, entries: self.entries((model.lastIndex + 2)...(model.lastIndex + 2), term: currentTerm), snapshot: nil)
                    case 1: try store.persist(hardState: HardStateRecord(term: currentTerm, vote: 0, commit: model.lastIndex + 1), entries: [], snapshot: nil)
                    case 2: try store.setApplied(model.committed + 1, sync: true)
                    case 3: try store.compact(upTo: model.applied + 1, snapshot: self.snapshot(index: model.applied + 1, term: currentTerm))
                    default:
                        guard model.snapshotIndex > 1 else { throw StoreError.invalidArgument("nothing to try") }
                        try store.persist(hardState: nil, entries: [], snapshot: self.snapshot(index: model.snapshotIndex - 1, term: 1))
                    }
                }
                XCTAssertTrue(refused, "\(context): invalid call \(choice) was accepted")
            default:  // close and reopen
                counts["reopen", default: 0] += 1
                store = nil  // closes the database, no flush
                store = try RaftLogStore(directory: path)
            }

            let loaded = try store.load()
            XCTAssertEqual(loaded, model.state, context)
            XCTAssertEqual(store.lastIndex, model.lastIndex, context)
            XCTAssertEqual(store.firstIndex, model.snapshotIndex + 1, context)
            if loaded != model.state { return }  // one divergence is enough to debug
        }
        store = nil
        let final = try RaftLogStore(directory: path).load()
        XCTAssertEqual(final, model.state, "seed \(seed) after the last reopen")
        // Every kind of operation was exercised (else the generator is broken).
        for name in ["append", "truncate", "hard state", "snapshot (rule 6)", "snapshot (rule 7)", "snapshot again", "applied", "compact", "invalid", "reopen"] {
            XCTAssertGreaterThan(counts[name, default: 0], 0, "seed \(seed): no \(name)")
        }
    }
}
