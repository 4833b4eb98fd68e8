import Consensus
import GridClient
import GridProto
import GridTLS
import Logging
import NIOCore
import Synchronization
import Wire

/// The outbound side of Raft traffic: one long-lived `Raft.Send` stream per peer, over
/// mutual TLS with the node's own certificate.
///
/// `send` never blocks: messages go into a bounded queue per peer (`queueLimit` messages and
/// `queueBytesLimit` bytes of entries; beyond either the oldest are dropped and counted —
/// Raft retransmits what is lost). A peer
/// sender connects lazily, reconnects with backoff after any failure, and reports the peer
/// unreachable through `onUnreachable` so the Raft core can slow down its probes.
///
/// Thread safety: all members are thread-safe; queues are behind mutexes.
final class RaftTransport: RaftNetwork {
    /// A member to talk to, and what its server certificate must be (`MemberBinding`): this
    /// node sends its Raft traffic to nobody else.
    struct Peer: Sendable, Equatable {
        var member: NodeConfiguration.Chain.Member
        var binding: MemberBinding
        var address: String { member.address }
    }

    private final class PeerQueue: Sendable {
        let peer: Peer
        let state = Mutex<(messages: [Message], bytes: Int, waiter: CheckedContinuation<Void, Never>?, stopped: Bool, dropped: UInt64)>(([], 0, nil, false, 0))
        init(peer: Peer) { self.peer = peer }
    }

    let chainID: String
    private let tls: TLSContext
    private let group: EventLoopGroup
    private let logger: Logger
    private let queueLimit: Int
    private let queueBytesLimit: Int
    private let onUnreachable: @Sendable (NodeID) -> Void
    private let queues = Mutex<[NodeID: PeerQueue]>([:])
    private let tasks = Mutex<[NodeID: Task<Void, Never>]>([:])

    init(chainID: String, tls: TLSContext, group: EventLoopGroup, logger: Logger, queueLimit: Int = 4096,
         queueBytesLimit: Int = 64 << 20, onUnreachable: @escaping @Sendable (NodeID) -> Void) {
        self.queueBytesLimit = queueBytesLimit
        self.chainID = chainID
        self.tls = tls
        self.group = group
        self.logger = logger
        self.queueLimit = queueLimit
        self.onUnreachable = onUnreachable
    }

    /// Sets the peers to talk to; senders for removed peers stop, new ones start.
    func setPeers(_ peers: [NodeID: Peer]) {
        let (added, removed): ([(NodeID, PeerQueue)], [PeerQueue]) = queues.withLock { q in
            var removed: [PeerQueue] = []
            for (id, queue) in q where peers[id] != queue.peer {
                removed.append(queue)
                q.removeValue(forKey: id)
            }
            var added: [(NodeID, PeerQueue)] = []
            for (id, peer) in peers where q[id] == nil {
                let queue = PeerQueue(peer: peer)
                q[id] = queue
                added.append((id, queue))
            }
            return (added, removed)
        }
        for queue in removed { stop(queue) }
        for (id, queue) in added {
            let task = Task { await self.runSender(id: id, queue: queue) }
            tasks.withLock { $0[id] = task }
        }
    }

    /// Queues messages for their peers (messages to unknown peers are dropped).
    func send(_ messages: [Message]) {
        var byPeer: [NodeID: [Message]] = [:]
        for m in messages { byPeer[m.to, default: []].append(m) }
        let targets = queues.withLock { q in byPeer.keys.compactMap { id in q[id].map { (id, $0) } } }
        for (id, queue) in targets {
            let wake = queue.state.withLock { s -> CheckedContinuation<Void, Never>? in
                for m in byPeer[id]! {
                    s.messages.append(m)
                    s.bytes += Self.size(m)
                }
                var excess = 0
                while s.messages.count - excess > queueLimit || (s.bytes > queueBytesLimit && s.messages.count - excess > 1) {
                    s.bytes -= Self.size(s.messages[excess])
                    excess += 1
                }
                if excess > 0 {
                    s.messages.removeFirst(excess)
                    s.dropped += UInt64(excess)
                }
                defer { s.waiter = nil }
                return s.waiter
            }
            wake?.resume()
        }
    }

    private static func size(_ m: Message) -> Int {
        m.entries.reduce(64) { $0 + $1.data.count + 24 } + (m.snapshot?.data.count ?? 0)
    }

    /// Messages dropped because a peer's queue was full, per peer.
    var droppedMessages: [NodeID: UInt64] {
        queues.withLock { q in q.mapValues { $0.state.withLock { $0.dropped } } }
    }

    func stop() async {
        let all = queues.withLock { q in defer { q.removeAll() }; return Array(q.values) }
        for queue in all { stop(queue) }
        let running = tasks.withLock { t in defer { t.removeAll() }; return Array(t.values) }
        for task in running {
            task.cancel()
            await task.value
        }
    }

    private func stop(_ queue: PeerQueue) {
        let wake = queue.state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.stopped = true
            defer { s.waiter = nil }
            return s.waiter
        }
        wake?.resume()
    }

    /// Takes every queued message, waiting for at least one; nil once stopped.
    private func next(_ queue: PeerQueue) async -> [Message]? {
        while true {
            let taken: [Message]?? = queue.state.withLock { s in
                if s.stopped { return .some(nil) }
                if s.messages.isEmpty { return nil }
                defer {
                    s.messages.removeAll(keepingCapacity: true)
                    s.bytes = 0
                }
                return .some(s.messages)
            }
            if let taken { return taken }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = queue.state.withLock { s -> Bool in
                    if s.stopped || !s.messages.isEmpty { return true }
                    s.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
    }

    private func runSender(id: NodeID, queue: PeerQueue) async {
        var backoff = Duration.milliseconds(50)
        var lastImpostorWarning: ContinuousClock.Instant?
        while !Task.isCancelled {
            do {
                let (host, port) = try HostPort.parse(queue.peer.address)
                let client = try await GridConnection.connect(
                    host: host, port: port, tls: tls, serverName: host, group: group, connectTimeout: .seconds(2), logger: logger)
                defer { Task { await client.close() } }
                if let refusal = queue.peer.binding.mismatch(client.serverIdentity, queue.peer.member) {
                    let server = client.serverIdentity
                    if lastImpostorWarning.map({ ContinuousClock.now - $0 > .seconds(10) }) ?? true {
                        lastImpostorWarning = .now
                        logger.warning("raft peer refused: not the member", metadata: [
                            "chain": "\(chainID)", "member": "\(id)", "address": "\(queue.peer.address)", "peer": "\(server.name)",
                            "district": "\(server.district ?? "(none)")", "key": "sha256:\(MemberBinding.prefix(server.publicKeySHA256))",
                            "reason": "\(refusal)",
                        ])
                    }
                    throw RPCError(.permissionDenied, "\(queue.peer.address) is not member \(id) of \(chainID): \(refusal)")
                }
                let call = try await ChainClient(client).raftSend()
                backoff = .milliseconds(50)
                while let batch = await next(queue) {
                    try await call.send(RaftEnvelope(chainId: chainID, messages: batch.map(RaftCodec.encode)))
                }
                _ = try? await call.finish()
                return
            } catch {
                if Task.isCancelled { return }
                logger.debug("raft peer unreachable", metadata: ["peer": "\(id)", "error": "\(error)"])
                onUnreachable(id)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }
}
