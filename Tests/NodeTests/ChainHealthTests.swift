@testable import Chain
import Foundation
import GridClient
import GridProto
import Logging
@testable import Node
import Wire
import XCTest

/// Issue 10, "Health tells the truth": a chain that cannot make progress (no leader beyond a
/// few election timeouts, a store write that failed, an apply error) is NOT_SERVING for that
/// chain in Health (service name `chain/<id>`), and Ops status says why. When a leader is
/// elected again, the chain is SERVING again.
final class ChainHealthTests: XCTestCase {
    /// The rule itself: halted before a store failure before a lost leader; no leader within
    /// the grace period still serves (a normal election does not flap).
    func testRuleOrderAndGracePeriod() {
        let grace = ChainHealth.noLeaderGrace(tick: .milliseconds(50), electionTicks: 10)
        XCTAssertEqual(grace, .seconds(3), "three of the longest (2 × 10 ticks) election timeouts")
        XCTAssertEqual(ChainHealth.assess(halted: nil, storeFailure: nil, leaderless: nil, grace: grace), .serving)
        XCTAssertEqual(ChainHealth.assess(halted: nil, storeFailure: nil, leaderless: .seconds(2), grace: grace), .serving)
        let lost = ChainHealth.assess(halted: nil, storeFailure: nil, leaderless: .seconds(4), grace: grace)
        XCTAssertFalse(lost.serving)
        XCTAssertTrue(lost.reason.contains("no Raft leader"), lost.reason)
        let store = ChainHealth.assess(halted: nil, storeFailure: "IO error: disk full", leaderless: nil, grace: grace)
        XCTAssertFalse(store.serving)
        XCTAssertTrue(store.reason.contains("chain store failed") && store.reason.contains("IO error: disk full"), store.reason)
        XCTAssertTrue(store.storageFailure, "a store failure is cured by reopening the chain")
        let halted = ChainHealth.assess(halted: "bad block", storeFailure: "x", leaderless: .seconds(9), grace: grace)
        XCTAssertTrue(halted.reason.contains("halted") && halted.reason.contains("bad block"), halted.reason)
        XCTAssertEqual(ChainHealth.serviceName("d1"), "chain/d1")
    }

    /// Three in-process members of d1's Raft group; two are stopped: the remaining one
    /// reports `chain/d1` NOT_SERVING (Health.Check and Health.Watch) within the grace period
    /// plus a bound, with the reason in Ops status; a member restarted → a leader again →
    /// SERVING again.
    func testMinorityMemberIsNotServingUntilALeaderIsBack() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let ports = try await NodeProcess.freePorts(3)
        let members = (1...3).map { NodeConfiguration.Chain.Member(id: UInt64($0), name: "node\($0)", address: "127.0.0.1:\(ports[$0 - 1])") }
        var configs: [NodeConfiguration] = []
        for i in 1...3 {
            var c = pki.loopbackNode(try pki.issue(.node, "node\(i)", district: "d1"), dataDir: pki.dir + "/data\(i)")
            c.listen = "127.0.0.1:\(ports[i - 1])"
            c.rpc.threads = 1
            c.chain.id = "d1"
            c.chain.raftID = UInt64(i)
            c.chain.members = members
            c.chain.tickMs = 20
            c.chain.electionTicks = 10
            configs.append(c)
        }
        // Grace: 3 × 2 × 10 ticks × 20 ms = 1.2 s.
        let grace = ChainHealth.noLeaderGrace(tick: .milliseconds(20), electionTicks: 10)
        var nodes: [GridNode?] = []
        for c in configs {
            let node = try GridNode(configuration: c, logger: quiet())
            try await node.start()
            nodes.append(node)
        }
        defer { for n in nodes { if let n { Task { await n.stop() } } } }

        func check(_ i: Int) async -> (ServingStatus?, ChainStatus?) {
            let address = "127.0.0.1:\(ports[i])"
            guard let client = try? await GridConnection.connect(to: address, certificate: ops.cert, key: ops.key, ca: pki.caCert) else { return (nil, nil) }
            let health = try? await client.unary(GridMethod.Health.check, HealthCheckRequest(service: "chain/d1"), as: HealthCheckResponse.self)
            let status = try? await client.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self)
            await client.close()
            return (health?.status, status?.chains.first)
        }

        // A leader is elected; every member serves the chain.
        let allServe = await NodeProcess.poll(timeout: .seconds(20)) {
            for i in 0..<3 where await check(i).0 != .serving { return false }
            return true
        }
        XCTAssertTrue(allServe, "every member serves chain d1 once a leader is elected")

        // Stop two members (the survivor is node 3 whatever its role was).
        let survivor = 2
        let watch = try await GridConnection.connect(to: "127.0.0.1:\(ports[survivor])", certificate: ops.cert, key: ops.key, ca: pki.caCert)
        defer { Task { await watch.close() } }
        let updates = watch.serverStreaming(GridMethod.Health.watch, HealthCheckRequest(service: "chain/d1"), as: HealthCheckResponse.self)
        let stoppedAt = ContinuousClock.now
        for i in 0..<2 {
            await nodes[i]?.stop()
            nodes[i] = nil
        }
        let bound = grace + .seconds(10)  // the grace, the check-quorum step-down, and a loaded machine's slack
        let notServing = await NodeProcess.poll(timeout: bound) { await check(survivor).0 == .notServing }
        let after = ContinuousClock.now - stoppedAt
        XCTAssertTrue(notServing, "the member left alone is NOT_SERVING for chain/d1 within \(bound)")
        // Not before the grace period (a normal election must not flap), give or take the
        // driver's tick (it stamps the loss of the leader when it publishes its status) and
        // the health monitor's sampling interval.
        XCTAssertGreaterThanOrEqual(after, grace - .milliseconds(100), "not before the grace period: a normal election must not flap")
        let (_, status) = await check(survivor)
        XCTAssertEqual(status?.serving, false)
        XCTAssertTrue(status?.notServingReason.contains("no Raft leader") == true, status?.notServingReason ?? "no status")
        XCTAssertEqual(status?.raftLeader, 0)
        // Health.Watch saw the change too.
        var watched: [ServingStatus] = []
        for try await update in updates {
            watched.append(update.status)
            if update.status == .notServing { break }
        }
        XCTAssertEqual(watched.last, .notServing, "Watch: \(watched)")

        // One member back: a majority again, a leader, SERVING again.
        let back = try GridNode(configuration: configs[0], logger: quiet())
        try await back.start()
        nodes[0] = back
        let serving = await NodeProcess.poll(timeout: .seconds(20)) { await check(survivor).0 == .serving }
        XCTAssertTrue(serving, "chain/d1 is SERVING again once a leader is elected")
        let (_, again) = await check(survivor)
        XCTAssertEqual(again?.serving, true)
        XCTAssertEqual(again?.notServingReason, "")
        XCTAssertNotEqual(again?.raftLeader, 0)
        for i in 0..<3 {
            await nodes[i]?.stop()
            nodes[i] = nil
        }
    }

    /// An apply error halts the replica: a committed Raft entry that is not a valid block
    /// (what a faulty or hostile leader could commit) stops the chain rather than let it
    /// diverge, and Health and Ops status say so.
    func testHaltedChainIsNotServingWithTheReason() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let port = try await NodeProcess.freePorts(1)[0]
        var c = pki.loopbackNode(try pki.issue(.node, "node1", district: "d1"), dataDir: pki.dir + "/data")
        c.listen = "127.0.0.1:\(port)"
        c.rpc.threads = 1
        c.chain.id = "d1"
        c.chain.raftID = 1
        c.chain.members = [.init(id: 1, name: "node1", address: c.listen)]
        c.chain.tickMs = 20
        let node = try GridNode(configuration: c, logger: quiet())
        try await node.start()
        let client = try await GridConnection.connect(to: c.listen, certificate: ops.cert, key: ops.key, ca: pki.caCert)
        func health() async throws -> ServingStatus {
            try await client.unary(GridMethod.Health.check, HealthCheckRequest(service: "chain/d1"), as: HealthCheckResponse.self).status
        }
        let driver = try XCTUnwrap(node.chainSet.runtime("d1")?.raft?.driver)
        let leading = await NodeProcess.poll(timeout: .seconds(10)) { driver.status.role == .leader }
        XCTAssertTrue(leading)
        let servingBefore = await NodeProcess.poll(timeout: .seconds(5)) { (try? await health()) == .serving }
        XCTAssertTrue(servingBefore)

        try await driver.propose(Array("not a block".utf8))
        let halted = await NodeProcess.poll(timeout: .seconds(10)) { (try? await health()) == .notServing }
        XCTAssertTrue(halted, "a halted chain is NOT_SERVING")
        let status = try await client.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self).chains.first
        XCTAssertEqual(status?.serving, false)
        XCTAssertTrue(status?.notServingReason.contains("halted") == true, status?.notServingReason ?? "")
        XCTAssertTrue(status?.notServingReason.contains("not a block") == true, status?.notServingReason ?? "")
        XCTAssertFalse(status?.halted.isEmpty ?? true)
        // The node as a whole still answers (Health "" is about the process).
        let whole = try await client.unary(GridMethod.Health.check, HealthCheckRequest(service: ""), as: HealthCheckResponse.self)
        XCTAssertEqual(whole.status, .serving)
        await client.close()
        await node.stop()
    }

    /// A store write that fails: a real `gridnode` whose file size limit (RLIMIT_FSIZE, with
    /// SIGXFSZ ignored so the write fails with EFBIG instead of killing it) stops LevelDB's
    /// log from growing. Submissions then fail, and chain/d1 is NOT_SERVING with the store
    /// error as the reason.
    func testFailedStoreWriteIsNotServingWithTheReason() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let node = try pki.issue(.node, "node1", district: "d1")
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let port = try await NodeProcess.freePorts(1)[0]
        let start = [NodeProcess.executable, "start", "--listen", "127.0.0.1:\(port)", "--data-dir", pki.dir + "/data", "--cert", node.cert,
                     "--key", node.key, "--ca", pki.caCert, "--chain-id", "d1", "--max-block-delay-ms", "2", "--log-level", "error"]
        // bash: `ulimit -f` counts 1024-byte blocks; 256 KiB of any one file.
        let script = "trap '' XFSZ; ulimit -f 256; exec \"$@\""
        let process = NodeProcess(arguments: start, log: pki.dir + "/node.log", launcher: ["/bin/bash", "-c", script, "bash"])
        defer { process.terminate() }
        try process.start()
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)
        let address = "127.0.0.1:\(port)"
        let client = try await GridConnection.connect(to: address, certificate: ops.cert, key: ops.key, ca: pki.caCert)
        func health() async throws -> ServingStatus {
            try await client.unary(GridMethod.Health.check, HealthCheckRequest(service: "chain/d1"), as: HealthCheckResponse.self).status
        }
        let initially = try await health()
        XCTAssertEqual(initially, .serving)

        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let submitter = ChainClient(try await GridConnection.connect(to: address, certificate: col.cert, key: col.key, ca: pki.caCert))
        var failure: RPCError?
        var batch = 0
        while failure == nil, batch < 500 {
            let readings = (0..<50).map { i -> Reading in
                var r = Reading()
                r.meterId = "m\(i)"
                r.timestampMs = 1_700_000_000_000 + Int64(batch) * 900_000
                r.energyTotal = UInt64(batch * 100 + i)
                return r
            }
            do {
                _ = try await submitter.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "b\(batch)", readings: readings)))
            } catch let error as RPCError {
                failure = error
            }
            batch += 1
        }
        await submitter.rpc.close()
        XCTAssertEqual(failure?.code, .internal, "a block commit fails once the store cannot grow (after \(batch) batches)")
        let notServing = await NodeProcess.poll(timeout: .seconds(5)) { (try? await health()) == .notServing }
        XCTAssertTrue(notServing, "chain/d1 is NOT_SERVING after a failed store write")
        let status = try await client.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self).chains.first
        XCTAssertEqual(status?.serving, false)
        XCTAssertTrue(status?.notServingReason.contains("store") == true, status?.notServingReason ?? "")
        XCTAssertGreaterThan(batch, 1, "blocks committed before the store filled up")
        print("HEALTH store failure after \(batch) batches: \(status?.notServingReason ?? "")")
        await client.close()
    }

    private func quiet() -> Logger {
        var logger = Logger(label: "health-test")
        logger.logLevel = .critical
        return logger
    }
}
