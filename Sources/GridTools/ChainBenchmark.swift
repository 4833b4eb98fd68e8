import Node
import Foundation
import GridClient
import GridProto
import Logging
import Store
import Wire

/// `gridnode bench chain`: readings committed per second on one node (batches of 500
/// readings, signed by a collector, submitted over mutual TLS by concurrent clients in this
/// process) with p50/p99 submit-to-durable latency, next to the raw LevelDB synced
/// write-batch rate for the same bytes measured in the same run.
public struct ChainBenchmark: Sendable {
    public var seconds: Double
    public var batchSize: Int
    public var submitters: Int
    public var connections: Int
    public var blockDelayMs = 100

    public init(seconds: Double = 10, batchSize: Int = 500, submitters: Int = 16, connections: Int = 4) {
        self.seconds = seconds
        self.batchSize = batchSize
        self.submitters = submitters
        self.connections = connections
    }

    public func run(report: @escaping @Sendable (String) -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-chainbench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "bench CA")
        let nodeCert = try PKI.issue(caDirectory: dir + "/ca", role: .node, name: "bench-node", district: "d1", outDirectory: dir + "/node")
        let col = try PKI.issue(caDirectory: dir + "/ca", role: .collector, name: "bench-col", district: "d1", outDirectory: dir + "/col")
        var config = NodeConfiguration.loopback(nodeCert, dataDir: dir + "/data")
        config.chain.maxBlockDelayMs = blockDelayMs
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let node = try GridNode(configuration: config, logger: logger)
        let port = try await node.start().port!
        let signer = try TransactionSigner(certificatePath: col.certificatePath, keyPath: col.privateKeyPath)
        var clients: [ChainClient] = []
        for _ in 0..<connections {
            clients.append(ChainClient(try await GridConnection.connect(
                to: "127.0.0.1:\(port)", certificate: col.certificatePath, key: col.privateKeyPath, ca: col.caCertificatePath, logger: logger)))
        }
        report("GridLedger chain benchmark: one node (solo ordering), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(seconds) s")
        report("\(submitters) concurrent submitters over \(connections) mutual-TLS connections, batches of \(batchSize) readings, collector-signed (ECDSA P-256), max block delay \(blockDelayMs) ms")
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let batchSize = self.batchSize
        let results = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for worker in 0..<submitters {
                let client = clients[worker % clients.count]
                group.addTask {
                    var readingsCommitted = 0
                    var latencies: [Int64] = []
                    var n = 0
                    while ContinuousClock.now < end {
                        let readings = BenchmarkReadings.batch(worker: worker, sequence: n, size: batchSize)
                        let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "w\(worker)-\(n)", readings: readings))
                        let t0 = ContinuousClock.now
                        let response = try await Simulator.submitWithRetry(client, tx)
                        let d = ContinuousClock.now - t0
                        latencies.append(d.nanoseconds)
                        readingsCommitted += Int(response.outcome?.readingsAccepted ?? 0)
                        n += 1
                    }
                    return (readingsCommitted, latencies)
                }
            }
            var total = 0
            var all: [Int64] = []
            for try await (r, l) in group {
                total += r
                all += l
            }
            return (total, all)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let samples = LatencySamples(results.1)
        func pct(_ p: Double) -> Double { samples.quantile(p) / 1e6 }
        let status = node.status().chains.first
        let totals = try node.storeWriteTotals()
        let chainRate = Double(results.0) / elapsed
        report(String(format: "chain:   %.0f readings/s committed (%d in %.1f s), %d blocks; submit-to-durable p50 %.1f ms, p99 %.1f ms",
                      chainRate, results.0, elapsed, Int(status?.height ?? 0), pct(0.5), pct(0.99)))
        for c in clients { await c.rpc.close() }
        await node.stop()

        // The same bytes in the same batch shape, written straight into LevelDB: one synced
        // batch per block, as many entries per batch and bytes per entry as the chain wrote.
        let entriesPerBatch = max(1, Int(totals.entries / max(1, totals.batches)))
        let bytesPerEntry = max(1, Int(totals.bytes / max(1, totals.entries)) - 24)
        let entriesPerReading = Double(totals.entries) / Double(max(1, results.0))
        report(String(format: "store:   %llu synced batches, %.1f LevelDB entries and %.0f bytes per reading",
                      totals.batches, entriesPerReading, Double(totals.bytes) / Double(max(1, results.0))))
        let raw = try LevelDBBenchmark.rawWriteRate(
            directory: dir + "/raw", batches: max(20, min(Int(totals.batches), 400)), batchSize: entriesPerBatch,
            valueBytes: bytesPerEntry, sync: true)
        let rawReadings = raw.putsPerSecond / entriesPerReading
        report(String(format: "leveldb: %.0f entries/s (%.0f MB/s) in synced batches of %d entries of ~%d bytes = %.0f readings/s of the chain's bytes",
                      raw.putsPerSecond, raw.bytesPerSecond / 1e6, entriesPerBatch, bytesPerEntry + 24, rawReadings))
        report(String(format: "ratio:   the chain commits at %.0f%% of the raw LevelDB rate for the same bytes", 100 * chainRate / rawReadings))
    }
}
