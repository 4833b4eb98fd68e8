import GridBase
import Consensus
import GridClient
import GridProto
import Wire

/// `/gridledger.Raft/Send`: the inbound side of Raft traffic between the nodes of a chain.
///
/// A peer keeps one client-streaming call open and sends `RaftEnvelope`s; the node answers
/// once, when the peer ends the stream. Only role `node` may call it, and only a member of the
/// named chain: the caller's certificate must be bound to a member (`MemberBinding`: role,
/// the chain's district, CN, and the pinned key), and every message's `from` must be that
/// member. Anything else is refused with `PERMISSION_DENIED` before any message of the
/// envelope is delivered, and logged (rate limited) by `refusals`.
struct RaftService: Sendable {
    /// The member registry of a chain id; nil for a chain this node does not order by Raft.
    let members: @Sendable (_ chainID: String) -> MemberRegistry?
    /// Where decoded messages go (the chain's Raft driver).
    let deliver: @Sendable (_ chainID: String, _ messages: [Message]) -> Void
    let refusals: RefusalLog

    func register(in router: inout RPCRouter) {
        let members = self.members
        let deliver = self.deliver
        let refusals = self.refusals
        router.clientStreaming(GridMethod.Raft.send, roles: [.node]) { (envelopes: RequestStream<RaftEnvelope>, ctx) in
            var received: UInt64 = 0
            for try await envelope in envelopes {
                guard let registry = members(envelope.chainId) else {
                    throw RPCError(.notFound, "this node serves no chain \(Bounded.quote(envelope.chainId))")
                }
                let chain = RefusalLog.clip(envelope.chainId)
                // Who the caller is in this chain, by certificate (normally one member).
                let callerIDs = registry.memberIDs(of: ctx.peer)
                guard !callerIDs.isEmpty else {
                    throw refusals.refuse(ctx.peer, method: ctx.method,
                                          "node \(ctx.peer.name) is not a member of chain \(chain): \(registry.whyNotMember(ctx.peer))")
                }
                var batch: [Message] = []
                batch.reserveCapacity(envelope.messages.count)
                for raw in envelope.messages {
                    let message: Message
                    do {
                        message = try RaftCodec.decode(raw)
                    } catch {
                        throw RPCError(.invalidArgument, RefusalLog.clip("\(error)", maxBytes: 256))
                    }
                    // A forwarded leadership transfer names the transferee as `from` (etcd's
                    // convention), so for it the caller need only be some member.
                    guard message.kind == .transferLeader || callerIDs.contains(message.from) else {
                        throw refusals.refuse(ctx.peer, method: ctx.method,
                                              "node \(ctx.peer.name) is member \(callerIDs.map(String.init).joined(separator: ",")) of chain \(chain), not member \(message.from)")
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
