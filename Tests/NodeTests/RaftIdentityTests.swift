import Consensus
import Foundation
import GridBase
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

/// Issue 11, item 1: Raft members are bound to their certificate's district and key, never
/// to a name. Reproduces the attack (a node certificate of district d2 whose CN is a d1
/// member's name, a high-term heartbeat and a forged append with a garbage entry), then the
/// same-district impostor with another key, and the outbound side (a node does not talk Raft
/// to an impostor server).
final class RaftIdentityTests: XCTestCase {
    typealias Member = NodeConfiguration.Chain.Member

    var pki: TestPKI!
    var nodes: [GridNode] = []
    var ports: [Int] = []
    var logs: CapturedLogs!

    override func setUp() async throws {
        pki = try TestPKI()
        logs = CapturedLogs()
    }

    override func tearDown() async throws {
        for node in nodes { await node.stop() }
        nodes = []
        pki.remove()
    }

    // MARK: A three-member chain d1, in process

    private func startChain(pinned: Bool) async throws {
        ports = try await NodeProcess.freePorts(3)
        let certs = try (1...3).map { try pki.issue(.node, "d1-n\($0)", district: "d1") }
        let members = try (1...3).map { i in
            Member(id: UInt64(i), name: "d1-n\(i)", address: "127.0.0.1:\(ports[i - 1])",
                   publicKeySHA256: pinned ? try Member.pin(ofCertificate: certs[i - 1].cert) : "")
        }
        for i in 1...3 {
            var c = pki.loopbackNode(certs[i - 1], dataDir: pki.dir + "/data\(i)")
            c.listen = "127.0.0.1:\(ports[i - 1])"
            c.rpc.threads = 1
            c.chain.id = "d1"
            c.chain.raftID = UInt64(i)
            c.chain.members = members
            c.chain.maxBlockDelayMs = 5
            let node = try GridNode(configuration: c, logger: logs.logger())
            _ = try await node.start()
            nodes.append(node)
        }
    }

    private func raftStatus(_ i: Int) -> RaftDriver.Status? { nodes[i].chainSet.runtime("d1")?.raft?.driver.status }

    /// Polls (up to 20 s) until one leader is known to all three; returns its index.
    private func stableLeader() async throws -> Int {
        let end = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < end {
            let statuses = (0..<3).compactMap(raftStatus)
            if statuses.count == 3, let leader = statuses.first(where: { $0.role == .leader }),
               statuses.allSatisfy({ $0.leader == leader.id && $0.term == leader.term }) {
                return Int(leader.id) - 1
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("no stable leader; log:\n\(logs.all.suffix(30).joined(separator: "\n"))")
        throw CancellationError()
    }

    /// A node certificate outside the chain's member list, in its own directory.
    private func impostor(_ name: String, district: String?, _ tag: String) throws -> (cert: String, key: String) {
        let issued = try PKI.issue(caDirectory: pki.caDir, role: .node, name: name, district: district, days: 30, outDirectory: pki.dir + "/impostor-" + tag)
        return (issued.certificatePath, issued.privateKeyPath)
    }

    /// Sends `messages` for chain d1 on one `Raft.Send` stream; returns the status code.
    private func send(_ messages: [Message], as party: (cert: String, key: String), to port: Int) async throws -> StatusCode {
        let client = try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: party.cert, key: party.key, ca: pki.caCert)
        defer { Task { await client.close() } }
        let call = try await client.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
        do {
            try? await call.send(RaftEnvelope(chainId: "d1", messages: messages.map(RaftCodec.encode)))
            _ = try await call.finish()
            return .ok
        } catch let error as RPCError {
            return error.code
        }
    }

    /// The heartbeat at a high term and the forged append with a garbage entry, sent by
    /// `party` as the leader to a follower; then checks nothing moved and the follower
    /// keeps applying.
    private func attack(as party: (cert: String, key: String), leader: Int, expectReason: String) async throws {
        let follower = (0..<3).first { $0 != leader }!
        let before = try XCTUnwrap(raftStatus(follower))
        let leaderID = NodeID(leader + 1), followerID = NodeID(follower + 1)

        let heartbeat = Message(kind: .heartbeat, from: leaderID, to: followerID, term: before.term + 100, commit: before.commit)
        let heartbeatCode = try await send([heartbeat], as: party, to: ports[follower])
        XCTAssertEqual(heartbeatCode, .permissionDenied)

        let garbage = Entry(term: before.term, index: before.lastIndex + 1, data: Array("not a block".utf8))
        let append = Message(kind: .append, from: leaderID, to: followerID, term: before.term, logTerm: before.term,
                             index: before.lastIndex, entries: [garbage], commit: before.lastIndex + 1)
        let appendCode = try await send([append], as: party, to: ports[follower])
        XCTAssertEqual(appendCode, .permissionDenied)

        // The refusal is logged with the peer's identity, the method and the reason.
        let end = ContinuousClock.now + .seconds(5)
        while !logs.contains("security refusal"), ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(10)) }
        let line = logs.all.first { $0.contains("security refusal") } ?? ""
        XCTAssertTrue(line.contains("method=/gridledger.Raft/Send"), line)
        XCTAssertTrue(line.contains(expectReason), line)
        XCTAssertTrue(line.contains("key=sha256:"), line)
        // Rate limited per peer: the second refusal, within seconds, added no line.
        XCTAssertEqual(logs.all.filter { $0.contains("security refusal") }.count, 1, logs.all.joined(separator: "\n"))

        // The term did not move anywhere, and the follower still applies what the leader commits.
        for i in 0..<3 { XCTAssertEqual(raftStatus(i)?.term, before.term, "node \(i + 1)'s term moved") }
        let collector = try pki.issue(.collector, "col1", district: "d1")
        let signer = try TransactionSigner(certificatePath: collector.cert, keyPath: collector.key)
        let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "after-attack", readings: [
            Reading(meterId: "m1", timestampMs: 1_700_000_000_000, energyTotal: 42),
        ]))
        // Through the follower: it forwards to the leader as a node of d1 (the carrier rule lets it).
        let client = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(ports[follower])", certificate: collector.cert, key: collector.key, ca: pki.caCert))
        defer { Task { await client.rpc.close() } }
        let response = try await client.submitReadings(tx, chain: "d1")
        let height = try XCTUnwrap(response.location?.height)
        let applied = ContinuousClock.now + .seconds(10)
        while (try nodes[follower].head(chain: "d1")?.height ?? 0) < height, ContinuousClock.now < applied {
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertGreaterThanOrEqual(try nodes[follower].head(chain: "d1")?.height ?? 0, height)
        XCTAssertNil(raftStatus(follower)?.halted)
    }

    /// The attack of issue 11: a d2 node certificate whose CN is the d1 leader's name. The
    /// district binding refuses it even when no key is pinned.
    func testNodeOfAnotherDistrictWithAMembersNameIsRefused() async throws {
        try await startChain(pinned: false)
        let leader = try await stableLeader()
        let intruder = try impostor("d1-n\(leader + 1)", district: "d2", "d2")
        try await attack(as: intruder, leader: leader, expectReason: "certificate names district d2")
        // The start warned that the members are not pinned.
        XCTAssertTrue(logs.contains("raft members without a key pin"))
    }

    /// With pins, a d1 node certificate with the leader's CN but another key is refused too.
    func testSameDistrictAndNameButAnotherKeyIsRefusedWhenPinned() async throws {
        try await startChain(pinned: true)
        let leader = try await stableLeader()
        let intruder = try impostor("d1-n\(leader + 1)", district: "d1", "d1")
        try await attack(as: intruder, leader: leader, expectReason: "is not member \(leader + 1)'s pinned key")
        XCTAssertFalse(logs.contains("raft members without a key pin"))
    }

    /// A real member may not speak as another member either.
    func testMemberMayNotSpeakForAnotherMember() async throws {
        try await startChain(pinned: true)
        let leader = try await stableLeader()
        let follower = (0..<3).first { $0 != leader }!
        let other = (0..<3).first { $0 != leader && $0 != follower }!
        let otherCert = (cert: pki.dir + "/d1-n\(other + 1)/d1-n\(other + 1).crt", key: pki.dir + "/d1-n\(other + 1)/d1-n\(other + 1).key")
        let term = try XCTUnwrap(raftStatus(follower)).term
        let forged = Message(kind: .heartbeat, from: NodeID(leader + 1), to: NodeID(follower + 1), term: term + 100)
        let code = try await send([forged], as: otherCert, to: ports[follower])
        XCTAssertEqual(code, .permissionDenied)
        XCTAssertEqual(raftStatus(follower)?.term, term)
    }

    /// Anchor.Sign binds members the same way.
    func testAnchorSignRefusesAnImpostor() async throws {
        try await startChain(pinned: true)
        _ = try await stableLeader()
        let sign = AnchorSignRequest(chainId: "d1", fromHeight: 1, toHeight: 1, lastHeaderHash: [], headersRoot: [], summary: [])
        func code(_ party: (cert: String, key: String)) async throws -> StatusCode {
            let client = try await GridConnection.connect(to: "127.0.0.1:\(ports[0])", certificate: party.cert, key: party.key, ca: pki.caCert)
            defer { Task { await client.close() } }
            do {
                _ = try await client.unary(GridMethod.Anchor.sign, sign, as: AnchorSignResponse.self)
                return .ok
            } catch let error as RPCError {
                return error.code
            }
        }
        let otherDistrict = try await code(try impostor("d1-n2", district: "d2", "d2"))
        XCTAssertEqual(otherDistrict, .permissionDenied)
        let otherKey = try await code(try impostor("d1-n2", district: "d1", "d1"))
        XCTAssertEqual(otherKey, .permissionDenied)
        // The real member passes the membership check (the chain does not anchor: FAILED_PRECONDITION).
        let member = try await code((pki.dir + "/d1-n2/d1-n2.crt", pki.dir + "/d1-n2/d1-n2.key"))
        XCTAssertEqual(member, .failedPrecondition)
    }

    /// Refusal texts are bounded: an oversized chain id is cut before it goes into a status
    /// or a log line; lines are rate limited per peer, not globally.
    func testRefusalTextsAreBoundedAndLinesRateLimitedPerPeer() async throws {
        XCTAssertLessThanOrEqual(RefusalLog.clip(String(repeating: "é", count: 20_000)).utf8.count, RefusalLog.maxTextBytes + 3)
        XCTAssertEqual(RefusalLog.clip("short"), "short")
        try await startChain(pinned: true)
        _ = try await stableLeader()
        let intruder = try impostor("d1-n1", district: "d2", "d2")
        let client = try await GridConnection.connect(to: "127.0.0.1:\(ports[0])", certificate: intruder.cert, key: intruder.key, ca: pki.caCert)
        defer { Task { await client.close() } }
        let call = try await client.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
        do {
            try? await call.send(RaftEnvelope(chainId: String(repeating: "x", count: 20_000), messages: []))
            _ = try await call.finish()
            XCTFail("an unknown chain must be refused")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound)
            XCTAssertLessThan(error.message.utf8.count, 256, "status message of \(error.message.utf8.count) bytes")
        }
        let log = RefusalLog(logger: logs.logger(), interval: .seconds(60))
        let a = PeerIdentity(name: "a", role: .node, district: "d2", serial: "01")
        let b = PeerIdentity(name: "b", role: .node, district: "d2", serial: "02")
        for _ in 0..<5 { _ = log.refuse(a, method: "/m", "no") }
        _ = log.refuse(b, method: "/m", String(repeating: "r", count: 10_000))
        let lines = logs.all.filter { $0.contains("security refusal") && $0.contains("method=/m") }
        XCTAssertEqual(lines.count, 2, lines.joined(separator: "\n"))
        XCTAssertLessThan(lines.map(\.utf8.count).max() ?? 0, 1024)
    }

    // MARK: Configuration

    func testMemberFlagTakesAKeyPinOrACertificate() throws {
        let cert = try pki.issue(.node, "d1-n1", district: "d1")
        let pin = try Member.pin(ofCertificate: cert.cert)
        XCTAssertEqual(pin.count, 64)
        XCTAssertEqual(try Member(parsing: "1=d1-n1@127.0.0.1:7443#sha256:\(pin.uppercased())").publicKeySHA256, pin)
        XCTAssertEqual(try Member(parsing: "1=d1-n1@127.0.0.1:7443#cert:\(cert.cert)").publicKeySHA256, pin)
        XCTAssertEqual(try Member(parsing: "1=d1-n1@127.0.0.1:7443").publicKeySHA256, "")
        XCTAssertThrowsError(try Member(parsing: "1=other@127.0.0.1:7443#cert:\(cert.cert)"))
        XCTAssertThrowsError(try Member(parsing: "1=d1-n1@127.0.0.1:7443#sha256:abc"))
        XCTAssertThrowsError(try Member(parsing: "1=d1-n1@127.0.0.1:7443#\(String(repeating: "z", count: 64))"))
        let yaml = """
            chain:
              raft_id: 1
              members:
                - {id: 1, name: d1-n1, address: "127.0.0.1:7443", public_key_sha256: "sha256:\(pin)"}
                - {id: 2, name: d1-n2, address: "127.0.0.1:7444"}
            """
        let path = pki.dir + "/members.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try NodeConfiguration.load(path: path)
        XCTAssertEqual(c.chain.members.map(\.publicKeySHA256), [pin, ""])
    }

    /// A node whose own certificate is not its member entry does not start (its peers would
    /// refuse it); on the main chain, members are cloud nodes (no district).
    func testOwnCertificateMustBeItsMemberEntry() async throws {
        let port = try await NodeProcess.freePorts(1)[0]
        let mine = try pki.issue(.node, "d1-n1", district: "d1")
        let other = try pki.issue(.node, "d1-n9", district: "d1")
        func start(_ chainID: String, kind: String, pin: String) async throws -> Error? {
            var c = pki.loopbackNode(mine, dataDir: pki.dir + "/data-\(UUID().uuidString)")
            c.listen = "127.0.0.1:\(port)"
            c.chain.id = chainID
            c.chain.kind = kind
            c.chain.raftID = 1
            c.chain.members = [Member(id: 1, name: "d1-n1", address: "127.0.0.1:\(port)", publicKeySHA256: pin)]
            let node = try GridNode(configuration: c, logger: logs.logger())
            do {
                _ = try await node.start()
                await node.stop()
                return nil
            } catch {
                return error
            }
        }
        let wrongKey = try await start("d1", kind: "district", pin: try Member.pin(ofCertificate: other.cert))
        XCTAssertTrue("\(wrongKey.map { "\($0)" } ?? "started")".contains("pinned key"))
        let mainWithDistrictCert = try await start("main", kind: "main", pin: "")
        XCTAssertTrue("\(mainWithDistrictCert.map { "\($0)" } ?? "started")".contains("main chain"))
        let right = try await start("d1", kind: "district", pin: try Member.pin(ofCertificate: mine.cert))
        XCTAssertNil(right)
    }

    // MARK: Outbound

    /// The Raft transport sends nothing to a server that is not the member: another
    /// district's node with the member's CN, or (pinned) the right district and CN with
    /// another key.
    func testTransportRefusesAnImpostorServer() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var quiet = Logger(label: "raft-test")
        quiet.logLevel = .critical
        let n1 = try pki.issue(.node, "n1", district: "d1")
        let n2 = try pki.issue(.node, "n2", district: "d1")
        let inbox = RaftTransportTests.Inbox()
        let registry = RaftTransportTests.registry([1: "n1", 2: "n2"])

        func server(_ cert: (cert: String, key: String)) async throws -> (RPCServer, Int) {
            var router = RPCRouter()
            RaftService(members: { _ in registry }, deliver: { inbox.add($0, $1) }, refusals: RaftTransportTests.refusals()).register(in: &router)
            let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: cert.cert, privateKeyPath: cert.key, trustRootPath: pki.caCert), mode: .server)
            let server = RPCServer(group: group, tls: tls, router: router, configuration: RPCServerConfiguration(), logger: quiet)
            return (server, try await server.start(host: "127.0.0.1", port: 0).port!)
        }
        /// Sends heartbeats as n1 to member 2 (pinned to `pin`) at `port` until unreachable is
        /// reported (refused) or `expectDelivery` sees a delivery.
        func run(port: Int, pin: String, expectDelivery: Bool) async throws {
            let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: n1.cert, privateKeyPath: n1.key, trustRootPath: pki.caCert), mode: .client)
            let unreachable = Mutex(0)
            let transport = RaftTransport(chainID: "d1", tls: tls, group: group, logger: logs.logger()) { _ in unreachable.withLock { $0 += 1 } }
            transport.setPeers([2: .init(member: Member(id: 2, name: "n2", address: "127.0.0.1:\(port)", publicKeySHA256: pin), binding: RaftTransportTests.d1)])
            let end = ContinuousClock.now + .seconds(10)
            repeat {
                transport.send([Message(kind: .heartbeat, from: 1, to: 2, term: 1)])
                try await Task.sleep(for: .milliseconds(20))
            } while (expectDelivery ? inbox.all.isEmpty : unreachable.withLock { $0 } == 0) && ContinuousClock.now < end
            await transport.stop()
            if expectDelivery { XCTAssertFalse(inbox.all.isEmpty) } else { XCTAssertGreaterThan(unreachable.withLock { $0 }, 0) }
        }

        let (otherDistrict, otherDistrictPort) = try await server(try impostor("n2", district: "d2", "d2"))
        try await run(port: otherDistrictPort, pin: "", expectDelivery: false)
        await otherDistrict.shutdownGracefully()
        XCTAssertTrue(inbox.all.isEmpty)
        XCTAssertTrue(logs.contains("raft peer refused: not the member"))

        let (otherKey, otherKeyPort) = try await server(try impostor("n2", district: "d1", "d1"))
        try await run(port: otherKeyPort, pin: try Member.pin(ofCertificate: n2.cert), expectDelivery: false)
        await otherKey.shutdownGracefully()
        XCTAssertTrue(inbox.all.isEmpty)

        // The real member, pinned, gets the traffic.
        let (real, realPort) = try await server(n2)
        try await run(port: realPort, pin: try Member.pin(ofCertificate: n2.cert), expectDelivery: true)
        await real.shutdownGracefully()
    }
}
