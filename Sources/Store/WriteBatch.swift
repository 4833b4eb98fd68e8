internal import CLevelDB

/// A group of puts and deletes that `LevelDB.write(_:sync:)` applies atomically: after a
/// crash either every operation of the batch is in the database or none is, and concurrent
/// readers see it all or not at all.
///
/// Operations apply in the order they were added (a later put or delete of the same key
/// wins). The batch copies keys and values when they are added.
///
/// Thread safety: none. A batch is built by one thread; hand it over only after it is
/// complete. Ownership: the batch owns its `leveldb_writebatch_t` and frees it in `deinit`.
public final class WriteBatch {
    let handle: OpaquePointer

    /// Number of puts and deletes added since creation or the last `clear()`.
    public private(set) var count: Int = 0

    /// Size of the batch in LevelDB's encoding (12-byte header plus, per operation, a tag,
    /// length-prefixed key and, for puts, length-prefixed value): what the write appends to
    /// the log before compression.
    public private(set) var byteSize: Int = WriteBatch.headerSize

    static let headerSize = 12

    public init() {
        guard let handle = leveldb_writebatch_create() else {
            fatalError("leveldb_writebatch_create returned NULL (out of memory)")
        }
        self.handle = handle
    }

    deinit {
        leveldb_writebatch_destroy(handle)
    }

    /// Adds "set `key` to `value`".
    public func put(_ key: [UInt8], _ value: [UInt8]) {
        key.withCBytes { k, kl in
            value.withCBytes { v, vl in
                leveldb_writebatch_put(handle, k, kl, v, vl)
            }
        }
        count += 1
        byteSize += 1 + Self.varintSize(key.count) + key.count + Self.varintSize(value.count) + value.count
    }

    /// Adds "remove `key`" (removing an absent key is not an error).
    public func delete(_ key: [UInt8]) {
        key.withCBytes { k, kl in
            leveldb_writebatch_delete(handle, k, kl)
        }
        count += 1
        byteSize += 1 + Self.varintSize(key.count) + key.count
    }

    /// Removes every operation; the batch can be reused.
    public func clear() {
        leveldb_writebatch_clear(handle)
        count = 0
        byteSize = Self.headerSize
    }

    static func varintSize(_ n: Int) -> Int {
        var n = UInt64(n)
        var size = 1
        while n >= 0x80 {
            n >>= 7
            size += 1
        }
        return size
    }
}

extension Array where Element == UInt8 {
    /// Calls `body` with the bytes as LevelDB's `(const char*, size_t)` pair. The pointer is
    /// valid only during the call; for an empty array it may be NULL with length 0, which
    /// LevelDB accepts (an empty `Slice`).
    @inline(__always)
    func withCBytes<R>(_ body: (UnsafePointer<CChar>?, Int) throws -> R) rethrows -> R {
        try withUnsafeBytes { raw in
            try body(raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }

    /// Copies `count` bytes from a LevelDB-owned buffer.
    @inline(__always)
    init(leveldb pointer: UnsafePointer<CChar>?, count: Int) {
        if let pointer, count > 0 {
            self.init(UnsafeRawBufferPointer(start: pointer, count: count))
        } else {
            self.init()
        }
    }
}
