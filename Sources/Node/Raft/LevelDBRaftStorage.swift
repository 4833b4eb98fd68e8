import Consensus
import Store

/// A Raft group's stable storage (`RaftStorage`) on LevelDB: the byte-record `RaftLogStore` (one database
/// at `<directory>/raft.ldb`) seen through the core's types (`RaftLogRecords.swift`).
/// Durability, atomicity and the refused calls are `RaftLogStore`'s: `persist` and
/// `compact` are one batch each, synced before they return.
///
/// Thread safety: as `RaftLogStore`, every method may be called from any thread.
final class LevelDBRaftStorage: RaftStorage {
    let store: RaftLogStore

    init(store: RaftLogStore) {
        self.store = store
    }

    /// Opens (or creates, empty) the Raft log in `directory`.
    convenience init(directory: String) throws {
        self.init(store: try RaftLogStore(directory: directory))
    }

    /// Index of the last stored entry (the snapshot index without entries).
    var lastIndex: UInt64 { store.lastIndex }

    /// The state a restarted `RaftNode` starts from. Throws `StoreError.corrupt` for a
    /// record the layout or the core refuses.
    func load() throws -> PersistentState {
        try PersistentState(contents: store.load())
    }

    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
        try store.persist(hardState: hardState?.record, entries: entries.map(\.record), snapshot: snapshot?.record)
    }

    func setApplied(_ index: UInt64, sync: Bool) throws {
        try store.setApplied(index, sync: sync)
    }

    func compact(upTo index: UInt64, snapshot: Snapshot) throws {
        try store.compact(upTo: index, snapshot: snapshot.record)
    }

    /// What the returned `persist` / `compact` calls made durable (the store syncs each).
    var durable: RaftDurableState {
        let d = store.durable
        return RaftDurableState(
            hardState: HardState(record: d.hardState), snapshotIndex: d.snapshotIndex, snapshotTerm: d.snapshotTerm,
            lastIndex: d.lastIndex, lastTerm: d.lastTerm)
    }
}
