// The chain's persistent layout: one LevelDB at <directory>/chain.ldb.
//
// Grammar (integers big-endian, so bytewise key order is numeric order; details, what is
// synced and what a crash can lose: Docs/storage-format.md):
//
//   "b" height(u64)                            -> Block (serialized gridledger.Block)
//   "H" block-hash(32)                         -> height(u64)
//   "t" tx-id(32)                              -> height(u64) index(u32)
//   "s" state-key                              -> height(u64) index(u32) flag(u8) value
//   "h" state-key 0x00 height(u64) index(u32)  -> flag(u8) value
//   "m" "head"                                 -> height(u64) block-hash(32) state-root(32)
//   "m" "chain"                                -> chain id (UTF-8)
//
//   state-key := 1*( UTF-8 byte except 0x00 )
//   flag      := 0x01 (live; value follows) | 0x00 (deleted; nothing follows)
//
// "s" holds the newest version of each key; "h" holds every version (the newest is the
// largest key, so a reverse scan of "h" state-key 0x00 lists newest first). A version is
// (block height, transaction index). Every key written for block N is written in the one
// synced batch that commits block N, together with "m" "head" = N.
//
// Invariants (what `gridnode verify` checks):
//   - "b" holds exactly the heights 0...head.height; "m" "head" names the last of them.
//   - "H" and "t" entries point at existing blocks, and every block's hash and transaction
//     ids are indexed.
//   - for each state key, "s" equals its newest "h" entry (version and value).
//   - "m" "chain" exists if and only if "m" "head" does.

import GridProto
import Synchronization

/// The committed chain: blocks, their hash and transaction indexes, the current world state
/// and its full history, all in one LevelDB and all advanced together by `commit`.
///
/// Thread safety / Invariants:
/// - `commit` calls must be serialized by the caller (the node's single apply loop); they
///   are also serialized internally, so a concurrent misuse blocks instead of corrupting.
/// - Every reader may run on any thread concurrently with each other and with `commit`.
///   Readers see each block entirely or not at all. A reader may see block `head + 1`'s data
///   a moment before `head` advances (the cached head is updated after the batch lands):
///   treat `head` as the visibility boundary when answering clients.
/// - Invariant: `head` equals the "m" "head" record on disk whenever no commit is running.
/// - Invariant: heights are contiguous from 0; `commit` refuses gaps and forks.
///
/// Durability: `commit` writes one LevelDB batch with `sync = true`, so when it returns the
/// block and everything derived from it survive a process crash or power loss; if it throws
/// or the machine crashes before it returns, none of it is stored (LevelDB batches are
/// atomic). Acknowledge a block to anyone only after `commit` returned. Nothing else in
/// this type writes.
public final class ChainStore: Sendable {
    /// The last committed block.
    public struct Head: Sendable, Equatable {
        public var height: UInt64
        /// The block's hash (32 bytes).
        public var hash: [UInt8]
        /// The state root after the block (32 bytes).
        public var stateRoot: [UInt8]

        public init(height: UInt64, hash: [UInt8], stateRoot: [UInt8]) {
            self.height = height
            self.hash = hash
            self.stateRoot = stateRoot
        }
    }

    /// One state change made by a block's transaction `txIndex`.
    public struct StateWrite: Sendable, Equatable {
        /// Non-empty UTF-8 without NUL bytes.
        public var key: String
        /// The new value; nil deletes the key (the deletion is recorded in the history).
        public var value: [UInt8]?
        /// Index of the transaction that made the write within its block.
        public var txIndex: UInt32

        public init(key: String, value: [UInt8]?, txIndex: UInt32) {
            self.key = key
            self.value = value
            self.txIndex = txIndex
        }
    }

    /// The underlying database. Exposed for the verifier and for tests that tamper with raw
    /// values; writing through it bypasses every invariant of this type.
    public let database: LevelDB
    /// The chain this store belongs to (recorded with genesis, checked on every open).
    public let chainID: String
    /// The directory given at open; the database is `<directory>/chain.ldb`.
    public let directory: String

    private let cachedHead: Mutex<Head?>
    private let written: Mutex<WriteTotals>
    private let commitLock = Mutex<Void>(())

    /// The chain format this code writes and reads: how blocks are hashed and executed
    /// (outcomes root, contract outcomes, downlink digest). Blocks of another format would
    /// re-execute to other state roots (catch-up, `gridnode verify`), so such a store is
    /// refused at open. 1: before the outcomes root (issue 4); 2: issues 5 and 6; 3: billing
    /// on cycle-to-date lines, TOU consumption, reversals, notice templates (issue 10); 4: the
    /// reconciliation records and schedule (issue 13) and line loss per interval and day
    /// (issue 14), written as blocks execute.
    public static let format = 4

    /// Opens the chain store in `directory` (created if missing), creating an empty store
    /// when there is none.
    ///
    /// - Throws: `StoreError.chainMismatch` when the store belongs to another chain;
    ///   `.formatMismatch` when it was written in another chain format;
    ///   `.corrupt` when the head record is malformed or disagrees with the stored blocks;
    ///   `.io` when LevelDB cannot open the database (e.g. another process has it open);
    ///   `.invalidArgument` for an empty `chainID`.
    public init(
        directory: String,
        chainID: String,
        cacheBytes: Int = 64 << 20,
        writeBufferBytes: Int = 16 << 20
    ) throws {
        guard !chainID.isEmpty else {
            throw StoreError.invalidArgument("the chain id must not be empty")
        }
        try FileSystem.createDirectories(directory)
        let database = try LevelDB(
            path: directory + "/chain.ldb", createIfMissing: true,
            cacheBytes: cacheBytes, writeBufferBytes: writeBufferBytes)

        let storedChain = try database.get(Layout.chainKey).map { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw StoreError.corrupt("the stored chain id is not UTF-8")
            }
            return text
        }
        if let storedChain, storedChain != chainID {
            throw StoreError.chainMismatch(stored: storedChain, requested: chainID)
        }
        if storedChain != nil {
            // Stores from before the format record are format 1.
            let stored = try database.get(Layout.formatKey).map { bytes in
                guard let text = String(validating: bytes, as: UTF8.self), let n = Int(text) else {
                    throw StoreError.corrupt("the stored format is not a decimal number")
                }
                return n
            } ?? 1
            guard stored == Self.format else { throw StoreError.formatMismatch(stored: stored, supported: Self.format) }
        }
        let head = try database.get(Layout.headKey).map(Layout.decodeHead)
        try Self.checkHead(head, chainRecorded: storedChain != nil, in: database)

        self.database = database
        self.chainID = chainID
        self.directory = directory
        self.cachedHead = Mutex(head)
        self.written = Mutex(WriteTotals())
    }

    /// Cheap consistency checks at open: the head record agrees with the block and hash
    /// records around it. The full cross-check is `gridnode verify`.
    private static func checkHead(_ head: Head?, chainRecorded: Bool, in database: LevelDB) throws {
        let blockRange = (from: [Layout.blockPrefix], to: [Layout.blockPrefix + 1])
        guard let head else {
            if chainRecorded {
                throw StoreError.corrupt("the chain id is recorded but the head record is missing")
            }
            var anyBlock = false
            try database.scan(from: blockRange.from, to: blockRange.to, limit: 1) { _, _ in
                anyBlock = true
                return false
            }
            if anyBlock {
                throw StoreError.corrupt("blocks are stored but the head record is missing")
            }
            return
        }
        guard chainRecorded else {
            throw StoreError.corrupt("the head record exists but the chain id is missing")
        }
        guard try database.get(Layout.blockKey(head.height)) != nil else {
            throw StoreError.corrupt("head block \(head.height) is missing")
        }
        let indexed = try database.get(Layout.hashKey(head.hash)).map {
            try Layout.decodeHeight($0, "hash index of the head block")
        }
        guard indexed == head.height else {
            throw StoreError.corrupt("the head block's hash is not indexed at height \(head.height)")
        }
        if head.height < UInt64.max {
            var beyond: UInt64?
            try database.scan(from: Layout.blockKey(head.height + 1), to: blockRange.to, limit: 1) { key, _ in
                beyond = key.count == 9 ? Layout.readU64(key[1...]) : UInt64.max
                return false
            }
            if let beyond {
                throw StoreError.corrupt("block \(beyond) is stored above head \(head.height)")
            }
        }
    }

    /// The last committed block, or nil before genesis. Read under a lock; cheap.
    public var head: Head? {
        cachedHead.withLock { $0 }
    }

    /// The height the next `commit` must carry: `head.height + 1`, or 0 before genesis.
    public var nextHeight: UInt64 {
        cachedHead.withLock { $0.map { $0.height + 1 } ?? 0 }
    }

    // MARK: Commit

    /// Commits `block` and everything derived from it in one atomic, synced LevelDB batch:
    /// the block, its hash index entry, one transaction index entry per id (index = position
    /// in `txIDs`), for every write the current value and a history entry at version
    /// (block height, `txIndex`), the new head, and with genesis the chain id.
    ///
    /// - Parameters:
    ///   - block: the block; its header must be present, carry this store's chain id, the
    ///     next height (0 for genesis) and, after genesis, `previousHash == head.hash`.
    ///   - blockBytes: the block's serialized form, stored verbatim (so the bytes that were
    ///     hashed are the bytes served). Must decode to `block` (checked in debug builds).
    ///   - hash: the block hash (32 bytes), not yet indexed.
    ///   - txIDs: the transaction ids (32 bytes each) in block order, one per transaction,
    ///     all distinct and not yet indexed.
    ///   - writes: the block's state writes. When one key is written more than once, the
    ///     write with the largest `txIndex` (the later in `writes` on a tie) becomes the
    ///     current value; every write is recorded in the history (a tie keeps the later).
    ///   - stateRoot: the state root after the block (32 bytes).
    /// - Throws: `.gap` / `.fork` for a wrong height, `.invalidArgument` for any other
    ///   contract violation, `.invalidKey` for a bad state key (all before writing
    ///   anything); `.io` / `.corrupt` when the write fails (then nothing was applied).
    ///
    /// Durability: when this returns the block is on stable storage (fdatasync of LevelDB's
    /// log). Thread safety: serialize calls; readers may run concurrently (type doc).
    /// `head` advances only after the write succeeded.
    public func commit(
        block: Block,
        blockBytes: [UInt8],
        hash: [UInt8],
        txIDs: [[UInt8]],
        writes: [StateWrite],
        stateRoot: [UInt8]
    ) throws {
        try commitLock.withLock { _ in
            let head = cachedHead.withLock { $0 }
            let batch = try makeCommitBatch(
                head: head, block: block, blockBytes: blockBytes, hash: hash,
                txIDs: txIDs, writes: writes, stateRoot: stateRoot)
            try database.write(batch.batch, sync: true)
            cachedHead.withLock { $0 = batch.newHead }
            written.withLock { totals in
                totals.batches += 1
                totals.entries += UInt64(batch.batch.count)
                totals.bytes += UInt64(batch.batch.byteSize)
            }
        }
    }

    /// What `commit` has written since this store was opened: synced batches, their entries
    /// (puts and deletes) and their encoded bytes. Benchmarks compare against raw LevelDB
    /// with these.
    public struct WriteTotals: Sendable, Equatable {
        public var batches: UInt64 = 0
        public var entries: UInt64 = 0
        public var bytes: UInt64 = 0
    }

    public var writeTotals: WriteTotals { written.withLock { $0 } }

    /// Validates a commit and builds its batch; writes nothing.
    private func makeCommitBatch(
        head: Head?,
        block: Block,
        blockBytes: [UInt8],
        hash: [UInt8],
        txIDs: [[UInt8]],
        writes: [StateWrite],
        stateRoot: [UInt8]
    ) throws -> (batch: WriteBatch, newHead: Head) {
        guard let header = block.header else {
            throw StoreError.invalidArgument("the block has no header")
        }
        let height = header.height
        let expected = head.map { $0.height + 1 } ?? 0
        if let head, height <= head.height {
            throw StoreError.fork(height: height, head: head.height)
        }
        guard height == expected else {
            throw StoreError.gap(expected: expected, got: height)
        }
        guard header.chainId == chainID else {
            throw StoreError.invalidArgument(
                "block \(height) is for chain \"\(header.chainId)\", this store holds \"\(chainID)\"")
        }
        guard header.previousHash == (head?.hash ?? []) else {
            throw StoreError.invalidArgument(
                "block \(height)'s previous hash does not match the head's hash (it does not extend the chain)")
        }
        guard hash.count == Layout.hashLength, stateRoot.count == Layout.hashLength else {
            throw StoreError.invalidArgument(
                "block hash and state root must be \(Layout.hashLength) bytes (got \(hash.count) and \(stateRoot.count))")
        }
        guard txIDs.count == block.transactions.count else {
            throw StoreError.invalidArgument(
                "block \(height) has \(block.transactions.count) transactions but \(txIDs.count) ids were given")
        }
        guard txIDs.count <= Int(UInt32.max) else {
            throw StoreError.invalidArgument("too many transactions for a u32 index")
        }
        assert(
            (try? Block(serializedBytes: blockBytes)) == block,
            "blockBytes must be the serialized form of block")

        if try database.get(Layout.hashKey(hash)) != nil {
            throw StoreError.invalidArgument("block hash is already indexed (block \(height) repeats a block)")
        }
        var seen = Set<[UInt8]>(minimumCapacity: txIDs.count)
        for (index, id) in txIDs.enumerated() {
            guard id.count == Layout.hashLength else {
                throw StoreError.invalidArgument("transaction id \(index) is \(id.count) bytes, not \(Layout.hashLength)")
            }
            guard seen.insert(id).inserted else {
                throw StoreError.invalidArgument("transaction id \(index) appears twice in block \(height)")
            }
            if try database.get(Layout.txKey(id)) != nil {
                throw StoreError.invalidArgument("transaction id \(index) of block \(height) is already on the chain")
            }
        }

        // The newest write per key becomes the current value: largest txIndex, later on a tie.
        var keyBytes: [[UInt8]] = []
        keyBytes.reserveCapacity(writes.count)
        var newest: [[UInt8]: Int] = [:]
        for (position, write) in writes.enumerated() {
            let bytes = try Layout.stateKeyBytes(write.key)
            keyBytes.append(bytes)
            if let current = newest[bytes], writes[current].txIndex > write.txIndex {
                continue
            }
            newest[bytes] = position
        }

        let batch = WriteBatch()
        batch.put(Layout.blockKey(height), blockBytes)
        batch.put(Layout.hashKey(hash), Layout.heightValue(height))
        for (index, id) in txIDs.enumerated() {
            batch.put(Layout.txKey(id), Layout.versionValue(height: height, index: UInt32(index)))
        }
        for (position, write) in writes.enumerated() {
            let key = keyBytes[position]
            batch.put(
                Layout.historyKey(key, height: height, index: write.txIndex),
                Layout.flaggedValue(write.value))
            if newest[key] == position {
                batch.put(
                    Layout.stateKey(key),
                    Layout.stateValue(height: height, index: write.txIndex, value: write.value))
            }
        }
        let newHead = Head(height: height, hash: hash, stateRoot: stateRoot)
        batch.put(Layout.headKey, Layout.headValue(newHead))
        if head == nil {
            batch.put(Layout.chainKey, Array(chainID.utf8))
            batch.put(Layout.formatKey, Array(String(Self.format).utf8))
        }
        return (batch, newHead)
    }
}
