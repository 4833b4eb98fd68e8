import Consensus
import Store

// The translation between the Raft core's persistent types and the byte records the Raft
// log store keeps (`RaftLogStore+Records.swift`; layout: Docs/storage-format.md, "Raft
// log"). Store knows no Raft types; this file is the only place the two meet. Every
// conversion is lossless both ways for what the core produces; a record the core cannot
// represent (an unknown entry kind) is `StoreError.corrupt`.

extension Entry {
    var record: RaftLogStore.EntryRecord {
        RaftLogStore.EntryRecord(term: term, index: index, kind: kind.rawValue, data: data)
    }

    init(record: RaftLogStore.EntryRecord) throws {
        guard let kind = Kind(rawValue: record.kind) else {
            throw StoreError.corrupt("raft log: entry \(record.index) has unknown kind \(record.kind)")
        }
        self.init(term: record.term, index: record.index, kind: kind, data: record.data)
    }
}

extension HardState {
    var record: RaftLogStore.HardStateRecord {
        RaftLogStore.HardStateRecord(term: term, vote: vote, commit: commit)
    }

    init(record: RaftLogStore.HardStateRecord) {
        self.init(term: record.term, vote: record.vote, commit: record.commit)
    }
}

extension Snapshot {
    var record: RaftLogStore.SnapshotRecord {
        RaftLogStore.SnapshotRecord(
            index: metadata.index, term: metadata.term,
            voters: metadata.confState.voters, learners: metadata.confState.learners, data: data)
    }

    /// The store has checked that the member lists are sorted, unique and disjoint, so the
    /// `ConfState` is exactly the one stored.
    init(record: RaftLogStore.SnapshotRecord) {
        self.init(
            metadata: Metadata(
                index: record.index, term: record.term,
                confState: ConfState(voters: record.voters, learners: record.learners)),
            data: record.data)
    }
}

extension PersistentState {
    init(contents: RaftLogStore.Contents) throws {
        self.init(
            hardState: HardState(record: contents.hardState), snapshot: contents.snapshot.map(Snapshot.init(record:)),
            entries: try contents.entries.map(Entry.init(record:)), applied: contents.applied)
    }
}
