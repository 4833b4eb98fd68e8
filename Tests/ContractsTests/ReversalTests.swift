import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Multi-party reconciliation": "a reversal (冲正) has a negative amount and names
/// the serial it reverses"; "Prepaid fee control": "States follow the balance after every
/// charge and payment".
final class ReversalTests: XCTestCase {
    private func harness() throws -> Harness {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.thresholds(PrepaidTests.thresholds))  // alarm1 5000, alarm2 1000, overdraft 2000
        try h.param(.customer(customer("a1", meter: "m1", opening: 0)))
        try h.param(.customer(customer("a2", meter: "m2", opening: 0)))
        return h
    }

    @discardableResult
    private func pay(_ h: inout Harness, _ fen: Int64, serial: String, reverses: String = "", account: String = "a1") throws -> ContractEffects {
        try h.param(.payment(Payment(account: account, amountFen: fen, serial: serial, paidMs: h.now, reversesSerial: reverses)))
    }

    private func code(_ body: () throws -> Any) -> UInt32? {
        do { _ = try body(); return nil } catch { return (error as? ContractRejection)?.code.rawValue }
    }

    func testReversalLowersTheBalanceAndTheStateFollows() throws {
        var h = try harness()
        try pay(&h, 10_000, serial: "p1")
        var a = try h.account("a1")
        XCTAssertEqual(a.balanceFen, 10_000)
        XCTAssertEqual(a.state, .normal)
        let e = try pay(&h, -10_000, serial: "r1", reverses: "p1")
        a = try h.account("a1")
        XCTAssertEqual(a.balanceFen, 0)
        XCTAssertEqual(a.totalPaidFen, 0)
        // 0 ≤ alarm2: entering warning 2 from normal sends alarm-on and the SMS.
        XCTAssertEqual(a.state, .warning2)
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn])
        XCTAssertEqual(try h.noticeKinds(e), [.warning2])
        XCTAssertEqual(e.accounts, ["a1"])
    }

    func testReversalIntoOverdraftDisconnectsAndAPaymentReconnects() throws {
        var h = try harness()
        try pay(&h, 1_500, serial: "p1")   // warning 1
        try pay(&h, 6_000, serial: "p2")   // 7,500: normal
        var a = try h.account("a1")
        XCTAssertEqual(a.state, .normal)
        h.state.setMessage(ContractKeys.account("a1"), { var x = a; x.balanceFen = 3_000; return x }())  // consumption since
        let e = try pay(&h, -6_000, serial: "r2", reverses: "p2")  // -3,000 ≤ -overdraft
        a = try h.account("a1")
        XCTAssertEqual(a.state, .disconnected)
        // "entering any other state from normal (even straight to ... disconnected) sends alarm-on"
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn, .trip])
        // A reversal is never a reconnecting payment; a real payment is.
        let r = try pay(&h, 5_000, serial: "p3")
        XCTAssertEqual(try h.account("a1").state, .warning1)
        XCTAssertEqual(try h.commandKinds(r), [.allowClose])
    }

    func testUnknownOrAlreadyReversedSerialRefused() throws {
        var h = try harness()
        try pay(&h, 10_000, serial: "p1")
        XCTAssertEqual(code { try self.pay(&h, -10_000, serial: "r0", reverses: "nope") }, 5, "unknown serial: NOT_FOUND")
        try pay(&h, -10_000, serial: "r1", reverses: "p1")
        XCTAssertEqual(code { try self.pay(&h, -10_000, serial: "r2", reverses: "p1") }, 9, "already reversed: FAILED_PRECONDITION")
        XCTAssertEqual(code { try self.pay(&h, 10_000, serial: "r1", reverses: "") }, 6, "the reversal's own serial is taken")
        XCTAssertEqual(try h.account("a1").balanceFen, 0, "refused reversals leave the balance alone")
    }

    func testReversalMustMatchThePayment() throws {
        var h = try harness()
        try pay(&h, 10_000, serial: "p1")
        XCTAssertEqual(code { try self.pay(&h, -9_999, serial: "r1", reverses: "p1") }, 3, "amount not the negation")
        XCTAssertEqual(code { try self.pay(&h, 10_000, serial: "r1", reverses: "p1") }, 3, "positive amount")
        XCTAssertEqual(code { try self.pay(&h, -10_000, serial: "r1", reverses: "p1", account: "a2") }, 3, "another account")
        try pay(&h, -10_000, serial: "r1", reverses: "p1")
        XCTAssertEqual(code { try self.pay(&h, 10_000, serial: "r3", reverses: "r1") }, 3, "a reversal of a reversal")
        XCTAssertEqual(code { try self.pay(&h, -5, serial: "p9") }, 3, "a negative top-up without a reversed serial")
    }
}
