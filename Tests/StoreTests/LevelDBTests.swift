import Foundation
import XCTest

@testable import Store

/// Rules checked: LevelDB's documented contract as wrapped by `LevelDB` (include/leveldb/db.h:
/// Get returns NotFound for absent keys, Write applies a batch atomically, iterators see a
/// consistent snapshot in bytewise key order) and our half-open range convention.
final class LevelDBTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory(name)
    }

    override func tearDown() {
        directory.remove()
    }

    private var dbPath: String { directory.path + "/db" }

    /// Rule: a put is read back byte for byte; absent and deleted keys read as nil; an empty
    /// value is distinct from an absent key.
    func testRoundTrip() throws {
        let db = try LevelDB(path: dbPath)
        XCTAssertNil(try db.get(bytes("missing")))
        let binaryKey: [UInt8] = [0, 255, 1, 0]
        let binaryValue: [UInt8] = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try db.put(binaryKey, binaryValue, sync: true)
        try db.put(bytes("empty"), [], sync: false)
        XCTAssertEqual(try db.get(binaryKey), binaryValue)
        XCTAssertEqual(try db.get(bytes("empty")), [])
        try db.put(binaryKey, bytes("v2"), sync: false)
        XCTAssertEqual(try db.get(binaryKey), bytes("v2"))
        try db.delete(binaryKey, sync: true)
        XCTAssertNil(try db.get(binaryKey))
        try db.delete(bytes("never there"), sync: false)  // not an error
        XCTAssertNotNil(db.property("leveldb.stats"))
        XCTAssertNil(db.property("no.such.property"))
        XCTAssertEqual(LevelDB.version, "1.23")
    }

    /// Rule (db.h, Write): a batch is all or nothing and applies in order; after closing
    /// without any flush and reopening, every operation of the synced batch is present.
    func testBatchAtomicityAcrossReopen() throws {
        do {
            let db = try LevelDB(path: dbPath)
            try db.put(bytes("doomed"), bytes("x"), sync: false)
            let batch = WriteBatch()
            XCTAssertEqual(batch.count, 0)
            XCTAssertEqual(batch.byteSize, 12)
            for i in 0..<500 {
                batch.put(bytes(String(format: "k%04d", i)), bytes("value \(i)"))
            }
            batch.delete(bytes("doomed"))
            batch.put(bytes("k0007"), bytes("overwritten later in the same batch"))
            XCTAssertEqual(batch.count, 502)
            // 12-byte header; put = tag + varint len + key + varint len + value.
            XCTAssertGreaterThan(batch.byteSize, 12 + 500 * (1 + 1 + 5 + 1 + 7))
            try db.write(batch, sync: true)
        }  // closed here: no flush, no compaction requested
        let db = try LevelDB(path: dbPath, createIfMissing: false)
        XCTAssertNil(try db.get(bytes("doomed")))
        XCTAssertEqual(try db.get(bytes("k0007")), bytes("overwritten later in the same batch"))
        var count = 0
        try db.scan(prefix: bytes("k")) { _, _ in
            count += 1
            return true
        }
        XCTAssertEqual(count, 500)
        XCTAssertEqual(try db.get(bytes("k0499")), bytes("value 499"))
    }

    /// Rule: scan covers [from, to) in bytewise order, reversed on request, honours limit and
    /// the body's stop, and an empty or inverted range yields nothing.
    func testScanRangesReverseAndLimit() throws {
        let db = try LevelDB(path: dbPath)
        let batch = WriteBatch()
        for key in ["a", "b", "ba", "bb", "c", "d"] { batch.put(bytes(key), bytes(key.uppercased())) }
        batch.put([0xFF, 0xFF], bytes("top"))
        try db.write(batch, sync: false)

        func keys(
            from: String, to: String?, reverse: Bool = false, limit: Int = .max
        ) throws -> [String] {
            var out: [String] = []
            try db.scan(from: bytes(from), to: to.map(bytes), reverse: reverse, limit: limit) { k, v in
                XCTAssertEqual(v, k == [0xFF, 0xFF] ? bytes("top") : bytes(String(decoding: k, as: UTF8.self).uppercased()))
                out.append(k == [0xFF, 0xFF] ? "FFFF" : String(decoding: k, as: UTF8.self))
                return true
            }
            return out
        }
        XCTAssertEqual(try keys(from: "b", to: "c"), ["b", "ba", "bb"])  // "c" excluded
        XCTAssertEqual(try keys(from: "b", to: "c", reverse: true), ["bb", "ba", "b"])
        XCTAssertEqual(try keys(from: "", to: nil), ["a", "b", "ba", "bb", "c", "d", "FFFF"])
        XCTAssertEqual(try keys(from: "", to: nil, reverse: true, limit: 2), ["FFFF", "d"])
        XCTAssertEqual(try keys(from: "bz", to: nil, limit: 2), ["c", "d"])
        XCTAssertEqual(try keys(from: "a", to: "bz", reverse: true, limit: 10), ["bb", "ba", "b", "a"])
        XCTAssertEqual(try keys(from: "0", to: "a"), [])
        XCTAssertEqual(try keys(from: "c", to: "c"), [])
        XCTAssertEqual(try keys(from: "d", to: "a"), [])
        XCTAssertEqual(try keys(from: "a", to: "z", limit: 0), [])
        // reverse from beyond the last key
        XCTAssertEqual(try keys(from: "c", to: "zzz", reverse: true), ["d", "c"])

        var prefixed: [[UInt8]] = []
        try db.scan(prefix: bytes("b"), reverse: true) { k, _ in
            prefixed.append(k)
            return prefixed.count < 2  // the body stops the scan
        }
        XCTAssertEqual(prefixed, [bytes("bb"), bytes("ba")])

        XCTAssertEqual(LevelDB.prefixEnd(bytes("b")), bytes("c"))
        XCTAssertEqual(LevelDB.prefixEnd([0x61, 0xFF]), [0x62])
        XCTAssertNil(LevelDB.prefixEnd([0xFF, 0xFF]))
        XCTAssertNil(LevelDB.prefixEnd([]))
    }

    /// Rule (db.h, GetSnapshot): reads through a snapshot do not see later writes.
    func testSnapshotIsolation() throws {
        let db = try LevelDB(path: dbPath)
        try db.put(bytes("k"), bytes("old"), sync: false)
        let snapshot = db.snapshot()
        try db.put(bytes("k"), bytes("new"), sync: false)
        try db.put(bytes("k2"), bytes("added"), sync: false)
        XCTAssertEqual(try db.get(bytes("k"), snapshot: snapshot), bytes("old"))
        XCTAssertEqual(try db.get(bytes("k")), bytes("new"))
        var seen: [[UInt8]] = []
        try db.scan(from: [], snapshot: snapshot) { k, _ in
            seen.append(k)
            return true
        }
        XCTAssertEqual(seen, [bytes("k")])
    }

    /// Rule: LevelDB's error text reaches the caller (missing database without
    /// createIfMissing; a second opener is refused by the LOCK file).
    func testErrorsCarryLevelDBText() throws {
        XCTAssertThrowsError(try LevelDB(path: dbPath, createIfMissing: false)) { error in
            guard case .io(let text) = error as? StoreError else {
                return XCTFail("expected .io, got \(error)")
            }
            XCTAssertTrue(text.contains("does not exist"), text)
        }
        let db = try LevelDB(path: dbPath)
        XCTAssertThrowsError(try LevelDB(path: dbPath)) { error in
            guard case .io(let text) = error as? StoreError else {
                return XCTFail("expected .io, got \(error)")
            }
            XCTAssertTrue(text.lowercased().contains("lock"), text)
        }
        withExtendedLifetime(db) {}
    }

    /// Rule: approximateSize counts flushed tables, so it grows once data leaves the
    /// memtable; it never fails.
    func testApproximateSize() throws {
        let db = try LevelDB(path: dbPath, writeBufferBytes: 64 << 10)
        // Incompressible values (a seeded LCG), so Snappy cannot shrink the table away.
        var state: UInt64 = 42
        let batch = WriteBatch()
        for i in 0..<5000 {
            let value = (0..<200).map { _ -> UInt8 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
            batch.put(bytes(String(format: "key%06d", i)), value)
        }
        try db.write(batch, sync: false)
        // A second write makes LevelDB switch to a new memtable and flush the full one.
        try db.put(bytes("zz"), [1], sync: true)
        var size: UInt64 = 0
        for _ in 0..<100 where size == 0 {
            size = db.approximateSize(from: [], to: [0xFF])
            if size == 0 { Thread.sleep(forTimeInterval: 0.02) }
        }
        XCTAssertGreaterThan(size, 100_000)
        XCTAssertEqual(db.approximateSize(from: bytes("a"), to: bytes("b")), 0)
    }

}
