@testable import Chain
import ChainHashing
import Contracts
import Foundation
import GridClient
import GridProto
import GridCrypto
@testable import Node
import Synchronization
import Wire
import XCTest

/// Issue 5, multi-process: a main chain of three cloud nodes and two districts of three edge
/// nodes each, as nine real `gridnode` processes on loopback. Readings flow on both
/// districts; anchors land on the main chain with majority member signatures; proofs verify
/// offline; parameters reach the addressed district only; forged anchors are refused; the
/// main chain stopped for a while and restarted: districts keep ingesting, and anchoring
/// catches up with no gap and no duplicate.
final class AnchoringTests: XCTestCase {
    struct Topology {
        let pki: TestPKI
        let ops: (cert: String, key: String)
        /// Reads blocks, state, accounts and proofs (role marketing: ops sees status and
        /// aggregates only, Docs/permissions.md).
        let reader: (cert: String, key: String)
        var main: [NodeProcess] = []
        var mainPorts: [Int] = []
        var districts: [String: [NodeProcess]] = [:]
        var districtPorts: [String: [Int]] = [:]
        var nodeCerts: [String: [(cert: String, key: String)]] = [:]

        var all: [NodeProcess] { main + districts.keys.sorted().flatMap { districts[$0]! } }

        func status(_ port: Int) async -> ChainStatus? {
            try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000).chains.first
        }

        func client(_ port: Int, as party: (cert: String, key: String)) async throws -> ChainClient {
            ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: party.cert, key: party.key, ca: pki.caCert))
        }

        /// Waits until `condition` holds for a status of one of `ports`.
        func wait(_ ports: [Int], timeout: Duration = .seconds(30), _ what: String, _ condition: (ChainStatus) -> Bool) async throws -> ChainStatus {
            let end = ContinuousClock.now + timeout
            var last: ChainStatus?
            while ContinuousClock.now < end {
                for p in ports {
                    if let s = await status(p) {
                        last = s
                        if condition(s) { return s }
                    }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTFail("timed out waiting for \(what); last status: \(String(describing: last))")
            throw CancellationError()
        }
    }

    private func mainProcesses(_ pki: TestPKI, ports: [Int]) throws -> [NodeProcess] {
        let members = (1...3).flatMap { ["--member", "\($0)=cloud\($0)@127.0.0.1:\(ports[$0 - 1])"] }
        return try (1...3).map { i in
            let cert = try pki.issue(.node, "cloud\(i)")
            return NodeProcess(arguments: [
                "start", "--listen", "127.0.0.1:\(ports[i - 1])", "--data-dir", pki.dir + "/main\(i)", "--cert", cert.cert, "--key", cert.key,
                "--ca", pki.caCert, "--chain-id", "main", "--chain-kind", "main", "--raft-id", "\(i)", "--tick-ms", "50",
                "--max-block-delay-ms", "5", "--log-level", "notice",
            ] + members, log: pki.dir + "/main\(i).log")
        }
    }

    /// Where `startTopology` puts its nodes relative to the base port: main, d1, d2.
    private static let portOffsets = [0, 1, 2, 10, 11, 12, 20, 21, 22]

    /// A base port whose topology ports are all bindable now, below the Linux ephemeral
    /// range (32768-60999 by default), so no outgoing connection can take one while the main
    /// chain is down and restarting on its ports.
    private static func freeBasePort() async throws -> Int {
        for _ in 0..<200 {
            let base = Int.random(in: NodeProcess.portRange.lowerBound...(NodeProcess.portRange.upperBound - portOffsets.last!))
            var free = true
            for offset in portOffsets where free { free = await NodeProcess.isBindable(base + offset) }
            if free { return base }
        }
        XCTFail("no free loopback ports for the topology in \(NodeProcess.portRange)")
        throw CancellationError()
    }

    private func startTopology(basePort: Int) async throws -> Topology {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        var t = Topology(pki: pki, ops: try pki.issue(.ops, "ops1"), reader: try pki.issue(.marketing, "reader"))
        t.mainPorts = [basePort, basePort + 1, basePort + 2]
        t.main = try mainProcesses(pki, ports: t.mainPorts)
        for n in t.main { try n.start() }
        for p in t.mainPorts { try await NodeProcess.waitUntilServing(port: p, pki: pki, ops: t.ops) }
        let endpoints = t.mainPorts.flatMap { ["--main-endpoint", "127.0.0.1:\($0)"] }
        for (k, district) in ["d1", "d2"].enumerated() {
            let ports = (0..<3).map { basePort + 10 * (k + 1) + $0 }
            let members = (1...3).flatMap { ["--member", "\($0)=\(district)-n\($0)@127.0.0.1:\(ports[$0 - 1])"] }
            var certs: [(cert: String, key: String)] = []
            var nodes: [NodeProcess] = []
            for i in 1...3 {
                let cert = try pki.issue(.node, "\(district)-n\(i)", district: district)
                certs.append(cert)
                nodes.append(NodeProcess(arguments: [
                    "start", "--listen", "127.0.0.1:\(ports[i - 1])", "--data-dir", pki.dir + "/\(district)-\(i)", "--cert", cert.cert,
                    "--key", cert.key, "--ca", pki.caCert, "--chain-id", district, "--raft-id", "\(i)", "--tick-ms", "50",
                    "--max-block-delay-ms", "5", "--anchor-every-blocks", "5", "--anchor-every-ms", "300", "--log-level", "notice",
                ] + endpoints + members, log: pki.dir + "/\(district)-\(i).log"))
            }
            t.districts[district] = nodes
            t.districtPorts[district] = ports
            t.nodeCerts[district] = certs
        }
        return t
    }

    func testTwoDistrictsAnchorOnTheMainChain() async throws {
        var t = try await startTopology(basePort: try await Self.freeBasePort())
        let pki = t.pki
        defer {
            for n in t.all { n.terminate() }
            pki.remove()
        }
        let admin = try pki.issue(.admin, "admin1")
        let marketing = try pki.issue(.marketing, "mkt1")
        _ = try await t.wait(t.mainPorts, "a main-chain leader") { $0.role == "leader" }

        // The main chain registers both districts with their members' certificates.
        let adminSigner = try TransactionSigner(certificatePath: admin.cert, keyPath: admin.key)
        let mainClient = try await t.client(t.mainPorts[1], as: admin)
        for district in ["d1", "d2"] {
            let ders = try t.nodeCerts[district]!.map { try CertificateKeyPair(certificatePath: $0.cert, privateKeyPath: $0.key).certificateDER }
            let tx = try adminSigner.sign(adminSigner.payload(chainID: "main", body: .districtRegistration(DistrictRegistration(district: district, memberCertificates: ders))))
            let response = try await mainClient.submit(tx, chain: "main")
            XCTAssertEqual(response.outcome?.code, 0)
        }
        for district in ["d1", "d2"] { for n in t.districts[district]! { try n.start() } }
        for district in ["d1", "d2"] { for p in t.districtPorts[district]! { try await NodeProcess.waitUntilServing(port: p, pki: pki, ops: t.ops) } }

        // Marketing onboards d1's ten meters as prepaid customers: the contracts then bill
        // on all three d1 replicas, which must agree on every state root.
        let onboarder = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let onboarding = try await t.client(t.mainPorts[0], as: marketing)
        var lastParameter: UInt64 = 0
        var parameters: [DistrictParameter.Body] = [
            .tariff(FeeControlEndToEndTests.flatTariff()),
            .thresholds(FeeControlThresholds(thresholdsId: "", alarm1Fen: 500, alarm2Fen: 200, overdraftLimitFen: 100, reconnectAllowedFen: 0, directClose: false, commandValidMs: 60_000)),
        ]
        for m in 0..<10 {
            parameters.append(.customer(CustomerArchive(account: "acct-\(m)", meterId: "d1-m\(m)", tariffId: "flat", protectedSupply: m == 9, openingBalanceFen: 300 + 100 * Int64(m))))
        }
        for body in parameters {
            let r = try await onboarding.submit(try onboarder.sign(onboarder.payload(chainID: "main", body: .parameter(DistrictParameter(district: "d1", body: body)))), chain: "main")
            lastParameter = r.location?.height ?? lastParameter
        }
        await onboarding.rpc.close()
        _ = try await t.wait(t.districtPorts["d1"]!, "d1 takes the onboarding") { $0.downlinkMainHeight >= lastParameter }

        // Readings flow on both districts (through followers and leaders alike).
        let stop = StopFlag()
        let ingested = Counts()
        var workers: [Task<Void, Never>] = []
        for district in ["d1", "d2"] {
            let col = try pki.issue(.collector, "col-\(district)", district: district)
            let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
            let ports = t.districtPorts[district]!
            let caCert = pki.caCert
            workers.append(Task {
                var n = 0
                var client: ChainClient?
                while !stop.isSet {
                    if client == nil {
                        client = (try? await GridConnection.connect(to: "127.0.0.1:\(ports[n % 3])", certificate: col.cert, key: col.key, ca: caCert)).map(ChainClient.init)
                        if client == nil { try? await Task.sleep(for: .milliseconds(100)); n += 1; continue }
                    }
                    let readings = (0..<10).map { m in
                        Reading(meterId: "\(district)-m\(m)", timestampMs: 1_700_000_000_000 + Int64(n) * 900_000, energyTotal: UInt64(n * 40 + m))
                    }
                    guard let tx = try? signer.sign(signer.readingsPayload(chainID: district, batchID: "\(district)-\(n)", readings: readings)) else { return }
                    do {
                        _ = try await client!.submitReadings(tx, timeout: .seconds(5))
                        ingested.add(district)
                        n += 1
                        try? await Task.sleep(for: .milliseconds(20))
                    } catch {
                        await client?.rpc.close()
                        client = nil
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                await client?.rpc.close()
            })
        }

        // Anchors land: each district's anchored height passes 10 with a small lag.
        // (Readings bill d1's accounts meanwhile; some drain into warnings and disconnection.)
        // A sync round may fail now and then (a main-chain leader change, signatures not yet
        // in) and sets syncError until the next good one: wait for a clean round.
        for district in ["d1", "d2"] {
            _ = try await t.wait(t.districtPorts[district]!, "\(district) anchored with no sync error") {
                $0.role == "leader" && $0.anchoredHeight >= 10 && $0.syncError.isEmpty
            }
        }

        // A proof from a d1 block (asked of a follower) verifies offline against the CA,
        // with a majority of member signatures; the anchor is on the main chain.
        let verifier = try SignerVerifier(caPath: pki.caCert)
        let d1Status = try await t.wait(t.districtPorts["d1"]!, "a d1 follower") { $0.role == "follower" && $0.anchoredHeight >= 10 }
        let followerPort = t.districtPorts["d1"]![Int(d1Status.raftNodeId) - 1]
        let d1Reader = try await t.client(followerPort, as: t.reader)
        let (proof, verified) = try await d1Reader.proveAndVerifyBlock(7, chain: "d1", verifier: verifier)
        XCTAssertEqual(ProofVerifier.verify(proof, verifier: verifier), .success(verified))
        XCTAssertEqual(verified.height, 7)
        XCTAssertGreaterThanOrEqual(verified.validSignatures, 2)
        // mainClient's node may be a follower a little behind the one the proof came from.
        _ = try await t.wait([t.mainPorts[1]], "main node 2 applies block \(verified.mainHeight)") { $0.height >= verified.mainHeight }
        let mainBlock = try await mainClient.block(at: verified.mainHeight, chain: "main")
        XCTAssertEqual(mainBlock.hash, verified.mainBlockHash, "the proof ends at a main-chain block the main chain has")
        // A tampered header does not verify.
        var tampered = proof
        var header = try BlockHeader(serializedBytes: tampered.header)
        header.timestampMs += 1
        tampered.header = header.serializedBytes()
        if case .success = ProofVerifier.verify(tampered) { XCTFail("a changed header verified") }
        // An unanchored height is NOT_FOUND.
        do {
            _ = try await d1Reader.proveBlock(1_000_000, chain: "d1")
            XCTFail("unanchored block proved")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound)
        }

        // Forged anchors are refused: signed by a non-member, and a range that does not continue.
        let rogue = try pki.issue(.node, "rogue", district: "d1")
        let rogueKey = try CertificateKeyPair(certificatePath: rogue.cert, privateKeyPath: rogue.key)
        let memberKeys = try t.nodeCerts["d1"]!.map { try CertificateKeyPair(certificatePath: $0.cert, privateKeyPath: $0.key) }
        let lastAnchor = try await mainClient.state(AnchorKeys.lastAnchor("d1"), chain: "main")
        let record = try XCTUnwrap(AnchorRecord(bytes: lastAnchor.value))
        func forged(from: UInt64, signers: [CertificateKeyPair]) throws -> SignedTransaction {
            var anchor = Anchor(district: "d1", fromHeight: from, toHeight: from + 2, lastHeaderHash: [UInt8](repeating: 1, count: 32),
                                headersRoot: [UInt8](repeating: 2, count: 32), hashSuite: "sha256", summary: [], signatures: [])
            let digest = AnchorDigest.of(anchor)
            anchor.signatures = try signers.map { AnchorSignature(certificate: $0.certificateDER, signature: try $0.sign(digest)) }
            let signer = try TransactionSigner(certificatePath: t.nodeCerts["d1"]![0].cert, keyPath: t.nodeCerts["d1"]![0].key)
            return try signer.sign(signer.payload(chainID: "main", body: .anchor(anchor)))
        }
        do {
            _ = try await mainClient.submit(try forged(from: record.to + 1, signers: [rogueKey, memberKeys[0]]), chain: "main")
            XCTFail("anchor with a non-member signature accepted")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied, error.message)
        }
        do {
            // Far past any height d1 reaches in this test: a real anchor landing meanwhile
            // (ending at record.to + 4) must not make this majority-signed forgery continue.
            _ = try await mainClient.submit(try forged(from: record.to + 100_000, signers: Array(memberKeys.prefix(2))), chain: "main")
            XCTFail("anchor with a gap accepted")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .failedPrecondition, error.message)
        }
        do {
            _ = try await mainClient.submit(try forged(from: record.to + 1, signers: [memberKeys[0]]), chain: "main")
            XCTFail("anchor signed by a minority accepted")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied, error.message)
        }

        // Downlink: a parameter for d2 reaches d2 only, in main-chain order.
        let marketer = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let marketingClient = try await t.client(t.mainPorts[0], as: marketing)
        let payment = DistrictParameter(district: "d2", body: .payment(Payment(account: "acct-1", amountFen: 5000, serial: "pay-1", paidMs: 1)))
        let placed = try await marketingClient.submit(try marketer.sign(marketer.payload(chainID: "main", body: .parameter(payment))), chain: "main")
        let mainHeight = try XCTUnwrap(placed.location?.height)
        _ = try await t.wait(t.districtPorts["d2"]!, "d2 takes the parameter") { $0.downlinkMainHeight >= mainHeight }
        // Time for d1 to take it wrongly, if it would (a grace period: it cannot fail a correct
        // node); then every d1 replica is at d1's last parameter, not past it.
        try await Task.sleep(for: .milliseconds(500))
        for p in t.districtPorts["d1"]! {
            let s = try await t.wait([p], "d1 replica on \(p) has the onboarding") { $0.downlinkMainHeight >= lastParameter }
            XCTAssertEqual(s.downlinkMainHeight, lastParameter, "d1 took a parameter addressed to d2")
        }
        // A parameter for an unregistered district is refused by the main chain's executor.
        let stray = DistrictParameter(district: "d9", body: .payment(Payment(account: "a", amountFen: 1, serial: "s", paidMs: 1)))
        let strayResponse = try await marketingClient.submit(try marketer.sign(marketer.payload(chainID: "main", body: .parameter(stray))), chain: "main")
        XCTAssertEqual(strayResponse.outcome?.code, 9)

        // The main chain stops for a while; districts keep ingesting.
        for n in t.main { n.terminate() }
        let beforeOutage = ingested.snapshot
        func ingestedDuringOutage(_ district: String) -> Bool {
            ingested.snapshot[district, default: 0] > beforeOutage[district, default: 0] + 5
        }
        let outageEnd = ContinuousClock.now + .seconds(30)
        while !["d1", "d2"].allSatisfy(ingestedDuringOutage), ContinuousClock.now < outageEnd {
            try await Task.sleep(for: .milliseconds(50))
        }
        let during = ingested.snapshot
        for district in ["d1", "d2"] {
            XCTAssertGreaterThan(during[district, default: 0], beforeOutage[district, default: 0] + 5, "\(district) ingests while the main chain is down")
        }
        let lagging = try await t.wait(t.districtPorts["d1"]!, "d1 reports its anchor lag") { $0.role == "leader" && $0.anchorLagBlocks > 5 && !$0.syncError.isEmpty }
        print("ANCHOR outage: d1 lag \(lagging.anchorLagBlocks) blocks, \(lagging.anchorLagMs) ms; error: \(lagging.syncError.prefix(120))")
        t.main = try mainProcesses(pki, ports: t.mainPorts)
        for n in t.main { try n.start() }
        for p in t.mainPorts { try await NodeProcess.waitUntilServing(port: p, pki: pki, ops: t.ops) }
        try await Task.sleep(for: .seconds(1))
        stop.set()
        for w in workers { await w.value }
        await mainClient.rpc.close()
        await marketingClient.rpc.close()
        await d1Reader.rpc.close()

        // Anchoring catches up: every district block is anchored, contiguously, once.
        let reader = try await t.client(t.mainPorts[2], as: t.reader)
        defer { Task { await reader.rpc.close() } }
        // An anchor as the main chain placed it: range, block and index.
        struct Placed: Equatable, CustomStringConvertible {
            let from, to, height: UInt64
            let index: UInt32
            var description: String { "\(from)...\(to)@\(height)/\(index)" }
        }
        for district in ["d1", "d2"] {
            let caught = try await t.wait(t.districtPorts[district]!, timeout: .seconds(60), "\(district) catches up") {
                $0.role == "leader" && $0.anchorLagBlocks <= 1 && $0.syncError.isEmpty
            }
            // The ranges in the main chain's state, each with the place of the anchor that wrote it.
            var from: UInt64 = 1
            var ranges: [Placed] = []
            while true {
                let entry = try await reader.state(AnchorKeys.anchor(district, from: from), chain: "main", consistency: .linearizable)
                guard entry.found, let r = AnchorRecord(bytes: entry.value) else { break }
                XCTAssertEqual(r.from, from)
                let at = try XCTUnwrap(entry.version, "\(district): anchor \(r.from)...\(r.to) has no version")
                ranges.append(Placed(from: r.from, to: r.to, height: at.height, index: at.txIndex))
                from = r.to + 1
            }
            XCTAssertGreaterThanOrEqual(from - 1, caught.anchoredHeight, "\(district): contiguous anchors reach the anchored height")
            // No duplicate: the main chain's blocks up to the one holding the last of these hold
            // exactly these accepted anchors of the district, in order. (The top district block
            // may still be anchored meanwhile: that anchor goes in a later main block.)
            var accepted: [Placed] = []
            for h in stride(from: 1, through: ranges.last?.height ?? 0, by: 1) {
                let block = try await reader.block(at: h, chain: "main").block!
                for (i, tx) in block.transactions.enumerated() {
                    if case .anchor(let a)? = try TxPayload(serializedBytes: tx.payload).body, a.district == district, block.outcomes[i].code == 0 {
                        accepted.append(Placed(from: a.fromHeight, to: a.toHeight, height: h, index: UInt32(i)))
                    }
                }
            }
            XCTAssertEqual(accepted, ranges, "\(district): one accepted anchor per range")
            let totals = try await reader.state(AnchorKeys.uplinkTotals(district), chain: "main")
            let summary = try UplinkSummary(serializedBytes: totals.value)
            XCTAssertGreaterThan(summary.readingsAccepted, 0, "\(district) readings went up with the anchors")
            print("ANCHOR \(district): \(ranges.count) anchors cover 1...\(from - 1); uplink readings \(summary.readingsAccepted)")
        }

        // Contracts ran identically on d1's three replicas: same block (state root) everywhere.
        let d1Clients = try await t.districtPorts["d1"]!.asyncMap { try await t.client($0, as: t.reader) }
        let d1Head = try await d1Clients[0].chainInfo(chain: "d1").height
        for c in d1Clients.dropFirst() {
            let end = ContinuousClock.now + .seconds(10)
            while try await c.chainInfo(chain: "d1").height < d1Head, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
        }
        var billed: UInt64 = 0
        for h in 1...d1Head {
            var hashes = Set<[UInt8]>()
            for c in d1Clients { hashes.insert(try await c.block(at: h, chain: "d1").hash) }
            XCTAssertEqual(hashes.count, 1, "d1 block \(h) differs between replicas")
            billed += try await d1Clients[0].block(at: h, chain: "d1").block!.outcomes.reduce(0) { $0 + UInt64($1.readingsBilled) }
        }
        XCTAssertGreaterThan(billed, 100, "d1's readings were billed")
        let accounts = try await d1Clients[1].accounts(anyWarning: true, chain: "d1") + (try await d1Clients[1].accounts(state: .disconnected, chain: "d1"))
        XCTAssertFalse(accounts.isEmpty, "some accounts drained into the warning or disconnect lists")
        XCTAssertFalse(accounts.contains { $0.account == "acct-9" && $0.state == .disconnected }, "protected supply is never disconnected")
        let uplinked = try await reader.state(AnchorKeys.uplinkAccount("d1", "acct-0"), chain: "main")
        XCTAssertTrue(uplinked.found, "account results went up to the main chain")
        print("ANCHOR d1 contracts: \(billed) readings billed; \(accounts.count) accounts in warning/disconnect lists")
        for c in d1Clients { await c.rpc.close() }

        for n in t.all { XCTAssertEqual(n.terminate(), 0, n.output.suffix(2000).description) }
        for dir in ["main1", "main2", "main3", "d1-1", "d1-2", "d1-3", "d2-1", "d2-2", "d2-3"] {
            let report = try ChainVerifier.verify(dataDirectory: pki.dir + "/" + dir)
            XCTAssertNil(report.firstInconsistency, "\(dir): \(report.firstInconsistency ?? "")")
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}

final class Counts: Sendable {
    private let map = Mutex<[String: Int]>([:])
    func add(_ key: String) { map.withLock { $0[key, default: 0] += 1 } }
    var snapshot: [String: Int] { map.withLock { $0 } }
}
