@testable import Chain
import Foundation
import GridBase
import GridClient
import GridProto
import Logging
@testable import Node
import Wire
import XCTest

/// Issue 5, multi-chain: one node is a member of several chains, each with its own id,
/// ordering and store namespace; every RPC names the chain it is for.
final class MultiChainTests: XCTestCase {
    func testOneNodeServesTwoDistrictChains() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let nodeCert = try pki.issue(.node, "edge1")
        let ops = try pki.issue(.ops, "ops1")
        let col1 = try pki.issue(.collector, "col1", district: "d1")
        let col2 = try pki.issue(.collector, "col2", district: "d2")
        let marketing = try pki.issue(.marketing, "mkt1")
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        var d1 = NodeConfiguration.Chain()
        d1.id = "d1"
        d1.maxBlockDelayMs = 5
        var d2 = d1
        d2.id = "d2"
        d2.hashSuite = "sm3"
        config.chains = [d1, d2]
        var logger = Logger(label: "multi")
        logger.logLevel = .critical
        let node = try GridNode(configuration: config, logger: logger)
        let port = try await node.start().port!
        XCTAssertEqual(node.chainIDs, ["d1", "d2"])

        let s1 = try TransactionSigner(certificatePath: col1.cert, keyPath: col1.key)
        let s2 = try TransactionSigner(certificatePath: col2.cert, keyPath: col2.key)
        let c1 = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: col1.cert, key: col1.key, ca: pki.caCert))
        let c2 = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: col2.cert, key: col2.key, ca: pki.caCert))
        var r = Reading()
        r.meterId = "m1"
        r.timestampMs = 1_700_000_000_000
        // Named chains, and the payload's chain when the request names none.
        let a = try await c1.submitReadings(try s1.sign(s1.readingsPayload(chainID: "d1", batchID: "a", readings: [r])), chain: "d1")
        let b = try await c2.submitReadings(try s2.sign(s2.readingsPayload(chainID: "d2", batchID: "b", readings: [r, r].enumerated().map { i, x in var y = x; y.timestampMs += Int64(i); return y })))
        XCTAssertEqual(a.location?.height, 1)
        XCTAssertEqual(b.location?.height, 1)
        XCTAssertEqual(b.outcome?.readingsAccepted, 2)
        // Separate namespaces: the same key has different versions per chain.
        let key = BlockExecutor.readingKey(meter: "m1", timestampMs: r.timestampMs)
        let reader = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(port)", certificate: marketing.cert, key: marketing.key, ca: pki.caCert))
        let st1 = try await reader.state(key, chain: "d1")
        let st2 = try await reader.state(key, chain: "d2")
        XCTAssertTrue(st1.found && st2.found)
        let info2 = try await c2.chainInfo(chain: "d2")
        XCTAssertEqual(info2.hashSuite, "sm3")
        await reader.rpc.close()
        // A collector of d1 reads nothing of d2 (Docs/permissions.md).
        do {
            _ = try await c1.chainInfo(chain: "d2")
            XCTFail("d1's collector read d2")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        // A collector of d1 cannot write to d2.
        do {
            _ = try await c1.submitReadings(try s1.sign(s1.readingsPayload(chainID: "d2", batchID: "x", readings: [r])), chain: "d2")
            XCTFail("d1's collector wrote to d2")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        // "" is ambiguous on a two-chain node; an unknown chain is NOT_FOUND.
        for (chain, code) in [("", StatusCode.invalidArgument), ("d9", .notFound)] {
            do {
                _ = try await c1.block(at: 0, chain: chain)
                XCTFail("chain '\(chain)' must be refused")
            } catch let error as RPCError {
                XCTAssertEqual(error.code, code, "\(error)")
            }
        }
        let status = try await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert)
        XCTAssertEqual(status.chains.map(\.chainId), ["d1", "d2"])
        XCTAssertEqual(status.chains.map(\.height), [1, 1])
        await c1.rpc.close()
        await c2.rpc.close()
        await node.stop()

        XCTAssertEqual(ChainVerifier.chains(in: config.dataDir), ["d1", "d2"])
        for id in ["d1", "d2"] {
            let report = try ChainVerifier.verify(dataDirectory: config.dataDir, chainID: id)
            XCTAssertNil(report.firstInconsistency, "\(id): \(report.firstInconsistency ?? "")")
            XCTAssertEqual(report.blocks, 2)
        }
    }
}
