import Consensus
import GridClient
import GridProto
import GridTLS
import Identity
import Logging
import NIOCore
import NIOPosix
@testable import Node
import Synchronization
import Wire
import XCTest

/// Raft traffic between nodes over the TLS wire protocol (issue 4, "In the node"): messages
/// arrive in order, only members of the chain may send, hostile input is refused.
final class RaftTransportTests: XCTestCase {
    var pki: TestPKI!
    var group: MultiThreadedEventLoopGroup!
    var servers: [RPCServer] = []
    let inbox = Inbox()

    final class Inbox: Sendable {
        let messages = Mutex<[(String, Message)]>([])
        func add(_ chain: String, _ ms: [Message]) { messages.withLock { $0 += ms.map { (chain, $0) } } }
        var all: [(String, Message)] { messages.withLock { $0 } }
    }

    override func setUp() async throws {
        pki = try TestPKI()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() async throws {
        for s in servers { await s.shutdownGracefully() }
        try await group.shutdownGracefully()
        pki.remove()
    }

    static let d1 = MemberBinding(chainID: "d1", kind: .district)

    /// A registry of chain d1 whose members are `members` (node id → CN), not pinned.
    static func registry(_ members: [NodeID: String]) -> MemberRegistry {
        MemberRegistry(members.map { .init(id: $0.key, name: $0.value, address: "127.0.0.1:1") }, binding: d1) { _ in }
    }

    /// A peer of chain d1: member `id` with CN `name` at `address`.
    static func peer(_ id: NodeID, _ name: String, _ address: String) -> RaftTransport.Peer {
        .init(member: .init(id: id, name: name, address: address), binding: d1)
    }

    static func refusals() -> RefusalLog {
        var logger = Logger(label: "raft-test")
        logger.logLevel = .critical
        return RefusalLog(logger: logger)
    }

    private func serve(_ name: String, members: [NodeID: String]) async throws -> Int {
        let cert = try pki.issue(.node, name, district: "d1")
        var router = RPCRouter()
        let inbox = self.inbox
        let registry = Self.registry(members)
        RaftService(members: { $0 == "d1" ? registry : nil }, deliver: { inbox.add($0, $1) }, refusals: Self.refusals()).register(in: &router)
        var logger = Logger(label: "raft-test")
        logger.logLevel = .critical
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: cert.cert, privateKeyPath: cert.key, trustRootPath: pki.caCert), mode: .server)
        let server = RPCServer(group: group, tls: tls, router: router, configuration: RPCServerConfiguration(), logger: logger)
        servers.append(server)
        return try await server.start(host: "127.0.0.1", port: 0).port!
    }

    private func transport(as name: String, role: Role = .node, unreachable: @escaping @Sendable (NodeID) -> Void = { _ in }) throws -> RaftTransport {
        let cert = try pki.issue(role, name, district: "d1")
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: cert.cert, privateKeyPath: cert.key, trustRootPath: pki.caCert), mode: .client)
        var logger = Logger(label: "raft-test")
        logger.logLevel = .critical
        return RaftTransport(chainID: "d1", tls: tls, group: group, logger: logger, onUnreachable: unreachable)
    }

    private func waitFor(_ count: Int) async {
        let end = ContinuousClock.now + .seconds(10)
        while inbox.all.count < count, ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
    }

    func testMessagesArriveInOrderWithEntries() async throws {
        let port = try await serve("n2", members: [1: "n1", 2: "n2"])
        let t = try transport(as: "n1")
        t.setPeers([2: Self.peer(2, "n2", "127.0.0.1:\(port)")])
        var sent: [Message] = []
        for i in 0..<300 {
            let entries = i % 10 == 0 ? [Entry(term: 3, index: UInt64(i), data: Array(repeating: UInt8(i & 0xff), count: 1000))] : []
            sent.append(Message(kind: .append, from: 1, to: 2, term: 3, logTerm: 3, index: UInt64(i), entries: entries, commit: UInt64(i)))
        }
        for chunk in stride(from: 0, to: sent.count, by: 7) { t.send(Array(sent[chunk..<min(chunk + 7, sent.count)])) }
        await waitFor(300)
        XCTAssertEqual(inbox.all.map(\.1), sent)
        XCTAssertTrue(inbox.all.allSatisfy { $0.0 == "d1" })
        await t.stop()
    }

    /// Only members may speak for a chain: a node certificate whose name is not the
    /// member `from` claims is refused; the stream's messages are not delivered.
    func testNonMemberIsRefused() async throws {
        let port = try await serve("n2", members: [1: "n1", 2: "n2"])
        let unreachable = Mutex<Int>(0)
        let t = try transport(as: "intruder") { _ in unreachable.withLock { $0 += 1 } }
        t.setPeers([2: Self.peer(2, "n2", "127.0.0.1:\(port)")])
        // The refusal surfaces on a later send of the stream: keep sending heartbeats, as Raft does.
        let end = ContinuousClock.now + .seconds(10)
        repeat {
            t.send([Message(kind: .heartbeat, from: 1, to: 2, term: 9)])
            try await Task.sleep(for: .milliseconds(50))
        } while unreachable.withLock({ $0 }) == 0 && ContinuousClock.now < end
        XCTAssertTrue(inbox.all.isEmpty)
        XCTAssertGreaterThan(unreachable.withLock { $0 }, 0)
        await t.stop()
    }

    /// A collector (or any role but node) cannot call Raft.Send at all.
    func testWrongRoleIsPermissionDenied() async throws {
        let port = try await serve("n2", members: [1: "n1", 2: "n2"])
        let col = try pki.issue(.collector, "col1", district: "d1")
        let client = try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: col.cert, key: col.key, ca: pki.caCert)
        let call = try await client.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
        do {
            try? await call.send(RaftEnvelope(chainId: "d1", messages: [RaftCodec.encode(Message(kind: .heartbeat, from: 1, to: 2, term: 1))]))
            _ = try await call.finish()
            XCTFail("a collector must not send Raft messages")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        await client.close()
        XCTAssertTrue(inbox.all.isEmpty)
    }

    func testMalformedMessageIsInvalidArgumentAndNothingIsDelivered() async throws {
        let port = try await serve("n2", members: [1: "n1", 2: "n2"])
        let n1 = try pki.issue(.node, "n1", district: "d1")
        let client = try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: n1.cert, key: n1.key, ca: pki.caCert)
        let call = try await client.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
        var bogus = RaftCodec.encode(Message(kind: .heartbeat, from: 1, to: 2, term: 1))
        bogus.kind = 250
        do {
            try? await call.send(RaftEnvelope(chainId: "d1", messages: [bogus]))
            _ = try await call.finish()
            XCTFail("an unknown message kind must be refused")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .invalidArgument)
        }
        let unknownChain = try await client.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
        do {
            try? await unknownChain.send(RaftEnvelope(chainId: "d9", messages: []))
            _ = try await unknownChain.finish()
            XCTFail("an unknown chain must be refused")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound)
        }
        await client.close()
        XCTAssertTrue(inbox.all.isEmpty)
    }

    /// A peer that is down is reported unreachable, and traffic flows once it is up.
    func testReconnectsWhenThePeerComesUp() async throws {
        // A free port below the ephemeral range, so no outgoing connection takes it meanwhile.
        let port = try await NodeProcess.freePorts(1)[0]
        let unreachable = Mutex<Int>(0)
        let t = try transport(as: "n1") { _ in unreachable.withLock { $0 += 1 } }
        t.setPeers([2: Self.peer(2, "n2", "127.0.0.1:\(port)")])
        t.send([Message(kind: .heartbeat, from: 1, to: 2, term: 1)])
        let end = ContinuousClock.now + .seconds(10)
        while unreachable.withLock({ $0 }) == 0, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertGreaterThan(unreachable.withLock { $0 }, 0)

        // Now serve on that port.
        let cert = try pki.issue(.node, "n2", district: "d1")
        var router = RPCRouter()
        let inbox = self.inbox
        let registry = Self.registry([1: "n1", 2: "n2"])
        RaftService(members: { _ in registry }, deliver: { inbox.add($0, $1) }, refusals: Self.refusals()).register(in: &router)
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: cert.cert, privateKeyPath: cert.key, trustRootPath: pki.caCert), mode: .server)
        var logger = Logger(label: "raft-test")
        logger.logLevel = .critical
        let server = RPCServer(group: group, tls: tls, router: router, configuration: RPCServerConfiguration(), logger: logger)
        servers.append(server)
        _ = try await server.start(host: "127.0.0.1", port: port)
        t.send([Message(kind: .heartbeat, from: 1, to: 2, term: 2)])
        await waitFor(1)
        XCTAssertEqual(inbox.all.last?.1.term, 2)
        await t.stop()
    }

    /// Bounded memory: while a peer is unreachable its queue keeps at most the byte limit,
    /// dropping the oldest messages (Raft retransmits).
    func testQueueToAnUnreachablePeerIsBoundedInBytes() async throws {
        let cert = try pki.issue(.node, "n1", district: "d1")
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: cert.cert, privateKeyPath: cert.key, trustRootPath: pki.caCert), mode: .client)
        var logger = Logger(label: "raft-test")
        logger.logLevel = .critical
        let t = RaftTransport(chainID: "d1", tls: tls, group: group, logger: logger, queueBytesLimit: 1 << 20) { _ in }
        t.setPeers([2: Self.peer(2, "n2", "127.0.0.1:1")])
        let entry = Entry(term: 1, index: 1, data: Array(repeating: 7, count: 100_000))
        for i in 0..<50 {
            t.send([Message(kind: .append, from: 1, to: 2, term: 1, index: UInt64(i), entries: [entry])])
        }
        let dropped = t.droppedMessages[2] ?? 0
        XCTAssertGreaterThanOrEqual(dropped, 39, "50 messages of ~100 kB must not all be queued under a 1 MiB bound")
        await t.stop()
    }
}
