import Node
import Foundation
import GridClient
import GridProto
import Logging
import Synchronization
import Wire

/// `gridnode bench raft`: a 3-node district chain as three real `gridnode` processes on
/// loopback, loaded by collector-signed batches of 500 readings from this process (all four
/// processes share the machine's cores). Prints readings committed per second, p50/p99
/// submit-to-commit latency at full load and at half of it, and the time from a SIGKILL of
/// the leader to the first commit under the new leader.
public struct RaftBenchmark: Sendable {
    public var seconds: Double = 10
    public var submitters = 32
    public var batchSize = 500
    public var executable: String

    public init(executable: String) { self.executable = executable }

    public func run(report: @escaping @Sendable (String) -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-raftbench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "bench CA")
        let col = try PKI.issue(caDirectory: dir + "/ca", role: .collector, name: "col", district: "d1", outDirectory: dir + "/col")
        let ops = try PKI.issue(caDirectory: dir + "/ca", role: .ops, name: "ops", outDirectory: dir + "/ops")
        let base = Int.random(in: 30_000...50_000)
        let ports = [base, base + 1, base + 2]
        let certs = try (1...3).map { try PKI.issue(caDirectory: dir + "/ca", role: .node, name: "node\($0)", district: "d1", outDirectory: dir + "/n\($0)") }
        let members = (1...3).flatMap { ["--member", "\($0)=node\($0)@127.0.0.1:\(ports[$0 - 1])#cert:\(certs[$0 - 1].certificatePath)"] }
        var processes: [Process] = []
        for i in 1...3 {
            let cert = certs[i - 1]
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["start", "--listen", "127.0.0.1:\(ports[i - 1])", "--data-dir", dir + "/d\(i)", "--cert", cert.certificatePath,
                           "--key", cert.privateKeyPath, "--ca", cert.caCertificatePath, "--chain-id", "d1", "--raft-id", "\(i)",
                           "--max-block-delay-ms", "5", "--log-level", "error"] + members
            p.standardError = FileHandle.nullDevice
            try p.run()
            processes.append(p)
        }
        defer { for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() } }

        func leader() async -> Int? {
            for (i, port) in ports.enumerated() where processes[i].isRunning {
                if let s = try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.certificatePath, key: ops.privateKeyPath, ca: ops.caCertificatePath, timeoutMs: 500),
                   s.chains.first?.role == "leader" { return i }
            }
            return nil
        }
        var leaderIndex: Int?
        let electionEnd = ContinuousClock.now + .seconds(20)
        while leaderIndex == nil, ContinuousClock.now < electionEnd {
            leaderIndex = await leader()
            if leaderIndex == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard let first = leaderIndex else { throw RPCError(.unavailable, "no leader elected") }
        let signer = try TransactionSigner(certificatePath: col.certificatePath, keyPath: col.privateKeyPath)
        var clients: [ChainClient] = []
        for _ in 0..<4 {
            clients.append(ChainClient(try await GridConnection.connect(
                to: "127.0.0.1:\(ports[first])", certificate: col.certificatePath, key: col.privateKeyPath, ca: col.caCertificatePath)))
        }
        report("GridLedger Raft benchmark: 3 gridnode processes (district d1) + load generator on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        report("batches of \(batchSize) readings, collector-signed, submitted to the leader over 4 mutual-TLS connections")
        let full = try await load(clients: clients, signer: signer, workers: submitters, seconds: seconds, rateLimit: nil, tag: "full")
        report(String(format: "full load (%d submitters): %.0f readings/s committed; p50 %.1f ms, p99 %.1f ms", submitters, full.rate, full.p50, full.p99))
        let halfRate = full.rate / 2 / Double(batchSize)
        let half = try await load(clients: clients, signer: signer, workers: submitters, seconds: seconds, rateLimit: halfRate, tag: "half")
        report(String(format: "half load (%.0f readings/s offered): %.0f readings/s committed; p50 %.1f ms, p99 %.1f ms", full.rate / 2, half.rate, half.p50, half.p99))
        for c in clients { await c.rpc.close() }

        // Failover: kill the leader with SIGKILL while a client keeps submitting to a survivor.
        let survivor = ports[(first + 1) % 3]
        let probe = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(survivor)", certificate: col.certificatePath, key: col.privateKeyPath, ca: col.caCertificatePath))
        let killedAt = ContinuousClock.now
        kill(processes[first].processIdentifier, SIGKILL)
        processes[first].waitUntilExit()
        var n = 0
        var firstCommit: Duration?
        while ContinuousClock.now - killedAt < .seconds(30) {
            var r = Reading()
            r.meterId = "failover"
            r.timestampMs = 1_800_000_000_000 + Int64(n)
            n += 1
            if (try? await probe.submitReadings(try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "f\(n)", readings: [r])), timeout: .seconds(2))) != nil {
                firstCommit = ContinuousClock.now - killedAt
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        await probe.rpc.close()
        if let firstCommit {
            report(String(format: "failover: leader SIGKILLed; first commit under the new leader after %.0f ms", firstCommit.seconds * 1000))
        } else {
            report("failover: no commit within 30 s of the leader's SIGKILL")
        }
    }

    private func load(clients: [ChainClient], signer: TransactionSigner, workers: Int, seconds: Double, rateLimit: Double?, tag: String) async throws -> (rate: Double, p50: Double, p99: Double) {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let batchSize = self.batchSize
        let interval: Duration? = rateLimit.map { .nanoseconds(Int64(Double(workers) / $0 * 1e9)) }
        let results = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for w in 0..<workers {
                let client = clients[w % clients.count]
                group.addTask {
                    var committed = 0
                    var latencies: [Int64] = []
                    var n = 0
                    var next = ContinuousClock.now
                    while ContinuousClock.now < end {
                        if let interval {
                            if ContinuousClock.now < next { try await Task.sleep(until: next) }
                            next = next + interval
                        }
                        var readings: [Reading] = []
                        readings.reserveCapacity(batchSize)
                        for i in 0..<batchSize {
                            var r = Reading()
                            r.meterId = "\(tag)\(w)-m\(i)"
                            r.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
                            r.energyTotal = UInt64(n * 10 + i)
                            readings.append(r)
                        }
                        let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "\(tag)\(w)-\(n)", readings: readings))
                        n += 1
                        let t0 = ContinuousClock.now
                        let response = try await Simulator.submitWithRetry(client, tx)
                        let d = ContinuousClock.now - t0
                        latencies.append(d.nanoseconds)
                        committed += Int(response.outcome?.readingsAccepted ?? 0)
                    }
                    return (committed, latencies)
                }
            }
            var total = 0
            var all: [Int64] = []
            for try await (c, l) in group { total += c; all += l }
            return (total, all)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let samples = LatencySamples(results.1)
        func pct(_ p: Double) -> Double { samples.quantile(p) / 1e6 }
        return (Double(results.0) / elapsed, pct(0.5), pct(0.99))
    }
}
