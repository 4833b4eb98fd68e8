@testable import Chain
import Foundation
import GridClient
import GridProto
@testable import Node
import Wire
import XCTest

/// Issue 11, item 9: "A full disk needs a restart ... Status and Health must show the store's
/// failure, writes resume by themselves once space returns (or the node stops cleanly,
/// never silently stuck), and nothing acknowledged is lost."
///
/// A real `gridnode` keeps its data directory on a small tmpfs; a ballast file fills it
/// while readings stream in. Then: submissions fail, Health says NOT_SERVING and Ops status
/// gives the storage failure; the ballast is removed; without a restart the chain reopens
/// its stores and takes writes again; every batch that was acknowledged is on the chain,
/// and the store verifies.
final class FullDiskTests: XCTestCase {
    func testWritesResumeWhenSpaceReturnsAndNothingAcknowledgedIsLost() async throws {
        try NodeProcess.requireExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let mountPoint = pki.dir + "/disk"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint]) == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
        }
        defer { _ = run("/bin/umount", ["-l", mountPoint]) }

        let node = try pki.issue(.node, "node1", district: "d1")
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        let port = try await NodeProcess.freePorts(1)[0]
        let process = NodeProcess(arguments: [
            "start", "--listen", "127.0.0.1:\(port)", "--data-dir", mountPoint + "/data", "--cert", node.cert, "--key", node.key,
            "--ca", pki.caCert, "--chain-id", "d1", "--max-block-delay-ms", "2", "--log-level", "warning",
        ], log: pki.dir + "/node.log")
        defer { process.terminate() }
        try process.start()
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)
        let address = "127.0.0.1:\(port)"
        let watcher = try await GridConnection.connect(to: address, certificate: ops.cert, key: ops.key, ca: pki.caCert)
        defer { Task { await watcher.close() } }
        func health() async -> ServingStatus? {
            try? await watcher.unary(GridMethod.Health.check, HealthCheckRequest(service: "chain/d1"), as: HealthCheckResponse.self).status
        }
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        let submitter = ChainClient(try await GridConnection.connect(to: address, certificate: col.cert, key: col.key, ca: pki.caCert))
        defer { Task { await submitter.rpc.close() } }
        var acknowledged: [[UInt8]] = []
        var batch = 0
        func submit() async -> RPCError? {
            let readings = (0..<40).map { i in
                Reading(meterId: "m\(i)", timestampMs: 1_700_000_000_000 + Int64(batch) * 900_000, energyTotal: UInt64(batch * 100 + i))
            }
            defer { batch += 1 }
            do {
                let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "b\(batch)", readings: readings))
                _ = try await submitter.submitReadings(tx, timeout: .seconds(10))
                acknowledged.append(TransactionSigner.transactionID(tx))
                return nil
            } catch let error as RPCError {
                return error
            } catch {
                return RPCError(.unknown, "\(error)")
            }
        }
        for _ in 0..<5 {
            let error = await submit()
            XCTAssertNil(error)
        }

        // Fill the disk, leaving a few KiB: the next block writes fail.
        let ballast = mountPoint + "/ballast"
        _ = run("/bin/dd", ["if=/dev/zero", "of=\(ballast)", "bs=64k", "status=none"])
        var failure: RPCError?
        for _ in 0..<400 where failure == nil { failure = await submit() }
        XCTAssertNotNil(failure, "writes fail on a full disk")
        let down = await NodeProcess.poll(timeout: .seconds(10)) { await health() == .notServing }
        XCTAssertTrue(down, "chain/d1 is NOT_SERVING while its store cannot write")
        let status = try? await ChainClient.status(address: address, certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 2000).chains.first
        XCTAssertEqual(status?.serving, false)
        XCTAssertTrue(status?.notServingReason.contains("storage") == true || status?.notServingReason.contains("store") == true,
                      status?.notServingReason ?? "no status")
        print("FULL DISK: \(acknowledged.count) batches acknowledged before; failure \(failure.map { "\($0)" } ?? "none"); status: \(status?.notServingReason ?? "")")

        // Space returns: writes resume without a restart.
        try FileManager.default.removeItem(atPath: ballast)
        let resumed = await NodeProcess.poll(timeout: .seconds(60)) { await submit() == nil }
        XCTAssertTrue(resumed, "writes resume once space returns: \(process.output.suffix(1500))")
        let up = await NodeProcess.poll(timeout: .seconds(10)) { await health() == .serving }
        XCTAssertTrue(up, "chain/d1 serves again")
        for _ in 0..<3 {
            let error = await submit()
            XCTAssertNil(error, "writes after the recovery")
        }

        // Nothing acknowledged is lost, on this run and after a restart; the store verifies.
        let reader = ChainClient(try await GridConnection.connect(to: address, certificate: node.cert, key: node.key, ca: pki.caCert))
        for id in acknowledged {
            let found = try? await reader.transaction(id)
            XCTAssertEqual(found?.location?.txId, id, "acknowledged transaction \(id.hex) is on the chain")
        }
        let head = try await reader.rpc.unary(GridMethod.Query.getChainInfo, GetChainInfoRequest(chainId: "d1"), as: ChainInfo.self).height
        await reader.rpc.close()
        XCTAssertEqual(process.terminate(), 0)
        print("FULL DISK: head \(head) before the restart")
        let report = try ChainVerifier.verify(dataDirectory: mountPoint + "/data")
        XCTAssertNil(report.firstInconsistency, report.firstInconsistency ?? "")
        print("FULL DISK: verify \(report.blocks) blocks, \(report.transactions) transactions")
        XCTAssertGreaterThanOrEqual(report.transactions, acknowledged.count)
        XCTAssertGreaterThanOrEqual(report.blocks, head + 1, "every block the node had committed survives the restart")
    }

    @discardableResult
    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}
