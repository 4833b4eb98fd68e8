import Chain
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
        let (height, hash) = try Self.decode(data)
        guard try !Self.reached(height: height, hash: hash, by: ledger) else { return }
        guard let member = members(leader) else { throw SnapshotSourceUnavailable(reason: "no known leader to fetch blocks from") }
        let client: RPCClient
        do {
            let (host, port) = try HostPort.parse(member.address)
            client = try await GridConnection.connect(host: host, port: port, tls: tls, serverName: host, group: group, logger: logger)
        } catch {
            throw SnapshotSourceUnavailable(reason: "cannot reach leader \(leader) at \(member.address): \(error)")
        }
        defer { Task { await client.close() } }
        if let refusal = binding.mismatch(client.serverIdentity, member) {
            throw SnapshotSourceUnavailable(reason: "\(member.address) is not leader \(leader) (\(member.name)): \(refusal)")
        }
        let chain = ChainClient(client)
        logger.info("catching up by block transfer", metadata: ["from": "\((ledger.reader.head?.height ?? 0) + 1)", "to": "\(height)", "leader": "\(member.name)"])
        try await Self.apply(upTo: height, hash: hash, to: ledger) { try await chain.block(at: $0).block }
    }

    /// Whether `ledger` already holds the snapshot's block: true when its head is at or past
    /// `height` and the block there is `hash`; throws when it holds another block there.
    static func reached(height: UInt64, hash: [UInt8], by ledger: Ledger) throws -> Bool {
        guard let head = ledger.reader.head, head.height >= height else { return false }
        guard try ledger.blockHash(at: height) == hash else {
            throw StoreError.corrupt("snapshot names block \(hash.hex) at height \(height), this node stores another")
        }
        return true
    }

    /// Fetches the blocks after `ledger`'s head up to `height` with `fetch` and applies each
    /// exactly like a committed entry; the block at `height` must then be `hash`. A fetch
    /// that fails is `SnapshotSourceUnavailable` (retried later: the blocks applied so far
    /// are verified and stay); a block that fails verification halts the replica. The one
    /// catch-up loop of the node (over `Query.GetBlock`) and of the simulated cluster (over
    /// another replica's store).
    static func apply(upTo height: UInt64, hash: [UInt8], to ledger: Ledger,
                      fetch: (UInt64) async throws -> Block?) async throws {
        var next = (ledger.reader.head?.height ?? 0) + 1
        while next <= height {
            let fetched: Block?
            do {
                fetched = try await fetch(next)
            } catch {
                throw SnapshotSourceUnavailable(reason: "fetching block \(next): \(error)")
            }
            guard let block = fetched else { throw SnapshotSourceUnavailable(reason: "the leader has no block \(next)") }
            try ledger.applyCommitted(block.serializedBytes())
            next += 1
        }
        guard try ledger.blockHash(at: height) == hash else {
            throw StoreError.corrupt("after block transfer, block \(height) differs from the snapshot's")
        }
    }

    /// Splits snapshot data into the height and block hash it names.
    static func decode(_ data: [UInt8]) throws -> (height: UInt64, hash: [UInt8]) {
        guard data.count == 40 else { throw StoreError.corrupt("raft snapshot data of \(data.count) bytes is not height + hash") }
        return (BigEndianReader.integer(UInt64.self, exactly: data[0..<8]), Array(data[8...]))
    }
}
