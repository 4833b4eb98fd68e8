@testable import Chain
import ChainHashing
import Contracts
import Foundation
import GridBase
import GridClient
import GridProto
import GridCrypto
import Logging
@testable import Node
import Store
import Wire
import XCTest

/// Issue 5, in one process: a solo main chain and a solo district (sm3 hashes) anchoring on
/// it. Receipts, anchor lag in status, proofs, a stored block altered after anchoring, the
/// downlink in main-chain order exactly once across a restart, and anchoring resumed
/// idempotently after the district restarts.
final class AnchorProofTests: XCTestCase {
    var chains: MainAndDistrict!
    var pki: TestPKI { chains.pki }
    var districtConfig: NodeConfiguration { chains.districtConfig }
    var districtAddress: String { chains.districtAddress }
    var mainAddress: String { chains.mainAddress }
    var col: (cert: String, key: String) { chains.collector }
    var collector: TransactionSigner { chains.collectorSigner }

    override func setUp() async throws {
        chains = try await MainAndDistrict()
    }

    override func tearDown() async throws {
        await chains.shutdown()
    }

    private func connect(_ address: String, _ party: (cert: String, key: String)) async throws -> ChainClient {
        try await chains.connect(address, party)
    }

    private func ingest(_ batches: Int, from start: Int = 0) async throws {
        let client = try await connect(districtAddress, col)
        for n in start..<(start + batches) {
            let readings = (0..<3).map { Reading(meterId: "m\($0)", timestampMs: 1_700_000_000_000 + Int64(n) * 900_000, energyTotal: UInt64(n * 10 + $0)) }
            _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b\(n)", readings: readings)))
        }
        await client.rpc.close()
    }

    private func districtStatus() -> ChainStatus { chains.districtStatus }

    private func waitAnchored(atLeast height: UInt64) async throws -> ChainStatus {
        try await chains.waitDistrict("anchored to \(height)") { $0.anchoredHeight >= height }
    }

    func testProofVerifiesAndAnAlteredBlockDoesNot() async throws {
        try await ingest(12)
        // A round may fail now and then (syncError until the next good one): wait for a clean one.
        let status = try await chains.waitDistrict("anchored to 12 with no sync error") { $0.anchoredHeight >= 12 && $0.syncError.isEmpty }
        XCTAssertLessThanOrEqual(status.anchoredHeight, status.height)
        XCTAssertEqual(status.anchorLagBlocks, status.height - min(status.anchoredHeight, status.height))
        let reader = try await connect(districtAddress, chains.reader)
        let verifier = try SignerVerifier(caPath: pki.caCert)
        for height in [1, 6, 12] as [UInt64] {
            let proof = try await reader.proveBlock(height, chain: "d1")
            guard case .success(let v) = ProofVerifier.verify(proof, verifier: verifier) else {
                return XCTFail("block \(height): \(ProofVerifier.verify(proof, verifier: verifier))")
            }
            XCTAssertEqual(v.height, height)
            XCTAssertEqual(v.validSignatures, 1)
            XCTAssertEqual(v.mainChain, "main")
            XCTAssertEqual(try BlockHeader(serializedBytes: proof.header).hashSuite, "sm3")
        }
        // A proof claiming another transaction index, or a refused anchor, does not verify.
        let good = try await reader.proveBlock(6, chain: "d1")
        var moved = good
        moved.mainIndex += 1
        if case .success = ProofVerifier.verify(moved) { XCTFail("a proof verified at another transaction index") }
        var refused = good
        var outcome = try TxOutcome(serializedBytes: refused.anchorOutcome)
        outcome.code = 9
        refused.anchorOutcome = outcome.serializedBytes()
        if case .success = ProofVerifier.verify(refused) { XCTFail("a refused anchor's proof verified") }
        await reader.rpc.close()

        // Alter stored block 6 after it was anchored (a changed outcome count shows in the
        // header through nothing, so change the header's timestamp), restart, prove again.
        await chains.stopDistrict()
        do {
            let store = try ChainStore(directory: districtConfig.dataDir + "/chains/d1", chainID: "d1")
            var block = try XCTUnwrap(try store.block(at: 6))
            block.header!.timestampMs += 1
            try store.database.put([UInt8(ascii: "b")] + BigEndianWriter.bytes(of: UInt64(6)), block.serializedBytes(), sync: true)
        }
        try await chains.startDistrict()
        let again = try await connect(districtAddress, chains.reader)
        let altered = try await again.proveBlock(6, chain: "d1")
        guard case .failure(let failure) = ProofVerifier.verify(altered, verifier: verifier) else {
            return XCTFail("a block altered after anchoring verified")
        }
        XCTAssertTrue(failure.description.contains("headers root"), failure.description)
        await again.rpc.close()
    }

    func testAnchoringResumesAfterRestartWithoutGapOrDuplicate() async throws {
        try await ingest(6)
        _ = try await waitAnchored(atLeast: 6)
        await chains.stopDistrict()
        try await chains.startDistrict()
        try await ingest(9, from: 6)
        // Receipt blocks interleave with the readings, so their last block may be above 15:
        // wait until no anchor is still to come, so the main chain's ranges and the
        // district's receipts are read at rest.
        let status = try await chains.waitAnchoredToHead(atLeast: 15)
        let mainReader = try await connect(mainAddress, chains.reader)
        var from: UInt64 = 1
        var ranges: [(UInt64, UInt64)] = []
        while true {
            let entry = try await mainReader.state(AnchorKeys.anchor("d1", from: from), chain: "main")
            guard entry.found, let r = AnchorRecord(bytes: entry.value) else { break }
            ranges.append((r.from, r.to))
            from = r.to + 1
        }
        XCTAssertGreaterThanOrEqual(from - 1, 15, "anchors \(ranges) reach \(status.anchoredHeight)")
        // The district's receipts mirror the main chain's anchors one for one.
        let districtReader = try await connect(districtAddress, chains.reader)
        for (f, to) in ranges {
            let receipt = try await districtReader.state(AnchorKeys.receipt(to: to), chain: "d1")
            XCTAssertTrue(receipt.found, "receipt of \(f)...\(to)")
            XCTAssertEqual(try AnchorReceipt(serializedBytes: receipt.value).fromHeight, f)
        }
        await mainReader.rpc.close()
        await districtReader.rpc.close()
    }

    func testDownlinkTakesParametersInOrderExactlyOnce() async throws {
        let marketing = try pki.issue(.marketing, "mkt1")
        let signer = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let client = try await connect(mainAddress, marketing)
        var positions: [DownlinkCursor] = []
        for i in 0..<6 {
            // Interleave parameters for another (unregistered → refused) district.
            let target = i == 3 ? "d7" : "d1"
            let p = DistrictParameter(district: target, body: .customer(CustomerArchive(account: "a\(i)", meterId: "meter\(i)", tariffId: "t1", openingBalanceFen: 100 * Int64(i))))
            let r = try await client.submit(try signer.sign(signer.payload(chainID: "main", body: .parameter(p))), chain: "main")
            if target == "d1" { positions.append(DownlinkCursor(height: r.location!.height, index: r.location!.index)) }
            if i == 2 {
                // The district goes down in the middle and catches up afterwards.
                await chains.stopDistrict()
            }
        }
        try await chains.startDistrict()
        let end = ContinuousClock.now + .seconds(20)
        while districtStatus().downlinkMainHeight < positions.last!.height, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(districtStatus().downlinkMainHeight, positions.last!.height)
        // Exactly the five d1 parameters, in main-chain order, once each.
        let reader = try await connect(districtAddress, chains.reader)
        let head = try await reader.chainInfo(chain: "d1").height
        var taken: [DownlinkCursor] = []
        for h in 1...head {
            let block = try await reader.block(at: h, chain: "d1").block!
            for (i, tx) in block.transactions.enumerated() {
                if case .downlink(let d)? = try TxPayload(serializedBytes: tx.payload).body, block.outcomes[i].code == 0 {
                    taken.append(DownlinkCursor(height: d.mainHeight, index: d.mainIndex))
                }
            }
        }
        XCTAssertEqual(taken, positions)
        // Each took effect: the accounts exist with their opening balances.
        for i in [0, 1, 2, 4, 5] {
            let account = try await reader.rpc.unary(GridMethod.FeeControl.getAccount, GetAccountRequest(chainId: "d1", account: "a\(i)"), as: GetAccountResponse.self)
            XCTAssertEqual(account.account?.balanceFen, 100 * Int64(i))
        }
        await reader.rpc.close()
        await client.rpc.close()
    }

    /// Hostile and out-of-role cross-chain requests get a clear status and change nothing.
    func testOutOfRoleCrossChainRequestsAreRefused() async throws {
        let before = chains.districtStatus.height
        func code(_ body: () async throws -> Void) async -> StatusCode? {
            do {
                try await body()
                return nil
            } catch let error as RPCError {
                return error.code
            } catch {
                return .unknown
            }
        }
        let mainClient = try await connect(mainAddress, col)
        let districtClient = try await connect(districtAddress, col)
        // Reads as marketing: the collector reads only its own submissions' outcomes.
        let readerClient = try await connect(districtAddress, chains.reader)
        let r17 = await code { _ = try await districtClient.account("nobody", chain: "d1") }
        XCTAssertEqual(r17, .permissionDenied)
        // A collector may not register districts, submit parameters, or sign anchors.
        let registration = try collector.sign(collector.payload(chainID: "main", body: .districtRegistration(DistrictRegistration(district: "d1", memberCertificates: []))))
        let r1 = await code { _ = try await mainClient.submit(registration, chain: "main") }
        XCTAssertEqual(r1, .permissionDenied)
        let parameter = try collector.sign(collector.payload(chainID: "main", body: .parameter(DistrictParameter(district: "d1", body: .payment(Payment(account: "a", amountFen: 1, serial: "s"))))))
        let r2 = await code { _ = try await mainClient.submit(parameter, chain: "main") }
        XCTAssertEqual(r2, .permissionDenied)
        let sign = AnchorSignRequest(chainId: "d1", fromHeight: 1, toHeight: 1, lastHeaderHash: [], headersRoot: [], summary: [])
        let r3 = await code { _ = try await districtClient.rpc.unary(GridMethod.Anchor.sign, sign, as: AnchorSignResponse.self) }
        XCTAssertEqual(r3, .permissionDenied)
        // A node that is not a member of d1 may not ask for signatures either.
        let outsider = try pki.issue(.node, "outsider", district: "d1")
        let outsiderClient = try await connect(districtAddress, outsider)
        let r4 = await code { _ = try await outsiderClient.rpc.unary(GridMethod.Anchor.sign, sign, as: AnchorSignResponse.self) }
        XCTAssertEqual(r4, .permissionDenied)
        // Main-chain kinds on a district chain, district kinds on the main chain, a downlink
        // by a collector, an acknowledgement by a collector.
        let onDistrict = try collector.sign(collector.payload(chainID: "d1", body: .parameter(DistrictParameter(district: "d1", body: .payment(Payment(account: "a", amountFen: 1, serial: "s"))))))
        let r5 = await code { _ = try await districtClient.submit(onDistrict, chain: "d1") }
        XCTAssertEqual(r5, .failedPrecondition)
        let receipt = try collector.sign(collector.payload(chainID: "main", body: .anchorReceipt(AnchorReceipt(fromHeight: 1, toHeight: 1))))
        let r6 = await code { _ = try await mainClient.submit(receipt, chain: "main") }
        XCTAssertEqual(r6, .failedPrecondition)
        let downlink = try collector.sign(collector.payload(chainID: "d1", body: .downlink(Downlink(mainHeight: 1, mainIndex: 0, original: [1, 2, 3]))))
        let r7 = await code { _ = try await districtClient.submit(downlink, chain: "d1") }
        XCTAssertEqual(r7, .permissionDenied)
        let ack = try collector.sign(collector.payload(chainID: "d1", body: .commandAck(CommandAck(commandId: "x", success: true))))
        let r8 = await code { _ = try await districtClient.submit(ack, chain: "d1") }
        XCTAssertEqual(r8, .permissionDenied)
        // A district node forging a downlink whose original is not a signed main-chain parameter.
        let edge = TransactionSignerBox.edge(chains)
        let forged = try edge.sign(edge.payload(chainID: "d1", body: .downlink(Downlink(mainHeight: 1, mainIndex: 0, original: [1, 2, 3]))))
        let r9 = await code { _ = try await districtClient.submit(forged, chain: "d1") }
        XCTAssertEqual(r9, .invalidArgument)
        // An anchor whose member signature does not verify is UNAUTHENTICATED.
        let member = try CertificateKeyPair(certificatePath: chains.districtConfig.tls.cert, privateKeyPath: chains.districtConfig.tls.key)
        var forgedAnchor = Anchor(district: "d1", fromHeight: 1, toHeight: 1, lastHeaderHash: [UInt8](repeating: 1, count: 32),
                                  headersRoot: [UInt8](repeating: 2, count: 32), hashSuite: "sm3", summary: [], signatures: [])
        var badSignature = try member.sign(AnchorDigest.of(forgedAnchor))
        badSignature[badSignature.count - 1] ^= 1
        forgedAnchor.signatures = [AnchorSignature(certificate: member.certificateDER, signature: badSignature)]
        let r13 = await code { _ = try await mainClient.submit(try edge.sign(edge.payload(chainID: "main", body: .anchor(forgedAnchor))), chain: "main") }
        XCTAssertEqual(r13, .unauthenticated)
        // Fee-control queries validate their input.
        let r14 = await code { _ = try await readerClient.account("a/b", chain: "d1") }
        XCTAssertEqual(r14, .invalidArgument)
        let r15 = await code { _ = try await readerClient.accounts(state: .normal, chain: "d1") }
        XCTAssertEqual(r15, .invalidArgument)
        let r16 = await code { _ = try await readerClient.account("nobody", chain: "d1") }
        XCTAssertEqual(r16, .notFound)
        // A receipt reaching past any height (it would overflow the next one) is refused.
        let huge = try edge.sign(edge.payload(chainID: "d1", body: .anchorReceipt(AnchorReceipt(fromHeight: 1, toHeight: UInt64.max))))
        let r12 = await code { _ = try await districtClient.submit(huge, chain: "d1") }
        XCTAssertEqual(r12, .invalidArgument)
        // A genuine parameter downlinked out of step (its predecessor never landed) is
        // refused and leaves the cursor where it is.
        let marketing = try pki.issue(.marketing, "mkt-x")
        let marketer = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let original = try marketer.sign(marketer.payload(chainID: "main", body: .parameter(DistrictParameter(
            district: "d1", body: .customer(CustomerArchive(account: "z1", meterId: "zm1", tariffId: "t"))))))
        let skipping = try edge.sign(edge.payload(chainID: "d1", body: .downlink(Downlink(
            mainHeight: 9, mainIndex: 0, original: original.serializedBytes(), mainTimestampMs: 0, afterHeight: 5, afterIndex: 0))))
        let skipped = try await districtClient.submit(skipping, chain: "d1")
        XCTAssertEqual(skipped.outcome?.code, 10, skipped.outcome?.message ?? "")
        let cursor = try await readerClient.state(AnchorKeys.downlinkCursor, chain: "d1")
        XCTAssertFalse(cursor.found, "the cursor did not move")
        // Proof of a height not anchored, and of genesis.
        let r10 = await code { _ = try await readerClient.proveBlock(9_999, chain: "d1") }
        XCTAssertEqual(r10, .notFound)
        let r11 = await code { _ = try await readerClient.proveBlock(0, chain: "d1") }
        XCTAssertEqual(r11, .invalidArgument)
        // Only the refused downlink was written, and the node still serves. Its block is
        // content, so it gets anchored (anchorEveryMs 100) and receipt-only blocks may follow.
        let info = try await readerClient.chainInfo(chain: "d1")
        XCTAssertGreaterThanOrEqual(info.height, before + 1)
        XCTAssertGreaterThanOrEqual(chains.districtStatus.height, info.height)
        var written: [(body: TxPayload.Body?, code: UInt32)] = []
        for h in (before + 1)...max(before + 1, info.height) {
            let block = try await readerClient.block(at: h, chain: "d1").block!
            for (i, tx) in block.transactions.enumerated() {
                let body = try TxPayload(serializedBytes: tx.payload).body
                if case .anchorReceipt? = body { continue }
                written.append((body, block.outcomes[i].code))
            }
        }
        XCTAssertEqual(written.count, 1, "transactions written besides anchor receipts: \(written)")
        if case .downlink(let d)? = written.first?.body {
            XCTAssertEqual(d.mainHeight, 9)
            XCTAssertEqual(written.first?.code, 10)
        } else {
            XCTFail("the refused downlink is not what was written: \(written)")
        }
        for c in [mainClient, districtClient, readerClient, outsiderClient] { await c.rpc.close() }
    }
}

enum TransactionSignerBox {
    /// The district node's own signing identity (role node, district d1).
    static func edge(_ chains: MainAndDistrict) -> TransactionSigner {
        try! TransactionSigner(certificatePath: chains.districtConfig.tls.cert, keyPath: chains.districtConfig.tls.key)
    }
}

/// A proof's paths must have exactly the shape of their leaf position, and the anchor's
/// outcome must show the main chain accepted it.
final class ProofShapeTests: XCTestCase {
    func testPathShapeBindsTheLeafPosition() {
        let hashing = ChainHashing(suite: .sha256)
        let ids = (0..<5).map { Digest.sha256([UInt8($0)]) }
        for index in 0..<5 {
            let path = hashing.merklePath(ids, index: index)
            XCTAssertTrue(hashing.pathFits(path, index: UInt64(index), count: 5))
            XCTAssertEqual(hashing.foldPath(leaf: ids[index], path), hashing.txRoot(ids))
            for other in 0..<5 where other != index {
                XCTAssertFalse(hashing.pathFits(path, index: UInt64(other), count: 5), "path of \(index) passes as \(other)")
            }
        }
        // Leaf 4 of 5 is promoted twice; an extra promoted step, or one dropped, is refused.
        var path = hashing.merklePath(ids, index: 4)
        XCTAssertTrue(path.first?.promoted ?? false)
        path.append(MerkleStep(sibling: [], siblingLeft: false, promoted: true))
        XCTAssertFalse(hashing.pathFits(path, index: 4, count: 5))
        XCTAssertFalse(hashing.pathFits(Array(hashing.merklePath(ids, index: 4).dropFirst()), index: 4, count: 5))
    }
}
