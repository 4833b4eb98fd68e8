import GridProto
import XCTest

@testable import Contracts

/// Hostile and extreme inputs. Every replica runs the contracts while it applies a block, so
/// an arithmetic trap halts the chain: the contract must reject (a `ContractRejection`) or
/// flag, never crash. DOMAIN.md "Tariffs (integer money: never floating point)", "Readings"
/// (registers in 0.01 kWh rolling over at 1,000,000.00 kWh) and "Prepaid fee control".
/// A regression here shows up as a crashed test process, not only as a failed assertion.
final class HardeningTests: XCTestCase {
    private func code(_ body: () throws -> Void) -> UInt32? {
        do {
            try body()
            return nil
        } catch {
            return (error as? ContractRejection)?.code.rawValue ?? 0
        }
    }

    /// Tariff prices, surcharges, fixed charges and offsets at the ends of their integer
    /// types are refused (abs(Int64.min) would trap; the bounds keep energy × price in range).
    func testExtremeTariffsRejectedWithoutTrapping() throws {
        var h = Harness()
        var cases: [Tariff] = []
        for price in [Int64.min, Int64.max, -100_000_001, 100_000_001] {
            cases.append(flatTariff(price: price))
            cases.append(flatTariff(limits: [10], surcharges: [price]))
        }
        var t = flatTariff(fixed: .min)
        cases.append(t)
        t = flatTariff(fixed: .max)
        cases.append(t)
        t = flatTariff()
        t.utcOffsetMinutes = .min
        cases.append(t)
        t = flatTariff(limits: [.max, 10], surcharges: [1, 1])
        cases.append(t)
        for bad in cases {
            XCTAssertEqual(code { try h.param(.tariff(bad)) }, 3, "\(bad)")
        }
        XCTAssertNil(h.state.entries[ContractKeys.tariff("flat")])
        // The largest accepted price still bills without overflow.
        XCTAssertNoThrow(try h.param(.tariff(flatTariff(price: -100_000_000))))
        XCTAssertNoThrow(try h.param(.tariff(flatTariff(price: 100_000_000, limits: [1], surcharges: [100_000_000]))))
    }

    /// Rule: "A charge line is energy × price, rounded half up to the fen". The product is
    /// computed in 128 bits; a line that does not fit in Int64 fen is a rejection.
    func testLineAndTierArithmeticNeverTraps() throws {
        XCTAssertEqual(code { _ = try TariffRules.lineFen(energy: .max, price: .max) }, 3)
        XCTAssertEqual(code { _ = try TariffRules.lineFen(energy: .max, price: .min) }, 3)
        XCTAssertEqual(code { _ = try TariffRules.lineFen(energy: UInt64(Int64.max), price: 10_001) }, 3)
        XCTAssertEqual(try TariffRules.lineFen(energy: UInt64(Int64.max), price: -10_000), -Int64.max)
        // Largest in-bounds line: 10^10 × 10^8 × 10^-4 fen.
        XCTAssertEqual(try TariffRules.lineFen(energy: 10_000_000_000, price: -100_000_000), -100_000_000_000_000)
        // Just fits: (Int64.max fen) × 10^4 / price 10^4.
        XCTAssertEqual(try TariffRules.lineFen(energy: UInt64(Int64.max / 10_000), price: 10_000), Int64.max / 10_000)
        XCTAssertEqual(code { _ = try TariffRules.tierSplit(before: .max - 1, energy: 10, limits: [5]) }, 3)
    }

    /// Rule: "Energy registers are integers in 0.01 kWh; a register rolls over at
    /// 1,000,000.00 kWh (DL/T 645 format XXXXXX.XX)": a register at or above the rollover is
    /// not a meter value. Readings with UInt64.max registers or timestamps at the ends of
    /// Int64 are flagged and not billed; the meter's billing carries on afterwards.
    func testExtremeReadingsFlaggedNotBilledNeverTrap() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer("a1", meter: "m1")))
        try h.param(.customer(customer("a2", meter: "m2")))
        let t = cst(2025, 1, 8)
        // As a first reading: not a baseline.
        var e = try h.read([reading("m1", t, .max), touReading("m2", t, [.max, 1, 1, 1], total: 2)])
        XCTAssertEqual(flags(e), [.negative, .negative])
        XCTAssertEqual(e.readingsBilled, 0)
        XCTAssertNil(h.state.entries[ContractKeys.vee("m1")])
        try h.read([reading("m1", t + interval, 0), reading("m2", t + interval, 0)])
        // After a baseline: UInt64.max − 0 would be the consumption without the range check.
        e = try h.read([
            reading("m1", t + 2 * interval, .max),
            reading("m2", t + 2 * interval, 100_000_000), // exactly the default rollover point
            Reading(meterId: "m1", timestampMs: .min, energyTotal: 5),
            Reading(meterId: "m2", timestampMs: .max, energyTotal: 5),
            touReading("m1", t + 3 * interval, [.max / 4, .max / 4, .max / 4, .max / 4]),
        ], blockTs: t + 3 * interval + 1000)
        XCTAssertEqual(flags(e), [.negative, .negative, .outOfOrder, .future, .negative])
        XCTAssertEqual(e.chargedFen, 0)
        XCTAssertEqual(e.readingsBilled, 0)
        // Register 99,999,999 is valid; the meter continues from its baseline.
        e = try h.read([reading("m1", t + 4 * interval, 10), reading("m2", t + 4 * interval, 99_999_999)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 10 + 99_999_999)
        XCTAssertEqual(try h.account("a1").balanceFen, 1_000_000 - 10)
    }

    /// Rule: balances are integer fen and "Payments (top-ups) ... raise it". Negative, zero,
    /// oversized payments and opening balances are refused; a payment that would overflow the
    /// balance is refused and leaves it unchanged.
    func testExtremePaymentsAndBalancesRejected() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        XCTAssertEqual(code { try h.param(.customer(customer("a9", meter: "m9", opening: .min))) }, 3)
        XCTAssertEqual(code { try h.param(.customer(customer("a9", meter: "m9", opening: .max))) }, 3)
        XCTAssertNil(h.state.entries[ContractKeys.account("a9")])
        try h.param(.customer(customer("a1", meter: "m1")))
        for (i, amount) in [Int64.min, -1, 0, .max, 1_000_000_000_000_001].enumerated() {
            XCTAssertEqual(code { try h.param(.payment(Payment(account: "a1", amountFen: amount, serial: "x\(i)"))) }, 3, "\(amount)")
        }
        // A balance already near the top (state written directly): the sum would overflow.
        var a = try h.account("a1")
        a.balanceFen = .max - 10
        h.state.setMessage(ContractKeys.account("a1"), a)
        XCTAssertEqual(code { try h.param(.payment(Payment(account: "a1", amountFen: 11, serial: "big"))) }, 3)
        XCTAssertEqual(try h.account("a1").balanceFen, .max - 10)
        XCTAssertNil(h.state.entries[ContractKeys.payment("big")])
    }

    /// A charge that would take the balance past Int64.min rejects the batch (the node drops
    /// the call's writes) instead of trapping.
    func testChargeOverflowRejectsTheBatch() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 8)
        try h.read([reading("m1", t, 0)])
        var a = try h.account("a1")
        a.balanceFen = .min + 5
        h.state.setMessage(ContractKeys.account("a1"), a)
        XCTAssertEqual(code { try h.read([reading("m1", t + interval, 10)]) }, 3)
    }

    /// Parameters stored before validation existed (or written by another version) must not
    /// trap either: a huge command validity saturates, a huge future tolerance saturates.
    func testSaturatingTimesNeverTrap() throws {
        var h = Harness()
        // An activation written straight into state, bypassing validation (which refuses
        // a future tolerance above a day).
        var activation = try ActivationRecord.load(h.state)
        activation.add(.init(height: 0, version: 1, vee: VeeParameters(spikeFactor: 1_000_000, futureToleranceMs: .max)), currentHeight: h.height)
        activation.store(&h.state)
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer("a1", meter: "m1", opening: 5_010)))
        // Thresholds written straight into state, bypassing validation.
        var t = PrepaidTests.thresholds
        t.commandValidMs = .max
        h.state.setMessage(ContractKeys.thresholds(""), t)
        let t0 = cst(2025, 1, 8)
        try h.read([reading("m1", t0, 0)])
        let e = try h.read([reading("m1", t0 + interval, 20)]) // 4990 ≤ alarm1: alarm on
        XCTAssertEqual(try h.commandKinds(e), [.alarmOn])
        XCTAssertEqual(try h.command(e.commandIDs[0]).validUntilMs, .max)
        // With a tolerance of Int64.max (saturated), timestamps are still capped at year 9999.
        var f = try h.read([reading("m1", .max, 30)], blockTs: t0 + 2 * interval)
        XCTAssertEqual(flags(f), [.future])
        f = try h.read([reading("m1", Vee.maxTimestampMs, 30)], blockTs: t0 + 2 * interval)
        XCTAssertEqual(flags(f), [])
        XCTAssertEqual(f.chargedFen, 10)
    }
}
