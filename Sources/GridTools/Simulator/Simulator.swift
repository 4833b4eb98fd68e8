import Node
import Foundation
import GridClient
import GridProto
import Identity
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
        /// A main-chain node: the simulated marketing system onboards every customer meter
        /// there (tariff, thresholds, prepaid accounts) and tops up disconnected accounts
        /// every `topUpEvery` intervals; each district's terminal (role device) executes and
        /// acknowledges the control commands. nil = readings only.
        public var mainAddress: String?
        public var mainChain = "main"
        public var topUpEvery = 48

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
            let party = try identity(role: .collector, name: "collector-\(district)", district: district)
            let rpc = try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: options.caDirectory + "/ca.crt")
            let client = ChainClient(rpc)
            let info = try await client.chainInfo()
            targets[district] = (client, try TransactionSigner(certificatePath: party.cert, keyPath: party.key), info.chainId)
            report("district \(district): node \(address), chain \(info.chainId) at height \(info.height), \(options.metersPerDistrict) meters + summary meter")
        }
        var field: [Task<Void, Never>] = []
        defer { for task in field { task.cancel() } }
        var marketing: (client: ChainClient, signer: TransactionSigner)?
        /// Marketing's connection to each district node (reads customers and accounts there).
        var marketingViews: [String: ChainClient] = [:]
        if let mainAddress = options.mainAddress {
            let party = try identity(role: .marketing, name: "marketing-sim", district: nil)
            let rpc = try await GridConnection.connect(to: mainAddress, certificate: party.cert, key: party.key, ca: options.caDirectory + "/ca.crt")
            marketing = (ChainClient(rpc), try TransactionSigner(certificatePath: party.cert, keyPath: party.key))
            for (district, address) in options.nodes {
                // Customers and accounts are marketing's to read, not the collector's.
                let view = ChainClient(try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: options.caDirectory + "/ca.crt"))
                marketingViews[district] = view
                try await onboard(district, meters: fleet.meters, marketing: marketing!, districtClient: view, report: report)
                field.append(try await terminal(district, address: address, report: report))
            }
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
            if let marketing, options.topUpEvery > 0, interval % options.topUpEvery == 0 {
                for (district, _) in options.nodes {
                    guard let view = marketingViews[district] else { continue }
                    try await topUp(district, interval: interval, marketing: marketing, districtClient: view, report: report)
                }
            }
            let elapsed = ContinuousClock.now - started
            if elapsed < options.tick { try await Task.sleep(for: options.tick - elapsed) }
        }
        for target in targets.values { await target.client.rpc.close() }
        await marketing?.client.rpc.close()
        for view in marketingViews.values { await view.rpc.close() }
    }

    /// A party certificate issued from the CA directory on first use.
    private func identity(role: Role, name: String, district: String?) throws -> (cert: String, key: String) {
        let dir = options.pkiDirectory + "/" + name
        if !FileManager.default.fileExists(atPath: dir + "/\(name).crt") {
            try PKI.issue(caDirectory: options.caDirectory, role: role, name: name, district: district, outDirectory: dir)
        }
        return (dir + "/\(name).crt", dir + "/\(name).key")
    }

    /// Marketing puts the district's customers on the main chain (once: a district whose
    /// last customer already arrived is skipped) and waits until the downlink brought them.
    private func onboard(
        _ district: String, meters: [MeterFleet.Meter], marketing: (client: ChainClient, signer: TransactionSigner),
        districtClient: ChainClient, report: @Sendable (String) -> Void
    ) async throws {
        let parameters = Onboarding.parameters(district: district, meters: meters, seed: options.seed)
        guard case .customer(let last)? = parameters.last?.body else { return }
        if try await districtClient.state("customer/" + last.account).found {
            report("district \(district): customers already onboarded")
            return
        }
        let chain = options.mainChain
        // Tariff and thresholds first (customers refer to them), then the customers.
        for parameter in parameters.prefix(2) {
            _ = try await marketing.client.submit(try marketing.signer.sign(marketing.signer.payload(chainID: chain, body: .parameter(parameter))), chain: chain)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slice in stride(from: 2, to: parameters.count, by: 32).map({ Array(parameters[$0..<min($0 + 32, parameters.count)]) }) {
                group.addTask {
                    for parameter in slice {
                        _ = try await marketing.client.submit(try marketing.signer.sign(marketing.signer.payload(chainID: chain, body: .parameter(parameter))), chain: chain)
                    }
                }
            }
            try await group.waitForAll()
        }
        let end = ContinuousClock.now + .seconds(60)
        while !(try await districtClient.state("customer/" + last.account).found) {
            guard ContinuousClock.now < end else { throw RPCError(.deadlineExceeded, "district \(district) did not take its customers from the main chain within 60 s") }
            try await Task.sleep(for: .milliseconds(200))
        }
        report("district \(district): \(parameters.count - 2) prepaid customers onboarded through the main chain (tariff \(Onboarding.tariffID))")
    }

    /// The district terminal: executes each control command and acknowledges it.
    private func terminal(_ district: String, address: String, report: @escaping @Sendable (String) -> Void) async throws -> Task<Void, Never> {
        let party = try identity(role: .device, name: "terminal-\(district)", district: district)
        let signer = try TransactionSigner(certificatePath: party.cert, keyPath: party.key)
        let ca = options.caDirectory + "/ca.crt"
        return Task {
            while !Task.isCancelled {
                do {
                    let client = ChainClient(try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: ca))
                    defer { Task { await client.rpc.close() } }
                    for try await command in client.subscribeCommands(chain: district) where command.status == .issued {
                        let ack = CommandAck(commandId: command.commandId, success: true, detail: "executed by terminal-\(district)")
                        _ = try? await client.submit(try signer.sign(signer.payload(chainID: district, body: .commandAck(ack))), chain: district)
                        report("terminal \(district): \(command.kind) for \(command.account) executed and acknowledged")
                    }
                } catch {
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Marketing tops up every disconnected account of the district with 30 CNY.
    private func topUp(
        _ district: String, interval: Int, marketing: (client: ChainClient, signer: TransactionSigner), districtClient: ChainClient,
        report: @Sendable (String) -> Void
    ) async throws {
        let disconnected = try await districtClient.accounts(state: .disconnected, chain: "", limit: 1000)
        for account in disconnected {
            let payment = Payment(account: account.account, amountFen: 3_000, serial: "sim-\(district)-\(interval)-\(account.account)", paidMs: Int64(Date().timeIntervalSince1970 * 1000))
            _ = try await marketing.client.submit(try marketing.signer.sign(marketing.signer.payload(
                chainID: options.mainChain, body: .parameter(DistrictParameter(district: district, body: .payment(payment))))), chain: options.mainChain)
        }
        if !disconnected.isEmpty { report("marketing: topped up \(disconnected.count) disconnected accounts of \(district) with 30 CNY each") }
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
