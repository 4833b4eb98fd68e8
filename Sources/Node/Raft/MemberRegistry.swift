import Consensus
import GridProto
import Synchronization

/// Who the members of a chain's Raft group are and how to reach them: node id → certificate
/// CN and address. Starts from the configuration and follows `MemberRecord` entries as they
/// are applied, so a member added at run time is known to everyone.
///
/// Thread safety: behind a mutex; `onChange` runs after each change, outside the lock.
final class MemberRegistry: Sendable {
    typealias Member = NodeConfiguration.Chain.Member

    /// The prefix byte of a `MemberRecord` entry (a block never starts with it: a serialized
    /// `Block` starts with the tag of field 1).
    static let recordPrefix: UInt8 = 0x00

    private let members: Mutex<[NodeID: Member]>
    private let onChange: @Sendable ([NodeID: Member]) -> Void

    init(_ initial: [Member], onChange: @escaping @Sendable ([NodeID: Member]) -> Void) {
        members = Mutex(Dictionary(uniqueKeysWithValues: initial.map { ($0.id, $0) }))
        self.onChange = onChange
    }

    var all: [NodeID: Member] { members.withLock { $0 } }

    func member(_ id: NodeID) -> Member? { members.withLock { $0[id] } }

    var names: [NodeID: String] { members.withLock { $0.mapValues(\.name) } }

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
                m[record.nodeId] = Member(id: record.nodeId, name: record.name, address: record.address)
            }
            return m
        }
        onChange(snapshot)
    }
}
