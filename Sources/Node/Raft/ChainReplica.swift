import Chain
import Consensus

/// One member's replica of a chain as its Raft group's state machine. A committed entry is
/// either a member record (`MemberRegistry.isRecord`: the registry applies it) or a block
/// (the ledger re-verifies and stores it, `Ledger.applyCommitted`); a snapshot names the
/// chain's head, and installing one fetches and verifies the blocks up to it from the leader
/// (`BlockTransfer`).
final class ChainReplica: RaftStateMachine {
    let ledger: Ledger
    let registry: MemberRegistry
    private let transfer: BlockTransfer

    init(ledger: Ledger, registry: MemberRegistry, transfer: BlockTransfer) {
        self.ledger = ledger
        self.registry = registry
        self.transfer = transfer
    }

    func apply(_ entry: Entry) throws {
        if MemberRegistry.isRecord(entry.data) {
            try registry.apply(entry.data)
        } else {
            try ledger.applyCommitted(entry.data)
        }
    }

    func snapshotData() -> [UInt8] {
        BlockTransfer.snapshotData(ledger.reader.head)
    }

    func install(_ snapshot: Snapshot, from leader: NodeID) async throws {
        try await transfer.catchUp(to: snapshot.data, from: leader)
    }
}
