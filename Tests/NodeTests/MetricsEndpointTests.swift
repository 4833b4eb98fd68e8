import Foundation
import GridClient
import GridProto
import Logging
import NIOCore
import NIOPosix
@testable import Node
import XCTest

/// The operations listener of a running node (Docs/operations.md): `/metrics` in
/// Prometheus' text format with the series the issue lists, `/livez`, `/readyz` agreeing
/// with the chains' health, and TLS handshake failures counted by cause.
final class MetricsEndpointTests: XCTestCase {
    func testScrapeRunningNodeAfterLoad() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let nodeCert = try pki.issue(.node, "node1", district: "d1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        config.metricsListen = "127.0.0.1:0"
        config.chain.maxBlockDelayMs = 5
        let node = try GridNode(configuration: config, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let address = try await node.start()
        defer { Task { await node.stop() } }
        let metrics = try XCTUnwrap(node.metricsAddress?.port.map { "http://127.0.0.1:\($0)" })

        // Load: three batches, each acknowledged (one block each, at least).
        let client = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(address.port!)", certificate: col.cert, key: col.key, ca: pki.caCert))
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        for n in 0..<3 {
            var reading = Reading()
            reading.meterId = "m1"
            reading.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
            reading.energyTotal = UInt64(10 * n)
            _ = try await client.submitReadings(signer.sign(signer.readingsPayload(chainID: "d1", batchID: "b\(n)", readings: [reading])))
        }
        await client.rpc.close()

        // A peer that speaks no TLS: one handshake failure.
        let garbage = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: address.port!).get()
        try await garbage.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        try? await garbage.closeFuture.get()

        var samples: [PrometheusText.Sample] = []
        let counted = await NodeProcess.poll(timeout: .seconds(10)) {
            guard let scrape = try? await PrometheusText.get(metrics + "/metrics"), scrape.status == 200 else { return false }
            samples = PrometheusText.parse(scrape.body)
            return samples.filter { $0.name == "gridledger_tls_handshake_failures_total" }.reduce(0) { $0 + $1.value } >= 1
        }
        XCTAssertTrue(counted, "the non-TLS peer is counted as a handshake failure")
        let d1 = ["chain": "d1"]
        XCTAssertGreaterThanOrEqual(PrometheusText.value(samples, "gridledger_chain_height", d1) ?? -1, 3)
        XCTAssertGreaterThanOrEqual(PrometheusText.value(samples, "gridledger_blocks_committed_total", d1) ?? -1, 3)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_transactions_committed_total", d1), 3)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_block_commit_duration_seconds_count", d1), 3, "solo: every batch was cut and acknowledged here")
        XCTAssertGreaterThanOrEqual(PrometheusText.value(samples, "gridledger_block_store_write_duration_seconds_count", d1) ?? -1, 3)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_chain_pending_transactions", d1), 0)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_raft_role", ["chain": "d1", "role": "solo"]), 1)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_raft_role", ["chain": "d1", "role": "leader"]), 0)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_chain_serving", d1), 1)
        XCTAssertEqual(
            PrometheusText.value(samples, "gridledger_rpc_calls_total", ["method": GridMethod.Ingest.submitReadings, "status": "OK"]), 3)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_rpc_call_duration_seconds_count", ["method": GridMethod.Ingest.submitReadings]), 3)
        let days = try XCTUnwrap(PrometheusText.value(samples, "gridledger_certificate_expiry_days", ["certificate": "node"]))
        XCTAssert(days > 29 && days <= 30, "a 30-day certificate: \(days) days left")
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_security_refusals_total", ["kind": "read"]), 0)
        XCTAssertNotNil(PrometheusText.value(samples, "gridledger_open_connections"))
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_build_info", ["version": GridLedgerVersion.string]), 1)
        XCTAssertNil(PrometheusText.value(samples, "gridledger_anchor_lag_blocks", d1), "no main chain configured: no anchor series")

        let live = try await PrometheusText.get(metrics + "/livez")
        XCTAssertEqual(live.status, 200)
        let ready = try await PrometheusText.get(metrics + "/readyz")
        XCTAssertEqual(ready.status, 200, ready.body)
        let missing = try await PrometheusText.get(metrics + "/nothing")
        XCTAssertEqual(missing.status, 404)
        await node.stop()
        XCTAssertNil(node.metricsAddress, "the listener closes with the node")
    }

    /// Readiness is "every chain has a leader and applies": a member whose group has no
    /// majority (its two peers are not running) is live but not ready.
    func testReadyzRefusesWithoutRaftLeader() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let certs = try (1...3).map { try pki.issue(.node, "node\($0)", district: "d1") }
        let ports = try await NodeProcess.freePorts(3)
        var config = pki.loopbackNode(certs[0], dataDir: pki.dir + "/data")
        config.listen = "127.0.0.1:\(ports[0])"
        config.metricsListen = "127.0.0.1:0"
        config.chain.id = "d1"
        config.chain.raftID = 1
        config.chain.members = (1...3).map { .init(id: UInt64($0), name: "node\($0)", address: "127.0.0.1:\(ports[$0 - 1])") }
        let node = try GridNode(configuration: config, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await node.start()
        defer { Task { await node.stop() } }
        let metrics = "http://127.0.0.1:\(node.metricsAddress!.port!)"
        let live = try await PrometheusText.get(metrics + "/livez")
        XCTAssertEqual(live.status, 200)
        let ready = try await PrometheusText.get(metrics + "/readyz")
        XCTAssertEqual(ready.status, 503)
        XCTAssertTrue(ready.body.contains("chain d1"), ready.body)
        let samples = PrometheusText.parse(try await PrometheusText.get(metrics + "/metrics").body)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_raft_leader_id", ["chain": "d1"]), 0)
        XCTAssertEqual(PrometheusText.value(samples, "gridledger_raft_role", ["chain": "d1", "role": "leader"]), 0)
        await node.stop()
    }

    func testMetricsListenIsValidated() throws {
        var config = NodeConfiguration()
        config.tls.cert = "a"; config.tls.key = "b"; config.tls.ca = "c"
        config.metricsListen = "no-port"
        XCTAssertThrowsError(try config.validate())
        config.metricsListen = ""
        config.logFormat = "xml"
        XCTAssertThrowsError(try config.validate())
    }
}
