// The Raft log's persistent layout: one LevelDB at <directory>/raft.ldb, one per chain's
// Raft group. Every byte of it is built and parsed here and nowhere else.
//
// Grammar (integers fixed-width big-endian, so bytewise key order is numeric order; what is
// synced and what a crash can lose: Docs/storage-format.md, "Raft log"):
//
//   "e" index(u64)  -> term(u64) kind(u8) data                        ; one log entry
//   "h"             -> term(u64) vote(u64) commit(u64)                ; hard state
//   "s"             -> index(u64) term(u64)
//                      n-voters(u32) voter(u64){n-voters}
//                      n-learners(u32) learner(u64){n-learners}
//                      data                                           ; latest snapshot
//   "a"             -> index(u64)                                     ; applied index
//
//   kind := 0x00 (normal) | 0x01 (configChange)       ; the Raft core's Entry.Kind raw values
//   data := *OCTET                                    ; the rest of the value, may be empty
//
// "e" keys are exactly 9 bytes; the single-byte keys "h", "s", "a" sort outside the "e"
// prefix, so a scan of prefix "e" sees entries only, in index order.
//
// Invariants (checked by `RaftLogStore.load`):
//   - the "e" indexes are exactly the consecutive range (snapshot index, last index];
//     nothing at or below the snapshot index is stored;
//   - entry terms never decrease with the index and are >= the snapshot's term;
//   - "h" commit <= last index (the snapshot index when no entry is stored).
// "h", "s" and "a" are absent in a fresh store (meaning HardState(), no snapshot, 0).

extension RaftLogStore {
    /// The Raft log store's key and value formats. Pure functions, no I/O.
    enum Layout {
        static let entryPrefix = UInt8(ascii: "e")
        static let hardStateKey: [UInt8] = [UInt8(ascii: "h")]
        static let snapshotKey: [UInt8] = [UInt8(ascii: "s")]
        static let appliedKey: [UInt8] = [UInt8(ascii: "a")]

        static let entryKeyLength = 9
        static let hardStateLength = 24
        /// The grammar's highest entry kind (0x01, configChange).
        static let maxEntryKind: UInt8 = 1

        // MARK: Keys

        /// "e" index(u64 BE)
        static func entryKey(_ index: UInt64) -> [UInt8] {
            var key: [UInt8] = [entryPrefix]
            key.reserveCapacity(entryKeyLength)
            ChainStore.Layout.appendU64(index, to: &key)
            return key
        }

        /// The index of an "e" key.
        static func decodeEntryKey(_ key: [UInt8]) throws -> UInt64 {
            guard key.count == entryKeyLength, key.first == entryPrefix else {
                throw StoreError.corrupt("raft log: malformed entry key \(key)")
            }
            return ChainStore.Layout.readU64(key[1...])
        }

        // MARK: Entries

        /// term(u64) kind(u8) data
        static func entryValue(_ entry: EntryRecord) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(9 + entry.data.count)
            ChainStore.Layout.appendU64(entry.term, to: &out)
            out.append(entry.kind)
            out.append(contentsOf: entry.data)
            return out
        }

        static func decodeEntry(index: UInt64, _ bytes: [UInt8]) throws -> EntryRecord {
            guard bytes.count >= 9 else {
                throw StoreError.corrupt("raft log: entry \(index) has \(bytes.count) bytes, at least 9 expected")
            }
            let kind = bytes[8]
            guard kind <= maxEntryKind else {
                throw StoreError.corrupt("raft log: entry \(index) has unknown kind \(kind)")
            }
            return EntryRecord(
                term: ChainStore.Layout.readU64(bytes[0..<8]), index: index, kind: kind,
                data: Array(bytes[9...]))
        }

        /// The term of a stored entry value (its first 8 bytes), without copying the data.
        static func decodeEntryTerm(index: UInt64, _ bytes: [UInt8]) throws -> UInt64 {
            guard bytes.count >= 9 else {
                throw StoreError.corrupt("raft log: entry \(index) has \(bytes.count) bytes, at least 9 expected")
            }
            return ChainStore.Layout.readU64(bytes[0..<8])
        }

        // MARK: Hard state

        /// term(u64) vote(u64) commit(u64)
        static func hardStateValue(_ state: HardStateRecord) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(hardStateLength)
            ChainStore.Layout.appendU64(state.term, to: &out)
            ChainStore.Layout.appendU64(state.vote, to: &out)
            ChainStore.Layout.appendU64(state.commit, to: &out)
            return out
        }

        static func decodeHardState(_ bytes: [UInt8]) throws -> HardStateRecord {
            guard bytes.count == hardStateLength else {
                throw StoreError.corrupt("raft log: hard state has \(bytes.count) bytes, \(hardStateLength) expected")
            }
            return HardStateRecord(
                term: ChainStore.Layout.readU64(bytes[0..<8]),
                vote: ChainStore.Layout.readU64(bytes[8..<16]),
                commit: ChainStore.Layout.readU64(bytes[16..<24]))
        }

        // MARK: Snapshot

        /// index(u64) term(u64) n-voters(u32) voter(u64)* n-learners(u32) learner(u64)* data
        static func snapshotValue(_ snapshot: SnapshotRecord) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(24 + 8 * (snapshot.voters.count + snapshot.learners.count) + snapshot.data.count)
            ChainStore.Layout.appendU64(snapshot.index, to: &out)
            ChainStore.Layout.appendU64(snapshot.term, to: &out)
            for ids in [snapshot.voters, snapshot.learners] {
                ChainStore.Layout.appendU32(UInt32(ids.count), to: &out)
                for id in ids { ChainStore.Layout.appendU64(id, to: &out) }
            }
            out.append(contentsOf: snapshot.data)
            return out
        }

        static func decodeSnapshot(_ bytes: [UInt8]) throws -> SnapshotRecord {
            var cursor = 0
            func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
                guard bytes.count - cursor >= n else {
                    throw StoreError.corrupt("raft log: snapshot record ends inside its \(what)")
                }
                defer { cursor += n }
                return bytes[cursor..<cursor + n]
            }
            let index = ChainStore.Layout.readU64(try take(8, "index"))
            let term = ChainStore.Layout.readU64(try take(8, "term"))
            var lists: [[UInt64]] = []
            for what in ["voters", "learners"] {
                let count = Int(ChainStore.Layout.readU32(try take(4, "\(what) count")))
                guard count <= (bytes.count - cursor) / 8 else {
                    throw StoreError.corrupt("raft log: snapshot record ends inside its \(what)")
                }
                var ids: [UInt64] = []
                ids.reserveCapacity(count)
                for _ in 0..<count { ids.append(ChainStore.Layout.readU64(try take(8, what))) }
                lists.append(ids)
            }
            guard membersAreWellFormed(voters: lists[0], learners: lists[1]) else {
                throw StoreError.corrupt("raft log: snapshot membership is not sorted, unique and disjoint")
            }
            return SnapshotRecord(index: index, term: term, voters: lists[0], learners: lists[1], data: Array(bytes[cursor...]))
        }

        /// Voters and learners each strictly increasing, and no id in both.
        static func membersAreWellFormed(voters: [UInt64], learners: [UInt64]) -> Bool {
            func increasing(_ ids: [UInt64]) -> Bool { zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 } }
            return increasing(voters) && increasing(learners) && Set(voters).isDisjoint(with: learners)
        }

        // MARK: Applied index

        /// index(u64)
        static func appliedValue(_ index: UInt64) -> [UInt8] {
            var out: [UInt8] = []
            ChainStore.Layout.appendU64(index, to: &out)
            return out
        }

        static func decodeApplied(_ bytes: [UInt8]) throws -> UInt64 {
            guard bytes.count == 8 else {
                throw StoreError.corrupt("raft log: applied index has \(bytes.count) bytes, 8 expected")
            }
            return ChainStore.Layout.readU64(bytes[...])
        }
    }
}
