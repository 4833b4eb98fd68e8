import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Tariffs", "No rounding drift": "Each line is therefore rounded on its
/// cycle-to-date energy: a reading's charge on a line = round(cycle energy of the line after
/// it × price) − round(cycle energy of the line before it × price). The charges of a cycle's
/// readings then add up exactly to the cycle's bill, line by line, whatever the reading
/// frequency."
final class NoRoundingDriftTests: XCTestCase {
    /// Reads a steady load for one local day (from 00:00 +08:00 on 2025-01-08) every
    /// `every` intervals and returns the sum of the readings' charges and the account.
    private func day(watts: UInt64, price: Int64, every: Int64 = 1) throws -> (charged: Int64, account: Account) {
        var h = Harness()
        try h.param(.tariff(flatTariff(price: price)))
        try h.param(.customer(customer("a1", meter: "m1")))
        let start = cst(2025, 1, 8)
        try h.read([reading("m1", start, 0)])
        // watts × 0.25 h = Wh per interval; 0.01 kWh = 10 Wh.
        let whPerInterval = watts / 4
        var charged: Int64 = 0
        for slot in stride(from: every, through: Int64(96), by: Int(every)) {
            let register = UInt64(slot) * whPerInterval / 10
            charged += try h.read([reading("m1", start + slot * interval, register)]).chargedFen
        }
        return (charged, try h.account("a1"))
    }

    /// "a 40 W load would never be billed": 0.01 kWh every 15 minutes at 0.4900 CNY/kWh is
    /// 0.49 fen a reading, 0 when each reading is rounded on its own. A day is 0.96 kWh:
    /// 96 × 4900 = 470,400 × 10^-4 fen → 47.04 → 47 fen.
    func testFortyWattDayAddsUpToTheRoundedDailyLine() throws {
        let (charged, account) = try day(watts: 40, price: 4_900)
        XCTAssertEqual(account.periods[0].energy, 96)
        XCTAssertEqual(charged, 47)
        XCTAssertEqual(account.periods[0].chargeFen, 47)
        XCTAssertEqual(account.cycleChargedFen, 47)
        XCTAssertEqual(account.balanceFen, 1_000_000 - 47)
    }

    /// A 200 W load at 0.4883 CNY/kWh: 0.05 kWh a reading (2.4415 fen, 2 rounded alone:
    /// 192 fen a day); the day's 4.80 kWh line is 480 × 4883 → 234.384 → 234 fen.
    func testTwoHundredWattDayAddsUpToTheRoundedDailyLine() throws {
        let (charged, account) = try day(watts: 200, price: 4_883)
        XCTAssertEqual(account.periods[0].energy, 480)
        XCTAssertEqual(charged, 234)
        XCTAssertEqual(account.periods[0].chargeFen, try TariffRules.lineFen(energy: 480, price: 4_883))
    }

    /// "whatever the reading frequency": hourly and six-hourly readings of the same load
    /// give the same day's bill as readings every 15 minutes.
    func testSameBillAtAnyReadingFrequency() throws {
        for watts: UInt64 in [40, 200, 1_240] {
            let quarterHourly = try day(watts: watts, price: 4_883).charged
            XCTAssertEqual(try day(watts: watts, price: 4_883, every: 4).charged, quarterHourly, "\(watts) W hourly")
            XCTAssertEqual(try day(watts: watts, price: 4_883, every: 24).charged, quarterHourly, "\(watts) W six-hourly")
        }
    }

    /// "one charge line per tier above the first (the energy that fell in that tier × its
    /// surcharge)", rounded on its cycle-to-date energy: 0.30 kWh that fall into tier 2 a
    /// hundredth at a time at +0.05 CNY/kWh are 30 × 500 → 1.5 → 2 fen (0 when each 0.05 fen
    /// piece is rounded alone).
    func testTierSurchargeLineOfThirtyHundredthsIsBilled() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff(price: 4_883, limits: [100], surcharges: [500])))
        try h.param(.customer(customer("a1", meter: "m1")))
        let start = cst(2025, 1, 8)
        try h.read([reading("m1", start, 0)])
        try h.read([reading("m1", start + interval, 100)])  // reaches the limit: all of it tier 1
        var surcharge: Int64 = 0
        for slot in 2...31 {
            let e = try h.read([reading("m1", start + Int64(slot) * interval, UInt64(100 + slot - 1))])
            let account = try h.account("a1")
            surcharge = account.tiers[1].chargeFen
            XCTAssertLessThanOrEqual(surcharge, 2, "after slot \(slot): \(e.chargedFen)")
        }
        let account = try h.account("a1")
        XCTAssertEqual(account.tiers.map(\.energy), [100, 30])
        XCTAssertEqual(surcharge, 2)
        // The period line and the tier line together are the bill, line by line.
        XCTAssertEqual(account.cycleChargedFen, try TariffRules.lineFen(energy: 130, price: 4_883) + 2)
    }

    /// "A line is one price: a tariff version that takes effect mid-cycle starts new lines."
    func testTariffChangeMidCycleStartsANewLine() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff(price: 4_900)))
        try h.param(.customer(customer("a1", meter: "m1")))
        let start = cst(2025, 1, 8)
        try h.read([reading("m1", start, 0)])
        var charged: Int64 = 0
        for slot in 1...3 { charged += try h.read([reading("m1", start + Int64(slot) * interval, UInt64(slot))]).chargedFen }
        XCTAssertEqual(charged, 1) // 3 × 4900 → 1.47 → 1
        try h.param(.tariff(flatTariff(price: 5_100)))
        for slot in 4...6 { charged += try h.read([reading("m1", start + Int64(slot) * interval, UInt64(slot))]).chargedFen }
        // The new line: 3 × 5100 → 1.53 → 2; had it continued the old line at the new price
        // (6 × 5100 → 3.06 → 3, minus 1) it would have been 2 as well, so check the line's
        // own record: it holds only the energy since the change, at the new price.
        let period = try h.account("a1").periods[0]
        XCTAssertEqual(charged, 1 + 2)
        XCTAssertEqual(period.linePrice, 5_100)
        XCTAssertEqual(period.lineEnergy, 3)
        XCTAssertEqual(period.energy, 6)
        XCTAssertEqual(period.chargeFen, 3)
    }

    /// "the charges of a cycle's readings then add up exactly to the cycle's bill": a new
    /// cycle starts new lines (the first reading of February pays only February's energy).
    func testNewCycleStartsNewLines() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff(price: 4_900)))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 31, 23, 15)
        try h.read([reading("m1", t, 0)])
        XCTAssertEqual(try h.read([reading("m1", t + interval, 1)]).chargedFen, 0) // 0.49
        XCTAssertEqual(try h.read([reading("m1", t + 2 * interval, 2)]).chargedFen, 1) // 0.98 → 1
        XCTAssertEqual(try h.read([reading("m1", t + 3 * interval, 3)]).chargedFen, 0) // 1.47 → 1
        // 00:00 February 1st local: a new cycle, its line starts from zero.
        XCTAssertEqual(try h.read([reading("m1", t + 4 * interval, 4)]).chargedFen, 0)
        XCTAssertEqual(try h.read([reading("m1", t + 5 * interval, 5)]).chargedFen, 1)
        let a = try h.account("a1")
        XCTAssertEqual(a.periods[0].lineEnergy, 2)
        XCTAssertEqual(a.cycleChargedFen, 1)
        XCTAssertEqual(a.totalChargedFen, 2)
    }
}
