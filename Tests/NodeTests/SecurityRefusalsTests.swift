import Foundation
import GridBase
import GridClient
import GridProto
import GridTLS
@testable import Node
import Wire
import XCTest

/// Issue 11, item 5: "Security refusals leave no trace: forged signatures, cross-district
/// submissions, Raft impersonation and role violations are refused without a log line. Log
/// each (rate limited per peer, with peer identity, method and reason) and count them."
final class SecurityRefusalsTests: XCTestCase {
    func testRefusalsAreLoggedAndCountedByKind() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let logs = CapturedLogs()
        var c = pki.loopbackNode(try pki.issue(.node, "d1-n1", district: "d1"), dataDir: pki.dir + "/data")
        c.rpc.threads = 1
        c.chain.id = "d1"
        c.chain.maxBlockDelayMs = 5
        let node = try GridNode(configuration: c, logger: logs.logger())
        let address = "127.0.0.1:\(try await node.start().port!)"
        defer { Task { await node.stop() } }
        func client(_ party: (cert: String, key: String)) async throws -> ChainClient {
            ChainClient(try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: pki.caCert))
        }
        func code(_ body: () async throws -> Void) async -> StatusCode? {
            do { try await body(); return .ok } catch let e as RPCError { return e.code } catch { return nil }
        }
        let col1 = try pki.issue(.collector, "col1", district: "d1")
        let col2 = try pki.issue(.collector, "col2", district: "d2")
        let ops = try pki.issue(.ops, "ops1")
        let signer1 = try TransactionSigner(certificatePath: col1.cert, keyPath: col1.key)
        let signer2 = try TransactionSigner(certificatePath: col2.cert, keyPath: col2.key)
        let batch = { (s: TransactionSigner, id: String) in
            try s.sign(s.readingsPayload(chainID: "d1", batchID: id, readings: [Reading(meterId: "m", timestampMs: 1_700_000_000_000, energyTotal: 1)]))
        }

        // A forged signature: col1's batch with its signature bytes altered.
        var forged = try batch(signer1, "f")
        forged.signature[forged.signature.count / 2] ^= 0x55
        let c1 = try await client(col1)
        let forgedCode = await code { _ = try await c1.submitReadings(forged) }
        XCTAssertEqual(forgedCode, .unauthenticated)
        // A cross-district submission: a d2 collector's batch for d1.
        let c2 = try await client(col2)
        let crossCode = await code { _ = try await c2.submitReadings(try batch(signer2, "x")) }
        XCTAssertEqual(crossCode, .permissionDenied)
        // A role violation: ops may not submit.
        let o = try await client(ops)
        let roleCode = await code { _ = try await o.submitReadings(try batch(signer1, "r")) }
        XCTAssertEqual(roleCode, .permissionDenied)
        // A read out of role: ops may not read accounts.
        let readCode = await code { _ = try await o.account("a1", chain: "d1") }
        XCTAssertEqual(readCode, .permissionDenied)
        for x in [c1, c2, o] { await x.rpc.close() }

        let counts = Dictionary(uniqueKeysWithValues: node.status().securityRefusals.map { ($0.kind, $0.count) })
        XCTAssertEqual(counts["signature"], 1, "\(counts)")
        XCTAssertEqual(counts["submission"], 1, "\(counts)")
        XCTAssertEqual(counts["role"], 1, "\(counts)")
        XCTAssertEqual(counts["read"], 1, "\(counts)")
        let lines = logs.all
        XCTAssertTrue(lines.contains { $0.contains("security refusal") && $0.contains("col1") }, "forged signature logged with the peer")
        XCTAssertTrue(lines.contains { $0.contains("security refusal") && $0.contains("col2") }, "cross-district submission logged with the peer")
        XCTAssertTrue(lines.contains { $0.contains("role not allowed") && $0.contains("ops1") }, "role violation logged with the peer")
        XCTAssertTrue(lines.contains { $0.contains("read refused") }, "read refusal logged")
    }
}
