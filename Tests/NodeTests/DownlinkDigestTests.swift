@testable import Chain
import ChainHashing
import Contracts
import GridProto
@testable import Node
import XCTest

/// The downlink digest (Docs/anchoring.md, "Downlink digest"): the main chain and the
/// district compute the same digest over the parameters the district takes, and the main
/// chain refuses an anchor whose digest shows a parameter skipped or reordered.
final class DownlinkDigestTests: XCTestCase {
    typealias Memory = MemoryChainState

    let members: [[UInt8]] = [[1, 1, 1], [2, 2, 2], [3, 3, 3]]

    private func payment(_ amount: Int64) -> DistrictParameter {
        DistrictParameter(district: "d1", body: .payment(Payment(account: "acc-1", amountFen: amount, serial: "p\(amount)", paidMs: 1)))
    }

    /// Executes one block of `bodies` on `chain` over `state`; returns the outcomes.
    @discardableResult
    private func block(_ chain: String, _ height: UInt64, _ bodies: [TxPayload.Body], _ state: Memory) throws -> [TxOutcome] {
        let payloads = bodies.map { TxPayload(chainId: chain, createdMs: 1, nonce: "n\(height)", body: $0) }
        let (writes, outcomes) = try BlockExecutor.execute(payloads, context: ExecutionContext(chainID: chain, height: height, timestampMs: 1_700_000_000_000), state: state)
        state.apply(writes)
        return outcomes
    }

    private func anchor(count: UInt64, digest: [UInt8]) -> Anchor {
        let summary = UplinkSummary(downlinkCount: count, downlinkDigest: digest)
        return Anchor(district: "d1", fromHeight: 1, toHeight: 4, lastHeaderHash: [9], headersRoot: [9], hashSuite: "sha256",
                      summary: summary.serializedBytes(),
                      signatures: members.prefix(2).map { AnchorSignature(certificate: $0, signature: [0]) })
    }

    private func downlink(_ parameter: DistrictParameter, at index: UInt32, after: UInt32?) -> TxPayload.Body {
        let original = SignedTransaction(payload: TxPayload(chainId: "main", body: .parameter(parameter)).serializedBytes())
        return .downlink(Downlink(mainHeight: 2, mainIndex: index, original: original.serializedBytes(), mainTimestampMs: 1,
                                  afterHeight: after == nil ? 0 : 2, afterIndex: after ?? 0))
    }

    func testBothSidesAgreeAndASkippedParameterStopsAnchoring() throws {
        let (p1, p2) = (payment(100), payment(200))
        let main = Memory()
        try block("main", 1, [.districtRegistration(DistrictRegistration(district: "d1", memberCertificates: members))], main)
        XCTAssertEqual(try block("main", 2, [.parameter(p1), .parameter(p2)], main).map(\.code), [0, 0])
        let d1 = DownlinkDigest.next([], p1)
        let d2 = DownlinkDigest.next(d1, p2)
        XCTAssertEqual(main.values[AnchorKeys.parameterDigest("d1", 2)], d2)

        // An honest district takes both in order and reaches the same digests.
        let district = Memory()
        try block("d1", 1, [downlink(p1, at: 0, after: nil)], district)
        XCTAssertEqual(district.values[AnchorKeys.downlinkDigest].flatMap(DownlinkDigest.decode)?.digest, d1)
        try block("d1", 2, [downlink(p2, at: 1, after: 0)], district)
        let taken = try XCTUnwrap(district.values[AnchorKeys.downlinkDigest].flatMap(DownlinkDigest.decode))
        XCTAssertEqual(taken.count, 2)
        XCTAssertEqual(taken.digest, d2)

        let get: (String) throws -> [UInt8]? = { main.values[$0] }
        XCTAssertNoThrow(try BlockExecutor.checkAnchor(anchor(count: 1, digest: d1), get: get))
        XCTAssertNoThrow(try BlockExecutor.checkAnchor(anchor(count: 2, digest: d2), get: get))
        XCTAssertNoThrow(try BlockExecutor.checkAnchor(anchor(count: 0, digest: []), get: get), "a district that took nothing yet")

        // A faulty leader skipped p1 (took p2 naming the cursor as its predecessor): the
        // district's own checks pass, the main chain's do not.
        let skipping = Memory()
        try block("d1", 1, [downlink(p2, at: 1, after: nil)], skipping)
        let skipped = try XCTUnwrap(skipping.values[AnchorKeys.downlinkDigest].flatMap(DownlinkDigest.decode))
        XCTAssertEqual(skipped.count, 1)
        for bad in [anchor(count: skipped.count, digest: skipped.digest), anchor(count: 2, digest: DownlinkDigest.next(d1, p1)),
                    anchor(count: 3, digest: DownlinkDigest.next(d2, p1))] {
            XCTAssertThrowsError(try BlockExecutor.checkAnchor(bad, get: get)) { error in
                XCTAssertEqual((error as? ExecutionRejection)?.code, .failedPrecondition, "\(error)")
                XCTAssertTrue("\(error)".contains("skipped or reordered"), "\(error)")
            }
        }
        // The same refusal when the anchor executes in a main block.
        let refused = try block("main", 3, [.anchor(anchor(count: skipped.count, digest: skipped.digest))], main)
        XCTAssertEqual(refused.first?.code, 9)
        XCTAssertEqual(try block("main", 4, [.anchor(anchor(count: 2, digest: d2))], main).first?.code, 0)
    }
}
