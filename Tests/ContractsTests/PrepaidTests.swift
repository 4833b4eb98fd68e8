import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Prepaid fee control (智能费控)". The flat test tariff charges 1 fen per 0.01 kWh.
final class PrepaidTests: XCTestCase {
    static let thresholds = FeeControlThresholds(
        alarm1Fen: 5_000, alarm2Fen: 1_000, overdraftLimitFen: 2_000, reconnectAllowedFen: 0,
        directClose: false, commandValidMs: 600_000, gridWorkerContact: "worker-phone"
    )

    /// A harness with the flat tariff, the district default thresholds and one customer;
    /// returns it with the meter's baseline read at `start`.
    private func harness(opening: Int64, protected: Bool = false, thresholds: FeeControlThresholds? = thresholds) throws -> Harness {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        if let thresholds { try h.param(.thresholds(thresholds)) }
        try h.param(.customer(customer("a1", meter: "m1", opening: opening, protected: protected)))
        try h.read([reading("m1", start, 0)])
        register = 0
        slot = 0
        return h
    }

    private let start = cst(2025, 1, 8)
    private var register: UInt64 = 0
    private var slot: Int64 = 0

    /// Consumes `fen` worth of energy in the next interval.
    private func consume(_ h: inout Harness, _ fen: UInt64) throws -> ContractEffects {
        register += fen
        slot += 1
        return try h.read([reading("m1", start + slot * interval, register)])
    }

    private func pay(_ h: inout Harness, _ fen: Int64, serial: String) throws -> ContractEffects {
        try h.param(.payment(Payment(account: "a1", amountFen: fen, serial: serial, paidMs: h.now)))
    }

    /// Rule: "balance > alarm1 → normal; ≤ alarm1 → warning 1 (SMS to the customer, alarm-on
    /// command); ≤ alarm2 → warning 2 (SMS ...: supply will be cut)"; "Returning to normal
    /// from a warning sends alarm-off"; lists follow the state.
    func testWarningThresholdsCrossedDownAndUp() throws {
        var h = try harness(opening: 6_000)
        var e = try consume(&h, 999) // 5001 > alarm1
        XCTAssertEqual(e.commandIDs, [])
        XCTAssertEqual(try h.account("a1").state, .normal)
        e = try consume(&h, 1) // 5000 ≤ alarm1
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn])
        XCTAssertEqual(try h.noticeKinds(e), [.warning1])
        XCTAssertEqual(try h.notice(e.noticeIDs[0]).contact, "phone-a1")
        XCTAssertEqual(try h.notice(e.noticeIDs[0]).recipient, "customer")
        XCTAssertEqual(try h.account("a1").state, .warning1)
        XCTAssertEqual(h.state.entries[ContractKeys.warningList("a1")], [1])
        e = try consume(&h, 3_999) // 1001
        XCTAssertEqual(e.commandIDs + e.noticeIDs, [])
        e = try consume(&h, 1) // 1000 ≤ alarm2
        XCTAssertEqual(try h.commandKinds(e), [])
        XCTAssertEqual(try h.noticeKinds(e), [.warning2])
        XCTAssertEqual(try h.account("a1").state, .warning2)
        XCTAssertEqual(h.state.entries[ContractKeys.warningList("a1")], [2])
        e = try pay(&h, 2_000, serial: "p1") // 3000: back to warning 1 (its SMS again, no second alarm-on)
        XCTAssertEqual(try h.commandKinds(e), [])
        XCTAssertEqual(try h.noticeKinds(e), [.warning1])
        e = try pay(&h, 2_001, serial: "p2") // 5001: normal
        XCTAssertEqual(try h.commandKinds(e), [.alarmOff])
        XCTAssertEqual(try h.noticeKinds(e), [])
        XCTAssertEqual(try h.account("a1").state, .normal)
        XCTAssertNil(h.state.entries[ContractKeys.warningList("a1")])
        XCTAssertEqual(try h.account("a1").totalPaidFen, 4_001)
    }

    /// Rule: "≤ −overdraft limit → disconnected: a trip command to the district terminal, an
    /// SMS to the customer and a formal disconnect notice to the district's grid worker. A
    /// disconnected customer stays disconnected until a payment brings the balance above the
    /// reconnect-allowed amount → reconnect: a close command (direct-close or allow-close, per
    /// parameters), an SMS to the customer and one to the grid worker, and the state then
    /// follows the balance."
    func testDisconnectThenPaymentsBelowAndAboveReconnectAllowed() throws {
        for direct in [false, true] {
            var t = Self.thresholds
            t.directClose = direct
            var h = try harness(opening: 1_500, thresholds: t)
            var e = try consume(&h, 1_000) // 500: warning 2 straight from normal
            XCTAssertEqual(try h.commandKinds(e), [.alarmOn])
            XCTAssertEqual(try h.noticeKinds(e), [.warning2])
            e = try consume(&h, 2_499) // −1999: still above −overdraft
            XCTAssertEqual(e.commandIDs + e.noticeIDs, [])
            e = try consume(&h, 1) // −2000 ≤ −2000
            XCTAssertEqual(try h.commandKinds(e), [.trip])
            XCTAssertEqual(try h.noticeKinds(e), [.disconnect, .formalDisconnect])
            XCTAssertEqual(try h.notice(e.noticeIDs[1]).contact, "worker-phone")
            XCTAssertEqual(try h.notice(e.noticeIDs[1]).recipient, "grid_worker")
            XCTAssertEqual(try h.account("a1").state, .disconnected)
            XCTAssertNotNil(h.state.entries[ContractKeys.disconnectedList("a1")])
            XCTAssertNil(h.state.entries[ContractKeys.warningList("a1")])
            e = try consume(&h, 5) // still consuming while the trip is pending: no new command
            XCTAssertEqual(e.commandIDs + e.noticeIDs, [])
            e = try pay(&h, 2_005, serial: "s1") // balance 0: not above reconnect-allowed (0)
            XCTAssertEqual(e.commandIDs + e.noticeIDs, [])
            XCTAssertEqual(try h.account("a1").state, .disconnected)
            e = try pay(&h, 600, serial: "s2") // 600 > 0: reconnect, then warning 2 (≤ 1000)
            XCTAssertEqual(try h.commandKinds(e), [direct ? .directClose : .allowClose])
            XCTAssertEqual(try h.noticeKinds(e), [.reconnect, .reconnect, .warning2])
            XCTAssertEqual(try e.noticeIDs.prefix(2).map { try h.notice($0).recipient }, ["customer", "grid_worker"])
            XCTAssertEqual(try h.account("a1").state, .warning2)
            XCTAssertNil(h.state.entries[ContractKeys.disconnectedList("a1")])
            XCTAssertEqual(h.state.entries[ContractKeys.warningList("a1")], [2])
            e = try pay(&h, 10_000, serial: "s3")
            XCTAssertEqual(try h.commandKinds(e), [.alarmOff])
        }
    }

    /// Rule: "Protected supply (保电) customers are never tripped for fee reasons; they still
    /// get warnings." Chosen: they stay in WARNING2 whatever the overdraft.
    func testProtectedSupplyNeverTripped() throws {
        var h = try harness(opening: 6_000, protected: true)
        var kinds: [CommandKind] = []
        var notices: [NoticeKind] = []
        for _ in 0..<20 {
            let e = try consume(&h, 1_000)
            kinds += try h.commandKinds(e)
            notices += try h.noticeKinds(e)
        }
        let a = try h.account("a1")
        XCTAssertEqual(a.balanceFen, -14_000)
        XCTAssertEqual(a.state, .warning2)
        XCTAssertEqual(kinds, [.alarmOn])
        XCTAssertEqual(notices, [.warning1, .warning2])
        XCTAssertNil(h.state.entries[ContractKeys.disconnectedList("a1")])
    }

    /// Rule: "Commands ... are issued once per transition"; "Notices and commands are emitted
    /// on entering a state, never again while it stays there"; "Re-running the same readings
    /// never issues a command twice."
    func testNoCommandIssuedTwiceForTheSameState() throws {
        var h = try harness(opening: 5_100)
        var issued: [String] = []
        var batches: [[Reading]] = []
        for _ in 0..<6 {
            register += 30
            slot += 1
            let batch = [reading("m1", start + slot * interval, register)]
            batches.append(batch)
            issued += try h.read(batch).commandIDs
        }
        XCTAssertEqual(issued.count, 1) // alarm-on entering warning 1, once
        for batch in batches {
            let e = try h.read(batch)
            XCTAssertEqual(e.commandIDs + e.noticeIDs, [])
            XCTAssertEqual(e.chargedFen, 0)
            XCTAssertEqual(flags(e), [.outOfOrder])
        }
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.commandPrefix).count, 1)
    }

    /// Rule: thresholds are "configurable per customer"; without any thresholds the balance
    /// still moves but no state changes (a chosen behaviour).
    func testThresholdsPerCustomerDefaultOrNone() throws {
        var h = try harness(opening: 3_000, thresholds: nil)
        var e = try consume(&h, 2_900)
        XCTAssertEqual(try h.account("a1").balanceFen, 100)
        XCTAssertEqual(try h.account("a1").state, .normal)
        XCTAssertEqual(e.commandIDs, [])
        var own = Self.thresholds
        own.thresholdsId = "vip"
        own.alarm1Fen = 50
        own.alarm2Fen = 10
        try h.param(.thresholds(own))
        try h.param(.thresholds(Self.thresholds)) // district default: would warn at 100
        var c = customer("a1", meter: "m1", opening: 3_000)
        c.thresholdsId = "vip"
        try h.param(.customer(c))
        XCTAssertEqual(try h.account("a1").balanceFen, 100) // opening balance applied once
        e = try consume(&h, 10) // 90 > vip alarm1 50
        XCTAssertEqual(try h.account("a1").state, .normal)
        e = try consume(&h, 40) // 50 ≤ vip alarm1
        XCTAssertEqual(try h.account("a1").state, .warning1)
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn])
    }

    /// Rule: payments "arrive from marketing ... and raise" the balance; a serial is applied
    /// once; a payment for an unknown account is refused.
    func testDuplicatePaymentSerialAndUnknownAccount() throws {
        var h = try harness(opening: 10_000)
        _ = try pay(&h, 500, serial: "BANK-1")
        XCTAssertThrowsError(try pay(&h, 500, serial: "BANK-1")) { XCTAssertEqual(($0 as? ContractRejection)?.code, .alreadyExists) }
        XCTAssertThrowsError(try h.param(.payment(Payment(account: "nobody", amountFen: 5, serial: "BANK-2")))) {
            XCTAssertEqual(($0 as? ContractRejection)?.code, .notFound)
        }
        XCTAssertThrowsError(try pay(&h, 0, serial: "BANK-3")) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        XCTAssertEqual(try h.account("a1").balanceFen, 10_500)
        XCTAssertNotNil(h.state.entries[ContractKeys.payment("BANK-1")])
    }

    /// Rule: commands "have a lifecycle: issued → acknowledged or failed by the device, or
    /// expired"; valid-until = issue time + command_valid_ms.
    func testCommandAcknowledgedFailedExpired() throws {
        var h = try harness(opening: 5_100)
        let alarmOn = try XCTUnwrap(try consume(&h, 100).commandIDs.first) // → warning 1
        var cmd = try h.command(alarmOn)
        XCTAssertEqual(cmd.status, .issued)
        XCTAssertEqual(cmd.validUntilMs, cmd.issuedMs + 600_000)
        XCTAssertEqual(cmd.meterId, "m1")
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.commandStatusPrefix(CommandStatus.issued.rawValue)).count, 1)
        _ = try h.ack(alarmOn)
        cmd = try h.command(alarmOn)
        XCTAssertEqual(cmd.status, .acknowledged)
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.commandStatusPrefix(CommandStatus.issued.rawValue)), [])
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.commandStatusPrefix(CommandStatus.acknowledged.rawValue)),
                       [ContractKeys.commandStatus(CommandStatus.acknowledged.rawValue, alarmOn)])
        XCTAssertNil(h.state.entries[ContractKeys.pendingCommands])
        XCTAssertThrowsError(try h.ack(alarmOn)) { XCTAssertEqual(($0 as? ContractRejection)?.code, .failedPrecondition) }
        XCTAssertThrowsError(try h.ack("d1-999-0")) { XCTAssertEqual(($0 as? ContractRejection)?.code, .notFound) }

        let alarmOff = try XCTUnwrap(try pay(&h, 10_000, serial: "p1").commandIDs.first)
        _ = try h.ack(alarmOff, success: false)
        XCTAssertEqual(try h.command(alarmOff).status, .failed)

        let again = try XCTUnwrap(try consume(&h, 10_000).commandIDs.first) // 5000: warning 1 again, a new alarm-on
        let validUntil = try h.command(again).validUntilMs
        try h.nextBlock(at: validUntil) // at valid_until: still valid
        XCTAssertEqual(h.lastExpired, [])
        try h.nextBlock(at: validUntil + 1)
        XCTAssertEqual(h.lastExpired, [again])
        XCTAssertEqual(try h.command(again).status, .expired)
        XCTAssertNotNil(h.state.entries[ContractKeys.commandStatus(CommandStatus.expired.rawValue, again)])
        XCTAssertThrowsError(try h.ack(again)) { XCTAssertEqual(($0 as? ContractRejection)?.code, .failedPrecondition) }
        XCTAssertNil(h.state.entries[ContractKeys.pendingCommands])
    }

    /// Rule: thresholds "alarm1 > alarm2 ≥ 0, an overdraft limit, and a reconnect-allowed
    /// amount"; commands "carry a valid-until time". Malformed or extreme thresholds are
    /// refused (INVALID_ARGUMENT) and not stored; none traps.
    func testThresholdsValidated() throws {
        var h = Harness()
        func refused(_ edit: (inout FeeControlThresholds) -> Void, line: UInt = #line) {
            var t = Self.thresholds
            edit(&t)
            XCTAssertThrowsError(try h.param(.thresholds(t)), line: line) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument, line: line) }
        }
        refused { $0.alarm1Fen = $0.alarm2Fen } // alarm1 > alarm2, strictly
        refused { $0.alarm1Fen = 500; $0.alarm2Fen = 1_000 }
        refused { $0.alarm2Fen = -1 } // alarm2 ≥ 0
        refused { $0.overdraftLimitFen = -1 }
        refused { $0.reconnectAllowedFen = -2_001 } // below −overdraft
        refused { $0.commandValidMs = -1 }
        refused { $0.commandValidMs = .max }
        refused { $0.alarm1Fen = .max }
        refused { $0.overdraftLimitFen = .max }
        refused { $0.alarm2Fen = .min; $0.alarm1Fen = .min }
        refused { $0.reconnectAllowedFen = .min }
        XCTAssertNil(h.state.entries[ContractKeys.thresholds("")])
        var edge = Self.thresholds
        edge.alarm1Fen = 1
        edge.alarm2Fen = 0
        edge.reconnectAllowedFen = -2_000
        XCTAssertNoThrow(try h.param(.thresholds(edge)))
        XCTAssertNotNil(h.state.entries[ContractKeys.thresholds("")])
    }

    /// Ids are "<district>-<height>-<n>", n counting commands and notices within a block.
    func testDeterministicIDs() throws {
        var h = try harness(opening: 100, thresholds: Self.thresholds)
        let e = try consume(&h, 2_100) // normal → disconnected in one reading
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn, .trip])
        XCTAssertEqual(e.commandIDs, ["d1-\(h.height)-0", "d1-\(h.height)-1"])
        XCTAssertEqual(e.noticeIDs, ["d1-\(h.height)-2", "d1-\(h.height)-3"])
    }
}
