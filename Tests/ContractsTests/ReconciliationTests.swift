import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md, "Multi-party reconciliation": each test names the sentence it checks.
final class ReconciliationTests: XCTestCase {
    let D: UInt32 = 20260315
    let D1: UInt32 = 20260316
    var state = InMemoryContractState()
    var height: UInt64 = 0

    private func receipt(_ serial: String, _ amount: Int64, date: UInt32, customer: String = "c1", account: String = "A1", reverses: String = "") -> ChargeReceipt {
        ChargeReceipt(serial: serial, customerAccount: customer, amountFen: amount, bankAccount: account, workingDate: date, timeMs: 1, reversesSerial: reverses)
    }

    private func payment(_ serial: String, _ amount: Int64, date: UInt32, marketing: String = "", customer: String = "c1",
                         account: String = "A1", status: BankPaymentStatus = .success) -> BankPayment {
        BankPayment(serial: serial, marketingSerial: marketing, customerAccount: customer, amountFen: amount, bankAccount: account, valueDate: date, status: status)
    }

    private func entry(_ voucher: String, _ amount: Int64, booked: UInt32, collection: UInt32, account: String = "A1") -> AccountingEntry {
        AccountingEntry(voucherId: voucher, bankAccount: account, amountFen: amount, workingDate: booked, collectionDate: collection)
    }

    @discardableResult
    private func marketing(_ receipts: ChargeReceipt...) throws -> ContractEffects {
        try Reconciliation.takeReceipts(ChargeReceiptBatch(batchId: "m", receipts: receipts), state: &state)
    }

    @discardableResult
    private func bank(_ payments: BankPayment...) throws -> ContractEffects {
        try Reconciliation.takePayments(BankPaymentBatch(bank: "icbc", batchId: "b", payments: payments), state: &state)
    }

    @discardableResult
    private func finance(_ entries: AccountingEntry...) throws -> ContractEffects {
        try Reconciliation.takeEntries(AccountingEntryBatch(batchId: "f", entries: entries), state: &state)
    }

    @discardableResult
    private func reconcile(_ date: UInt32) throws -> ContractEffects {
        height += 1
        return try Reconciliation.reconcile(date: date, context: BlockContext(district: "main", height: height, timestampMs: 1_000 * Int64(height)), state: &state)
    }

    private func result(_ date: UInt32, _ pair: ReconPair) throws -> ReconciliationResult {
        try XCTUnwrap(Reconciliation.latestResult(date: date, pair: pair, state: state))
    }

    private func count(_ r: ReconciliationResult, _ status: ReconStatus) -> UInt64 {
        r.totals.first { $0.status == status }?.count ?? 0
    }

    private func items(_ r: ReconciliationResult, _ status: ReconStatus) -> [ReconItem] { r.items.filter { $0.status == status } }

    // MARK: Marketing ↔ bank, payment by payment

    /// "marketing ↔ bank, payment by payment: match on serial, else on account + amount + date."
    func testMatchOnSerialElseOnAccountAmountDate() throws {
        try marketing(receipt("m1", 1000, date: D), receipt("m2", 2500, date: D, customer: "c2"))
        try bank(payment("b1", 1000, date: D, marketing: "m1"), payment("b2", 2500, date: D, customer: "c2"))
        try reconcile(D)
        let r = try result(D, .marketingBank)
        XCTAssertEqual(count(r, .matched), 2)
        XCTAssertEqual(r.totals.count, 1)
        XCTAssertTrue(r.items.isEmpty, "matched items are counted, not listed")
    }

    /// Statuses `amount_diff`, `only_in_bank` (长款), `only_in_marketing` (短款), with both
    /// sides' references.
    func testAmountDiffOnlyInBankOnlyInMarketing() throws {
        try marketing(receipt("m1", 1000, date: D), receipt("m2", 700, date: D, customer: "c2"))
        try bank(payment("b1", 990, date: D, marketing: "m1"), payment("b9", 300, date: D, customer: "c9"))
        try reconcile(D)
        let r = try result(D, .marketingBank)
        let diff = try XCTUnwrap(items(r, .amountDiff).first)
        XCTAssertEqual(diff.leftRefs, ["m:m1"])
        XCTAssertEqual(diff.rightRefs, ["b:icbc/b1"])
        XCTAssertEqual(diff.differenceFen, -10)
        XCTAssertEqual(items(r, .onlyInMarketing).map(\.leftRefs), [["m:m2"]])
        XCTAssertEqual(items(r, .onlyInBank).map(\.rightRefs), [["b:icbc/b9"]])
        XCTAssertEqual(r.totals.first { $0.status == .onlyInBank }?.rightAmountFen, 300)
    }

    /// "`status_diff` (one side success, the other reversed)."
    func testStatusDiffWhenOneSideReversed() throws {
        try marketing(receipt("m1", 1000, date: D))
        try bank(payment("b1", 1000, date: D, marketing: "m1", status: .reversed))
        try reconcile(D)
        let r = try result(D, .marketingBank)
        XCTAssertEqual(items(r, .statusDiff).map(\.rightRefs), [["b:icbc/b1"]])
    }

    /// "A reversal and the record it reverses net to zero and leave matching together (status
    /// `reversed`); a reversal of an unknown serial is `status_diff`."
    func testReversalNettingAndUnknownReversal() throws {
        try marketing(receipt("m1", 1000, date: D), receipt("r1", -1000, date: D, reverses: "m1"), receipt("r2", -50, date: D, reverses: "nope"))
        try bank(payment("b1", 1000, date: D, marketing: "m1", status: .reversed))
        try reconcile(D)
        let r = try result(D, .marketingBank)
        let reversed = try XCTUnwrap(items(r, .reversed).first)
        XCTAssertEqual(reversed.leftRefs, ["m:m1", "m:r1"])
        XCTAssertEqual(reversed.leftAmountFen, 0, "the pair nets to zero")
        XCTAssertEqual(reversed.rightRefs, ["b:icbc/b1"])
        XCTAssertEqual(items(r, .statusDiff).map(\.leftRefs), [["m:r2"]])
        XCTAssertEqual(count(r, .matched), 0, "the netted pair leaves matching")
    }

    /// "A payment booked on D and credited on D+1 is `in_transit` for D and matched when D+1
    /// is reconciled" — and finance ↔ bank sees the same credit in transit on totals.
    func testBookedOnDCreditedOnDPlusOneIsInTransitThenMatched() throws {
        try marketing(receipt("m1", 1000, date: D))
        try bank(payment("b1", 1000, date: D1, marketing: "m1"))
        try finance(entry("v1", 1000, booked: D, collection: D))
        try reconcile(D)
        let day = try result(D, .marketingBank)
        XCTAssertEqual(items(day, .inTransit).map(\.rightRefs), [["b:icbc/b1"]])
        XCTAssertEqual(count(day, .matched), 0)
        XCTAssertEqual(try result(D, .financeBank).items.map(\.status), [.inTransit])
        XCTAssertEqual(count(try result(D, .marketingFinance), .matched), 1)

        try reconcile(D1)
        let next = try result(D1, .marketingBank)
        XCTAssertEqual(count(next, .matched), 1)
        XCTAssertTrue(next.items.isEmpty)
    }

    // MARK: Totals per bank account and day

    /// "finance ↔ bank and marketing ↔ finance, per bank account and day: totals compared;
    /// `matched`, `amount_diff` (with the difference), `only_in_bank`, `only_in_finance`,
    /// `only_in_marketing`."
    func testTotalsPerBankAccountAndDay() throws {
        try marketing(receipt("m1", 1000, date: D, account: "A1"), receipt("m2", 500, date: D, account: "A2"), receipt("m3", 400, date: D, account: "A3"))
        try bank(payment("b1", 1000, date: D, marketing: "m1", account: "A1"), payment("b2", 500, date: D, marketing: "m2", account: "A2"),
                 payment("b4", 800, date: D, customer: "c4", account: "A4"))
        try finance(entry("v1", 1000, booked: D, collection: D, account: "A1"), entry("v2", 450, booked: D1, collection: D, account: "A2"),
                    entry("v5", 60, booked: D, collection: D, account: "A5"))
        try reconcile(D)
        let fb = try result(D, .financeBank)
        XCTAssertEqual(count(fb, .matched), 1)  // A1
        XCTAssertEqual(items(fb, .amountDiff).map { [$0.bankAccount, String($0.differenceFen)] }, [["A2", "50"]])
        XCTAssertEqual(items(fb, .onlyInBank).map(\.bankAccount), ["A4"])
        XCTAssertEqual(items(fb, .onlyInFinance).map(\.bankAccount), ["A5"])
        XCTAssertEqual(items(fb, .onlyInBank).first?.rightRefs, ["recon/b/20260315/A4/"])
        let mf = try result(D, .marketingFinance)
        XCTAssertEqual(count(mf, .matched), 1)
        XCTAssertEqual(items(mf, .amountDiff).map { [$0.bankAccount, String($0.differenceFen)] }, [["A2", "-50"]])
        XCTAssertEqual(items(mf, .onlyInMarketing).map(\.bankAccount), ["A3"])
        XCTAssertEqual(items(mf, .onlyInFinance).map(\.bankAccount), ["A5"])
    }

    /// Finance's entries booked after D+1 are not considered for D ("records dated D and D+1").
    func testFinanceBookedAfterNextDayIsNotConsidered() throws {
        try marketing(receipt("m1", 1000, date: D))
        try finance(entry("v1", 1000, booked: Reconciliation.date(D, plus: 2), collection: D))
        try reconcile(D)
        XCTAssertEqual(items(try result(D, .marketingFinance), .onlyInMarketing).count, 1)
    }

    // MARK: Results

    /// "Reconciling a date again after late records writes a new result that supersedes the
    /// old one; both stay on chain."
    func testRerunSupersedesAndBothStay() throws {
        try marketing(receipt("m1", 1000, date: D))
        let first = try reconcile(D)
        XCTAssertEqual(first.resultKeys.first, "recon/result/20260315/marketing-bank/000001")
        XCTAssertEqual(count(try result(D, .marketingBank), .onlyInMarketing), 1)
        try bank(payment("b1", 1000, date: D, marketing: "m1"))  // late record
        let second = try reconcile(D)
        XCTAssertEqual(second.resultKeys, ["recon/result/20260315/marketing-bank/000002", "recon/result/20260315/finance-bank/000002",
                                           "recon/result/20260315/marketing-finance/000002"])
        let latest = try result(D, .marketingBank)
        XCTAssertEqual(latest.run, 2)
        XCTAssertEqual(count(latest, .matched), 1)
        XCTAssertNotNil(try state.get("recon/result/20260315/marketing-bank/000001"), "the superseded result stays")
        XCTAssertEqual(state.keys(withPrefix: ReconciliationKeys.resultsPrefix(date: D, pair: .marketingBank)).count, 2)
    }

    /// Deterministic: the same records in another submission order give byte-identical results.
    func testResultsDoNotDependOnSubmissionOrder() throws {
        var receipts: [ChargeReceipt] = []
        var payments: [BankPayment] = []
        for i in 0..<20 {
            let amount = Int64(100 + i % 3)
            receipts.append(receipt("m\(i)", amount, date: i % 2 == 0 ? D : D1, customer: "c\(i % 4)"))
            payments.append(payment("b\(i)", amount, date: i % 3 == 0 ? D1 : D, marketing: i % 5 == 0 ? "" : "m\(i)", customer: "c\(i % 4)"))
        }
        for r in receipts { try marketing(r) }
        for p in payments { try bank(p) }
        try reconcile(D)
        let one = state.sortedEntries().filter { $0.key.hasPrefix("recon/result/") }
        state = InMemoryContractState()
        height = 0
        for r in receipts.reversed() { try marketing(r) }
        for p in payments.reversed() { try bank(p) }
        try reconcile(D)
        let two = state.sortedEntries().filter { $0.key.hasPrefix("recon/result/") }
        XCTAssertEqual(one.map(\.key), two.map(\.key))
        XCTAssertEqual(one.map(\.value), two.map(\.value))
    }

    // MARK: Records

    /// "A record id repeated is recognised and never counted twice"; the first stands.
    func testRepeatedRecordIDsAreNotCountedTwice() throws {
        let first = try marketing(receipt("m1", 1000, date: D), receipt("m1", 1000, date: D))
        XCTAssertEqual(first.recordsAccepted, 1)
        XCTAssertEqual(first.recordsDuplicate, 1)
        let again = try marketing(receipt("m1", 9999, date: D))
        XCTAssertEqual(again.recordsDuplicate, 1)
        XCTAssertTrue(again.note.contains("m:m1"), again.note)
        XCTAssertEqual(try bank(payment("b1", 1000, date: D, marketing: "m1"), payment("b1", 1000, date: D, marketing: "m1")).recordsDuplicate, 1)
        XCTAssertEqual(try finance(entry("v1", 1000, booked: D, collection: D), entry("v1", 1000, booked: D, collection: D)).recordsDuplicate, 1)
        try reconcile(D)
        XCTAssertEqual(count(try result(D, .marketingBank), .matched), 1)
        XCTAssertEqual(count(try result(D, .marketingFinance), .matched), 1, "1000 fen once, not twice")
    }

    /// Key layout: a day's records of one party are one prefix.
    func testRecordsAreStoredUnderTheirDayPrefix() throws {
        try marketing(receipt("m1", 1000, date: D))
        try bank(payment("b1", 1000, date: D1, marketing: "m1"))
        try finance(entry("v1", 1000, booked: D1, collection: D))
        XCTAssertNotNil(try state.get("recon/m/20260315/A1/m1"))
        XCTAssertNotNil(try state.get("recon/b/20260316/A1/icbc/b1"))
        XCTAssertNotNil(try state.get("recon/f/20260315/A1/v1"))
        XCTAssertEqual(try state.get("recon/by-serial/m1/icbc/b1").map { String(decoding: $0, as: UTF8.self) }, "recon/b/20260316/A1/icbc/b1")
    }

    func testInvalidDateIsRefused() throws {
        XCTAssertThrowsError(try reconcile(20260230)) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        XCTAssertTrue(Reconciliation.isValidDate(20240229))
        XCTAssertFalse(Reconciliation.isValidDate(20250229))
    }
}
