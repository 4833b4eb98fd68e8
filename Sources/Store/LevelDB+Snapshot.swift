internal import CLevelDB

extension LevelDB {
    /// A frozen, consistent view of the database: reads through it see exactly the writes
    /// that had completed when it was taken, however many reads are made and whatever is
    /// written meanwhile. Use one to make several `get`/`scan` calls agree with each other
    /// (e.g. a verifier cross-checking indexes on a live node).
    ///
    /// Thread safety: may be used from any thread, concurrently. Ownership: keeps its
    /// database open and releases the LevelDB snapshot in `deinit`; holding one pins old
    /// versions of overwritten keys, so release it promptly.
    public final class Snapshot: @unchecked Sendable {
        // @unchecked: immutable after init; LevelDB snapshots and read options are read-only.
        let database: LevelDB
        let handle: OpaquePointer
        let readOptions: OpaquePointer

        fileprivate init(database: LevelDB) {
            self.database = database
            guard let handle = leveldb_create_snapshot(database.handle),
                  let readOptions = leveldb_readoptions_create()
            else {
                fatalError("leveldb_create_snapshot failed (out of memory)")
            }
            leveldb_readoptions_set_verify_checksums(readOptions, 1)
            leveldb_readoptions_set_snapshot(readOptions, handle)
            self.handle = handle
            self.readOptions = readOptions
        }

        deinit {
            leveldb_readoptions_destroy(readOptions)
            leveldb_release_snapshot(database.handle, handle)
        }
    }

    /// Takes a snapshot of the current state (see `Snapshot`).
    public func snapshot() -> Snapshot {
        Snapshot(database: self)
    }
}
