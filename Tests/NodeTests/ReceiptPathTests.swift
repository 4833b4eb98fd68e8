@testable import Chain
import Contracts
import Foundation
import GridProto
@testable import Node
import XCTest

/// Issue 12: "`ChainSync` takes the receipt from the main chain's answer on the normal path and
/// rediscovers it only when resuming." Docs/anchoring.md, "Receipts".
final class ReceiptPathTests: XCTestCase {
    func testReceiptsComeFromTheMainChainsAnswer() async throws {
        let chains = try await MainAndDistrict(anchorEveryBlocks: 2, anchorEveryMs: 100, captureDistrictLogs: true)
        addTeardownBlock { await chains.shutdown() }
        let client = try await chains.connect(chains.districtAddress, chains.collector)
        for n in 0..<6 {
            let readings = [Reading(meterId: "m", timestampMs: 1_700_000_000_000 + Int64(n) * 900_000, energyTotal: UInt64(n))]
            _ = try await client.submitReadings(try chains.collectorSigner.sign(chains.collectorSigner.readingsPayload(chainID: "d1", batchID: "b\(n)", readings: readings)))
        }
        await client.rpc.close()
        _ = try await chains.waitAnchoredToHead(atLeast: 6)
        let recorded = try XCTUnwrap(chains.districtLogs).all.filter { $0.contains("anchor receipt recorded") }
        XCTAssertFalse(recorded.isEmpty)
        XCTAssertTrue(recorded.allSatisfy { $0.contains("from=the main chain's answer") }, "\(recorded)")
        // A receipt per anchored range, whichever way it was recorded.
        let receipt = try XCTUnwrap(try chains.district?.state(AnchorKeys.lastReceipt, chain: "d1"))
        XCTAssertGreaterThanOrEqual(try AnchorReceipt(serializedBytes: receipt.value).toHeight, 6)
    }
}
