import Node
import Contracts
import Foundation
import GridClient
import GridProto
import GridCrypto
import Identity
import Logging
import Synchronization
import Wire

/// `gridnode bench contracts`: readings billed per second through the fee-control contract
/// engine alone (in memory), then through a 3-node Raft district chain (three nodes in this
/// process over loopback mutual TLS, plus a solo main chain that carries the customers
/// down), compared in the same run with the same load on meters that have no customer
/// (stored, not billed).
public struct ContractsChainBenchmark: Sendable {
    public var seconds: Double = 8
    public var submitters = 8
    public var batchSize = 250

    public init() {}

    public func run(report: @escaping @Sendable (String) -> Void) async throws {
        let engine = ContractsBenchmark.run(accounts: 500, readingsPerAccount: 200)
        report("GridLedger contracts benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores")
        report(String(format: "engine alone (in memory): %.0f readings billed/s (%d readings of 500 prepaid accounts in %.2f s)",
                      Double(engine.readings) / engine.seconds, engine.readings, engine.seconds))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-contractsbench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "bench CA")
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        func party(_ role: Role, _ name: String, _ district: String? = nil) throws -> IssuedCertificate {
            try PKI.issue(caDirectory: dir + "/ca", role: role, name: name, district: district, outDirectory: dir + "/" + name)
        }
        func baseConfig(_ cert: IssuedCertificate, _ name: String) -> NodeConfiguration {
            var c = NodeConfiguration.loopback(cert, dataDir: dir + "/data-" + name)
            c.chain.maxBlockDelayMs = 5
            return c
        }
        var mainConfig = baseConfig(try party(.node, "cloud"), "cloud")
        mainConfig.chain.id = "main"
        mainConfig.chain.kind = "main"
        let main = try GridNode(configuration: mainConfig, logger: logger)
        let mainAddress = "127.0.0.1:\(try await main.start().port!)"

        let base = Int.random(in: 30_000...50_000)
        let certs = try (1...3).map { try party(.node, "edge\($0)", "db") }
        let members = (1...3).map {
            NodeConfiguration.Chain.Member(id: UInt64($0), name: "edge\($0)", address: "127.0.0.1:\(base + $0 - 1)",
                                           publicKeySHA256: certs[$0 - 1].identity?.publicKeySHA256 ?? "")
        }
        var nodes: [GridNode] = []
        var ders: [[UInt8]] = []
        for i in 1...3 {
            let cert = certs[i - 1]
            ders.append(try CertificateKeyPair(certificatePath: cert.certificatePath, privateKeyPath: cert.privateKeyPath).certificateDER)
            var c = baseConfig(cert, "edge\(i)")
            c.listen = members[i - 1].address
            c.chain.id = "db"
            c.chain.raftID = UInt64(i)
            c.chain.members = members
            c.chain.mainChain = NodeConfiguration.Chain.MainChainLink(id: "main", endpoints: [mainAddress])
            let node = try GridNode(configuration: c, logger: logger)
            try await node.start()
            nodes.append(node)
        }
        let cluster = nodes
        do {
            try await measure(mainAddress: mainAddress, members: members, nodes: cluster, ders: ders, party: party,
                              engineRate: Double(engine.readings) / engine.seconds, report: report)
        } catch {
            for n in cluster { await n.stop() }
            await main.stop()
            throw error
        }
        for n in cluster { await n.stop() }
        await main.stop()
    }

    private func measure(
        mainAddress: String, members: [NodeConfiguration.Chain.Member], nodes: [GridNode], ders: [[UInt8]],
        party: (Role, String, String?) throws -> IssuedCertificate, engineRate: Double, report: @escaping @Sendable (String) -> Void
    ) async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let admin = try party(.admin, "admin", nil)
        let adminSigner = try TransactionSigner(certificatePath: admin.certificatePath, keyPath: admin.privateKeyPath)
        let adminClient = ChainClient(try await GridConnection.connect(to: mainAddress, certificate: admin.certificatePath, key: admin.privateKeyPath, ca: admin.caCertificatePath, logger: logger))
        _ = try await adminClient.submit(try adminSigner.sign(adminSigner.payload(
            chainID: "main", body: .districtRegistration(DistrictRegistration(district: "db", memberCertificates: ders)))))
        await adminClient.rpc.close()
        let electionEnd = ContinuousClock.now + .seconds(20)
        while !nodes.contains(where: { $0.status().chains.first?.role == "leader" }) {
            guard ContinuousClock.now < electionEnd else { throw RPCError(.unavailable, "no leader elected") }
            try await Task.sleep(for: .milliseconds(20))
        }

        let col = try party(.collector, "col", "db")
        let signer = try TransactionSigner(certificatePath: col.certificatePath, keyPath: col.privateKeyPath)
        var clients: [ChainClient] = []
        for i in 0..<3 {
            clients.append(ChainClient(try await GridConnection.connect(
                to: members[i].address, certificate: col.certificatePath, key: col.privateKeyPath, ca: col.caCertificatePath, logger: logger)))
        }
        report("3-node Raft district chain in this process (+ a solo main chain), \(submitters) submitters spread over the 3 nodes, batches of \(batchSize) readings, \(seconds) s per phase")

        // Phase 1: meters without a customer archive (the contract only finds no customer).
        let plain = try await load(prefix: "x", clients: clients, signer: signer)
        report(String(format: "no contracts (meters without customers): %.0f readings/s committed", plain.committed))

        // Onboard one prepaid customer per meter of phase 2 through the main chain.
        let marketing = try party(.marketing, "marketing", nil)
        let marketer = try TransactionSigner(certificatePath: marketing.certificatePath, keyPath: marketing.privateKeyPath)
        let marketingClient = ChainClient(try await GridConnection.connect(to: mainAddress, certificate: marketing.certificatePath, key: marketing.privateKeyPath, ca: marketing.caCertificatePath, logger: logger))
        let meters = (0..<submitters).flatMap { w in (0..<batchSize).map { "w\(w)-m\($0)" } }
        let onboardStart = ContinuousClock.now
        for body: DistrictParameter.Body in [.tariff(Onboarding.tariff()), .thresholds(Onboarding.thresholds(gridWorker: "worker"))] {
            _ = try await marketingClient.submit(try marketer.sign(marketer.payload(chainID: "main", body: .parameter(DistrictParameter(district: "db", body: body)))), chain: "main")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slice in stride(from: 0, to: meters.count, by: 64).map({ Array(meters[$0..<min($0 + 64, meters.count)]) }) {
                group.addTask {
                    for meter in slice {
                        let customer = CustomerArchive(account: "a-" + meter, meterId: meter, tariffId: Onboarding.tariffID, openingBalanceFen: 1_000_000)
                        _ = try await marketingClient.submit(try marketer.sign(marketer.payload(chainID: "main", body: .parameter(DistrictParameter(district: "db", body: .customer(customer))))), chain: "main")
                    }
                }
            }
            try await group.waitForAll()
        }
        await marketingClient.rpc.close()
        // Customers are marketing's to read (ReadPolicy), not the collector's.
        let marketingView = ChainClient(try await GridConnection.connect(to: members[0].address, certificate: marketing.certificatePath, key: marketing.privateKeyPath, ca: marketing.caCertificatePath, logger: logger))
        defer { Task { await marketingView.rpc.close() } }
        let onboarded = ContinuousClock.now + .seconds(120)
        while !(try await marketingView.state(ContractKeys.customer("a-" + meters.last!), chain: "db").found) {
            guard ContinuousClock.now < onboarded else { throw RPCError(.deadlineExceeded, "customers did not reach the district") }
            try await Task.sleep(for: .milliseconds(50))
        }
        report(String(format: "onboarding: %d customers through the main chain and the downlink in %.1f s", meters.count, (ContinuousClock.now - onboardStart).seconds))

        // Phase 2: the same load, every reading billed by the contract on all three replicas.
        let billed = try await load(prefix: "w", clients: clients, signer: signer)
        report(String(format: "with contracts (prepaid customers): %.0f readings/s committed, %.0f billed/s", billed.committed, billed.billed))
        report(String(format: "ratio: the chain with billing runs at %.0f%% of its rate without (engine alone: %.0fx the chain's rate)",
                      100 * billed.committed / max(plain.committed, 1), engineRate / max(billed.billed, 1)))
        for c in clients { await c.rpc.close() }
    }

    /// `submitters` workers send batches of readings for meters `<prefix><worker>-m<i>`.
    private func load(prefix: String, clients: [ChainClient], signer: TransactionSigner) async throws -> (committed: Double, billed: Double) {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let batchSize = self.batchSize
        let (committed, billed) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for worker in 0..<submitters {
                let client = clients[worker % clients.count]
                group.addTask {
                    var committed = 0
                    var billed = 0
                    var n = 0
                    while ContinuousClock.now < end {
                        var readings = BenchmarkReadings.batch(worker: worker, sequence: n, size: batchSize)
                        for i in readings.indices { readings[i].meterId = prefix + readings[i].meterId.dropFirst() }
                        let tx = try signer.sign(signer.readingsPayload(chainID: "db", batchID: "\(prefix)\(worker)-\(n)", readings: readings))
                        let response = try await Simulator.submitWithRetry(client, tx)
                        committed += Int(response.outcome?.readingsAccepted ?? 0)
                        billed += Int(response.outcome?.readingsBilled ?? 0)
                        n += 1
                    }
                    return (committed, billed)
                }
            }
            var sum = (0, 0)
            for try await r in group { sum.0 += r.0; sum.1 += r.1 }
            return sum
        }
        let elapsed = (ContinuousClock.now - start).seconds
        return (Double(committed) / elapsed, Double(billed) / elapsed)
    }
}
