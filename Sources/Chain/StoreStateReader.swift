import ChainHashing
import Store
import Synchronization

/// The world state as the executor sees it: the store, with the newest reading time per
/// meter cached (it is read for every reading).
package struct StoreStateReader: ChainStateReader {
    package let store: ChainStore
    package let cache: MeterCache

    package func meterLatest(_ meter: String) throws -> Int64? {
        if let ts = cache.map.withLock({ $0[meter] }) { return ts }
        guard let entry = try store.state(BlockExecutor.meterKey(meter)) else { return nil }
        return BlockExecutor.decodeInt64(entry.value)
    }

    package func exists(_ key: String) throws -> Bool {
        try store.state(key) != nil
    }

    /// Committed state only, straight from the store (the value cache is not consulted).
    package func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        try store.forEachState(prefix: prefix, body)
    }

    package func get(_ key: String) throws -> [UInt8]? {
        guard MeterCache.isCached(key) else { return try store.state(key)?.value }
        let (cached, generation) = cache.lookup(key)
        if let cached { return cached }
        let value = try store.state(key)?.value
        cache.fill(key, value, generation: generation)
        return value
    }
}

/// What the executor reads for every reading, kept in memory: the newest reading time per
/// meter (`meter/<id>`), and the values (present or absent) of the other world-state keys
/// it reads (the contracts' records: meter → account, customers, accounts, VEE records,
/// tariffs, …). Reading keys are not cached (written once, read only for duplicates).
///
/// Thread safety: behind mutexes; the block builder (the cutter) and the apply path (Raft)
/// may run at once on a leader.
/// Invariants:
/// - a cached value equals the store's value at the newest committed block: every
///   committed block's writes go through `applyCommitted`, and a value read from the store
///   is only cached if no block committed since the read began (`generation`), so a read
///   racing a commit cannot leave a stale value behind;
/// - at most `valueLimit` values; past it the cache starts over.
package final class MeterCache: Sendable {
    package let map = Mutex<[String: Int64]>([:])
    private let values = Mutex<(entries: [String: [UInt8]?], generation: UInt64)>(([:], 0))
    package static let valueLimit = 100_000

    package static func isCached(_ key: String) -> Bool {
        !key.hasPrefix("reading/") && !key.hasPrefix("meter/")
    }

    /// The cached value (`.some(nil)`: known absent) and the generation to fill with.
    package func lookup(_ key: String) -> (value: [UInt8]??, generation: UInt64) {
        values.withLock { ($0.entries[key], $0.generation) }
    }

    /// Caches a value read from the store, unless a block committed since `generation`.
    package func fill(_ key: String, _ value: [UInt8]?, generation: UInt64) {
        values.withLock { v in
            guard v.generation == generation, v.entries.count < Self.valueLimit else { return }
            v.entries[key] = .some(value)
        }
    }

    /// A block committed: its writes become the cached values.
    package func applyCommitted(_ writes: [StateWriteRecord]) {
        values.withLock { v in
            v.generation &+= 1
            for w in writes where Self.isCached(w.key) { v.entries[w.key] = .some(w.value) }
            if v.entries.count > Self.valueLimit { v.entries.removeAll() }
        }
    }
}
