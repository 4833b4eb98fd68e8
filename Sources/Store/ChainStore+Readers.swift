import GridProto

/// Point and range reads of the committed chain. All may run on any thread, concurrently
/// with each other and with `commit` (see `ChainStore`). Errors: `StoreError.corrupt` when a
/// stored value does not match the layout, `.io` for read failures, `.invalidKey` for a bad
/// state key argument.
extension ChainStore {
    /// The serialized block at `height`, exactly as committed; nil above the head.
    public func blockBytes(at height: UInt64) throws -> [UInt8]? {
        try database.get(Layout.blockKey(height))
    }

    /// The block at `height`, decoded; nil above the head.
    public func block(at height: UInt64) throws -> Block? {
        guard let bytes = try blockBytes(at: height) else { return nil }
        do {
            return try Block(serializedBytes: bytes)
        } catch {
            throw StoreError.corrupt("block \(height) does not decode: \(error)")
        }
    }

    /// The height of the block with hash `hash`, or nil when no such block is committed.
    public func height(ofBlockHash hash: [UInt8]) throws -> UInt64? {
        guard let bytes = try database.get(Layout.hashKey(hash)) else { return nil }
        return try Layout.decodeHeight(bytes, "hash index entry")
    }

    /// Where the transaction `id` is on the chain, or nil when it is not.
    public func txLocation(_ id: [UInt8]) throws -> (height: UInt64, index: UInt32)? {
        guard let bytes = try database.get(Layout.txKey(id)) else { return nil }
        return try Layout.decodeVersion(bytes[...], "transaction index entry")
    }

    /// The current value of state `key` and the version that wrote it; nil when the key was
    /// never written or its newest write deleted it.
    public func state(_ key: String) throws -> (value: [UInt8], height: UInt64, txIndex: UInt32)? {
        let keyBytes = try Layout.stateKeyBytes(key)
        guard let bytes = try database.get(Layout.stateKey(keyBytes)) else { return nil }
        let decoded = try Layout.decodeStateValue(bytes, "state of \(String(reflecting: key))")
        guard let value = decoded.value else { return nil }
        return (value, decoded.height, decoded.index)
    }

    /// Calls `body(key, value)` for every live state entry whose key starts with `prefix`,
    /// in key byte order, until `body` returns false (one pass, no page held in memory).
    public func forEachState(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        let prefixBytes = Layout.stateKey(Array(prefix.utf8))
        try database.scan(prefix: prefixBytes) { key, value in
            let name = try Layout.decodeStateKey(key.dropFirst())
            let state = try Layout.decodeStateValue(value, "state of \(String(reflecting: name))")
            guard let v = state.value else { return true }
            return try body(name, v)
        }
    }

    /// Live state entries whose keys start with `prefix`, from key `start` (inclusive; nil =
    /// the first) in key byte order, at most `limit` of them (deleted keys are skipped).
    public func states(
        prefix: String, from start: String? = nil, limit: Int = 1000
    ) throws -> [(key: String, value: [UInt8], height: UInt64, txIndex: UInt32)] {
        let prefixBytes = Layout.stateKey(Array(prefix.utf8))
        let startBytes = start.map { Layout.stateKey(Array($0.utf8)) } ?? prefixBytes
        var out: [(key: String, value: [UInt8], height: UInt64, txIndex: UInt32)] = []
        guard limit > 0 else { return out }
        try database.scan(from: startBytes.lexicographicallyPrecedes(prefixBytes) ? prefixBytes : startBytes, to: LevelDB.prefixEnd(prefixBytes)) { key, value in
            let name = try Layout.decodeStateKey(key.dropFirst())
            let state = try Layout.decodeStateValue(value, "state of \(String(reflecting: name))")
            if let v = state.value { out.append((name, v, state.height, state.index)) }
            return out.count < limit
        }
        return out
    }

    /// Up to `limit` versions of state `key`, newest first; `value` is nil for a deletion.
    public func history(
        _ key: String, limit: Int
    ) throws -> [(height: UInt64, txIndex: UInt32, value: [UInt8]?)] {
        let prefix = Layout.historyKeyPrefix(try Layout.stateKeyBytes(key))
        var entries: [(height: UInt64, txIndex: UInt32, value: [UInt8]?)] = []
        try database.scan(prefix: prefix, reverse: true, limit: limit) { stored, value in
            let what = "history of \(String(reflecting: key))"
            let version = try Layout.decodeVersion(stored[prefix.count...], what)
            entries.append((version.height, version.index, try Layout.decodeFlagged(value[...], what)))
            return true
        }
        return entries
    }

    /// The value of state `key` as of the end of block `height` (its newest version at or
    /// below that height); nil when it did not exist or was deleted then.
    public func state(_ key: String, asOf height: UInt64) throws -> [UInt8]? {
        let keyBytes = try Layout.stateKeyBytes(key)
        let prefix = Layout.historyKeyPrefix(keyBytes)
        let end = Layout.historyKey(keyBytes, height: height, index: UInt32.max)
        var found: [UInt8]?
        try database.scan(from: prefix, to: end + [0], reverse: true, limit: 1) { _, value in
            found = try Layout.decodeFlagged(value[...], "history of \(String(reflecting: key))")
            return false
        }
        return found
    }

    /// Calls `body(height, serialized block)` for the committed blocks in `[from, to)` in
    /// height order, until `body` returns false. One consistent view of the store.
    public func blocks(
        from: UInt64, to: UInt64, _ body: (UInt64, [UInt8]) throws -> Bool
    ) throws {
        guard from < to else { return }
        try database.scan(from: Layout.blockKey(from), to: Layout.blockKey(to)) { key, value in
            guard key.count == 9 else {
                throw StoreError.corrupt("block key of \(key.count) bytes, not 9")
            }
            return try body(Layout.readU64(key[1...]), value)
        }
    }

    /// LevelDB's estimate of the store's size on disk (excludes writes still only in the
    /// log and memtable).
    public var approximateBytes: UInt64 {
        database.approximateSize(from: [], to: [0xFF])
    }

    // MARK: Whole-index walks (for `gridnode verify`)
    //
    // Each walk reads one consistent view; pass the same `snapshot` to several walks to make
    // them agree with each other on a live store. They do not fill the block cache.

    /// Calls `body(hash, height)` for every "H" entry, in hash order.
    public func allBlockHashIndex(
        snapshot: LevelDB.Snapshot? = nil, _ body: ([UInt8], UInt64) throws -> Void
    ) throws {
        try database.scan(prefix: [Layout.hashPrefix], snapshot: snapshot, fillCache: false) { key, value in
            try body(Array(key.dropFirst()), try Layout.decodeHeight(value, "hash index entry"))
            return true
        }
    }

    /// Calls `body(txID, height, index)` for every "t" entry, in id order.
    public func allTxIndex(
        snapshot: LevelDB.Snapshot? = nil, _ body: ([UInt8], UInt64, UInt32) throws -> Void
    ) throws {
        try database.scan(prefix: [Layout.txPrefix], snapshot: snapshot, fillCache: false) { key, value in
            let location = try Layout.decodeVersion(value[...], "transaction index entry")
            try body(Array(key.dropFirst()), location.height, location.index)
            return true
        }
    }

    /// Calls `body(key, height, txIndex, value)` for every "s" entry (deleted keys included,
    /// with a nil value), in key byte order.
    public func allState(
        snapshot: LevelDB.Snapshot? = nil, _ body: (String, UInt64, UInt32, [UInt8]?) throws -> Void
    ) throws {
        try database.scan(prefix: [Layout.statePrefix], snapshot: snapshot, fillCache: false) { key, value in
            let name = try Layout.decodeStateKey(key.dropFirst())
            let state = try Layout.decodeStateValue(value, "state of \(String(reflecting: name))")
            try body(name, state.height, state.index, state.value)
            return true
        }
    }

    /// Calls `body(key, height, txIndex, value)` for every "h" entry (nil value = deletion),
    /// ordered by key, then oldest version first.
    public func allHistory(
        snapshot: LevelDB.Snapshot? = nil, _ body: (String, UInt64, UInt32, [UInt8]?) throws -> Void
    ) throws {
        try database.scan(prefix: [Layout.historyPrefix], snapshot: snapshot, fillCache: false) { key, value in
            guard key.count >= 1 + 1 + 1 + Layout.versionLength,
                  key[key.count - Layout.versionLength - 1] == 0
            else {
                throw StoreError.corrupt("history key of \(key.count) bytes has no key/version separator")
            }
            let split = key.count - Layout.versionLength
            let name = try Layout.decodeStateKey(key[1..<split - 1])
            let what = "history of \(String(reflecting: name))"
            let version = try Layout.decodeVersion(key[split...], what)
            try body(name, version.height, version.index, try Layout.decodeFlagged(value[...], what))
            return true
        }
    }
}
