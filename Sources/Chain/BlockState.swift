import ChainHashing
import Contracts
import Store

/// The world state inside one block: reads see the writes of earlier transactions of the
/// block and the transaction's own; a transaction's writes become the block's only when it
/// succeeds. A key written twice by one transaction is one write (the last value).
package struct BlockState: ContractState {
    package let reader: ChainStateReader
    private(set) var writes: [StateWriteRecord] = []
    /// Values written by the block's committed transactions, for reads of later ones.
    private var block: [String: [UInt8]?] = [:]
    /// Position in `writes` of each key written with index 0: the block-level scope (before
    /// transaction 0) and transaction 0 share the index, so a key they both write is one
    /// version (updated in place).
    private var zeroSlots: [String: Int] = [:]
    /// The open transaction: writes in order, and the slot of each key (a key written twice
    /// is one write, the last value).
    private var txWrites: [StateWriteRecord] = []
    private var txSlots: [String: Int] = [:]
    /// Writes of keys the transaction writes once and nobody reads back within the block
    /// (reading keys: their duplicate check has its own block-wide set).
    private var txUnique: [StateWriteRecord] = []
    private var txIndex: UInt32 = 0
    /// Savepoint: writes before `mark` are kept on rollback; the journal restores the values
    /// of those that were overwritten since.
    private var mark = Int.max
    private var journal: [(slot: Int, value: [UInt8]?)] = []
    /// Values read from the store during this block (contracts read the same tariff,
    /// thresholds and records again and again).
    private let reads = ReadCache()

    package final class ReadCache {
        package var values: [String: [UInt8]?] = [:]
    }

    package init(reader: ChainStateReader) { self.reader = reader }

    package func get(_ key: String) throws -> [UInt8]? {
        if let slot = txSlots[key] { return txWrites[slot].value }
        if let value = block[key] { return value }
        if let value = reads.values[key] { return value }
        let value = try reader.get(key)
        if reads.values.count < 100_000 { reads.values[key] = value }
        return value
    }

    /// The committed state (`reader`) merged with the block's committed transactions and the
    /// open transaction (which wins), in key byte order; a pending deletion hides the
    /// committed key. Keys written with `setUnique` (reading keys) are not in the overlay and
    /// are seen only once committed. The overlay's keys under `prefix` are collected and
    /// sorted (its dictionaries are never iterated in their own order), then merged with the
    /// store's ordered stream.
    package func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        var pending: [String: [UInt8]?] = [:]
        for (key, value) in block where key.hasPrefix(prefix) { pending[key] = value }
        for w in txWrites where w.key.hasPrefix(prefix) { pending[w.key] = w.value }
        let overlay = pending.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var next = 0
        var stopped = false
        /// Delivers the overlay's keys below `bound` (all of them for nil); false to stop.
        func drain(below bound: String?) throws -> Bool {
            while next < overlay.count {
                let key = overlay[next]
                if let bound, !key.utf8.lexicographicallyPrecedes(bound.utf8) { break }
                next += 1
                if let value = pending[key] ?? nil, try !body(key, value) { return false }
            }
            return true
        }
        try reader.scan(prefix: prefix) { key, value in
            guard try drain(below: key) else {
                stopped = true
                return false
            }
            if next < overlay.count, overlay[next] == key {
                // The block rewrote (or deleted) this key: its pending value stands.
                next += 1
                if let pendingValue = pending[key] ?? nil, try !body(key, pendingValue) {
                    stopped = true
                    return false
                }
                return true
            }
            if try !body(key, value) {
                stopped = true
                return false
            }
            return true
        }
        if !stopped { _ = try drain(below: nil) }
    }

    package mutating func set(_ key: String, _ value: [UInt8]?) {
        if let slot = txSlots[key] {
            if slot < mark { journal.append((slot, txWrites[slot].value)) }
            txWrites[slot].value = value
        } else {
            txSlots[key] = txWrites.count
            txWrites.append(StateWriteRecord(key: key, value: value, txIndex: txIndex))
        }
    }

    /// Writes a key that this transaction writes only once and that no later read in the
    /// block looks up through `get` (it is not in the block overlay).
    package mutating func setUnique(_ key: String, _ value: [UInt8]) {
        txUnique.append(StateWriteRecord(key: key, value: value, txIndex: txIndex))
    }

    package mutating func begin(_ index: UInt32) {
        txIndex = index
        clearTransaction()
    }

    package mutating func commitTransaction() {
        writes += txUnique
        for w in txWrites {
            block[w.key] = w.value
            if w.txIndex == 0 {
                if let at = zeroSlots[w.key] {
                    writes[at].value = w.value
                    continue
                }
                zeroSlots[w.key] = writes.count
            }
            writes.append(w)
        }
        clearTransaction()
    }

    /// A nested scope inside the transaction (one savepoint at a time).
    package struct Savepoint {
        fileprivate let count: Int
    }

    package mutating func savepoint() -> Savepoint {
        mark = txWrites.count
        journal.removeAll(keepingCapacity: true)
        return Savepoint(count: txWrites.count)
    }

    package mutating func rollback(to savepoint: Savepoint) {
        for w in txWrites[savepoint.count...] { txSlots.removeValue(forKey: w.key) }
        txWrites.removeLast(txWrites.count - savepoint.count)
        for entry in journal.reversed() { txWrites[entry.slot].value = entry.value }
        journal.removeAll(keepingCapacity: true)
        mark = Int.max
    }

    package mutating func rollbackTransaction() {
        clearTransaction()
    }

    private mutating func clearTransaction() {
        txWrites.removeAll(keepingCapacity: true)
        txSlots.removeAll(keepingCapacity: true)
        txUnique.removeAll(keepingCapacity: true)
        journal.removeAll(keepingCapacity: true)
        mark = Int.max
    }
}
