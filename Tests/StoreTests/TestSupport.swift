import Foundation
import GridBase
import GridProto
import XCTest

@testable import Store

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("storetests-\(safe)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Deterministic 32-byte "hashes" for fixtures (the store never hashes anything itself).
func fakeHash(_ tag: String, _ n: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: n &+ UInt64(truncatingIfNeeded: tag.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
    return (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
}

/// One fixture block with `txCount` transactions, extending `previousHash`.
struct FixtureBlock {
    var block: Block
    var bytes: [UInt8]
    var hash: [UInt8]
    var txIDs: [[UInt8]]
    var stateRoot: [UInt8]

    init(chainID: String, height: UInt64, previousHash: [UInt8], txCount: Int) {
        let stateRoot = fakeHash("root", height)
        var header = BlockHeader()
        header.chainId = chainID
        header.height = height
        header.previousHash = previousHash
        header.timestampMs = 1_764_000_000_000 + Int64(height) * 1000
        header.txRoot = fakeHash("txroot", height)
        header.stateRoot = stateRoot
        header.proposer = "node-1"
        header.txCount = UInt32(txCount)
        header.hashSuite = "sha256"
        var block = Block()
        block.header = header
        block.transactions = (0..<txCount).map { i in
            var tx = SignedTransaction()
            tx.payload = Array("payload \(height)/\(i)".utf8)
            tx.signature = fakeHash("sig", height * 1000 + UInt64(i))
            return tx
        }
        block.outcomes = (0..<txCount).map { _ in TxOutcome() }
        self.block = block
        self.bytes = block.serializedBytes()
        self.hash = fakeHash("block", height)
        self.txIDs = (0..<txCount).map { fakeHash("tx", height * 1000 + UInt64($0)) }
        self.stateRoot = stateRoot
    }

    func commit(to store: ChainStore, writes: [ChainStore.StateWrite]) throws {
        try store.commit(
            block: block, blockBytes: bytes, hash: hash, txIDs: txIDs, writes: writes,
            stateRoot: stateRoot)
    }
}

/// Every key/value pair in the database, for "nothing was written" comparisons.
func dump(_ database: LevelDB) throws -> [[UInt8]: [UInt8]] {
    var all: [[UInt8]: [UInt8]] = [:]
    try database.scan(from: []) { key, value in
        all[key] = value
        return true
    }
    return all
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
