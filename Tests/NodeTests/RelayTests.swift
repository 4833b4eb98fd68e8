import Foundation
import GridBase
import GridClient
import GridProto
import GridTLS
import Identity
@testable import Node
import Wire
import XCTest

/// Issue 11, item 3: who may carry a transaction someone else signed. The TLS caller must be
/// the signer itself (the same key, not merely the same name) or a node of the chain's
/// district; anything else is PERMISSION_DENIED, logged, and nothing is stored.
final class RelayTests: XCTestCase {
    var pki: TestPKI!
    var node: GridNode!
    var logs: CapturedLogs!
    var address = ""
    var col1Signer: TransactionSigner!

    override func setUp() async throws {
        pki = try TestPKI()
        logs = CapturedLogs()
        var c = pki.loopbackNode(try pki.issue(.node, "d1-n1", district: "d1"), dataDir: pki.dir + "/data")
        c.rpc.threads = 1
        c.chain.id = "d1"
        c.chain.maxBlockDelayMs = 5
        node = try GridNode(configuration: c, logger: logs.logger())
        address = "127.0.0.1:\(try await node.start().port!)"
        let col1 = try pki.issue(.collector, "col1", district: "d1")
        col1Signer = try TransactionSigner(certificatePath: col1.cert, keyPath: col1.key)
    }

    override func tearDown() async throws {
        await node.stop()
        pki.remove()
    }

    /// A fresh batch signed by collector col1 of d1.
    private func col1Batch(_ id: String) throws -> SignedTransaction {
        try col1Signer.sign(col1Signer.readingsPayload(chainID: "d1", batchID: id, readings: [
            Reading(meterId: "m-\(id)", timestampMs: 1_700_000_000_000, energyTotal: 7),
        ]))
    }

    private func party(_ role: Role, _ name: String, district: String?, dir: String? = nil) throws -> (cert: String, key: String) {
        let issued = try PKI.issue(caDirectory: pki.caDir, role: role, name: name, district: district, days: 30, outDirectory: pki.dir + "/" + (dir ?? name))
        return (issued.certificatePath, issued.privateKeyPath)
    }

    /// Submits `tx` as `caller` through SubmitReadings and through StreamReadings; returns
    /// both status codes.
    private func submit(_ tx: SignedTransaction, as caller: (cert: String, key: String)) async throws -> (unary: StatusCode, stream: StatusCode) {
        let client = ChainClient(try await GridConnection.connect(to: address, certificate: caller.cert, key: caller.key, ca: pki.caCert))
        defer { Task { await client.rpc.close() } }
        let unary: StatusCode
        do {
            _ = try await client.submitReadings(tx, chain: "d1")
            unary = .ok
        } catch let error as RPCError {
            unary = error.code
        }
        let call = try await client.rpc.bidirectional(GridMethod.Ingest.streamReadings, requestType: SubmitRequest.self, responseType: StreamAck.self)
        try await call.send(SubmitRequest(transaction: tx, chainId: "d1"))
        var ack: StreamAck?
        for try await a in call.responses {
            ack = a
            break
        }
        try? await call.closeSend()
        return (unary, StatusCode(rawValue: ack?.code ?? 99) ?? .unknown)
    }

    private func isStored(_ tx: SignedTransaction) throws -> Bool {
        try node.chainSet.ledger("d1").store.txLocation(TransactionSigner.transactionID(tx)) != nil
    }

    func testCollectorOfAnotherDistrictMayNotRelay() async throws {
        let tx = try col1Batch("b1")
        let result = try await submit(tx, as: try party(.collector, "col2", district: "d2"))
        XCTAssertEqual(result.unary, .permissionDenied)
        XCTAssertEqual(result.stream, .permissionDenied)
        XCTAssertFalse(try isStored(tx))
        XCTAssertEqual(try node.head(chain: "d1")?.height ?? 0, 0, "nothing but genesis")
        let line = logs.all.first { $0.contains("security refusal") } ?? ""
        XCTAssertTrue(line.contains("peer=col2") && line.contains("district=d2") && line.contains("Ingest/SubmitReadings"), line)
    }

    func testCollectorOfTheSameDistrictMayNotRelay() async throws {
        let tx = try col1Batch("b2")
        let result = try await submit(tx, as: try party(.collector, "col3", district: "d1"))
        XCTAssertEqual(result.unary, .permissionDenied)
        XCTAssertEqual(result.stream, .permissionDenied)
        XCTAssertFalse(try isStored(tx))
    }

    /// The same name is not the same collector: a certificate with col1's CN and district but
    /// another key may not carry col1's batch.
    func testSameNameAnotherKeyMayNotRelay() async throws {
        let tx = try col1Batch("b3")
        let result = try await submit(tx, as: try party(.collector, "col1", district: "d1", dir: "col1-again"))
        XCTAssertEqual(result.unary, .permissionDenied)
        XCTAssertFalse(try isStored(tx))
    }

    func testNodeOfAnotherDistrictMayNotRelay() async throws {
        let tx = try col1Batch("b4")
        let result = try await submit(tx, as: try party(.node, "d2-n1", district: "d2"))
        XCTAssertEqual(result.unary, .permissionDenied)
        XCTAssertFalse(try isStored(tx))
    }

    func testTheSigningCollectorAndANodeOfTheDistrictAreAccepted() async throws {
        let own = try col1Batch("b5")
        let col1 = (pki.dir + "/col1/col1.crt", pki.dir + "/col1/col1.key")
        let byCollector = try await submit(own, as: col1)
        XCTAssertEqual(byCollector.unary, .ok)
        XCTAssertTrue(try isStored(own))
        let relayed = try col1Batch("b6")
        let byNode = try await submit(relayed, as: try party(.node, "d1-n2", district: "d1"))
        XCTAssertEqual(byNode.unary, .ok)
        XCTAssertTrue(try isStored(relayed))
    }
}
