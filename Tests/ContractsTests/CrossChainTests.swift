import Contracts
import GridBase
import GridCrypto
import GridProto
import XCTest

/// The cross-chain rules (Docs/anchoring.md; DOMAIN.md, "main chain and district chains"),
/// run on an in-memory state with the node's SHA-256.
final class CrossChainTests: XCTestCase {
    let contract = CrossChain(sha256: { Digest.sha256($0) })
    let members: [[UInt8]] = [[1, 1, 1], [2, 2, 2], [3, 3, 3]]

    private func registered() -> InMemoryContractState {
        var state = InMemoryContractState()
        contract.registerDistrict(DistrictRegistration(district: "d1", memberCertificates: members), state: &state)
        return state
    }

    private func anchor(from: UInt64, to: UInt64, signers: [[UInt8]]) -> Anchor {
        var anchor = Anchor()
        anchor.district = "d1"
        anchor.fromHeight = from
        anchor.toHeight = to
        anchor.lastHeaderHash = [UInt8(truncatingIfNeeded: to)]
        anchor.headersRoot = [9]
        anchor.signatures = signers.map { AnchorSignature(certificate: $0, signature: [0]) }
        return anchor
    }

    private func payment(_ serial: String, _ fen: Int64) -> Payment {
        var payment = Payment()
        payment.account = "a1"
        payment.amountFen = fen
        payment.serial = serial
        return payment
    }

    private func code(_ body: () throws -> Void) -> StatusCode? {
        do { try body() } catch let rejection as ContractRejection { return rejection.code } catch { return .unknown }
        return nil
    }

    /// "An anchor is accepted with signatures of more than half of the registered members."
    func testAnchorNeedsAMajorityOfRegisteredMembers() throws {
        var state = registered()
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: [members[0]]), state: &state) }, .permissionDenied, "1 of 3 is no majority")
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: [members[0], [7, 7]]), state: &state) }, .permissionDenied, "a stranger's signature")
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: [members[0], members[0]]), state: &state) }, .invalidArgument, "a member twice")
        XCTAssertNil(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: [members[0], members[2]]), state: &state) })
        let record = try XCTUnwrap(state.entries[AnchorKeys.lastAnchor("d1")].flatMap(AnchorRecord.init(bytes:)))
        XCTAssertEqual(record.from, 1)
        XCTAssertEqual(record.to, 5)
    }

    /// "An anchor's range starts right after the district's previous anchor (the first at 1);
    /// the same range again is ALREADY_EXISTS, a gap FAILED_PRECONDITION."
    func testAnchorsContinueWithoutGapOrRepeat() {
        var state = registered()
        let two = [members[0], members[1]]
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 2, to: 5, signers: two), state: &state) }, .failedPrecondition, "the first starts at 1")
        XCTAssertNil(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: two), state: &state) })
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 1, to: 5, signers: two), state: &state) }, .alreadyExists)
        XCTAssertEqual(code { try contract.applyAnchor(anchor(from: 7, to: 9, signers: two), state: &state) }, .failedPrecondition, "a gap")
        XCTAssertNil(code { try contract.applyAnchor(anchor(from: 6, to: 9, signers: two), state: &state) })
    }

    /// "Parameters go only to registered districts; each advances the district's count and
    /// downlink digest D(n) = SHA-256(D(n-1) || SHA-256(parameter))."
    func testParametersNeedARegisteredDistrictAndChainTheDigest() throws {
        var empty = InMemoryContractState()
        let p1 = DistrictParameter(district: "d1", body: .payment(payment("p1", 100)))
        XCTAssertEqual(code { try contract.acceptParameter(p1, state: &empty) }, .failedPrecondition)
        var state = registered()
        try contract.acceptParameter(p1, state: &state)
        let d1 = Digest.sha256([] + Digest.sha256(p1.serializedBytes()))
        XCTAssertEqual(state.entries[AnchorKeys.parameterCount("d1")], BigEndianWriter.bytes(of: UInt64(1)))
        XCTAssertEqual(state.entries[AnchorKeys.parameterDigest("d1", 1)], d1)
    }

    /// "Receipts continue at the previous receipt's end + 1; a range already receipted is
    /// ALREADY_EXISTS."
    func testReceiptsContinueWithoutGap() {
        var state = InMemoryContractState()
        XCTAssertNil(code { try contract.applyReceipt(AnchorReceipt(fromHeight: 1, toHeight: 4), state: &state) })
        XCTAssertEqual(code { try contract.applyReceipt(AnchorReceipt(fromHeight: 1, toHeight: 4), state: &state) }, .alreadyExists)
        XCTAssertEqual(code { try contract.applyReceipt(AnchorReceipt(fromHeight: 6, toHeight: 8), state: &state) }, .failedPrecondition)
        XCTAssertNil(code { try contract.applyReceipt(AnchorReceipt(fromHeight: 5, toHeight: 8), state: &state) })
    }

    /// "A downlink is taken only right after its predecessor (ABORTED otherwise, so no
    /// parameter is skipped); one at or before the cursor is ALREADY_EXISTS."
    func testDownlinkIsTakenInMainChainOrder() throws {
        let parameter = DistrictParameter(district: "d1", body: .payment(payment("p", 5)))
        var original = SignedTransaction()
        original.payload = TxPayload(chainId: "main", body: .parameter(parameter)).serializedBytes()
        func downlink(at height: UInt64, after: UInt64) -> Downlink {
            Downlink(mainHeight: height, mainIndex: 0, original: original.serializedBytes(), afterHeight: after, afterIndex: 0)
        }
        var state = InMemoryContractState()
        XCTAssertEqual(code { _ = try contract.takeDownlink(downlink(at: 5, after: 3), state: &state) }, .aborted, "its predecessor 3/0 did not land")
        XCTAssertEqual(try contract.takeDownlink(downlink(at: 3, after: 0), state: &state), parameter)
        XCTAssertEqual(state.entries[AnchorKeys.downlinkCursor].flatMap(DownlinkCursor.init(bytes:)), DownlinkCursor(height: 3, index: 0))
        XCTAssertEqual(code { _ = try contract.takeDownlink(downlink(at: 3, after: 0), state: &state) }, .alreadyExists)
        XCTAssertEqual(state.entries[AnchorKeys.downlinkDigest].flatMap(DownlinkDigest.decode)?.count, 1)
    }
}
