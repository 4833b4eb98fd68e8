import Foundation
import GridClient
import GridProto
import GridCrypto
import Logging
@testable import Node
import Wire
import XCTest

/// Two in-process nodes for cross-chain tests: a solo main chain (`main`) and a solo
/// district chain `d1` registered on it and anchoring on it (sm3 hashes on the district).
final class MainAndDistrict: @unchecked Sendable {
    let pki: TestPKI
    let collector: (cert: String, key: String)
    let collectorSigner: TransactionSigner
    /// Reads everything of both chains (role marketing, Docs/permissions.md).
    let reader: (cert: String, key: String)
    var main: GridNode?
    var district: GridNode?
    var mainAddress = ""
    var districtAddress = ""
    var districtConfig = NodeConfiguration()

    /// What the district node logs, when the test asked for it (`districtLogs`).
    let districtLogs: CapturedLogs?

    init(anchorEveryBlocks: Int = 4, anchorEveryMs: Int = 100, captureDistrictLogs: Bool = false) async throws {
        districtLogs = captureDistrictLogs ? CapturedLogs() : nil
        pki = try TestPKI()
        let cloud = try pki.issue(.node, "cloud1")
        var mainConfig = pki.loopbackNode(cloud, dataDir: pki.dir + "/main")
        mainConfig.rpc.threads = 1
        mainConfig.chain.id = "main"
        mainConfig.chain.kind = "main"
        mainConfig.chain.maxBlockDelayMs = 2
        main = try GridNode(configuration: mainConfig, logger: Self.quiet())
        mainAddress = "127.0.0.1:\(try await main!.start().port!)"

        let edge = try pki.issue(.node, "edge1", district: "d1")
        collector = try pki.issue(.collector, "col1", district: "d1")
        collectorSigner = try TransactionSigner(certificatePath: collector.cert, keyPath: collector.key)
        reader = try pki.issue(.marketing, "reader")
        let admin = try pki.issue(.admin, "admin1")
        let adminSigner = try TransactionSigner(certificatePath: admin.cert, keyPath: admin.key)
        let mainClient = try await connect(mainAddress, admin)
        let der = try CertificateKeyPair(certificatePath: edge.cert, privateKeyPath: edge.key).certificateDER
        let registered = try await mainClient.submit(try adminSigner.sign(adminSigner.payload(
            chainID: "main", body: .districtRegistration(DistrictRegistration(district: "d1", memberCertificates: [der])))))
        XCTAssertEqual(registered.outcome?.code, 0)
        await mainClient.rpc.close()

        districtConfig = pki.loopbackNode(edge, dataDir: pki.dir + "/d1")
        districtConfig.rpc.threads = 1
        districtConfig.chain.id = "d1"
        districtConfig.chain.hashSuite = "sm3"
        districtConfig.chain.maxBlockDelayMs = 2
        var link = NodeConfiguration.Chain.MainChainLink(id: "main", endpoints: [mainAddress])
        link.anchorEveryBlocks = anchorEveryBlocks
        link.anchorEveryMs = anchorEveryMs
        districtConfig.chain.mainChain = link
        try await startDistrict()
    }

    func shutdown() async {
        await district?.stop()
        await main?.stop()
        pki.remove()
    }

    static func quiet() -> Logger {
        var logger = Logger(label: "two-chains")
        logger.logLevel = .critical
        return logger
    }

    func startDistrict() async throws {
        district = try GridNode(configuration: districtConfig, logger: districtLogs?.logger() ?? Self.quiet())
        districtAddress = "127.0.0.1:\(try await district!.start().port!)"
    }

    func stopDistrict() async {
        await district?.stop()
        district = nil
    }

    func connect(_ address: String, _ party: (cert: String, key: String)) async throws -> ChainClient {
        ChainClient(try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: pki.caCert))
    }

    var districtStatus: ChainStatus { district!.status().chains[0] }

    /// Polls the district's status until `condition` holds.
    func waitDistrict(timeout: Duration = .seconds(20), _ what: String, _ condition: (ChainStatus) -> Bool) async throws -> ChainStatus {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            let s = districtStatus
            if condition(s) { return s }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("timed out waiting for \(what): \(districtStatus)")
        throw CancellationError()
    }

    /// Whether district block `height` holds only anchor receipts. An idle district never
    /// anchors such blocks (Docs/anchoring.md, "Limits"): its lag stays at one of them.
    func receiptsOnly(_ height: UInt64) -> Bool {
        guard let block = try? district?.chainSet.runtime("d1")?.ledger.store.block(at: height) else { return false }
        return block.transactions.allSatisfy { tx in
            if case .anchorReceipt? = (try? TxPayload(serializedBytes: tx.payload))?.body { return true }
            return false
        }
    }

    /// Waits until the district is anchored up to `height` and every block above the anchored
    /// height holds only receipts, so no further anchor is coming while the district is idle
    /// (as `anchored_to_head` in Clients/python/tests/test_integration_anchoring.py).
    func waitAnchoredToHead(atLeast height: UInt64 = 1) async throws -> ChainStatus {
        try await waitDistrict("anchored to \(height) and to the head but receipt-only blocks") { s in
            s.anchoredHeight >= height && stride(from: s.anchoredHeight + 1, through: s.height, by: 1).allSatisfy { receiptsOnly($0) }
        }
    }
}
