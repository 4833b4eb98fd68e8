import Consensus
import Foundation
import Store
import XCTest

@testable import Node

/// Rules checked (issue 12: "Store keeps byte records only"; Docs/storage-format.md, "Raft
/// log"): the Raft shell's translation of the core's types to the store's records is
/// lossless, and the bytes on disk are exactly those of the layout, so data directories
/// written before the translation moved open unchanged.
final class RaftLogRecordsTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "raft-log-records-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }
    private func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }

    /// A log written record by record in the layout's grammar (the bytes every earlier
    /// version wrote: "e" index -> term kind data; "h" -> term vote commit; "s" -> index
    /// term voters learners data; "a" -> applied) loads as the same core state.
    func testALogInTheStoredLayoutLoadsAsTheCoreState() throws {
        do {
            let database = try RaftLogStore(directory: directory).database
            try database.put([0x73], u64(4) + u64(2) + u32(3) + u64(1) + u64(2) + u64(3) + u32(1) + u64(9) + Array("h4".utf8), sync: true)
            try database.put([0x65] + u64(5), u64(3) + [0x00] + Array("block".utf8), sync: true)
            try database.put([0x65] + u64(6), u64(3) + [0x01] + ConfChange.promote(9).encoded, sync: true)
            try database.put([0x65] + u64(7), u64(3) + [0x00], sync: true)
            try database.put([0x68], u64(3) + u64(2) + u64(6), sync: true)
            try database.put([0x61], u64(5), sync: true)
        }
        let state = try LevelDBRaftStorage(directory: directory).load()
        XCTAssertEqual(
            state,
            PersistentState(
                hardState: HardState(term: 3, vote: 2, commit: 6),
                snapshot: Snapshot(
                    metadata: .init(index: 4, term: 2, confState: ConfState(voters: [1, 2, 3], learners: [9])), data: Array("h4".utf8)),
                entries: [
                    Entry(term: 3, index: 5, data: Array("block".utf8)),
                    Entry(term: 3, index: 6, kind: .configChange, data: ConfChange.promote(9).encoded),
                    Entry(term: 3, index: 7),
                ],
                applied: 5))
    }

    /// The other way: the core's values persisted through the shell give those bytes.
    func testTheCoreStateIsWrittenInTheStoredLayout() throws {
        let storage = try LevelDBRaftStorage(directory: directory)
        try storage.persist(
            hardState: HardState(term: 2, vote: 7, commit: 1),
            entries: [Entry(term: 2, index: 1, kind: .configChange, data: [0xAB]), Entry(term: 2, index: 2, data: [0xCD])],
            snapshot: nil)
        try storage.setApplied(1, sync: true)
        try storage.compact(upTo: 1, snapshot: Snapshot(metadata: .init(index: 1, term: 2, confState: ConfState(voters: [6, 5])), data: [0x78]))
        let database = storage.store.database
        XCTAssertNil(try database.get([0x65] + u64(1)))
        XCTAssertEqual(try database.get([0x65] + u64(2)), u64(2) + [0x00, 0xCD])
        XCTAssertEqual(try database.get([0x68]), u64(2) + u64(7) + u64(1))
        XCTAssertEqual(try database.get([0x61]), u64(1))
        XCTAssertEqual(try database.get([0x73]), u64(1) + u64(2) + u32(2) + u64(5) + u64(6) + u32(0) + [0x78])
    }

    /// The bootstrap state every founding member persists (`PersistentState.bootstrap`)
    /// comes back unchanged, members sorted as `ConfState` keeps them.
    func testBootstrapStateRoundTrips() throws {
        let boot = PersistentState.bootstrap(voters: [3, 1, 2])
        try LevelDBRaftStorage(directory: directory).persist(hardState: boot.hardState, entries: boot.entries, snapshot: boot.snapshot)
        XCTAssertEqual(try LevelDBRaftStorage(directory: directory).load(), boot)
    }

    /// An entry kind the core does not know is corruption, not a guess.
    func testAnUnknownEntryKindIsCorrupt() throws {
        XCTAssertThrowsError(try Entry(record: RaftLogStore.EntryRecord(term: 1, index: 1, kind: 7))) { error in
            guard case StoreError.corrupt = error else { return XCTFail("\(error)") }
        }
    }
}
