import Foundation
import GridProto
import GridTLS
import Store

/// `gridnode verify`: recomputes every hash and index of a stopped node's chain from
/// genesis and reports the first inconsistency.
///
/// Checks, block by block: the header's height and chain, the previous-hash link, the
/// transaction ids and Merkle root, a full re-execution of every transaction against a
/// replayed world state (the state root and every outcome must match), the block-hash and
/// transaction indexes; then that the stored world state, its history and the head record
/// equal the replay. Memory grows with the number of state keys (the replay is in memory).
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
        return names.filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/chain.ldb") }.sorted()
    }

    /// Verifies one chain of a node's data directory; `chainID` may be omitted when the
    /// directory holds exactly one chain.
    /// - Parameter progress: called with (height verified, head height) now and then.
    public static func verify(dataDirectory: String, chainID: String? = nil, progress: (UInt64, UInt64) -> Void = { _, _ in }) throws -> Report {
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
        let directory = GridNode.chainDirectory(dataDirectory, id)
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
        let replay = ReplayState()
        var previousHash: [UInt8] = []
        var previousTimestampMs = Int64.min
        var stateRoot = hashing.genesisStateRoot(chainID: chainID)
        var expectedHashIndex: [[UInt8]: UInt64] = [:]
        var expectedTxIndex: [[UInt8]: (UInt64, UInt32)] = [:]
        var expectedHistory: [String: [(UInt64, UInt32, [UInt8]?)]] = [:]
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
                for w in writes {
                    replay.apply(w, height: height)
                    expectedHistory[w.key, default: []].append((height, w.txIndex, w.value))
                }
            }
            expectedHashIndex[hash] = height
            for (i, id) in ids.enumerated() {
                guard expectedTxIndex[id] == nil else { return fail("block \(height): transaction \(id.hex) appears twice on the chain") }
                expectedTxIndex[id] = (height, UInt32(i))
            }
            report.transactions += ids.count
            report.blocks = height + 1
            previousHash = hash
        }
        progress(head.height, head.height)
        guard head.hash == previousHash, head.stateRoot == stateRoot else { return fail("head record does not match block \(head.height)") }

        var inconsistency: String?
        var seen = 0
        try store.allBlockHashIndex { hash, height in
            seen += 1
            if inconsistency == nil, expectedHashIndex[hash] != height { inconsistency = "block-hash index entry \(hash.hex) → \(height) is wrong" }
        }
        if inconsistency == nil, seen != expectedHashIndex.count { inconsistency = "block-hash index has \(seen) entries, expected \(expectedHashIndex.count)" }
        seen = 0
        try store.allTxIndex { id, height, index in
            seen += 1
            if inconsistency == nil, let e = expectedTxIndex[id], e == (height, index) {} else if inconsistency == nil {
                inconsistency = "transaction index entry \(id.hex) → (\(height), \(index)) is wrong"
            }
        }
        if inconsistency == nil, seen != expectedTxIndex.count { inconsistency = "transaction index has \(seen) entries, expected \(expectedTxIndex.count)" }
        seen = 0
        try store.allState { key, height, index, value in
            seen += 1
            guard inconsistency == nil else { return }
            guard let last = expectedHistory[key]?.last, last.0 == height, last.1 == index, last.2 == value else {
                inconsistency = "world state of '\(key)' differs from re-execution"
                return
            }
        }
        if inconsistency == nil, seen != expectedHistory.count { inconsistency = "world state has \(seen) keys, re-execution has \(expectedHistory.count)" }
        report.stateKeys = seen
        var cursor: [String: Int] = [:]
        var historyCount = 0
        try store.allHistory { key, height, index, value in
            historyCount += 1
            guard inconsistency == nil else { return }
            let i = cursor[key, default: 0]
            cursor[key] = i + 1
            guard let versions = expectedHistory[key], i < versions.count,
                  versions[i].0 == height, versions[i].1 == index, versions[i].2 == value else {
                inconsistency = "history of '\(key)' at (\(height), \(index)) differs from re-execution"
                return
            }
        }
        let expectedCount = expectedHistory.values.reduce(0) { $0 + $1.count }
        if inconsistency == nil, historyCount != expectedCount { inconsistency = "history has \(historyCount) entries, expected \(expectedCount)" }
        report.historyEntries = historyCount
        report.firstInconsistency = inconsistency
        return report
    }
}

/// The world state rebuilt in memory by replaying blocks.
final class ReplayState: ChainStateReader {
    private var values: [String: [UInt8]] = [:]

    func apply(_ write: StateWriteRecord, height: UInt64) {
        values[write.key] = write.value
    }

    func meterLatest(_ meter: String) throws -> Int64? {
        values[BlockExecutor.meterKey(meter)].flatMap(BlockExecutor.decodeInt64)
    }

    func exists(_ key: String) throws -> Bool { values[key] != nil }

    func get(_ key: String) throws -> [UInt8]? { values[key] }
}
