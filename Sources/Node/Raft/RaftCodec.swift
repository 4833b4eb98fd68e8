import Consensus
import GridProto

/// Maps the Raft core's value types to their wire messages (`Proto/gridledger/raft.proto`)
/// and back. Decoding is hostile-input safe: an unknown message kind or entry kind is an
/// error, never a crash.
enum RaftCodec {
    struct DecodingError: Error, CustomStringConvertible {
        let description: String
    }

    static func encode(_ m: Message) -> RaftMessage {
        RaftMessage(
            kind: UInt32(m.kind.rawValue), from: m.from, to: m.to, term: m.term, logTerm: m.logTerm, index: m.index,
            entries: m.entries.map(encode), commit: m.commit, reject: m.reject, rejectHint: m.rejectHint,
            snapshot: m.snapshot.map(encode), context: m.context)
    }

    static func decode(_ m: RaftMessage) throws -> Message {
        guard m.kind <= UInt32(UInt8.max), let kind = MessageKind(rawValue: UInt8(m.kind)) else {
            throw DecodingError(description: "unknown Raft message kind \(m.kind)")
        }
        return Message(
            kind: kind, from: m.from, to: m.to, term: m.term, logTerm: m.logTerm, index: m.index,
            entries: try m.entries.map(decode), commit: m.commit, reject: m.reject, rejectHint: m.rejectHint,
            snapshot: try m.snapshot.map(decode), context: m.context)
    }

    static func encode(_ e: Entry) -> RaftEntry {
        RaftEntry(term: e.term, index: e.index, kind: UInt32(e.kind.rawValue), data: e.data)
    }

    static func decode(_ e: RaftEntry) throws -> Entry {
        guard e.kind <= UInt32(UInt8.max), let kind = Entry.Kind(rawValue: UInt8(e.kind)) else {
            throw DecodingError(description: "unknown Raft entry kind \(e.kind)")
        }
        return Entry(term: e.term, index: e.index, kind: kind, data: e.data)
    }

    static func encode(_ s: Snapshot) -> RaftSnapshot {
        RaftSnapshot(
            index: s.metadata.index, term: s.metadata.term,
            confState: RaftConfState(voters: s.metadata.confState.voters, learners: s.metadata.confState.learners), data: s.data)
    }

    static func decode(_ s: RaftSnapshot) throws -> Snapshot {
        let conf = ConfState(voters: s.confState?.voters ?? [], learners: s.confState?.learners ?? [])
        return Snapshot(metadata: Snapshot.Metadata(index: s.index, term: s.term, confState: conf), data: s.data)
    }
}
