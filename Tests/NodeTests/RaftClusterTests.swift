import Consensus
@testable import Chain
import Foundation
import GridClient
import GridProto
import Store
@testable import Node
import Synchronization
import Wire
import XCTest

/// Issue 4, multi-process: three real `gridnode` processes form the Raft group of district
/// d1. Ingestion through any member; SIGKILL of the leader; a new leader serves within a
/// few election timeouts; no acknowledged reading is lost; every node has the same block hash
/// at every height; the killed node restarts and catches up; every store verifies.
final class RaftClusterTests: XCTestCase {
    func testLeaderKillFailoverAndCatchUp() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let (nodes, ports) = try await makeCluster(pki) { _ in
            ["--tick-ms", "50", "--max-block-delay-ms", "5", "--log-level", "warning"]
        }
        defer { for n in nodes { n.terminate() } }
        try await start(nodes, ports, pki, ops)

        func status(_ i: Int) async -> ChainStatus? {
            try? await ChainClient.status(address: "127.0.0.1:\(ports[i])", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000).chains.first
        }
        func leader(among indexes: [Int], timeout: Duration) async -> Int? {
            let end = ContinuousClock.now + timeout
            while ContinuousClock.now < end {
                for i in indexes { if await status(i)?.role == "leader" { return i } }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        guard let first = await leader(among: [0, 1, 2], timeout: .seconds(15)) else { return XCTFail("no leader elected") }

        // Ingest through every member (followers forward to the leader).
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let acked = AckLog()
        let stop = StopFlag()
        let workers = (0..<3).map { worker in
            Task {
                var client: ChainClient?
                var n = 0
                while !stop.isSet {
                    if client == nil {
                        client = (try? await GridConnection.connect(to: "127.0.0.1:\(ports[worker])", certificate: col.cert, key: col.key, ca: pki.caCert)).map(ChainClient.init)
                        if client == nil { try? await Task.sleep(for: .milliseconds(100)); continue }
                    }
                    var readings: [Reading] = []
                    for m in 0..<20 {
                        var r = Reading()
                        r.meterId = "w\(worker)-m\(m)"
                        r.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
                        r.energyTotal = UInt64(n * 50 + m)
                        readings.append(r)
                    }
                    guard let tx = try? signer.sign(signer.readingsPayload(chainID: "d1", batchID: "w\(worker)-\(n)", readings: readings)) else { return }
                    do {
                        let response = try await client!.submitReadings(tx, timeout: .seconds(5))
                        acked.add(TransactionSigner.transactionID(tx), readings: [], height: response.location?.height ?? 0)
                        n += 1
                    } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                        if !(client?.rpc.channel.isActive ?? false) { client = nil }
                        try? await Task.sleep(for: .milliseconds(50))
                    } catch {
                        client = nil
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
                await client?.rpc.close()
            }
        }
        await NodeProcess.poll(timeout: .seconds(30)) { acked.snapshot().0.count > 10 }
        let beforeKill = acked.snapshot().0.count
        XCTAssertGreaterThan(beforeKill, 10, "ingestion made progress before the kill")

        // SIGKILL the leader; a new one must serve within a few election timeouts.
        let killedAt = ContinuousClock.now
        nodes[first].kill9()
        let survivors = [0, 1, 2].filter { $0 != first }
        guard let second = await leader(among: survivors, timeout: .seconds(20)) else { return XCTFail("no new leader") }
        let failover = ContinuousClock.now - killedAt
        // A few election timeouts on a quiet machine; a loaded CI runner gets slack.
        XCTAssertLessThan(failover, .seconds(15), "new leader after \(failover)")
        let ackedAtFailover = acked.snapshot().0.count
        let end = ContinuousClock.now + .seconds(30)
        while acked.snapshot().0.count <= ackedAtFailover + 5, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertGreaterThan(acked.snapshot().0.count, ackedAtFailover + 5, "ingestion resumes under leader \(second + 1)")
        print("RAFT failover: new leader node\(second + 1) after \(failover); \(beforeKill) batches before the kill")

        // The killed node restarts and catches up.
        try await NodeProcess.waitUntilBindable(ports[first])
        try nodes[first].start()
        try await NodeProcess.waitUntilServing(port: ports[first], pki: pki, ops: ops)
        try await Task.sleep(for: .milliseconds(500))
        stop.set()
        for w in workers { await w.value }
        let (ids, _) = acked.snapshot()
        var heads: [UInt64] = []
        let catchUp = ContinuousClock.now + .seconds(30)
        repeat {
            heads = []
            for i in 0..<3 { heads.append(await status(i)?.height ?? 0) }
            if Set(heads).count == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < catchUp
        XCTAssertEqual(Set(heads).count, 1, "all nodes at the same height: \(heads)")

        // Same block hash at every height, and every acknowledged transaction on every node
        // (read as marketing: ops sees status and aggregates only, Docs/permissions.md).
        let reader = try pki.issue(.marketing, "reader")
        var clients: [ChainClient] = []
        for p in ports {
            clients.append(ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(p)", certificate: reader.cert, key: reader.key, ca: pki.caCert)))
        }
        for h in 0...(heads.first ?? 0) {
            var hashes: [[UInt8]] = []
            for c in clients { hashes.append(try await c.block(at: h).hash) }
            XCTAssertEqual(Set(hashes.map(\.hex)).count, 1, "block \(h) differs between nodes")
        }
        for id in ids {
            for c in clients {
                let tx = try await c.transaction(id)
                XCTAssertEqual(tx.location?.txId, id)
            }
        }
        for c in clients { await c.rpc.close() }
        for (i, n) in nodes.enumerated() {
            XCTAssertEqual(n.terminate(), 0, "node\(i + 1) exit: \(n.output.suffix(2000))")
        }
        for i in 1...3 {
            let report = try ChainVerifier.verify(dataDirectory: pki.dir + "/data\(i)")
            XCTAssertNil(report.firstInconsistency, "node\(i): \(report.firstInconsistency ?? "")")
        }
    }

    /// Raft §7 with block transfer: a member that was down while the log was compacted past
    /// its position is brought up to date by a snapshot naming a block, then fetches and
    /// verifies the blocks it missed; all members end with the same hashes.
    func testLaggingMemberCatchesUpAfterCompaction() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let (nodes, ports) = try await makeCluster(pki) { i in
            ["--raft-compact-every", "4", "--max-block-delay-ms", "2", "--log-level", i == 3 ? "info" : "warning"]
        }
        defer { for n in nodes { n.terminate() } }
        try await start(nodes, ports, pki, ops)
        XCTAssertEqual(nodes[2].terminate(), 0)

        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let client = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(ports[0])", certificate: col.cert, key: col.key, ca: pki.caCert))
        var committed = 0
        var attempts = 0
        while committed < 30, attempts < 300 {
            attempts += 1
            var r = Reading()
            r.meterId = "lag-m"
            r.timestampMs = 1_700_000_000_000 + Int64(committed) * 900_000
            r.energyTotal = UInt64(committed)
            do {
                _ = try await client.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "lag\(committed)", readings: [r])), timeout: .seconds(5))
                committed += 1
            } catch {
                try await Task.sleep(for: .milliseconds(100))  // no leader yet
            }
        }
        await client.rpc.close()
        XCTAssertEqual(committed, 30)

        try nodes[2].start()
        try await NodeProcess.waitUntilServing(port: ports[2], pki: pki, ops: ops)
        var heights: [UInt64] = []
        let end = ContinuousClock.now + .seconds(20)
        repeat {
            heights = []
            for p in ports {
                let s = try? await ChainClient.status(address: "127.0.0.1:\(p)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000)
                heights.append(s?.chains.first?.height ?? 0)
            }
            if Set(heights).count == 1, heights[0] >= 30 { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < end
        XCTAssertEqual(Set(heights).count, 1, "heights \(heights)")
        XCTAssertGreaterThanOrEqual(heights.first ?? 0, 30)
        XCTAssertTrue(nodes[2].output.contains("catching up by block transfer"), "node3 must have caught up from a snapshot: \(nodes[2].output.suffix(3000)) \(nodes[0].output.suffix(2000))")
        for (i, n) in nodes.enumerated() { XCTAssertEqual(n.terminate(), 0, "node\(i + 1): \(n.output.suffix(1500))") }
        var heads: [[UInt8]] = []
        for i in 1...3 {
            let report = try ChainVerifier.verify(dataDirectory: pki.dir + "/data\(i)")
            XCTAssertNil(report.firstInconsistency, "node\(i): \(report.firstInconsistency ?? "")")
            let store = try ChainStore(directory: pki.dir + "/data\(i)/chains/d1", chainID: "d1")
            heads.append(store.head?.hash ?? [])
        }
        XCTAssertEqual(Set(heads.map(\.hex)).count, 1)
    }

    /// Three `gridnode` processes, not started yet, forming district d1's Raft group on free
    /// ports; `ports` holds `extraPorts` more free ports after the members' three.
    private func makeCluster(_ pki: TestPKI, extraPorts: Int = 0, extra: (Int) -> [String]) async throws -> (nodes: [NodeProcess], ports: [Int]) {
        try await NodeProcess.districtCluster(pki, extraPorts: extraPorts, extra: extra)
    }

    /// Starts the cluster's nodes (the caller has registered their cleanup) and waits until each serves.
    private func start(_ nodes: [NodeProcess], _ ports: [Int], _ pki: TestPKI, _ ops: (cert: String, key: String)) async throws {
        for n in nodes { try n.start() }
        for p in ports.prefix(nodes.count) { try await NodeProcess.waitUntilServing(port: p, pki: pki, ops: ops) }
    }

    private func chainStatus(_ port: Int, _ pki: TestPKI, _ ops: (cert: String, key: String)) async -> ChainStatus? {
        try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000).chains.first
    }

    /// Thesis §3.10: leadership transfer on request (Admin.TransferLeader, role admin only),
    /// and before a graceful shutdown of the leader.
    func testLeadershipTransferOnRequestAndOnShutdown() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let admin = try pki.issue(.admin, "admin1")
        let (nodes, ports) = try await makeCluster(pki) { _ in ["--log-level", "info"] }
        defer { for n in nodes { n.terminate() } }
        try await start(nodes, ports, pki, ops)
        var leader = 0
        let end = ContinuousClock.now + .seconds(15)
        while leader == 0, ContinuousClock.now < end {
            leader = Int(await chainStatus(ports[0], pki, ops)?.raftLeader ?? 0)
            if leader == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertNotEqual(leader, 0)

        // Linearizable reads (ReadIndex): right after a commit acknowledged by the leader,
        // every member answers with it, followers included.
        let col = try pki.issue(.collector, "col1", district: "d1")
        let readerCert = try pki.issue(.marketing, "reader")
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let writer = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(ports[leader - 1])", certificate: col.cert, key: col.key, ca: pki.caCert))
        for round in 0..<5 {
            var r = Reading()
            r.meterId = "lin"
            r.timestampMs = 1_700_000_000_000 + Int64(round) * 900_000
            _ = try await writer.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "lin\(round)", readings: [r])))
            for p in ports {
                let reader = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(p)", certificate: readerCert.cert, key: readerCert.key, ca: pki.caCert))
                let state = try await reader.state(BlockExecutor.readingKey(meter: "lin", timestampMs: r.timestampMs), consistency: .linearizable)
                XCTAssertTrue(state.found, "linearizable read on port \(p) misses a committed reading")
                await reader.rpc.close()
            }
        }
        await writer.rpc.close()
        let target = leader % 3 + 1
        // Only admin may move leadership.
        let opsClient = try await GridConnection.connect(to: "127.0.0.1:\(ports[0])", certificate: ops.cert, key: ops.key, ca: pki.caCert)
        do {
            _ = try await opsClient.unary(GridMethod.Admin.transferLeader, MemberRequest(chainId: "d1", nodeId: UInt64(target)), as: MemberResponse.self)
            XCTFail("ops must not transfer leadership")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        await opsClient.close()
        // Asked of the leader; a transfer that times out (the target was still catching up)
        // may be asked again, as an operator would.
        let adminClient = try await GridConnection.connect(to: "127.0.0.1:\(ports[leader - 1])", certificate: admin.cert, key: admin.key, ca: pki.caCert)
        var moved: MemberResponse?
        for _ in 0..<3 where moved == nil {
            moved = try? await adminClient.unary(GridMethod.Admin.transferLeader, MemberRequest(chainId: "d1", nodeId: UInt64(target)), as: MemberResponse.self)
        }
        XCTAssertEqual(moved?.leader, UInt64(target))
        await adminClient.close()

        // Graceful stop of the leader hands leadership over instead of leaving an election.
        // The node hands over only if it still leads when SIGTERM arrives: stop it right after
        // it reports itself leader. Should leadership move in between (an election on a loaded
        // machine), restart it and stop whichever member leads then, up to three times.
        var handedOver = false
        var stopping = target
        for attempt in 1...3 where !handedOver {
            if attempt > 1 {
                try await NodeProcess.waitUntilBindable(ports[stopping - 1])
                try nodes[stopping - 1].start()
                try await NodeProcess.waitUntilServing(port: ports[stopping - 1], pki: pki, ops: ops)
                stopping = 0
            }
            var leading = false
            await NodeProcess.poll(timeout: .seconds(15)) {
                for i in 1...3 where stopping == 0 || stopping == i {
                    if await self.chainStatus(ports[i - 1], pki, ops)?.role == "leader" {
                        stopping = i
                        leading = true
                        return true
                    }
                }
                return false
            }
            guard leading else { return XCTFail("no member reports itself leader (attempt \(attempt))") }
            let logged = nodes[stopping - 1].output.utf8.count
            let stopAt = ContinuousClock.now
            XCTAssertEqual(nodes[stopping - 1].terminate(), 0)
            // Only this run's log lines count (the log file is appended to across restarts).
            handedOver = String(decoding: nodes[stopping - 1].output.utf8.dropFirst(logged), as: UTF8.self)
                .contains("leadership handed over before shutdown")
            guard handedOver else { continue }
            var newLeader: UInt64 = 0
            await NodeProcess.poll(timeout: .seconds(15)) {
                for i in 1...3 where i != stopping {
                    if let s = await self.chainStatus(ports[i - 1], pki, ops), s.raftLeader != 0, s.raftLeader != UInt64(stopping) {
                        newLeader = s.raftLeader
                        return true
                    }
                }
                return false
            }
            XCTAssertNotEqual(newLeader, 0, "a surviving member leads after the leader's graceful stop")
            print("RAFT handover: node\(stopping) stopped (attempt \(attempt)); node\(newLeader) leads after \(ContinuousClock.now - stopAt)")
        }
        XCTAssertTrue(handedOver, "the leader hands leadership over on SIGTERM: \(nodes[stopping - 1].output.suffix(2000))")
    }


    /// Membership (one change at a time): a 4th node joins as a learner, catches up, is
    /// promoted to voter; then a node is removed; the group keeps committing throughout.
    func testLearnerJoinsIsPromotedAndANodeIsRemoved() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let admin = try pki.issue(.admin, "admin1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let (nodes, ports) = try await makeCluster(pki, extraPorts: 1) { _ in ["--log-level", "warning", "--raft-compact-every", "8"] }
        defer { for n in nodes { n.terminate() } }
        try await start(nodes, ports, pki, ops)
        var leader: UInt64 = 0
        let end = ContinuousClock.now + .seconds(15)
        while leader == 0, ContinuousClock.now < end {
            leader = await chainStatus(ports[0], pki, ops)?.raftLeader ?? 0
            if leader == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertNotEqual(leader, 0)
        let leaderPort = ports[Int(leader) - 1]
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let writer = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(leaderPort)", certificate: col.cert, key: col.key, ca: pki.caCert))
        func write(_ n: Int) async throws {
            var r = Reading()
            r.meterId = "mem"
            r.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
            _ = try await writer.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "mem\(n)", readings: [r])))
        }
        for n in 0..<20 { try await write(n) }

        // Node 4 starts empty with --join and is added as a learner on the leader.
        let port4 = ports[3]
        let cert4 = try pki.issue(.node, "node4", district: "d1")
        let members4 = (1...4).flatMap { i in ["--member", "\(i)=node\(i)@127.0.0.1:\(i == 4 ? port4 : ports[i - 1])#cert:\(pki.dir)/node\(i)/node\(i).crt"] }
        let node4 = NodeProcess(arguments: [
            "start", "--listen", "127.0.0.1:\(port4)", "--data-dir", pki.dir + "/data4", "--cert", cert4.cert, "--key", cert4.key,
            "--ca", pki.caCert, "--chain-id", "d1", "--raft-id", "4", "--join", "--log-level", "warning",
        ] + members4, log: pki.dir + "/node4.log")
        defer { node4.terminate() }
        try node4.start()
        try await NodeProcess.waitUntilServing(port: port4, pki: pki, ops: ops)
        let adminClient = try await GridConnection.connect(to: "127.0.0.1:\(leaderPort)", certificate: admin.cert, key: admin.key, ca: pki.caCert)
        let added = try await adminClient.unary(GridMethod.Admin.addMember,
            MemberRequest(chainId: "d1", nodeId: 4, address: "127.0.0.1:\(port4)", name: "node4",
                          publicKeySha256: "sha256:" + (try NodeConfiguration.Chain.Member.pin(ofCertificate: cert4.cert))), as: MemberResponse.self)
        XCTAssertEqual(added.confState?.learners, [4])
        XCTAssertEqual(Set(added.confState?.voters ?? []), [1, 2, 3])

        // The learner catches up (by block transfer: the log was compacted), then is promoted.
        var promoted: MemberResponse?
        var lastError: Error?
        let promoteEnd = ContinuousClock.now + .seconds(20)
        while promoted == nil, ContinuousClock.now < promoteEnd {
            do {
                promoted = try await adminClient.unary(GridMethod.Admin.promoteMember, MemberRequest(chainId: "d1", nodeId: 4), as: MemberResponse.self)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        XCTAssertEqual(Set(promoted?.confState?.voters ?? []), [1, 2, 3, 4], "last error: \(String(describing: lastError)); node4: \(node4.output.suffix(1500))")
        for n in 20..<25 { try await write(n) }
        let headLeader = await chainStatus(leaderPort, pki, ops)?.height ?? 0
        var head4: UInt64 = 0
        let catchEnd = ContinuousClock.now + .seconds(10)
        while head4 < headLeader, ContinuousClock.now < catchEnd {
            head4 = await chainStatus(port4, pki, ops)?.height ?? 0
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(head4, headLeader, "the promoted member has every block")

        // Remove a follower; the remaining four keep committing.
        let victim = UInt64((1...3).first { UInt64($0) != leader }!)
        let removed = try await adminClient.unary(GridMethod.Admin.removeMember, MemberRequest(chainId: "d1", nodeId: victim), as: MemberResponse.self)
        XCTAssertFalse((removed.confState?.voters ?? []).contains(victim))
        XCTAssertEqual(removed.confState?.voters.count, 3)
        for n in 25..<30 { try await write(n) }
        // A non-admin may not change membership.
        let opsClient = try await GridConnection.connect(to: "127.0.0.1:\(leaderPort)", certificate: ops.cert, key: ops.key, ca: pki.caCert)
        do {
            _ = try await opsClient.unary(GridMethod.Admin.addMember, MemberRequest(chainId: "d1", nodeId: 9, address: "127.0.0.1:1", name: "x"), as: MemberResponse.self)
            XCTFail("ops must not add members")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        await opsClient.close()
        await adminClient.close()
        await writer.rpc.close()
    }

    /// Issue 11, item 2: "Anything that halts a replica must be visible and recoverable:
    /// `verify` reports a Raft log or hard state that the chain cannot apply; a halted replica
    /// says why in status and Health; and a documented procedure (a `gridnode` subcommand)
    /// rebuilds a replica from its peers." A follower's Raft log gets a committed garbage
    /// entry (what an impostor's forged append once left); it halts, says why, `verify`
    /// names the entry; `gridnode rebuild` sets its chain aside, the admin removes and re-adds
    /// it as a learner, it rejoins empty, catches up from its peers and is promoted.
    func testHaltedReplicaIsRebuiltFromItsPeers() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let admin = try pki.issue(.admin, "admin1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let (nodes, ports) = try await makeCluster(pki) { _ in ["--log-level", "warning"] }
        defer { for n in nodes { n.terminate() } }
        try await start(nodes, ports, pki, ops)
        var leader: UInt64 = 0
        _ = await NodeProcess.poll(timeout: .seconds(15)) {
            leader = await self.chainStatus(ports[0], pki, ops)?.raftLeader ?? 0
            return leader != 0
        }
        XCTAssertNotEqual(leader, 0)
        let leaderPort = ports[Int(leader) - 1]
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let writer = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(leaderPort)", certificate: col.cert, key: col.key, ca: pki.caCert))
        defer { Task { await writer.rpc.close() } }
        func write(_ n: Int) async throws {
            let r = Reading(meterId: "rb", timestampMs: 1_700_000_000_000 + Int64(n) * 900_000, energyTotal: UInt64(n))
            _ = try await writer.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "rb\(n)", readings: [r])))
        }
        for n in 0..<10 { try await write(n) }

        // A follower stops; its Raft log gets a committed entry that is not a block.
        let f = [1, 2, 3].first { UInt64($0) != leader }!
        let victim = nodes[f - 1]
        XCTAssertEqual(victim.terminate(), 0)
        let directory = pki.dir + "/data\(f)/chains/d1"
        do {
            let log = try LevelDBRaftStorage(directory: directory)
            let state = try log.load()
            let next = log.lastIndex + 1
            try log.persist(hardState: HardState(term: state.hardState.term, vote: state.hardState.vote, commit: next),
                            entries: [Entry(term: state.hardState.term, index: next, data: Array("garbage".utf8))], snapshot: nil)
        }
        let verdict = try ChainVerifier.verify(dataDirectory: pki.dir + "/data\(f)")
        XCTAssertEqual(verdict.firstInconsistency?.contains("is not a block"), true, verdict.firstInconsistency ?? "verify found nothing")

        // Started, it halts on that entry and says so in status and Health.
        try await NodeProcess.waitUntilBindable(ports[f - 1])
        try victim.start()
        try await NodeProcess.waitUntilServing(port: ports[f - 1], pki: pki, ops: ops)
        var reason = ""
        let halted = await NodeProcess.poll(timeout: .seconds(15)) {
            let status = await self.chainStatus(ports[f - 1], pki, ops)
            reason = status?.notServingReason ?? ""
            return status?.serving == false && reason.contains("halted")
        }
        XCTAssertTrue(halted, "the halted replica says why: \(reason)")
        XCTAssertEqual(victim.terminate(), 0)

        // gridnode rebuild sets the chain aside.
        let rebuild = Process()
        rebuild.executableURL = URL(fileURLWithPath: NodeProcess.executable)
        rebuild.arguments = ["rebuild", "--data", pki.dir + "/data\(f)", "--chain", "d1"]
        let out = Pipe()
        rebuild.standardOutput = out
        try rebuild.run()
        rebuild.waitUntilExit()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(rebuild.terminationStatus, 0, printed)
        XCTAssertTrue(printed.contains("moved aside") && printed.contains("admin add-member"), printed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory))
        XCTAssertEqual(ChainVerifier.chains(in: pki.dir + "/data\(f)"), [], "the set-aside chain is not the node's any more")

        // The admin removes it and adds it again as a learner; it rejoins empty with --join.
        let adminClient = try await GridConnection.connect(to: "127.0.0.1:\(leaderPort)", certificate: admin.cert, key: admin.key, ca: pki.caCert)
        defer { Task { await adminClient.close() } }
        _ = try await adminClient.unary(GridMethod.Admin.removeMember, MemberRequest(chainId: "d1", nodeId: UInt64(f)), as: MemberResponse.self)
        for n in 10..<15 { try await write(n) }
        let added = try await adminClient.unary(GridMethod.Admin.addMember,
            MemberRequest(chainId: "d1", nodeId: UInt64(f), address: "127.0.0.1:\(ports[f - 1])", name: "node\(f)",
                          publicKeySha256: "sha256:" + (try NodeConfiguration.Chain.Member.pin(ofCertificate: pki.dir + "/node\(f)/node\(f).crt"))),
            as: MemberResponse.self)
        XCTAssertEqual(added.confState?.learners, [UInt64(f)])
        let rejoined = NodeProcess(arguments: victim.arguments + ["--join"], log: pki.dir + "/node\(f)-rebuilt.log")
        defer { rejoined.terminate() }
        try rejoined.start()
        try await NodeProcess.waitUntilServing(port: ports[f - 1], pki: pki, ops: ops)
        var promoted: MemberResponse?
        _ = await NodeProcess.poll(timeout: .seconds(30)) {
            promoted = try? await adminClient.unary(GridMethod.Admin.promoteMember, MemberRequest(chainId: "d1", nodeId: UInt64(f)), as: MemberResponse.self)
            return promoted != nil
        }
        XCTAssertEqual(Set(promoted?.confState?.voters ?? []), [1, 2, 3], "rebuilt member promoted: \(rejoined.output.suffix(1500))")
        for n in 15..<18 { try await write(n) }
        let head = await chainStatus(leaderPort, pki, ops)?.height ?? 0
        let caughtUp = await NodeProcess.poll(timeout: .seconds(20)) {
            let status = await self.chainStatus(ports[f - 1], pki, ops)
            return status?.height == head && status?.serving == true
        }
        XCTAssertTrue(caughtUp, "the rebuilt replica has every block and serves")
        XCTAssertEqual(rejoined.terminate(), 0)
        let report = try ChainVerifier.verify(dataDirectory: pki.dir + "/data\(f)")
        XCTAssertNil(report.firstInconsistency, report.firstInconsistency ?? "")
        XCTAssertGreaterThanOrEqual(report.blocks, head + 1)
    }
}

/// A flag the test sets once to stop its worker tasks.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}