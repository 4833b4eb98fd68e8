import Foundation
import GridProto
import Synchronization
import XCTest

@testable import Store

/// Rules checked (Docs/storage-format.md): a committed block and everything derived from it
/// are durable once `commit` returns and survive reopening; heights are contiguous from 0
/// (no gap, no fork) and a refused commit writes nothing; a store belongs to one chain; state
/// keys are NUL-free UTF-8; "s" is the newest "h" version; history lists newest first.
final class ChainStoreTests: XCTestCase {
    let chainID = "grid-test"
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(name)
    }

    override func tearDown() {
        directory.remove()
    }

    typealias Write = ChainStore.StateWrite

    /// Genesis plus blocks 1...3 with sets, overwrites, a delete and a re-set.
    private func buildChain(_ store: ChainStore) throws -> [FixtureBlock] {
        var blocks: [FixtureBlock] = []
        let writesPerBlock: [[Write]] = [
            [Write(key: "param/tariff", value: bytes("v0"), txIndex: 0)],
            [
                Write(key: "meter/A", value: bytes("a1"), txIndex: 0),
                Write(key: "meter/B", value: bytes("b1"), txIndex: 1),
                Write(key: "meter/A", value: bytes("a1'"), txIndex: 1),  // same key, later tx
            ],
            [
                Write(key: "meter/B", value: nil, txIndex: 0),  // delete
                Write(key: "电表/C", value: bytes("c2"), txIndex: 1),  // non-ASCII UTF-8 key
            ],
            [
                // Given out of tx order: the largest txIndex must become current.
                Write(key: "meter/A", value: bytes("a3-late"), txIndex: 2),
                Write(key: "meter/A", value: bytes("a3-early"), txIndex: 0),
                Write(key: "param/tariff", value: nil, txIndex: 1),
                Write(key: "param/tariff", value: bytes("v3"), txIndex: 2),  // delete then re-set
            ],
        ]
        var previous: [UInt8] = []
        for (height, writes) in writesPerBlock.enumerated() {
            let fixture = FixtureBlock(
                chainID: chainID, height: UInt64(height), previousHash: previous, txCount: height == 0 ? 1 : 3)
            try fixture.commit(to: store, writes: writes)
            XCTAssertEqual(store.head, ChainStore.Head(height: UInt64(height), hash: fixture.hash, stateRoot: fixture.stateRoot))
            blocks.append(fixture)
            previous = fixture.hash
        }
        return blocks
    }

    /// Rule: everything a returned commit wrote is there after the store object is dropped
    /// (no flush, no close call) and the directory reopened.
    func testGenesisAndThreeBlocksSurviveReopen() throws {
        var blocks: [FixtureBlock] = []
        do {
            let store = try ChainStore(directory: directory.path, chainID: chainID)
            XCTAssertNil(store.head)
            XCTAssertEqual(store.nextHeight, 0)
            blocks = try buildChain(store)
        }
        let store = try ChainStore(directory: directory.path, chainID: chainID)
        let last = try XCTUnwrap(blocks.last)
        XCTAssertEqual(store.head, ChainStore.Head(height: 3, hash: last.hash, stateRoot: last.stateRoot))
        XCTAssertEqual(store.nextHeight, 4)
        XCTAssertEqual(store.chainID, chainID)

        for fixture in blocks {
            let height = try XCTUnwrap(fixture.block.header?.height)
            XCTAssertEqual(try store.blockBytes(at: height), fixture.bytes)
            XCTAssertEqual(try store.block(at: height), fixture.block)
            XCTAssertEqual(try store.height(ofBlockHash: fixture.hash), height)
            for (index, id) in fixture.txIDs.enumerated() {
                let location = try XCTUnwrap(try store.txLocation(id))
                XCTAssertEqual(location.height, height)
                XCTAssertEqual(location.index, UInt32(index))
            }
        }
        XCTAssertNil(try store.blockBytes(at: 4))
        XCTAssertNil(try store.height(ofBlockHash: fakeHash("block", 99)))
        XCTAssertNil(try store.txLocation(fakeHash("tx", 99_999)))

        // Current state.
        let a = try XCTUnwrap(try store.state("meter/A"))
        XCTAssertEqual(a.value, bytes("a3-late"))
        XCTAssertEqual(a.height, 3)
        XCTAssertEqual(a.txIndex, 2)
        XCTAssertNil(try store.state("meter/B"))  // deleted
        XCTAssertNil(try store.state("never/written"))
        XCTAssertEqual(try store.state("电表/C")?.value, bytes("c2"))
        XCTAssertEqual(try store.state("param/tariff")?.value, bytes("v3"))

        // History, newest first, deletions as nil.
        let historyA = try store.history("meter/A", limit: 10)
        XCTAssertEqual(historyA.map { "\($0.height).\($0.txIndex)" }, ["3.2", "3.0", "1.1", "1.0"])
        XCTAssertEqual(historyA.map(\.value), [bytes("a3-late"), bytes("a3-early"), bytes("a1'"), bytes("a1")])
        let historyB = try store.history("meter/B", limit: 10)
        XCTAssertEqual(historyB.map { "\($0.height).\($0.txIndex)" }, ["2.0", "1.1"])
        XCTAssertEqual(historyB.map(\.value), [nil, bytes("b1")])
        let tariff = try store.history("param/tariff", limit: 2)
        XCTAssertEqual(tariff.map(\.value), [bytes("v3"), nil])  // limit honoured
        XCTAssertEqual(try store.history("meter/A", limit: 0).count, 0)
        XCTAssertEqual(try store.history("meter", limit: 10).count, 0)  // a prefix of a key is not the key

        // Range of blocks [1, 3).
        var seen: [UInt64] = []
        try store.blocks(from: 1, to: 3) { height, bytes in
            XCTAssertEqual(bytes, blocks[Int(height)].bytes)
            seen.append(height)
            return true
        }
        XCTAssertEqual(seen, [1, 2])
        seen = []
        try store.blocks(from: 0, to: .max) { height, _ in
            seen.append(height)
            return height < 1
        }
        XCTAssertEqual(seen, [0, 1])

        // Whole-index walks (for the verifier), through one snapshot.
        let snapshot = store.database.snapshot()
        var hashes: [UInt64] = []
        try store.allBlockHashIndex(snapshot: snapshot) { _, height in hashes.append(height) }
        XCTAssertEqual(hashes.sorted(), [0, 1, 2, 3])
        var txCount = 0
        try store.allTxIndex(snapshot: snapshot) { id, height, index in
            XCTAssertEqual(blocks[Int(height)].txIDs[Int(index)], id)
            txCount += 1
        }
        XCTAssertEqual(txCount, 1 + 3 * 3)
        var state: [String: String] = [:]
        try store.allState(snapshot: snapshot) { key, height, index, value in
            state[key] = "\(height).\(index)=" + (value.map { String(decoding: $0, as: UTF8.self) } ?? "deleted")
        }
        XCTAssertEqual(state, [
            "meter/A": "3.2=a3-late", "meter/B": "2.0=deleted", "param/tariff": "3.2=v3", "电表/C": "2.1=c2",
        ])
        // Invariant: each "s" entry equals its key's newest "h" entry.
        var newestHistory: [String: String] = [:]
        var historyCount = 0
        try store.allHistory(snapshot: snapshot) { key, height, index, value in
            newestHistory[key] = "\(height).\(index)=" + (value.map { String(decoding: $0, as: UTF8.self) } ?? "deleted")
            historyCount += 1
        }
        XCTAssertEqual(newestHistory, state)
        XCTAssertEqual(historyCount, 1 + 3 + 2 + 4)
        XCTAssertGreaterThanOrEqual(store.approximateBytes, 0)
    }

    /// Rule: no gap and no fork. A refused commit writes nothing and leaves the head alone.
    func testGapAndForkRefusedWithoutWriting() throws {
        let store = try ChainStore(directory: directory.path, chainID: chainID)
        // Gap before genesis: the first block must be 0.
        let early = FixtureBlock(chainID: chainID, height: 1, previousHash: [], txCount: 0)
        XCTAssertThrowsError(try early.commit(to: store, writes: [])) {
            XCTAssertEqual($0 as? StoreError, .gap(expected: 0, got: 1))
        }
        XCTAssertTrue(try dump(store.database).isEmpty)

        let blocks = try buildChain(store)
        let before = try dump(store.database)
        let head = store.head

        let gap = FixtureBlock(chainID: chainID, height: 5, previousHash: blocks[3].hash, txCount: 1)
        XCTAssertThrowsError(try gap.commit(to: store, writes: [Write(key: "x", value: [1], txIndex: 0)])) {
            XCTAssertEqual($0 as? StoreError, .gap(expected: 4, got: 5))
        }
        // A competing block 2 (different hash and content) is a fork.
        var fork = FixtureBlock(chainID: chainID, height: 2, previousHash: blocks[1].hash, txCount: 1)
        fork.hash = fakeHash("other", 2)
        XCTAssertThrowsError(try fork.commit(to: store, writes: [Write(key: "x", value: [1], txIndex: 0)])) {
            XCTAssertEqual($0 as? StoreError, .fork(height: 2, head: 3))
        }
        // Re-committing the head itself is a fork too.
        XCTAssertThrowsError(try blocks[3].commit(to: store, writes: [])) {
            XCTAssertEqual($0 as? StoreError, .fork(height: 3, head: 3))
        }
        // Right height, but not extending the head.
        let stray = FixtureBlock(chainID: chainID, height: 4, previousHash: blocks[2].hash, txCount: 0)
        XCTAssertThrowsError(try stray.commit(to: store, writes: [])) {
            guard case .invalidArgument = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        // Right height, repeating a transaction already on the chain.
        var replay = FixtureBlock(chainID: chainID, height: 4, previousHash: blocks[3].hash, txCount: 1)
        replay.txIDs = [blocks[2].txIDs[0]]
        XCTAssertThrowsError(try replay.commit(to: store, writes: [])) {
            guard case .invalidArgument = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        // Wrong number of transaction ids.
        var short = FixtureBlock(chainID: chainID, height: 4, previousHash: blocks[3].hash, txCount: 2)
        short.txIDs.removeLast()
        XCTAssertThrowsError(try short.commit(to: store, writes: [])) {
            guard case .invalidArgument = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(try dump(store.database), before)
        XCTAssertEqual(store.head, head)

        // The next correct block is still accepted.
        let next = FixtureBlock(chainID: chainID, height: 4, previousHash: blocks[3].hash, txCount: 1)
        try next.commit(to: store, writes: [])
        XCTAssertEqual(store.head?.height, 4)
    }

    /// Rule: a store belongs to one chain: the id is recorded with genesis and checked on
    /// every open; a block for another chain is refused.
    func testWrongChainIDRefused() throws {
        do {
            let store = try ChainStore(directory: directory.path, chainID: chainID)
            let alien = FixtureBlock(chainID: "other-chain", height: 0, previousHash: [], txCount: 0)
            XCTAssertThrowsError(try alien.commit(to: store, writes: [])) {
                guard case .invalidArgument = $0 as? StoreError else { return XCTFail("\($0)") }
            }
            XCTAssertNil(store.head)
            _ = try buildChain(store)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: "other-chain")) {
            XCTAssertEqual($0 as? StoreError, .chainMismatch(stored: chainID, requested: "other-chain"))
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: "")) {
            guard case .invalidArgument = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(try ChainStore(directory: directory.path, chainID: chainID).head?.height, 3)
    }

    /// Rule: `forEachState` visits the live entries under a prefix in key byte order
    /// (deleted keys skipped) and stops when its body returns false.
    func testForEachStateSkipsDeletedAndStops() throws {
        let store = try ChainStore(directory: directory.path, chainID: chainID)
        _ = try buildChain(store)
        var meters: [(String, [UInt8])] = []
        try store.forEachState(prefix: "meter/") { meters.append(($0, $1)); return true }
        XCTAssertEqual(meters.map(\.0), ["meter/A"], "meter/B was deleted")
        XCTAssertEqual(meters.first?.1, bytes("a3-late"))
        var all: [String] = []
        try store.forEachState(prefix: "") { key, _ in all.append(key); return true }
        XCTAssertEqual(all, ["meter/A", "param/tariff", "电表/C"])
        var first: [String] = []
        try store.forEachState(prefix: "") { key, _ in first.append(key); return false }
        XCTAssertEqual(first, ["meter/A"])
    }

    /// Rule: a store records its chain format with genesis; one written in another format
    /// (or before the record existed: format 1) is refused at open, since its blocks would
    /// re-execute to other state roots.
    func testOtherChainFormatRefused() throws {
        do {
            let store = try ChainStore(directory: directory.path, chainID: chainID)
            _ = try buildChain(store)
            XCTAssertEqual(try store.database.get(Array("mformat".utf8)), Array(String(ChainStore.format).utf8))
            try store.database.delete(Array("mformat".utf8), sync: true)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: chainID)) {
            XCTAssertEqual($0 as? StoreError, .formatMismatch(stored: 1, supported: ChainStore.format))
            XCTAssertTrue("\($0)".contains("fresh data directory"), "\($0)")
        }
        // Format 2 (before issue 10's billing rules: lines rounded per reading, TOU meters
        // billed by the total register) is refused the same way.
        do {
            let raw = try LevelDB(path: directory.path + "/chain.ldb")
            try raw.put(Array("mformat".utf8), Array("2".utf8), sync: true)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: chainID)) {
            XCTAssertEqual($0 as? StoreError, .formatMismatch(stored: 2, supported: ChainStore.format))
            XCTAssertTrue("\($0)".contains("format 2"), "\($0)")
        }
        // Format 3 (before the reconciliation records and line loss that blocks write as they
        // execute, issues 13 and 14) too.
        do {
            let raw = try LevelDB(path: directory.path + "/chain.ldb")
            try raw.put(Array("mformat".utf8), Array("3".utf8), sync: true)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: chainID)) {
            XCTAssertEqual($0 as? StoreError, .formatMismatch(stored: 3, supported: ChainStore.format))
        }
        do {
            let raw = try LevelDB(path: directory.path + "/chain.ldb")
            try raw.put(Array("mformat".utf8), Array(String(ChainStore.format).utf8), sync: true)
        }
        XCTAssertEqual(try ChainStore(directory: directory.path, chainID: chainID).head?.height, 3)
    }

    /// Rule: state keys are non-empty UTF-8 without NUL (NUL separates key and version in
    /// "h" keys). A commit with such a key writes nothing; a read with one is refused.
    func testNULInKeyRefused() throws {
        let store = try ChainStore(directory: directory.path, chainID: chainID)
        let genesis = FixtureBlock(chainID: chainID, height: 0, previousHash: [], txCount: 1)
        for bad in ["meter\u{0}A", "", "\u{0}"] {
            XCTAssertThrowsError(
                try genesis.commit(to: store, writes: [
                    Write(key: "fine", value: [1], txIndex: 0), Write(key: bad, value: [2], txIndex: 0),
                ])
            ) {
                guard case .invalidKey = $0 as? StoreError else { return XCTFail("\($0)") }
            }
            XCTAssertThrowsError(try store.state(bad))
            XCTAssertThrowsError(try store.history(bad, limit: 1))
        }
        XCTAssertTrue(try dump(store.database).isEmpty)
        XCTAssertNil(store.head)
    }

    /// Rule: tampered bytes are reported as corruption, never returned as data.
    func testTamperedValuesReportCorruption() throws {
        do {
            let store = try ChainStore(directory: directory.path, chainID: chainID)
            _ = try buildChain(store)
            let db = store.database
            try db.put(ChainStore.Layout.blockKey(1), [0xFF, 0xFF, 0xFF], sync: true)
            XCTAssertThrowsError(try store.block(at: 1)) {
                guard case .corrupt = $0 as? StoreError else { return XCTFail("\($0)") }
            }
            try db.put(ChainStore.Layout.stateKey(bytes("meter/A")), [0, 0, 1], sync: true)
            XCTAssertThrowsError(try store.state("meter/A")) {
                guard case .corrupt = $0 as? StoreError else { return XCTFail("\($0)") }
            }
            try db.put(ChainStore.Layout.txKey(fakeHash("tx", 1000)), [1, 2], sync: true)
            XCTAssertThrowsError(try store.allTxIndex { _, _, _ in }) {
                guard case .corrupt = $0 as? StoreError else { return XCTFail("\($0)") }
            }
            // A block above the head, as if written outside commit.
            try db.put(ChainStore.Layout.blockKey(7), [], sync: true)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: chainID)) {
            guard case .corrupt(let text) = $0 as? StoreError else { return XCTFail("\($0)") }
            XCTAssertTrue(text.contains("block 7"), text)
        }
        do {
            let db = try LevelDB(path: directory.path + "/chain.ldb")
            try db.delete(ChainStore.Layout.blockKey(7), sync: true)
            try db.put(ChainStore.Layout.headKey, [1, 2, 3], sync: true)
        }
        XCTAssertThrowsError(try ChainStore(directory: directory.path, chainID: chainID)) {
            guard case .corrupt = $0 as? StoreError else { return XCTFail("\($0)") }
        }
    }

    /// Rule: readers may run concurrently with commits and never see a torn block: whenever
    /// the cached head says N, block N and its state are readable.
    func testConcurrentReadersSeeWholeBlocks() throws {
        let store = try ChainStore(directory: directory.path, chainID: chainID)
        let genesis = FixtureBlock(chainID: chainID, height: 0, previousHash: [], txCount: 0)
        try genesis.commit(to: store, writes: [Write(key: "counter", value: [0], txIndex: 0)])
        let total: UInt64 = 60
        let failures = Mutex(0)
        let checks = Mutex(0)
        let done = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        let readers = 2
        // Dedicated threads (not a pool that could starve the committer on 2 cores).
        for _ in 0..<readers {
            Thread {
                while !done.load(ordering: .acquiring) {
                    guard let head = store.head else { continue }
                    let ok = (try? store.blockBytes(at: head.height)) != nil
                        && ((try? store.state("counter"))??.height ?? 0) >= head.height
                    if !ok { failures.withLock { $0 += 1 } }
                    checks.withLock { $0 += 1 }
                }
                finished.signal()
            }.start()
        }
        var previous = genesis.hash
        for height in 1...total {
            let fixture = FixtureBlock(chainID: chainID, height: height, previousHash: previous, txCount: 1)
            try fixture.commit(to: store, writes: [Write(key: "counter", value: [UInt8(height)], txIndex: 0)])
            previous = fixture.hash
        }
        done.store(true, ordering: .releasing)
        for _ in 0..<readers { finished.wait() }
        XCTAssertGreaterThan(checks.withLock { $0 }, 0)
        XCTAssertEqual(store.head?.height, total)
        XCTAssertEqual(failures.withLock { $0 }, 0)
    }
}
