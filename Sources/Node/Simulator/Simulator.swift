import Foundation
import GridProto
import Logging
import Wire

/// `gridnode simulate`: drives a node with simulated meters through the real client path
/// (mutual TLS, signed batches, `Ingest.SubmitReadings`).
///
/// Each district gets a collector identity (issued from the CA directory on first use);
/// every wall-clock `tick`, the fleet advances one reading interval (15 simulated minutes)
/// and each district's readings are signed and submitted in batches.
public struct Simulator: Sendable {
    public struct Options: Sendable {
        /// district id → node address (host:port) serving that district's chain.
        public var nodes: [(district: String, address: String)] = []
        /// CA directory (`ca.crt`, `ca.key`): collector certificates are issued from it.
        public var caDirectory = ""
        /// Where collector certificates are kept.
        public var pkiDirectory = ""
        public var metersPerDistrict = 200
        public var seed: UInt64 = 1
        /// Wall time between two simulated intervals.
        public var tick: Duration = .seconds(1)
        /// Intervals to send; 0 = until cancelled.
        public var intervals = 0
        public var batchSize = 500
        /// Simulated time starts this many days before now (readings never lie in the future).
        public var startDaysAgo = 30

        public init() {}
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    public func run(report: @escaping @Sendable (String) -> Void) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var fleet = MeterFleet(
            seed: options.seed, districts: options.nodes.map(\.district), metersPerDistrict: options.metersPerDistrict,
            startMs: now - Int64(options.startDaysAgo) * 86_400_000)
        var targets: [String: (client: ChainClient, signer: TransactionSigner, chain: String)] = [:]
        for (district, address) in options.nodes {
            let name = "collector-\(district)"
            let dir = options.pkiDirectory + "/" + name
            if !FileManager.default.fileExists(atPath: dir + "/\(name).crt") {
                try PKI.issue(caDirectory: options.caDirectory, role: .collector, name: name, district: district, outDirectory: dir)
            }
            let rpc = try await GridClient.connect(
                to: address, certificate: dir + "/\(name).crt", key: dir + "/\(name).key", ca: options.caDirectory + "/ca.crt")
            let client = ChainClient(rpc)
            let info = try await client.chainInfo()
            targets[district] = (client, try TransactionSigner(certificatePath: dir + "/\(name).crt", keyPath: dir + "/\(name).key"), info.chainId)
            report("district \(district): node \(address), chain \(info.chainId) at height \(info.height), \(options.metersPerDistrict) meters + summary meter")
        }
        var interval = 0
        while options.intervals == 0 || interval < options.intervals {
            try Task.checkCancellation()
            let started = ContinuousClock.now
            // Accelerated time never runs ahead of the wall clock: readings from the future
            // would be refused by VEE. Once caught up, intervals follow real time.
            let wallMs = Int64(Date().timeIntervalSince1970 * 1000)
            if fleet.currentMs + fleet.intervalMs > wallMs {
                try await Task.sleep(for: .milliseconds(fleet.currentMs + fleet.intervalMs - wallMs))
            }
            let readings = fleet.nextIntervalInOrder()
            interval += 1
            try await withThrowingTaskGroup(of: String.self) { group in
                for (district, batch) in readings {
                    guard let target = targets[district] else { continue }
                    let chunks = stride(from: 0, to: batch.count, by: options.batchSize).map { Array(batch[$0..<min($0 + options.batchSize, batch.count)]) }
                    let n = interval
                    let size = options.batchSize
                    group.addTask {
                        var accepted = 0, duplicate = 0
                        var height: UInt64 = 0
                        let t0 = ContinuousClock.now
                        for (i, chunk) in chunks.enumerated() {
                            let payload = target.signer.readingsPayload(chainID: target.chain, batchID: "sim-\(district)-\(n)-\(i)-\(size)", readings: chunk)
                            let response = try await Self.submitWithRetry(target.client, try target.signer.sign(payload))
                            accepted += Int(response.outcome?.readingsAccepted ?? 0)
                            duplicate += Int(response.outcome?.readingsDuplicate ?? 0)
                            height = response.location?.height ?? height
                        }
                        let ms = (ContinuousClock.now - t0).components.attoseconds / 1_000_000_000_000_000 + (ContinuousClock.now - t0).components.seconds * 1000
                        return "\(district): \(accepted) readings committed (\(duplicate) duplicate) at height \(height) in \(ms) ms"
                    }
                }
                var lines: [String] = []
                for try await line in group { lines.append(line) }
                let stamp = readings.first?.readings.first.map { Date(timeIntervalSince1970: Double($0.timestampMs) / 1000) }
                report("interval \(interval) [\(stamp.map { ISO8601DateFormatter().string(from: $0) } ?? "-")]  " + lines.sorted().joined(separator: "; "))
            }
            let elapsed = ContinuousClock.now - started
            if elapsed < options.tick { try await Task.sleep(for: options.tick - elapsed) }
        }
        for target in targets.values { await target.client.rpc.close() }
    }

    /// Retries RESOURCE_EXHAUSTED (a full ingestion queue) and UNAVAILABLE (no leader yet,
    /// or leadership moving) with backoff, as clients should. A retry that finds the
    /// transaction already committed returns its original location.
    static func submitWithRetry(_ client: ChainClient, _ tx: SignedTransaction) async throws -> SubmitResponse {
        var delay = Duration.milliseconds(50)
        for _ in 0..<20 {
            do {
                return try await client.submitReadings(tx)
            } catch let error as RPCError where error.code == .alreadyExists {
                let location = error.metadataValue("gridledger-tx-location-bin").flatMap { try? TxLocation(serializedBytes: $0) }
                return SubmitResponse(location: location, outcome: nil, alreadyExisted: true)
            } catch let error as RPCError where error.code == .resourceExhausted || error.code == .unavailable {
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        return try await client.submitReadings(tx)
    }
}
