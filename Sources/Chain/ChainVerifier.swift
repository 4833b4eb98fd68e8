import ChainHashing
import Foundation
import GridBase
import GridProto
import GridCrypto
public import Store

/// `gridnode verify`: recomputes every hash and index of a stopped node's chain from
/// genesis and reports the first inconsistency.
///
/// Checks, block by block: the header's height and chain, the previous-hash link, the
/// transaction ids and Merkle root, a full re-execution of every transaction against a
/// replayed world state (the state root and every outcome must match), the block-hash and
/// transaction indexes; then that the stored world state, its history and the head record
/// equal the replay. Memory stays bounded: the replayed state and the expected indexes go
/// to a scratch LevelDB (`<data dir>/verify-scratch/<chain id>`, removed afterwards), and
/// the stored indexes are compared against it entry by entry.
public enum ChainVerifier {
    public struct Report: Sendable {
        public var chainID = ""
        public var blocks: UInt64 = 0
        public var transactions = 0
        public var stateKeys = 0
        public var historyEntries = 0
        /// nil when the chain is consistent.
        public var firstInconsistency: String?
    }

    /// The chains stored in a node's data directory (`<data dir>/chains/<id>`), sorted.
    public static func chains(in dataDirectory: String) -> [String] {
        let root = dataDirectory + "/chains"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        // Chains set aside by `gridnode rebuild` (`<id>.broken-<time>`) are not the node's.
        return names.filter { !$0.contains(".broken-") && FileManager.default.fileExists(atPath: root + "/" + $0 + "/chain.ldb") }.sorted()
    }

    /// Verifies one chain of a node's data directory; `chainID` may be omitted when the
    /// directory holds exactly one chain.
    /// - Parameter orderingLog: the check of the chain's ordering log, run once the chain
    ///   itself is consistent (the node passes its Raft log check, `RaftLogCheck`): given the
    ///   chain's directory, its store and id, nil when the log is applicable, else what is wrong.
    /// - Parameter progress: called with (height verified, head height) now and then.
    public static func verify(
        dataDirectory: String, chainID: String? = nil,
        orderingLog: (_ chainDirectory: String, _ store: ChainStore, _ chainID: String) -> String?,
        progress: (UInt64, UInt64) -> Void = { _, _ in }
    ) throws -> Report {
        let stored = chains(in: dataDirectory)
        let id: String
        if let chainID {
            id = chainID
        } else {
            guard stored.count == 1 else {
                throw ConfigurationError(stored.isEmpty
                    ? "no chain store in \(dataDirectory)/chains"
                    : "\(dataDirectory) holds chains \(stored.joined(separator: ", ")): name one")
            }
            id = stored[0]
        }
        let directory = ChainDirectory.path(dataDirectory: dataDirectory, chainID: id)
        guard FileManager.default.fileExists(atPath: directory + "/chain.ldb") else {
            throw ConfigurationError("no chain store in \(directory)")
        }
        let chainID: String
        do {
            let raw = try LevelDB(path: directory + "/chain.ldb", createIfMissing: false)
            guard let bytes = try raw.get(Array("mchain".utf8)) else { throw ConfigurationError("\(directory) has no chain id record") }
            chainID = String(decoding: bytes, as: UTF8.self)
        }
        let store = try ChainStore(directory: directory, chainID: chainID)
        let scratchRoot = dataDirectory + "/verify-scratch"
        let scratchPath = scratchRoot + "/" + chainID
        func removeScratch() {
            try? LevelDB.destroy(path: scratchPath)
            try? FileManager.default.removeItem(atPath: scratchPath)
            if (try? FileManager.default.contentsOfDirectory(atPath: scratchRoot))?.isEmpty == true {
                try? FileManager.default.removeItem(atPath: scratchRoot)
            }
        }
        // A verify that was killed left its scratch store behind: it must go, or the
        // replay would start from stale entries.
        removeScratch()
        guard !FileManager.default.fileExists(atPath: scratchPath) else {
            throw ConfigurationError("cannot remove the old verify scratch store \(scratchPath)")
        }
        try FileManager.default.createDirectory(atPath: scratchRoot, withIntermediateDirectories: true)
        let replay: ReplayState
        do {
            replay = try ReplayState(path: scratchPath)
        } catch {
            removeScratch()
            throw error
        }
        defer {
            replay.close()
            removeScratch()
        }
        var report = try verify(store: store, chainID: chainID, replay: replay, progress: progress)
        if report.firstInconsistency == nil, let problem = orderingLog(directory, store, chainID) {
            report.firstInconsistency = "raft log: \(problem)"
        }
        return report
    }

    private static func verify(store: ChainStore, chainID: String, replay: ReplayState, progress: (UInt64, UInt64) -> Void) throws -> Report {
        var report = Report()
        report.chainID = chainID
        func fail(_ message: String) -> Report {
            var r = report
            r.firstInconsistency = message
            return r
        }
        guard let head = store.head else { return fail("store has no head record") }

        guard let genesis = try store.block(at: 0)?.header, let hashing = ChainHashing.of(genesis) else {
            return fail("genesis block is missing or names an unknown hash suite")
        }
        var previousHash: [UInt8] = []
        var previousTimestampMs = Int64.min
        var stateRoot = hashing.genesisStateRoot(chainID: chainID)
        for height in 0...head.height {
            if height % 64 == 0 { progress(height, head.height) }
            guard let bytes = try store.blockBytes(at: height) else { return fail("block \(height) is missing") }
            guard let block = try? Block(serializedBytes: bytes), let header = block.header else {
                return fail("block \(height) does not decode")
            }
            guard header.height == height else { return fail("block stored at \(height) says height \(header.height)") }
            guard header.chainId == chainID else { return fail("block \(height) is for chain '\(header.chainId)'") }
            guard header.previousHash == previousHash else { return fail("block \(height): previous hash does not match block \(height &- 1)") }
            guard header.timestampMs >= previousTimestampMs else { return fail("block \(height): timestamp is before block \(height &- 1)'s") }
            previousTimestampMs = header.timestampMs
            guard block.transactions.count == Int(header.txCount), block.outcomes.count == block.transactions.count else {
                return fail("block \(height): \(block.transactions.count) transactions, \(block.outcomes.count) outcomes, header says \(header.txCount)")
            }
            let ids = block.transactions.map { Digest.sha256($0.payload) }
            guard hashing.txRoot(ids) == header.txRoot else { return fail("block \(height): transaction root does not match its transactions") }
            let hash = hashing.headerHash(header)
            if height == 0 {
                guard header.stateRoot == stateRoot else { return fail("genesis state root is not the chain's") }
            } else {
                var payloads: [TxPayload] = []
                for (i, tx) in block.transactions.enumerated() {
                    guard let payload = try? TxPayload(serializedBytes: tx.payload) else {
                        return fail("block \(height) transaction \(i): payload does not decode")
                    }
                    payloads.append(payload)
                }
                let context = ExecutionContext(chainID: chainID, height: height, timestampMs: header.timestampMs)
                let (writes, outcomes) = try BlockExecutor.execute(payloads, context: context, state: replay)
                guard outcomes == block.outcomes else { return fail("block \(height): re-executed outcomes differ from the stored ones") }
                guard hashing.outcomesRoot(block.outcomes) == header.outcomesRoot else { return fail("block \(height): outcomes root does not match its outcomes") }
                stateRoot = hashing.stateRoot(previous: stateRoot, writes: writes, outcomes: outcomes)
                guard stateRoot == header.stateRoot else { return fail("block \(height): state root differs from re-execution") }
                try replay.stage(writes, height: height)
            }
            replay.stageBlock(hash: hash, height: height)
            for (i, id) in ids.enumerated() {
                guard try !replay.stageTransaction(id, height: height, index: UInt32(i)) else {
                    return fail("block \(height): transaction \(id.hex) appears twice on the chain")
                }
            }
            try replay.commitStaged()
            report.transactions += ids.count
            report.blocks = height + 1
            previousHash = hash
        }
        progress(head.height, head.height)
        guard head.hash == previousHash, head.stateRoot == stateRoot else { return fail("head record does not match block \(head.height)") }

        var inconsistency: String?
        var seen: UInt64 = 0
        try store.allBlockHashIndex { hash, height in
            seen += 1
            if inconsistency == nil, try replay.blockHeight(hash) != height { inconsistency = "block-hash index entry \(hash.hex) → \(height) is wrong" }
        }
        if inconsistency == nil, seen != replay.counts.blocks { inconsistency = "block-hash index has \(seen) entries, expected \(replay.counts.blocks)" }
        seen = 0
        try store.allTxIndex { id, height, index in
            seen += 1
            if inconsistency == nil, let e = try replay.transaction(id), e == (height, index) {} else if inconsistency == nil {
                inconsistency = "transaction index entry \(id.hex) → (\(height), \(index)) is wrong"
            }
        }
        if inconsistency == nil, seen != replay.counts.transactions { inconsistency = "transaction index has \(seen) entries, expected \(replay.counts.transactions)" }
        seen = 0
        try store.allState { key, height, index, value in
            seen += 1
            guard inconsistency == nil else { return }
            guard let last = try replay.lastWrite(key), last.height == height, last.index == index, last.value == value else {
                inconsistency = "world state of '\(key)' differs from re-execution"
                return
            }
        }
        if inconsistency == nil, seen != replay.counts.keys { inconsistency = "world state has \(seen) keys, re-execution has \(replay.counts.keys)" }
        report.stateKeys = Int(seen)
        var historyCount: UInt64 = 0
        try store.allHistory { key, height, index, value in
            historyCount += 1
            guard inconsistency == nil else { return }
            guard let version = try replay.version(key, height: height, index: index), version == value else {
                inconsistency = "history of '\(key)' at (\(height), \(index)) differs from re-execution"
                return
            }
        }
        if inconsistency == nil, historyCount != replay.counts.writes { inconsistency = "history has \(historyCount) entries, expected \(replay.counts.writes)" }
        report.historyEntries = Int(historyCount)
        report.firstInconsistency = inconsistency
        return report
    }
}

/// The world state rebuilt by replaying blocks, and what the store's indexes must hold, in
/// a scratch LevelDB, so memory stays bounded however long the chain:
/// ```
/// "s" key                                   → u64 height, u32 index, u8 present, value  (last write)
/// "h" u32 len(key) key u64 height u32 index → u8 present, value                        (every write)
/// "t" tx-id                                 → u64 height, u32 index
/// "b" block-hash                            → u64 height
/// ```
/// A block's entries are staged and written together after the block executed, so reads
/// during its execution see the state as of the previous block.
package final class ReplayState: ChainStateReader {
    package struct Counts {
        package var keys: UInt64 = 0
        package var writes: UInt64 = 0
        package var transactions: UInt64 = 0
        package var blocks: UInt64 = 0
    }

    private var database: LevelDB?
    private let batch = WriteBatch()
    /// Keys and transaction ids of the staged block (not yet in the scratch store).
    private var stagedKeys: Set<String> = []
    private var stagedTransactions: Set<[UInt8]> = []
    private(set) var counts = Counts()

    package init(path: String) throws {
        database = try LevelDB(path: path, createIfMissing: true, cacheBytes: 8 << 20, writeBufferBytes: 4 << 20)
    }

    /// Closes the scratch store (so it can be destroyed).
    package func close() { database = nil }

    private func db() throws -> LevelDB {
        guard let database else { throw StoreError.corrupt("verify scratch store is closed") }
        return database
    }

    package func stage(_ writes: [StateWriteRecord], height: UInt64) throws {
        for w in writes {
            let stateKey = Self.stateKey(w.key)
            if !stagedKeys.contains(w.key), try db().get(stateKey) == nil { counts.keys += 1 }
            stagedKeys.insert(w.key)
            batch.put(stateKey, Self.version(height: height, index: w.txIndex) + Self.presence(w.value))
            batch.put(Self.historyKey(w.key, height: height, index: w.txIndex), Self.presence(w.value))
            counts.writes += 1
        }
    }

    package func stageBlock(hash: [UInt8], height: UInt64) {
        batch.put([UInt8(ascii: "b")] + hash, BigEndianWriter.bytes(of: height))
        counts.blocks += 1
    }

    /// Stages a transaction's location; true (nothing staged) when the id is already on the chain.
    package func stageTransaction(_ id: [UInt8], height: UInt64, index: UInt32) throws -> Bool {
        if stagedTransactions.contains(id) { return true }
        if try db().get([UInt8(ascii: "t")] + id) != nil { return true }
        stagedTransactions.insert(id)
        batch.put([UInt8(ascii: "t")] + id, Self.version(height: height, index: index))
        counts.transactions += 1
        return false
    }

    package func commitStaged() throws {
        try db().write(batch, sync: false)
        batch.clear()
        stagedKeys.removeAll(keepingCapacity: true)
        stagedTransactions.removeAll(keepingCapacity: true)
    }

    package func blockHeight(_ hash: [UInt8]) throws -> UInt64? {
        try db().get([UInt8(ascii: "b")] + hash).flatMap(BlockExecutor.decodeUInt64)
    }

    package func transaction(_ id: [UInt8]) throws -> (UInt64, UInt32)? {
        guard let v = try db().get([UInt8(ascii: "t")] + id) else { return nil }
        var r = BigEndianReader(v)
        guard let height = try? r.u64(), let index = try? r.u32(), r.isAtEnd else { return nil }
        return (height, index)
    }

    /// The last write of `key`: its version and value (nil: deleted).
    package func lastWrite(_ key: String) throws -> (height: UInt64, index: UInt32, value: [UInt8]?)? {
        guard let v = try db().get(Self.stateKey(key)) else { return nil }
        var r = BigEndianReader(v)
        guard let height = try? r.u64(), let index = try? r.u32(), !r.isAtEnd else { return nil }
        return (height, index, Self.value(r.rest()))
    }

    /// The value `key` was written with at (height, index): `.some(nil)` for a deletion,
    /// nil when no such write happened.
    package func version(_ key: String, height: UInt64, index: UInt32) throws -> [UInt8]?? {
        guard let v = try db().get(Self.historyKey(key, height: height, index: index)), !v.isEmpty else { return nil }
        return .some(Self.value(v))
    }

    // ChainStateReader: the state as of the last committed block.

    package func meterLatest(_ meter: String) throws -> Int64? {
        try get(BlockExecutor.meterKey(meter)).flatMap(BlockExecutor.decodeInt64)
    }

    package func exists(_ key: String) throws -> Bool { try get(key) != nil }

    package func get(_ key: String) throws -> [UInt8]? { try lastWrite(key)?.value }

    package func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        let start = Self.stateKey(prefix)
        try db().scan(prefix: start) { key, v in
            var r = BigEndianReader(v)
            guard (try? r.u64()) != nil, (try? r.u32()) != nil, !r.isAtEnd else {
                throw StoreError.corrupt("verify scratch store: malformed state entry")
            }
            guard let value = Self.value(r.rest()) else { return true }
            guard let name = String(validating: key.dropFirst(), as: UTF8.self) else {
                throw StoreError.corrupt("verify scratch store: state key is not UTF-8")
            }
            return try body(name, value)
        }
    }

    // Encoding.

    private static func stateKey(_ key: String) -> [UInt8] { [UInt8(ascii: "s")] + Array(key.utf8) }

    private static func historyKey(_ key: String, height: UInt64, index: UInt32) -> [UInt8] {
        let name = Array(key.utf8)
        return [UInt8(ascii: "h")] + BigEndianWriter.bytes(of: UInt32(name.count)) + name + version(height: height, index: index)
    }

    private static func version(height: UInt64, index: UInt32) -> [UInt8] {
        BigEndianWriter.bytes(of: height) + BigEndianWriter.bytes(of: index)
    }

    /// 1 and the value, or 0 for a deletion.
    private static func presence(_ value: [UInt8]?) -> [UInt8] { value.map { [1] + $0 } ?? [0] }

    private static func value(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.first == 1 ? Array(bytes.dropFirst()) : nil
    }
}
