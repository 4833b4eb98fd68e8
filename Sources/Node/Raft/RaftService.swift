import Consensus
import GridProto
import Wire

/// `/gridledger.Raft/Send`: the inbound side of Raft traffic between the nodes of a chain.
///
/// A peer keeps one client-streaming call open and sends `RaftEnvelope`s; the node answers
/// once, when the peer ends the stream. Only role `node` may call it, and only a member of the
/// named chain (checked against the chain's member list by certificate name and by the
/// message's `from`); anything else is refused with a status and logged by the RPC layer.
struct RaftService: Sendable {
    static let sendMethod = "/gridledger.Raft/Send"

    /// Who may send for a chain: node id → certificate CN, per chain id.
    let members: @Sendable (_ chainID: String) -> [NodeID: String]?
    /// Where decoded messages go (the chain's Raft driver).
    let deliver: @Sendable (_ chainID: String, _ messages: [Message]) -> Void

    func register(in router: inout RPCRouter) {
        let members = self.members
        let deliver = self.deliver
        router.clientStreaming(Self.sendMethod, roles: [.node]) { (envelopes: RequestStream<RaftEnvelope>, ctx) in
            var received: UInt64 = 0
            for try await envelope in envelopes {
                guard let chain = members(envelope.chainId) else {
                    throw RPCError(.notFound, "this node serves no chain \(Bounded.quote(envelope.chainId))")
                }
                var batch: [Message] = []
                batch.reserveCapacity(envelope.messages.count)
                for raw in envelope.messages {
                    let message: Message
                    do {
                        message = try RaftCodec.decode(raw)
                    } catch {
                        throw RPCError(.invalidArgument, "\(error)")
                    }
                    // A forwarded leadership transfer names the transferee as `from` (etcd's
                    // convention), so for it the caller need only be some member.
                    let authentic = message.kind == .transferLeader
                        ? chain.values.contains(ctx.peer.name)
                        : chain[message.from] == ctx.peer.name
                    guard authentic else {
                        throw RPCError(.permissionDenied, "node \(ctx.peer.name) is not member \(message.from) of chain \(Bounded.quote(envelope.chainId))")
                    }
                    batch.append(message)
                }
                received += UInt64(batch.count)
                deliver(envelope.chainId, batch)
            }
            return RaftSendAck(received: received)
        }
    }
}
