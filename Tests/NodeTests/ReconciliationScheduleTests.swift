@testable import Chain
import ChainHashing
import Contracts
import GridBase
import GridProto
import XCTest

/// The automatic daily reconciliation through the block executor (Docs/reconciliation.md,
/// "Schedule"). DOMAIN.md / issue 13: "Daily for working date D once D+1 has closed on the
/// main chain (the cut-off is a chain parameter), and again, superseding, when a late
/// record for D or D+1 arrives; finance or admin can also request a run for a date."
final class ReconciliationScheduleTests: XCTestCase {
    typealias Memory = MemoryChainState

    let D: UInt32 = 20260315
    let D1: UInt32 = 20260316
    /// D is due at 02:00 of D+2 in UTC+8 by default: 2026-03-16T18:00:00Z.
    let dueD: Int64 = 1_773_684_000_000
    let hour: Int64 = 3_600_000
    var memory = Memory()
    var height: UInt64 = 0
    /// Every block's writes, in order.
    var log: [[StateWriteRecord]] = []

    /// Executes one main-chain block of `bodies` at `ms`; returns the outcomes.
    @discardableResult
    private func block(at ms: Int64, _ bodies: TxPayload.Body...) throws -> [TxOutcome] {
        height += 1
        let payloads = bodies.map { TxPayload(chainId: "main", createdMs: 1, nonce: "n\(height)", body: $0) }
        let (writes, outcomes) = try BlockExecutor.execute(payloads, context: ExecutionContext(chainID: "main", height: height, timestampMs: ms), state: memory)
        memory.apply(writes)
        log.append(writes)
        return outcomes
    }

    private func receipt(_ serial: String, _ amount: Int64, date: UInt32) -> TxPayload.Body {
        .chargeReceipts(ChargeReceiptBatch(batchId: serial, receipts: [
            ChargeReceipt(serial: serial, customerAccount: "c1", amountFen: amount, bankAccount: "A1", workingDate: date, timeMs: 1),
        ]))
    }

    private func payment(_ serial: String, _ amount: Int64, date: UInt32, marketing: String) -> TxPayload.Body {
        .bankPayments(BankPaymentBatch(bank: "icbc", batchId: serial, payments: [
            BankPayment(serial: serial, marketingSerial: marketing, customerAccount: "c1", amountFen: amount, bankAccount: "A1", valueDate: date, status: .success),
        ]))
    }

    private func runs(_ date: UInt32) -> [String] {
        memory.values.keys.filter { $0.hasPrefix(ReconciliationKeys.resultsPrefix(date: date, pair: .marketingBank)) }.sorted()
    }

    private func latest(_ date: UInt32) throws -> ReconciliationResult {
        let bytes = try XCTUnwrap(memory.values[try XCTUnwrap(runs(date).last)])
        return try ReconciliationResult(serializedBytes: bytes)
    }

    private func count(_ r: ReconciliationResult, _ status: ReconStatus) -> UInt64 {
        r.totals.first { $0.status == status }?.count ?? 0
    }

    /// "once D+1 has closed": no run while D+1 is open or before the cut-off after it; the
    /// date waits in `recon/due/`.
    func testNoRunBeforeDPlusOneCloses() throws {
        try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D))
        try block(at: dueD - 2 * hour - 1)  // D+1 still open (23:59:59.999 local)
        try block(at: dueD - 1)  // D+1 closed, cut-off not reached
        XCTAssertEqual(runs(D), [])
        XCTAssertNotNil(memory.values["recon/due/20260315"])
        XCTAssertEqual(ReconciliationSchedule.dueMs(of: D, settings: ReconciliationSchedule.defaultSettings), dueD,
                       "default: 00:00 of D+2 in UTC+8, plus 120 minutes")
    }

    /// "Daily for working date D once D+1 has closed": in the first block at or after the
    /// cut-off, the same run a request makes (run 1 of every pair); D+1 waits for its own.
    func testRunInTheFirstBlockAfterTheCutOff() throws {
        try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D), payment("b1", 1000, date: D, marketing: "m1"), receipt("m2", 500, date: D1))
        try block(at: dueD + 5 * 60_000)
        XCTAssertEqual(runs(D), ["recon/result/20260315/marketing-bank/000001"])
        XCTAssertNotNil(memory.values["recon/result/20260315/finance-bank/000001"])
        XCTAssertNotNil(memory.values["recon/result/20260315/marketing-finance/000001"])
        let r = try latest(D)
        XCTAssertEqual(r.height, height, "run in that block")
        XCTAssertEqual(count(r, .matched), 1)
        XCTAssertEqual(memory.values["recon/auto/20260315"], BigEndianWriter.bytes(of: UInt32(1)))
        XCTAssertNil(memory.values["recon/due/20260315"])
        XCTAssertEqual(runs(D1), [], "D+1 is not due before D+2 closes")
        XCTAssertTrue(log.last!.allSatisfy { $0.txIndex == 0 }, "the block-level step writes after the (zero) transactions")
    }

    /// No second automatic run: once run, D is not run again without a late record.
    func testNoSecondAutomaticRun() throws {
        try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D))
        try block(at: dueD)
        for day in 1...3 { try block(at: dueD + Int64(day) * 24 * hour) }
        XCTAssertEqual(runs(D), ["recon/result/20260315/marketing-bank/000001"])
    }

    /// "and again, superseding, when a late record for D … arrives": the rerun is in the
    /// block that carries the record; both results stay.
    func testLateRecordForDTriggersASupersedingRerun() throws {
        try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D))
        try block(at: dueD)
        XCTAssertEqual(count(try latest(D), .onlyInMarketing), 1)
        try block(at: dueD + hour, payment("b1", 1000, date: D, marketing: "m1"))
        XCTAssertEqual(runs(D), ["recon/result/20260315/marketing-bank/000001", "recon/result/20260315/marketing-bank/000002"])
        let rerun = try latest(D)
        XCTAssertEqual(rerun.run, 2)
        XCTAssertEqual(rerun.height, height)
        XCTAssertEqual(count(rerun, .matched), 1)
        XCTAssertNil(memory.values["recon/dirty/20260315"])
        XCTAssertEqual(memory.values["recon/auto/20260315"], BigEndianWriter.bytes(of: UInt32(1)), "the first automatic run stays recorded")
        try block(at: dueD + 2 * hour)
        XCTAssertEqual(runs(D).count, 2, "no further rerun without a further record")
    }

    /// "a late record for D+1" reruns D: a credit dated D+1 for D's receipt, arriving after D
    /// was reconciled, makes D's receipt `in_transit` instead of `only_in_marketing`.
    func testLateRecordForDPlusOneRerunsD() throws {
        try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D))
        try block(at: dueD)
        XCTAssertEqual(count(try latest(D), .onlyInMarketing), 1)
        try block(at: dueD + hour, payment("b1", 1000, date: D1, marketing: "m1"))
        XCTAssertEqual(runs(D).count, 2)
        XCTAssertEqual(count(try latest(D), .inTransit), 1)
        XCTAssertEqual(runs(D1), [], "D+1 itself waits for its cut-off")
        XCTAssertNotNil(memory.values["recon/due/20260316"])
        try block(at: dueD + 24 * hour)
        XCTAssertEqual(count(try latest(D1), .matched), 1, "matched when D+1 is reconciled")
    }

    /// D's run loads D−1's receipts (a receipt of D−1 credited on D): a late one reruns D too.
    func testLateReceiptOfTheDayBeforeRerunsD() throws {
        try block(at: dueD - 30 * hour, payment("b1", 1000, date: D, marketing: "m0"))
        try block(at: dueD)
        XCTAssertEqual(count(try latest(D), .onlyInBank), 1)
        try block(at: dueD + hour, receipt("m0", 1000, date: 20260314))
        XCTAssertEqual(runs(D).count, 2)
        XCTAssertEqual(count(try latest(D), .onlyInBank), 0)
    }

    /// "finance or admin can also request a run": a date run only on request is rerun
    /// automatically when a late record for it arrives after its cut-off.
    func testRequestedDateIsRerunOnALateRecord() throws {
        try block(at: dueD + hour, .reconcile(ReconcileRequest(date: D)))
        XCTAssertEqual(runs(D).count, 1)
        try block(at: dueD + 2 * hour, payment("b1", 1000, date: D1, marketing: ""))
        XCTAssertEqual(runs(D).count, 2, "superseding rerun of the requested date")
        XCTAssertEqual(count(try latest(D), .onlyInBank), 0, "a credit dated D+1 alone is not D's")
    }

    /// "the cut-off is a chain parameter": an admin's `ReconcileSettings` moves it (UTC, 10 h
    /// after the midnight closing D+1), from the block that carries it.
    func testCutOffParameterIsRespected() throws {
        let settings = ReconcileSettings(cutoffMinutesAfterMidnight: 600, utcOffsetMinutes: 0)
        XCTAssertEqual(try block(at: dueD - 30 * hour, .reconcileSettings(settings), receipt("m1", 1000, date: D)).map(\.code), [0, 0])
        let due: Int64 = 1_773_741_600_000  // 2026-03-17T10:00:00Z
        XCTAssertEqual(ReconciliationSchedule.dueMs(of: D, settings: settings), due)
        try block(at: dueD)  // the default's cut-off: not due under the parameter
        try block(at: due - 1)
        XCTAssertEqual(runs(D), [])
        try block(at: due)
        XCTAssertEqual(runs(D).count, 1)
        XCTAssertNotNil(ReconciliationSchedule.problem(ReconcileSettings(cutoffMinutesAfterMidnight: 7 * 1440 + 1, utcOffsetMinutes: 0)))
        XCTAssertNotNil(ReconciliationSchedule.problem(ReconcileSettings(cutoffMinutesAfterMidnight: 0, utcOffsetMinutes: 18 * 60 + 1)))
    }

    /// Bounded: at most `maxRunsPerBlock` dates per block, oldest first; the rest follow.
    func testAtMostNDatesPerBlock() throws {
        let dates: [UInt32] = [20260310, 20260311, 20260312, 20260313, 20260314]
        let records = ChargeReceiptBatch(batchId: "m", receipts: dates.enumerated().map { i, date in
            ChargeReceipt(serial: "m\(i)", customerAccount: "c1", amountFen: 100, bankAccount: "A1", workingDate: date, timeMs: 1)
        })
        try block(at: dueD - 6 * 24 * hour, .chargeReceipts(records))  // before the first date's cut-off
        XCTAssertTrue(dates.allSatisfy { runs($0).isEmpty })
        let n = ReconciliationSchedule.maxRunsPerBlock
        try block(at: dueD)
        XCTAssertEqual(dates.filter { !runs($0).isEmpty }, Array(dates.prefix(n)))
        try block(at: dueD + 1)
        XCTAssertEqual(dates.filter { !runs($0).isEmpty }, Array(dates.prefix(2 * n)))
        try block(at: dueD + 2)
        XCTAssertEqual(dates.filter { !runs($0).isEmpty }, dates)
        XCTAssertTrue(dates.allSatisfy { runs($0).count == 1 })
    }

    /// Deterministic: two executions of the same blocks give identical writes (only the
    /// blocks' timestamps and the state decide).
    func testTwoExecutionsOfTheSameBlocksGiveIdenticalWrites() throws {
        func play() throws -> [[StateWriteRecord]] {
            memory = Memory()
            height = 0
            log = []
            try block(at: dueD - 30 * hour, receipt("m1", 1000, date: D), receipt("m2", 700, date: D1), receipt("m3", 300, date: 20260314))
            try block(at: dueD - hour, payment("b1", 1000, date: D1, marketing: "m1"))
            try block(at: dueD, payment("b2", 700, date: D1, marketing: "m2"))
            try block(at: dueD + hour, receipt("m4", 10, date: D))
            try block(at: dueD + 30 * hour)
            return log
        }
        let one = try play()
        let two = try play()
        XCTAssertEqual(one, two)
        XCTAssertTrue(one.joined().contains { $0.key.hasPrefix("recon/result/20260315/") })
    }
}
