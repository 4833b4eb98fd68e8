import GridBase
import GridClient
import GridProto
import GridTLS
import Logging
import NIOCore
import Store
import Wire

/// Brings a follower up to a Raft snapshot by block transfer: the snapshot names a chain
/// height and block hash; the missing blocks are fetched from the leader with
/// `Query.GetBlock` and each is verified and applied exactly like a committed entry
/// (`Ledger.applyCommitted`), so a leader cannot hand over anything the follower would not
/// have accepted block by block.
///
/// ```
/// snapshot-data = height(u64 BE) block-hash(32)
/// ```
struct BlockTransfer: Sendable {
    let ledger: Ledger
    let members: @Sendable (UInt64) -> NodeConfiguration.Chain.Member?
    /// What the leader's server certificate must be.
    let binding: MemberBinding
    let tls: TLSContext
    let group: EventLoopGroup
    let logger: Logger

    static func snapshotData(_ head: ChainStore.Head?) -> [UInt8] {
        guard let head else { return [] }
        return BigEndianWriter.bytes(of: head.height) + head.hash
    }

    func catchUp(to data: [UInt8], from leader: UInt64) async throws {
        guard data.count == 40 else { throw StoreError.corrupt("raft snapshot data of \(data.count) bytes is not height + hash") }
        let height = BigEndianReader.integer(UInt64.self, exactly: data[0..<8])
        let hash = Array(data[8...])
        if let head = ledger.reader.head, head.height >= height {
            guard try ledger.blockHash(at: height) == hash else {
                throw StoreError.corrupt("snapshot names block \(hash.hex) at height \(height), this node stores another")
            }
            return
        }
        guard let member = members(leader) else { throw RPCError(.unavailable, "no leader to fetch blocks from") }
        let (host, port) = try HostPort.parse(member.address)
        let client = try await GridConnection.connect(host: host, port: port, tls: tls, serverName: host, group: group, logger: logger)
        defer { Task { await client.close() } }
        if let refusal = binding.mismatch(client.serverIdentity, member) {
            throw RPCError(.unavailable, "\(member.address) is not leader \(leader) (\(member.name)): \(refusal)")
        }
        let chain = ChainClient(client)
        var next = (ledger.reader.head?.height ?? 0) + 1
        logger.info("catching up by block transfer", metadata: ["from": "\(next)", "to": "\(height)", "leader": "\(member.name)"])
        while next <= height {
            let response = try await chain.block(at: next)
            guard let block = response.block else { throw StoreError.corrupt("leader sent no block \(next)") }
            try ledger.applyCommitted(block.serializedBytes())
            next += 1
        }
        guard try ledger.blockHash(at: height) == hash else {
            throw StoreError.corrupt("after block transfer, block \(height) differs from the snapshot's")
        }
    }
}
