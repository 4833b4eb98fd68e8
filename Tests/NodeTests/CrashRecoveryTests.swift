@testable import Chain
import Foundation
import GridClient
import GridProto
import Logging
@testable import Node
import Wire
import XCTest

/// Issue 3, durability: a real `gridnode` process is killed with SIGKILL during ingestion;
/// after a restart every acknowledged reading is on the chain and `verify` is clean.
final class CrashRecoveryTests: XCTestCase {
    func testSIGKILLDuringIngestionLosesNoAcknowledgedReading() async throws {
        guard FileManager.default.isExecutableFile(atPath: NodeProcess.executable) else {
            XCTFail("\(NodeProcess.executable) is missing: run `swift build` before the tests")
            return
        }
        let pki = try TestPKI()
        defer { pki.remove() }
        let node = try pki.issue(.node, "node1", district: "d1")
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        // Reads transactions and state back: admin (ops never reads chain contents).
        let admin = try pki.issue(.admin, "admin1")
        let port = try await NodeProcess.freePorts(1)[0]
        let args = ["start", "--listen", "127.0.0.1:\(port)", "--data-dir", pki.dir + "/data", "--cert", node.cert, "--key", node.key,
                    "--ca", pki.caCert, "--chain-id", "d1", "--max-block-delay-ms", "5", "--log-level", "warning"]
        let node1 = NodeProcess(arguments: args, log: pki.dir + "/node.log")
        defer { node1.terminate() }
        try node1.start()
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)

        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let acked = AckLog()
        let submitters = (0..<4).map { worker in
            Task {
                guard let rpc = try? await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: col.cert, key: col.key, ca: pki.caCert) else { return }
                let client = ChainClient(rpc)
                var n = 0
                while !Task.isCancelled {
                    var readings: [Reading] = []
                    for i in 0..<50 {
                        var r = Reading()
                        r.meterId = "w\(worker)-m\(i)"
                        r.timestampMs = 1_700_000_000_000 + Int64(n) * 900_000
                        r.energyTotal = UInt64(n * 100 + i)
                        readings.append(r)
                    }
                    guard let tx = try? signer.sign(signer.readingsPayload(chainID: "d1", batchID: "w\(worker)-\(n)", readings: readings)) else { return }
                    do {
                        let response = try await client.submitReadings(tx, timeout: .seconds(5))
                        acked.add(TransactionSigner.transactionID(tx), readings: readings.map { BlockExecutor.readingKey(meter: $0.meterId, timestampMs: $0.timestampMs) }, height: response.location?.height ?? 0)
                    } catch {
                        return  // the node died: stop this worker
                    }
                    n += 1
                }
            }
        }
        await NodeProcess.poll(timeout: .seconds(30)) { acked.snapshot().0.count > 10 }
        node1.kill9()
        for s in submitters { s.cancel() }
        for s in submitters { await s.value }
        let (ids, keys) = acked.snapshot()
        XCTAssertGreaterThan(ids.count, 10, "ingestion made progress before the kill")

        // Restart on the same data directory (and port, free again once the process is gone).
        try await NodeProcess.waitUntilBindable(port)
        try node1.start()
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)
        let rpc = try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: admin.cert, key: admin.key, ca: pki.caCert)
        let client = ChainClient(rpc)
        for id in ids {
            let found = try await client.transaction(id)
            XCTAssertEqual(found.location?.txId, id)
        }
        for key in keys.prefix(2000) {
            let state = try await client.state(key)
            XCTAssertTrue(state.found, "acknowledged reading \(key) lost")
        }
        await rpc.close()
        XCTAssertEqual(node1.terminate(), 0, node1.output)  // SIGTERM: graceful

        let report = try ChainVerifier.verify(dataDirectory: pki.dir + "/data")
        XCTAssertNil(report.firstInconsistency, report.firstInconsistency ?? "")
        XCTAssertGreaterThanOrEqual(report.transactions, ids.count)
    }
}

/// Acknowledged submissions, shared by the submitting tasks.
final class AckLog: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [[UInt8]] = []
    private var keys: [String] = []

    func add(_ id: [UInt8], readings: [String], height: UInt64) {
        lock.lock()
        ids.append(id)
        keys += readings
        lock.unlock()
    }

    func snapshot() -> ([[UInt8]], [String]) {
        lock.lock()
        defer { lock.unlock() }
        return (ids, keys)
    }
}
