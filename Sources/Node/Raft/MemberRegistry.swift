import Consensus
import GridProto
import Identity
import Synchronization
import Wire

/// Who the members of a chain's Raft group are and how to reach them: node id → certificate
/// CN, key pin and address. Starts from the configuration and follows `MemberRecord` entries
/// as they are applied, so a member added at run time is known to everyone. Peers are
/// matched to members through `binding` (`MemberBinding`), never by name alone.
///
/// Thread safety: behind a mutex; `onChange` runs after each change, outside the lock.
final class MemberRegistry: Sendable {
    typealias Member = NodeConfiguration.Chain.Member

    /// The prefix byte of a `MemberRecord` entry (a block never starts with it: a serialized
    /// `Block` starts with the tag of field 1).
    static let recordPrefix: UInt8 = 0x00

    private let members: Mutex<[NodeID: Member]>
    private let onChange: @Sendable ([NodeID: Member]) -> Void

    let binding: MemberBinding

    init(_ initial: [Member], binding: MemberBinding, onChange: @escaping @Sendable ([NodeID: Member]) -> Void) {
        members = Mutex(Dictionary(uniqueKeysWithValues: initial.map { ($0.id, $0) }))
        self.binding = binding
        self.onChange = onChange
    }

    var all: [NodeID: Member] { members.withLock { $0 } }

    func member(_ id: NodeID) -> Member? { members.withLock { $0[id] } }

    /// The members `peer` is (normally one); empty for a peer that is none of them.
    func memberIDs(of peer: PeerIdentity) -> [NodeID] {
        members.withLock { m in m.values.filter { binding.mismatch(peer, $0) == nil }.map(\.id).sorted() }
    }

    /// Why `peer` is none of the members (for refusals): the first binding rule it breaks.
    func whyNotMember(_ peer: PeerIdentity) -> String {
        if let refusal = binding.nodeMismatch(peer) { return refusal }
        let sameName = all.values.sorted { $0.id < $1.id }.first { $0.name == peer.name }
        if let sameName, let refusal = binding.mismatch(peer, sameName) { return refusal }
        return "no member has CN \(peer.name)"
    }

    static func entry(_ record: MemberRecord) -> [UInt8] {
        [recordPrefix] + record.serializedBytes()
    }

    static func isRecord(_ data: [UInt8]) -> Bool { data.first == recordPrefix }

    /// Applies a committed `MemberRecord` entry.
    func apply(_ data: [UInt8]) throws {
        let record = try MemberRecord(serializedBytes: Array(data.dropFirst()))
        let snapshot: [NodeID: Member] = members.withLock { m in
            if record.removed {
                m.removeValue(forKey: record.nodeId)
            } else {
                // Stored pins are normalized by Admin.AddMember; one that is not (a hostile or
                // damaged record) cannot match any key, so it binds nobody.
                m[record.nodeId] = Member(id: record.nodeId, name: record.name, address: record.address, publicKeySHA256: record.publicKeySha256)
            }
            return m
        }
        onChange(snapshot)
    }
}
