import GridProto
import Store

/// The one read door to a chain for the services, cross-chain sync and block transfer
/// (issue 12: "A read-only `ChainReader` ... is the only way services, sync and block
/// transfer read a chain"). It offers reads only: head, blocks, transactions, world state,
/// prefix scans and history, each a committed, durable view (what `ChainStore` holds).
/// Writes stay with the ledger, which alone commits blocks.
package struct ChainReader: Sendable {
    private let store: ChainStore

    package init(_ store: ChainStore) { self.store = store }

    /// Height and hash of the newest durable block (nil before genesis).
    package var head: ChainStore.Head? { store.head }

    package func block(at height: UInt64) throws -> Block? { try store.block(at: height) }

    /// The serialized blocks `from..<to`, in order, until `body` returns false.
    package func blocks(from: UInt64, to: UInt64, _ body: (UInt64, [UInt8]) throws -> Bool) throws {
        try store.blocks(from: from, to: to, body)
    }

    package func height(ofBlockHash hash: [UInt8]) throws -> UInt64? { try store.height(ofBlockHash: hash) }

    package func txLocation(_ id: [UInt8]) throws -> (height: UInt64, index: UInt32)? { try store.txLocation(id) }

    /// The current value of `key` with its version.
    package func state(_ key: String) throws -> (value: [UInt8], height: UInt64, txIndex: UInt32)? { try store.state(key) }

    /// The value of `key` as of `height` (the newest version at or below it).
    package func state(_ key: String, asOf height: UInt64) throws -> [UInt8]? { try store.state(key, asOf: height) }

    /// Live entries under `prefix`, from `start` (inclusive), at most `limit`.
    package func states(prefix: String, from start: String? = nil, limit: Int = 1000) throws -> [(key: String, value: [UInt8], height: UInt64, txIndex: UInt32)] {
        try store.states(prefix: prefix, from: start, limit: limit)
    }

    /// Every live entry under `prefix` in key order, until `body` returns false.
    package func forEachState(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        try store.forEachState(prefix: prefix, body)
    }

    /// Up to `limit` versions of `key`, newest first (`value` nil for a deletion).
    package func history(_ key: String, limit: Int) throws -> [(height: UInt64, txIndex: UInt32, value: [UInt8]?)] {
        try store.history(key, limit: limit)
    }
}
