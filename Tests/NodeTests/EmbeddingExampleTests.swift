import GridClient
import GridProto
import Node
import XCTest

/// Docs/embedding.md, "A minimal host", step by step through the public API only: this file
/// imports `Node` without `@testable`, so the page's example keeps compiling and working.
/// (The deployment's certificates come from `TestPKI`; the host in the page has them on disk.)
final class EmbeddingExampleTests: XCTestCase {
    func testMinimalHostConfiguresRunsSubmitsQueriesSubscribesAndStops() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let nodeFiles = try pki.issue(.node, "node1", district: "d1")
        let collectorFiles = try pki.issue(.collector, "col1", district: "d1")

        // 1. Configure: a solo district chain (its id is the certificate's district).
        var configuration = NodeConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.dataDir = pki.dir + "/data"
        configuration.tls.cert = nodeFiles.cert
        configuration.tls.key = nodeFiles.key
        configuration.tls.ca = pki.caCert

        // 2. Run.
        let node = try GridNode(configuration: configuration)
        let address = try await node.start()
        XCTAssertNotEqual(address.port, 0, "port 0 binds a free port")
        XCTAssertEqual(node.chainID, "d1")

        // 3. Submit: a reading batch signed by a collector of the district.
        let collector = try TransactionSigner(certificatePath: collectorFiles.cert, keyPath: collectorFiles.key)
        var reading = Reading()
        reading.meterId = "m1"
        reading.timestampMs = 1_700_000_000_000
        reading.energyTotal = 1000
        reading.energyFlat = 1000
        reading.voltageDv = [2200]
        reading.currentMa = [5000]
        reading.activePowerW = 1100
        let payload = collector.readingsPayload(chainID: node.chainID, batchID: "b1", readings: [reading])
        let response = try await node.submit(collector.sign(payload))
        let height = try XCTUnwrap(response.location).height
        XCTAssertEqual(response.outcome?.readingsAccepted, 1)

        // 4. Query: committed, durable reads.
        let head = try XCTUnwrap(try node.head())
        XCTAssertEqual(head.height, height)
        let block = try XCTUnwrap(try node.block(at: height))
        XCTAssertEqual(block.hash, head.hash)
        XCTAssertEqual(block.hash, response.location?.blockHash)
        let meter = try XCTUnwrap(try node.state("meter/m1"))
        XCTAssertEqual(meter.height, height)

        // 5. Status: as Ops.GetStatus reports it.
        let status = node.status()
        XCTAssertEqual(status.chains.map(\.chainId), ["d1"])
        XCTAssertEqual(status.chains.first?.height, height)
        XCTAssertEqual(status.chains.first?.serving, true)

        // 6. Subscribe: every block from height 0, then each new one; throw to stop following.
        struct Enough: Error {}
        var followed: [UInt64] = []
        do {
            try await node.follow(from: 0) { block, hash in
                XCTAssertEqual(hash.count, 32)
                followed.append(block.header!.height)
                if block.header!.height == height { throw Enough() }
            }
            XCTFail("the host's error ends the subscription and is rethrown")
        } catch is Enough {}
        XCTAssertEqual(followed, Array(0...height), "genesis first, then every block in order")

        // 7. Stop: graceful; the data directory is unlocked when this returns.
        await node.stop()
        XCTAssertNil(node.localAddress)
    }
}
