import Foundation
import GridClient
import GridCrypto
import GridProto
import GridTLS
import Logging
import Node
import Synchronization
import Wire

/// `gridnode bench anchor`: the cost of anchoring. In one run, three nodes in this process:
/// a main chain and two district chains, one anchoring on the main chain and one not. The
/// same load goes to each district in turn; the benchmark prints both ingestion rates and
/// the time from a reading's commit on the district to its block's anchor receipt (the
/// main chain accepted the anchor and the district recorded it).
public struct AnchorBenchmark: Sendable {
    public var seconds: Double
    public var batchSize = 500
    public var submitters = 16
    public var blockDelayMs = 20
    public var anchorEveryBlocks = 20
    public var anchorEveryMs = 1000

    public init(seconds: Double = 8) {
        self.seconds = seconds
    }

    public func run(report: @escaping @Sendable (String) -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-anchorbench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "bench CA")
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        func config(_ name: String, district: String?, chain: String) throws -> NodeConfiguration {
            let cert = try PKI.issue(caDirectory: dir + "/ca", role: .node, name: name, district: district, outDirectory: dir + "/" + name)
            var c = NodeConfiguration.loopback(cert, dataDir: dir + "/data-" + name)
            c.chain.id = chain
            c.chain.maxBlockDelayMs = blockDelayMs
            return c
        }
        var mainConfig = try config("cloud", district: nil, chain: "main")
        mainConfig.chain.kind = "main"
        mainConfig.chain.maxBlockDelayMs = 5
        let main = try GridNode(configuration: mainConfig, logger: logger)
        let mainPort = try await main.start().port!

        var anchoredConfig = try config("edge-a", district: "da", chain: "da")
        var link = NodeConfiguration.Chain.MainChainLink(id: "main", endpoints: ["127.0.0.1:\(mainPort)"])
        link.anchorEveryBlocks = anchorEveryBlocks
        link.anchorEveryMs = anchorEveryMs
        anchoredConfig.chain.mainChain = link
        let plainConfig = try config("edge-b", district: "db", chain: "db")

        // Register the anchoring district on the main chain.
        let admin = try PKI.issue(caDirectory: dir + "/ca", role: .admin, name: "admin", outDirectory: dir + "/admin")
        let adminSigner = try TransactionSigner(certificatePath: admin.certificatePath, keyPath: admin.privateKeyPath)
        let adminClient = ChainClient(try await GridConnection.connect(
            to: "127.0.0.1:\(mainPort)", certificate: admin.certificatePath, key: admin.privateKeyPath, ca: admin.caCertificatePath, logger: logger))
        let der = try CertificateKeyPair(certificatePath: anchoredConfig.tls.cert, privateKeyPath: anchoredConfig.tls.key).certificateDER
        _ = try await adminClient.submit(try adminSigner.sign(adminSigner.payload(
            chainID: "main", body: .districtRegistration(DistrictRegistration(district: "da", memberCertificates: [der])))))
        await adminClient.rpc.close()

        report("GridLedger anchoring benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(seconds) s per district")
        report("a solo main chain and two solo districts in one process; \(submitters) submitters, batches of \(batchSize) readings, block delay \(blockDelayMs) ms; anchor every \(anchorEveryBlocks) blocks or \(anchorEveryMs) ms")
        var rates: [String: Double] = [:]
        for (label, c, district) in [("off", plainConfig, "db"), ("on", anchoredConfig, "da")] {
            let node = try GridNode(configuration: c, logger: logger)
            let port = try await node.start().port!
            let col = try PKI.issue(caDirectory: dir + "/ca", role: .collector, name: "col-\(district)", district: district, outDirectory: dir + "/col-" + district)
            let signer = try TransactionSigner(certificatePath: col.certificatePath, keyPath: col.privateKeyPath)
            var clients: [ChainClient] = []
            for _ in 0..<4 {
                clients.append(ChainClient(try await GridConnection.connect(
                    to: "127.0.0.1:\(port)", certificate: col.certificatePath, key: col.privateKeyPath, ca: col.caCertificatePath, logger: logger)))
            }
            let commits = CommitLog()
            let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
            let start = ContinuousClock.now
            let batchSize = self.batchSize
            // Watches the anchored height and resolves commit → anchored latencies.
            let watcher = Task {
                while !Task.isCancelled {
                    commits.resolve(anchoredHeight: node.status().chains.first?.anchoredHeight ?? 0)
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<submitters {
                    let client = clients[worker % clients.count]
                    group.addTask {
                        var committed = 0
                        var n = 0
                        while ContinuousClock.now < end {
                            let readings = BenchmarkReadings.batch(worker: worker, sequence: n, size: batchSize)
                            let tx = try signer.sign(signer.readingsPayload(chainID: district, batchID: "w\(worker)-\(n)", readings: readings))
                            let response = try await Simulator.submitWithRetry(client, tx)
                            commits.add(height: response.location?.height ?? 0)
                            committed += Int(response.outcome?.readingsAccepted ?? 0)
                            n += 1
                        }
                        return committed
                    }
                }
                var sum = 0
                for try await c in group { sum += c }
                return sum
            }
            let elapsed = (ContinuousClock.now - start).seconds
            rates[label] = Double(total) / elapsed
            let height = node.status().chains.first?.height ?? 0
            if label == "on" {
                // Let the last anchors land, then report commit → anchor receipt.
                let deadline = ContinuousClock.now + .seconds(30)
                while (node.status().chains.first?.anchoredHeight ?? 0) < height, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                commits.resolve(anchoredHeight: node.status().chains.first?.anchoredHeight ?? 0)
            }
            watcher.cancel()
            _ = await watcher.value
            report(String(format: "anchoring %@: %.0f readings/s committed (%d in %.1f s, %llu blocks)", label, rates[label]!, total, elapsed, height))
            if label == "on" {
                let samples = LatencySamples(commits.latencies)
                // The receipt is read in process: the collector's clients may not read raw state.
                let receipt = (try? node.state(GridNode.lastReceiptKey, chain: district)).flatMap { try? AnchorReceipt(serializedBytes: $0.value) }
                report(String(format: "commit → anchored on the main chain (receipt recorded): p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d commits; anchored up to %llu",
                              samples.quantile(0.5) / 1e6, samples.quantile(0.99) / 1e6, samples.quantile(1) / 1e6, commits.latencies.count, receipt?.toHeight ?? 0))
            }
            for client in clients { await client.rpc.close() }
            await node.stop()
        }
        await main.stop()
        if let on = rates["on"], let off = rates["off"], off > 0 {
            report(String(format: "overhead: anchoring on ingests at %.1f%% of the rate with anchoring off", 100 * on / off))
        }
    }
}

/// Commit heights waiting for their anchor, and the latencies of the resolved ones.
private final class CommitLog: Sendable {
    private struct State {
        var pending: [(height: UInt64, at: ContinuousClock.Instant)] = []
        var latencies: [Int64] = []
    }
    private let state = Mutex(State())

    func add(height: UInt64) {
        state.withLock { $0.pending.append((height, .now)) }
    }

    func resolve(anchoredHeight: UInt64) {
        let now = ContinuousClock.now
        state.withLock { s in
            var keep: [(height: UInt64, at: ContinuousClock.Instant)] = []
            for p in s.pending {
                if p.height <= anchoredHeight { s.latencies.append((now - p.at).nanoseconds) } else { keep.append(p) }
            }
            s.pending = keep
        }
    }

    var latencies: [Int64] { state.withLock { $0.latencies } }
}

/// The synthetic reading batches the benchmarks submit: `size` meters of one worker, one
/// reading each at the worker's `sequence`-th 15-minute interval.
enum BenchmarkReadings {
    static func batch(worker: Int, sequence n: Int, size: Int) -> [Reading] {
        var readings: [Reading] = []
        readings.reserveCapacity(size)
        for i in 0..<size {
            var r = Reading()
            r.meterId = "w\(worker)-m\(i)"
            r.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
            r.energyTotal = UInt64(n * 25 + i)
            r.energyFlat = r.energyTotal
            r.voltageDv = [2201]
            r.currentMa = [4800]
            r.activePowerW = 1050
            readings.append(r)
        }
        return readings
    }
}
