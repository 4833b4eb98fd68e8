import GridClient
import GridProto
import GridTLS
import Logging
import NIOCore
import Synchronization
import Wire

/// Sends a follower's submissions to the chain's leader (`Ingest.Submit`, as role `node`),
/// keeping one connection per member and dropping it after a failure.
///
/// Thread safety: the connection cache is behind a mutex.
final class LeaderForwarder: Sendable {
    private let members: @Sendable (UInt64) -> NodeConfiguration.Chain.Member?
    /// What the leader's server certificate must be: submissions go to no impostor.
    private let binding: MemberBinding
    private let tls: TLSContext
    private let group: EventLoopGroup
    private let logger: Logger
    private let clients = Mutex<[UInt64: RPCClient]>([:])

    init(members: @escaping @Sendable (UInt64) -> NodeConfiguration.Chain.Member?, binding: MemberBinding, tls: TLSContext, group: EventLoopGroup, logger: Logger) {
        self.members = members
        self.binding = binding
        self.tls = tls
        self.group = group
        self.logger = logger
    }

    func submit(_ transaction: SignedTransaction, to leader: UInt64) async throws -> SubmitResponse {
        guard let member = members(leader) else { throw RPCError(.unavailable, "leader \(leader) is not a known member") }
        let client: RPCClient
        if let cached = clients.withLock({ $0[leader] }), cached.channel.isActive {
            client = cached
        } else {
            let (host, port) = try HostPort.parse(member.address)
            do {
                client = try await GridConnection.connect(host: host, port: port, tls: tls, serverName: host, group: group, connectTimeout: .seconds(2), logger: logger)
            } catch {
                throw RPCError(.unavailable, "cannot reach leader \(member.name) at \(member.address): \(error)")
            }
            if let refusal = binding.mismatch(client.serverIdentity, member) {
                await client.close()
                throw RPCError(.unavailable, "\(member.address) is not leader \(leader) (\(member.name)): \(refusal)")
            }
            clients.withLock { $0[leader] = client }
        }
        do {
            return try await ChainClient(client).submit(transaction, timeout: .seconds(30))
        } catch let error as RPCError where error.code == .unavailable {
            clients.withLock { _ = $0.removeValue(forKey: leader) }
            throw error
        }
    }
}
