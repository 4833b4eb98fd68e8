internal import CLevelDB
import Synchronization

/// One open LevelDB database (LevelDB 1.23 through its C API).
///
/// Keys and values are arbitrary byte strings, ordered bytewise (LevelDB's default
/// comparator). Ranges are half-open: `from` inclusive, `to` exclusive.
///
/// Thread safety: every method may be called from any thread concurrently; LevelDB's
/// `leveldb_t` serializes writers internally and lets readers run beside them. A write
/// (`put`, `delete`, `write`) is atomic for readers: a concurrent `get` or `scan` sees all
/// of it or none of it. A `scan` reads one consistent point-in-time view (the iterator's
/// implicit snapshot, or an explicit `Snapshot`).
///
/// Durability (every write method takes `sync` explicitly, there is no default):
/// - `sync: true` appends the write to LevelDB's log and `fdatasync`s the log before
///   returning. A write that returned survives a process crash, a kernel crash and power
///   loss (given a disk that honours flushes).
/// - `sync: false` returns once the write is in the OS page cache. It survives a crash of
///   this process but may be lost on a kernel crash or power loss, together with any other
///   unsynced writes before it; a later synced write makes every earlier write durable.
/// - Never partial: after any crash each write (each batch) is entirely present or absent.
/// - Closing (`deinit`) needs no flush: the log already holds every returned write, and
///   LevelDB replays it on the next open.
///
/// Integrity: opened with `paranoid_checks`, and every read verifies block checksums; a
/// checksum failure surfaces as `StoreError.corrupt`. Tables use Snappy compression and a
/// 10-bits-per-key Bloom filter (roughly 1% false positives on lookups of absent keys).
///
/// Ownership: the object owns the `leveldb_t` and its options, cache and filter policy, and
/// closes the database in `deinit` (after which another `LevelDB` may open the path; while
/// open, LevelDB's LOCK file refuses a second opener, in this process or another).
public final class LevelDB: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the C objects are only read
    // (options) or are documented thread-safe (leveldb_t, cache, filter policy).

    /// Where the database lives (a directory LevelDB owns).
    public let path: String
    /// The open had to drop damaged records at the end of LevelDB's log (a write torn by a
    /// full disk or a crash); the owner should say so in its log.
    public let recoveredDamagedLog: Bool
    /// The first write that failed (nil while none did). After a failed write LevelDB's log
    /// may end in a torn record; a later write appended behind it would be lost with it at
    /// the next recovery, so every write after a failure is refused until the database is
    /// reopened (which drops the torn record, never an acknowledged write).
    private let failedWrite = Mutex<String?>(nil)

    let handle: OpaquePointer
    private let options: OpaquePointer
    private let cache: OpaquePointer
    private let filterPolicy: OpaquePointer
    private let readOptions: OpaquePointer
    private let syncWrite: OpaquePointer
    private let asyncWrite: OpaquePointer

    /// Opens (or creates) the database at `path`.
    ///
    /// - Parameters:
    ///   - path: the database directory. Its parent must exist; LevelDB creates only the
    ///     last component.
    ///   - createIfMissing: create an empty database when none exists; when `false`, a
    ///     missing database is an error.
    ///   - cacheBytes: capacity of the LRU cache of uncompressed blocks.
    ///   - writeBufferBytes: memtable size before it is written out as a table; larger
    ///     values speed bulk loads and lengthen recovery (log replay) after a crash.
    /// - Throws: `StoreError.io` with LevelDB's text (missing database, lock held, file
    ///   system errors), `StoreError.corrupt` when recovery finds damage.
    public init(
        path: String,
        createIfMissing: Bool = true,
        cacheBytes: Int = 32 << 20,
        writeBufferBytes: Int = 8 << 20
    ) throws {
        precondition(cacheBytes >= 0 && writeBufferBytes > 0, "cache and write buffer sizes must be positive")
        self.path = path
        guard let options = leveldb_options_create(),
              let cache = leveldb_cache_create_lru(cacheBytes),
              let filterPolicy = leveldb_filterpolicy_create_bloom(10),
              let readOptions = leveldb_readoptions_create(),
              let syncWrite = leveldb_writeoptions_create(),
              let asyncWrite = leveldb_writeoptions_create()
        else {
            fatalError("LevelDB option allocation failed (out of memory)")
        }
        leveldb_options_set_create_if_missing(options, createIfMissing ? 1 : 0)
        leveldb_options_set_paranoid_checks(options, 1)
        leveldb_options_set_compression(options, Int32(leveldb_snappy_compression))
        leveldb_options_set_filter_policy(options, filterPolicy)
        leveldb_options_set_cache(options, cache)
        leveldb_options_set_write_buffer_size(options, writeBufferBytes)
        leveldb_readoptions_set_verify_checksums(readOptions, 1)
        leveldb_writeoptions_set_sync(syncWrite, 1)
        leveldb_writeoptions_set_sync(asyncWrite, 0)

        var opened: OpaquePointer?
        var recovered = false
        do {
            do {
                opened = try Self.check("opening \(path)") { err in
                    leveldb_open(options, path, err)
                }
            } catch StoreError.corrupt {
                // A write torn by a full disk or a crash leaves damaged records at the end of
                // LevelDB's log, which recovery with paranoid checks refuses. Recover once
                // without them (LevelDB drops the damaged records: writes that never returned
                // success), then open again with them; real damage still fails that open.
                leveldb_options_set_paranoid_checks(options, 0)
                if let repaired = try? Self.check("opening \(path)", { err in leveldb_open(options, path, err) }) {
                    leveldb_close(repaired)
                    recovered = true
                }
                leveldb_options_set_paranoid_checks(options, 1)
                opened = try Self.check("opening \(path)") { err in
                    leveldb_open(options, path, err)
                }
            }
        } catch {
            Self.release(options, cache, filterPolicy, readOptions, syncWrite, asyncWrite)
            throw error
        }
        self.recoveredDamagedLog = recovered
        guard let opened else {
            Self.release(options, cache, filterPolicy, readOptions, syncWrite, asyncWrite)
            throw StoreError.io("opening \(path): leveldb_open returned no handle")
        }
        self.handle = opened
        self.options = options
        self.cache = cache
        self.filterPolicy = filterPolicy
        self.readOptions = readOptions
        self.syncWrite = syncWrite
        self.asyncWrite = asyncWrite
    }

    deinit {
        // Close first: the database references the cache and the filter policy.
        leveldb_close(handle)
        Self.release(options, cache, filterPolicy, readOptions, syncWrite, asyncWrite)
    }

    private static func release(
        _ options: OpaquePointer, _ cache: OpaquePointer, _ filterPolicy: OpaquePointer,
        _ readOptions: OpaquePointer, _ syncWrite: OpaquePointer, _ asyncWrite: OpaquePointer
    ) {
        leveldb_writeoptions_destroy(asyncWrite)
        leveldb_writeoptions_destroy(syncWrite)
        leveldb_readoptions_destroy(readOptions)
        leveldb_options_destroy(options)
        leveldb_filterpolicy_destroy(filterPolicy)
        leveldb_cache_destroy(cache)
    }

    /// Deletes the database at `path` and its files (the directory must not be open).
    public static func destroy(path: String) throws {
        guard let options = leveldb_options_create() else { fatalError("out of memory") }
        defer { leveldb_options_destroy(options) }
        try check("destroying \(path)") { err in leveldb_destroy_db(options, path, err) }
    }

    // MARK: Point reads and writes

    /// The value stored under `key`, or nil when the key is absent.
    /// - Throws: `StoreError.corrupt` on a checksum failure, `.io` on a read error.
    public func get(_ key: [UInt8], snapshot: Snapshot? = nil) throws -> [UInt8]? {
        let options: OpaquePointer
        if let snapshot {
            options = snapshot.readOptions
        } else {
            options = readOptions
        }
        var length = 0
        let value: UnsafeMutablePointer<CChar>? = try Self.check("reading a key") { err in
            key.withCBytes { k, kl in
                leveldb_get(handle, options, k, kl, &length, err)
            }
        }
        guard let value else { return nil }
        defer { leveldb_free(value) }
        return [UInt8](leveldb: value, count: length)
    }

    /// Stores `value` under `key`. Durability per `sync` (see the type's documentation).
    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws {
        try writing("writing a key") { err in
            key.withCBytes { k, kl in
                value.withCBytes { v, vl in
                    leveldb_put(handle, sync ? syncWrite : asyncWrite, k, kl, v, vl, err)
                }
            }
        }
    }

    /// Removes `key` (absent keys are not an error). Durability per `sync`.
    public func delete(_ key: [UInt8], sync: Bool) throws {
        try writing("deleting a key") { err in
            key.withCBytes { k, kl in
                leveldb_delete(handle, sync ? syncWrite : asyncWrite, k, kl, err)
            }
        }
    }

    /// Applies `batch` atomically: all of its operations or, if this throws or the machine
    /// crashes, none of them. Durability per `sync`. The batch is not modified.
    public func write(_ batch: WriteBatch, sync: Bool) throws {
        try writing("writing a batch of \(batch.count)") { err in
            leveldb_write(handle, sync ? syncWrite : asyncWrite, batch.handle, err)
        }
    }

    // MARK: Range reads

    /// Calls `body(key, value)` for the keys in `[from, to)` in ascending order, or in
    /// descending order when `reverse`, stopping after `limit` pairs or when `body` returns
    /// `false`.
    ///
    /// The scan reads one consistent view: writes that complete during the scan are not
    /// seen. Pass `snapshot` to read an older view (shared with other reads).
    ///
    /// - Parameters:
    ///   - to: exclusive upper bound; nil scans to the end of the key space. An empty range
    ///     (`to <= from`) calls nothing.
    ///   - fillCache: `false` for bulk scans that should not evict hot blocks.
    /// - Throws: what `body` throws (the scan stops), or `StoreError` for a read failure
    ///   (possibly after some pairs were delivered).
    public func scan(
        from: [UInt8],
        to: [UInt8]? = nil,
        reverse: Bool = false,
        limit: Int = .max,
        snapshot: Snapshot? = nil,
        fillCache: Bool = true,
        _ body: ([UInt8], [UInt8]) throws -> Bool
    ) throws {
        guard limit > 0 else { return }
        if let to, !from.lexicographicallyPrecedes(to) { return }
        guard let options = leveldb_readoptions_create() else { fatalError("out of memory") }
        defer { leveldb_readoptions_destroy(options) }
        leveldb_readoptions_set_verify_checksums(options, 1)
        leveldb_readoptions_set_fill_cache(options, fillCache ? 1 : 0)
        if let snapshot {
            leveldb_readoptions_set_snapshot(options, snapshot.handle)
        }
        guard let iterator = leveldb_create_iterator(handle, options) else {
            fatalError("leveldb_create_iterator returned NULL")
        }
        // Declared after `options`, so destroyed before it.
        defer { leveldb_iter_destroy(iterator) }

        if reverse {
            if let to {
                to.withCBytes { k, kl in leveldb_iter_seek(iterator, k, kl) }
                if leveldb_iter_valid(iterator) != 0 {
                    leveldb_iter_prev(iterator)  // the first key >= to, so step below it
                } else {
                    leveldb_iter_seek_to_last(iterator)  // every key is < to
                }
            } else {
                leveldb_iter_seek_to_last(iterator)
            }
        } else {
            from.withCBytes { k, kl in leveldb_iter_seek(iterator, k, kl) }
        }

        var delivered = 0
        while leveldb_iter_valid(iterator) != 0 {
            var keyLength = 0
            let key = [UInt8](leveldb: leveldb_iter_key(iterator, &keyLength), count: keyLength)
            if reverse {
                if key.lexicographicallyPrecedes(from) { break }
            } else if let to, !key.lexicographicallyPrecedes(to) {
                break
            }
            var valueLength = 0
            let value = [UInt8](leveldb: leveldb_iter_value(iterator, &valueLength), count: valueLength)
            delivered += 1
            guard try body(key, value), delivered < limit else { break }
            if reverse {
                leveldb_iter_prev(iterator)
            } else {
                leveldb_iter_next(iterator)
            }
        }
        try Self.check("iterating") { err in leveldb_iter_get_error(iterator, err) }
    }

    /// `scan` over every key that starts with `prefix`.
    public func scan(
        prefix: [UInt8],
        reverse: Bool = false,
        limit: Int = .max,
        snapshot: Snapshot? = nil,
        fillCache: Bool = true,
        _ body: ([UInt8], [UInt8]) throws -> Bool
    ) throws {
        try scan(
            from: prefix, to: Self.prefixEnd(prefix), reverse: reverse, limit: limit,
            snapshot: snapshot, fillCache: fillCache, body)
    }

    /// The smallest key greater than every key starting with `prefix`, or nil when there is
    /// none (empty prefix, or all bytes 0xFF).
    public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8]? {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return nil
    }

    // MARK: Introspection

    /// LevelDB's estimate of the file-system bytes used by keys in `[from, to)`. Data still
    /// only in the memtable (recent writes, kept in the log) counts as 0.
    public func approximateSize(from: [UInt8], to: [UInt8]) -> UInt64 {
        var size: UInt64 = 0
        from.withCBytes { f, fl in
            to.withCBytes { t, tl in
                var starts: [UnsafePointer<CChar>?] = [f]
                var startLengths = [fl]
                var limits: [UnsafePointer<CChar>?] = [t]
                var limitLengths = [tl]
                leveldb_approximate_sizes(handle, 1, &starts, &startLengths, &limits, &limitLengths, &size)
            }
        }
        return size
    }

    /// A LevelDB property such as `leveldb.stats`, `leveldb.sstables`,
    /// `leveldb.num-files-at-level0` or `leveldb.approximate-memory-usage`; nil for an
    /// unknown name.
    public func property(_ name: String) -> String? {
        guard let value = leveldb_property_value(handle, name) else { return nil }
        defer { leveldb_free(value) }
        return String(cString: value)
    }

    /// The linked LevelDB's version, e.g. "1.23".
    public static var version: String {
        "\(leveldb_major_version()).\(leveldb_minor_version())"
    }

    // MARK: Errors

    /// Runs a C call that reports failure through `char** errptr`; turns a set errptr into
    /// a `StoreError` with LevelDB's text and frees it with `leveldb_free`.
    /// A write through `check`, refused after an earlier failed write (`failedWrite`).
    private func writing(_ context: @autoclosure () -> String, _ call: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Void) throws {
        if let earlier = failedWrite.withLock({ $0 }) {
            throw StoreError.io("\(context()): refused after an earlier failed write (\(earlier)); reopen the database")
        }
        do {
            try Self.check(context(), call)
        } catch {
            failedWrite.withLock { if $0 == nil { $0 = "\(error)" } }
            throw error
        }
    }

    static func check<R>(
        _ context: @autoclosure () -> String,
        _ call: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) throws -> R {
        var error: UnsafeMutablePointer<CChar>? = nil
        let result = call(&error)
        if let error {
            let text = String(cString: error)
            leveldb_free(error)
            throw StoreError.leveldb(text, while: context())
        }
        return result
    }
}
