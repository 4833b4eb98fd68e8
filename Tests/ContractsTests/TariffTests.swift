import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Tariffs (integer money: never floating point)".
final class TariffTests: XCTestCase {
    /// Rule: "A reading whose consumption crosses a tier limit is split at the limit"; tier n
    /// adds its surcharge; one line per period and one per tier above the first.
    func testTierSplitExactlyAtLimit() throws {
        var h = Harness()
        // 0.5 CNY/kWh base; tier 2 from 240 kWh (+0.05), tier 3 from 400 kWh (+0.30).
        try h.param(.tariff(flatTariff(price: 5000, limits: [24_000, 40_000], surcharges: [500, 3000])))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t0 = cst(2025, 1, 6, 10)
        try h.read([reading("m1", t0, 0)]) // baseline
        var e = try h.read([reading("m1", t0 + interval, 23_900)])
        XCTAssertEqual(e.chargedFen, 11_950) // 23900 × 5000 / 10^4
        e = try h.read([reading("m1", t0 + 2 * interval, 24_000)]) // reaches the limit exactly: still tier 1
        XCTAssertEqual(e.chargedFen, 50)
        var a = try h.account("a1")
        XCTAssertEqual(a.tiers.map(\.energy), [24_000, 0, 0])
        e = try h.read([reading("m1", t0 + 3 * interval, 24_100)]) // all above: tier 2
        XCTAssertEqual(e.chargedFen, 50 + 5) // period 100×5000 → 50 fen; tier-2 line 100×500 → 5 fen
        // A reading crossing the second limit: 15,900 in tier 2, 100 in tier 3.
        e = try h.read([reading("m1", t0 + 4 * interval, 40_100)])
        a = try h.account("a1")
        XCTAssertEqual(a.tiers.map(\.energy), [24_000, 16_000, 100])
        XCTAssertEqual(a.tiers.map(\.tier), [1, 2, 3])
        // 16000×5000 → 8000; tier 2: 15900×500 → 795; tier 3: 100×3000 → 30.
        XCTAssertEqual(e.chargedFen, 8000 + 795 + 30)
        XCTAssertEqual(a.tiers.map(\.chargeFen), [0, 5 + 795, 30])
        XCTAssertEqual(a.cycleEnergy, 40_100)
        XCTAssertEqual(a.totalChargedFen, 11_950 + 50 + 55 + 8825)
        XCTAssertEqual(a.balanceFen, 1_000_000 - a.totalChargedFen)
    }

    /// Rule: "A monthly cycle starts on the 1st at 00:00 local time" (+08:00); an interval
    /// belongs to the cycle in which it starts.
    func testMonthlyCycleResetsAtLocalMidnightOfThe1st() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff(limits: [100], surcharges: [1000])))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 2, 1) // = 2025-01-31T16:00Z
        try h.read([reading("m1", t - 2 * interval, 1000)])
        try h.read([reading("m1", t - interval, 1080)])
        try h.read([reading("m1", t, 1160)]) // 23:45–00:00 local: still January
        var a = try h.account("a1")
        XCTAssertEqual(a.cycleStartMs, cst(2025, 1, 1))
        XCTAssertEqual(a.cycleEnergy, 160)
        XCTAssertEqual(a.tiers.map(\.energy), [100, 60])
        let e = try h.read([reading("m1", t + interval, 1250)]) // 00:00–00:15: February
        a = try h.account("a1")
        XCTAssertEqual(a.cycleStartMs, cst(2025, 2, 1))
        XCTAssertEqual(a.cycleEnergy, 90)
        XCTAssertEqual(a.tiers.map(\.energy), [90, 0])
        XCTAssertEqual(e.chargedFen, 90) // back in tier 1: no surcharge
        XCTAssertEqual(a.cycleChargedFen, 90)
    }

    /// Rule: "an annual cycle [starts] on the customer's cycle start date" (local time); a day
    /// past the month's end is its last day.
    func testAnnualCycleResetsOnCustomerCycleStartDate() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff("annual", cycle: .annual, limits: [276_000], surcharges: [500])))
        var c = customer("a1", meter: "m1", tariff: "annual")
        c.cycleStartMonth = 3
        c.cycleStartDay = 15
        try h.param(.customer(c))
        let t = cst(2025, 3, 15)
        try h.read([reading("m1", t - 2 * interval, 500)])
        try h.read([reading("m1", t - interval, 600)])
        XCTAssertEqual(try h.account("a1").cycleStartMs, cst(2024, 3, 15))
        try h.read([reading("m1", t, 700)])
        XCTAssertEqual(try h.account("a1").cycleStartMs, cst(2024, 3, 15))
        try h.read([reading("m1", t + interval, 730)])
        let a = try h.account("a1")
        XCTAssertEqual(a.cycleStartMs, cst(2025, 3, 15))
        XCTAssertEqual(a.cycleEnergy, 30)

        // 29 February in a common year is 28 February.
        let tariff = flatTariff("annual", cycle: .annual)
        var leap = customer("a2", meter: "m2", tariff: "annual")
        leap.cycleStartMonth = 2
        leap.cycleStartDay = 29
        XCTAssertEqual(TariffRules.cycleStart(at: cst(2025, 2, 28, 0, 1), tariff: tariff, customer: leap), cst(2025, 2, 28))
        XCTAssertEqual(TariffRules.cycleStart(at: cst(2025, 2, 27, 23, 59), tariff: tariff, customer: leap), cst(2024, 2, 29))
        XCTAssertEqual(TariffRules.cycleStart(at: cst(2024, 3, 1), tariff: tariff, customer: leap), cst(2024, 2, 29))
    }

    /// A tariff with 12×24 schedules: flat (2) by default, weekday 08–12 peak (1), July
    /// weekdays 14h sharp (0), weekends valley (3).
    private func touTariff() -> Tariff {
        var weekday = [UInt8](repeating: 2, count: 288)
        for month in 0..<12 { for hour in 8..<12 { weekday[month * 24 + hour] = 1 } }
        weekday[6 * 24 + 14] = 0
        return Tariff(
            tariffId: "tou", utcOffsetMinutes: 480,
            periods: [
                TariffPeriod(name: "sharp", basePrice: 13_000), TariffPeriod(name: "peak", basePrice: 11_000),
                TariffPeriod(name: "flat", basePrice: 10_000), TariffPeriod(name: "valley", basePrice: 7_000),
            ],
            weekdaySchedule: weekday, weekendSchedule: [UInt8](repeating: 3, count: 288), cycle: .monthly
        )
    }

    /// Rule: "a 12×24 month-by-hour schedule for weekdays and one for weekends map each hour
    /// to a period"; "Schedules ... are in the tariff's local time, a fixed UTC offset".
    func testTOUPeriodBoundariesHourWeekdayWeekendAndOffset() throws {
        var h = Harness()
        try h.param(.tariff(touTariff()))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "tou")))
        // Wednesday 2025-01-08 local: 07:45–08:00 is flat, 08:00–08:15 peak.
        let t = cst(2025, 1, 8, 7, 45)
        try h.read([reading("m1", t, 0)])
        var e = try h.read([reading("m1", t + interval, 10)])
        XCTAssertEqual(e.chargedFen, 10) // flat 1 CNY/kWh
        e = try h.read([reading("m1", t + 2 * interval, 30)])
        XCTAssertEqual(e.chargedFen, 22) // 20 × 1.1
        XCTAssertEqual(try h.account("a1").periods.map(\.energy), [0, 20, 10, 0])
        XCTAssertEqual(try h.account("a1").periods.map(\.period), ["sharp", "peak", "flat", "valley"])

        // Friday 2025-01-10 23:45 local (15:45Z, a weekday) then Saturday 00:00 local (16:00Z):
        // the weekend starts at local midnight, not UTC midnight.
        var h2 = Harness()
        try h2.param(.tariff(touTariff()))
        try h2.param(.customer(customer("a1", meter: "m1", tariff: "tou")))
        let fri = utcMs(2025, 1, 10, 15, 45)
        try h2.read([reading("m1", fri, 0)])
        e = try h2.read([reading("m1", fri + interval, 100)]) // Friday 23:45 local: flat
        XCTAssertEqual(e.chargedFen, 100)
        e = try h2.read([reading("m1", fri + 2 * interval, 200)]) // Saturday 00:00 local: valley
        XCTAssertEqual(e.chargedFen, 70)

        // July weekday 14:00 local is sharp; the same hour in January is flat.
        let tariff = touTariff()
        XCTAssertEqual(TariffRules.period(at: cst(2025, 7, 9, 14, 0), tariff: tariff), 0)
        XCTAssertEqual(TariffRules.period(at: cst(2025, 7, 9, 13, 59), tariff: tariff), 2)
        XCTAssertEqual(TariffRules.period(at: cst(2025, 1, 8, 14, 0), tariff: tariff), 2)
        XCTAssertEqual(TariffRules.period(at: cst(2025, 7, 12, 14, 0), tariff: tariff), 3) // Saturday
    }

    /// Rule: "Consumption per period comes from the meter's TOU register deltas. A meter
    /// without TOU registers has each interval's energy assigned to the period of the hour in
    /// which the interval starts."
    func testNoTOUMeterByStartHourAndTOUMeterByRegisters() throws {
        var h = Harness()
        try h.param(.tariff(touTariff()))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "tou")))
        try h.param(.customer(customer("a2", meter: "m2", tariff: "tou")))
        // An off-grid interval 07:50–08:05 starts at 07h: all flat, though it ends in peak.
        let t = cst(2025, 1, 8, 7, 50)
        try h.read([reading("m1", t, 0)])
        let e = try h.read([reading("m1", t + interval, 40)])
        XCTAssertEqual(e.chargedFen, 40)
        XCTAssertEqual(try h.account("a1").periods.map(\.energy), [0, 0, 40, 0])

        // The TOU meter's registers say sharp 5, peak 7, valley 3 at 03:00 (a flat hour by
        // the schedule): the registers win.
        let n = cst(2025, 1, 8, 3)
        try h.read([touReading("m2", n, [100, 100, 100, 100])])
        let f = try h.read([touReading("m2", n + interval, [105, 107, 100, 103])])
        XCTAssertEqual(try h.account("a2").periods.map(\.energy), [5, 7, 0, 3])
        XCTAssertEqual(f.chargedFen, 7 + 8 + 0 + 2) // 6.5→7, 7.7→8, 2.1→2
    }

    /// Rule: "A charge line is energy × price, rounded half up to the fen once per line";
    /// "each line is rounded on its own" — on its cycle-to-date energy ("No rounding drift":
    /// "a reading's charge on a line = round(cycle energy of the line after it × price) −
    /// round(cycle energy of the line before it × price)"). Negative lines round
    /// symmetrically (half away from zero), zero gives zero.
    func testRoundingHalfUpPerLine() throws {
        var h = Harness()
        var tariff = touTariff()
        tariff.periods = [
            TariffPeriod(name: "sharp", basePrice: 5000), TariffPeriod(name: "peak", basePrice: 5000),
            TariffPeriod(name: "flat", basePrice: 4999), TariffPeriod(name: "valley", basePrice: 15_000),
        ]
        try h.param(.tariff(tariff))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "tou")))
        let t = cst(2025, 1, 8, 3)
        try h.read([touReading("m1", t, [10, 10, 10, 10])])
        // 0.01 kWh in each period: 0.5 → 1, 0.5 → 1, 0.4999 → 0, 1.5 → 2 fen. Rounded once over
        // the sum (2.9999 fen) it would be 3: per-line rounding gives 4.
        var e = try h.read([touReading("m1", t + interval, [11, 11, 11, 11])])
        XCTAssertEqual(e.chargedFen, 4)
        // The lines now hold 0.02 kWh each: 1.0 → 1, 1.0 → 1, 0.9998 → 1, 3.0 → 3 fen; the
        // reading is charged what each rounded line grew by: 0 + 0 + 1 + 1.
        e = try h.read([touReading("m1", t + 2 * interval, [12, 12, 12, 12])])
        XCTAssertEqual(e.chargedFen, 2)
        XCTAssertEqual(try h.account("a1").periods.map(\.chargeFen), [1, 1, 1, 3])

        XCTAssertEqual(try TariffRules.lineFen(energy: 1, price: 5000), 1)
        XCTAssertEqual(try TariffRules.lineFen(energy: 1, price: 4999), 0)
        XCTAssertEqual(try TariffRules.lineFen(energy: 3, price: 5000), 2) // 1.5
        XCTAssertEqual(try TariffRules.lineFen(energy: 1, price: -5000), -1)
        XCTAssertEqual(try TariffRules.lineFen(energy: 1, price: -4999), 0)
        XCTAssertEqual(try TariffRules.lineFen(energy: 3, price: -5000), -2)
        XCTAssertEqual(try TariffRules.lineFen(energy: 0, price: 99_999), 0)
        XCTAssertEqual(try TariffRules.lineFen(energy: 12_345, price: 0), 0)
        XCTAssertEqual(try TariffRules.lineFen(energy: 10_000_000_000, price: 100_000_000), 100_000_000_000_000)
    }

    /// Rule: "Optional fixed charge, billed once per cycle with the cycle's first billed
    /// reading."
    func testFixedChargeOncePerCycle() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff(fixed: 1_000)))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 31, 23, 15)
        XCTAssertEqual(try h.read([reading("m1", t, 0)]).chargedFen, 0) // baseline: nothing billed
        XCTAssertEqual(try h.read([reading("m1", t + interval, 10)]).chargedFen, 1_010)
        XCTAssertEqual(try h.read([reading("m1", t + 2 * interval, 20)]).chargedFen, 10)
        XCTAssertEqual(try h.read([reading("m1", t + 3 * interval, 30)]).chargedFen, 10) // 23:45–00:00 Jan
        XCTAssertEqual(try h.read([reading("m1", t + 4 * interval, 40)]).chargedFen, 1_010) // February
        XCTAssertEqual(try h.read([reading("m1", t + 5 * interval, 50)]).chargedFen, 10)
        let a = try h.account("a1")
        XCTAssertEqual(a.fixedChargedFen, 1_000)
        XCTAssertEqual(a.cycleChargedFen, 1_020)
        XCTAssertEqual(a.totalChargedFen, 2_050)
    }

    /// Rule: "Tiers (阶梯) ... Chinese national pattern: tier 2 +0.05, tier 3 +0.30 CNY/kWh;
    /// e.g. annual limits 2760 and 4800 kWh"; "A reading whose consumption crosses a tier
    /// limit is split at the limit"; "a bill has one charge line per period ... and one charge
    /// line per tier above the first ...; each line is rounded on its own"; "an annual cycle
    /// [starts] on the customer's cycle start date" (here January 1st, the default).
    /// Base 0.4883 CNY/kWh so that rounding half up to the fen is exercised at scale.
    func testChineseAnnualTierPattern2760And4800() throws {
        var h = Harness()
        // 2760 kWh = 276,000 × 0.01 kWh; +0.05 CNY/kWh = 500 × 0.0001 CNY/kWh; +0.30 = 3000.
        try h.param(.tariff(flatTariff("cn", price: 4_883, cycle: .annual, limits: [276_000, 480_000], surcharges: [500, 3_000])))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "cn", opening: 100_000_000)))
        let t0 = cst(2025, 1, 8, 10)
        try h.read([reading("m1", t0, 0)]) // baseline
        // 2750 kWh, all in tier 1: 275,000 × 4883 = 1,342,825,000 × 10^-4 fen = 134,282.5 → 134,283.
        var e = try h.read([reading("m1", t0 + interval, 275_000)])
        XCTAssertEqual(e.chargedFen, 134_283)
        // Crosses 2760 kWh: 1000 (0.01 kWh) stay in tier 1, 1000 go to tier 2.
        // Period line 277,000 × 4883 → 135,259.1 → 135,259, minus 134,283 before: 976;
        // tier-2 line 1000 × 500 → 50.
        e = try h.read([reading("m1", t0 + 2 * interval, 277_000)])
        XCTAssertEqual(e.chargedFen, 976 + 50)
        var a = try h.account("a1")
        XCTAssertEqual(a.tiers.map(\.energy), [276_000, 1_000, 0])
        // Crosses 4800 kWh: 203,000 in tier 2, 1,000 in tier 3.
        // Period 481,000 × 4883 → 234,872.3 → 234,872 − 135,259 = 99,613; tier 2: 204,000 × 500
        // → 10,200 − 50 = 10,150; tier 3: 1000 × 3000 → 300.
        e = try h.read([reading("m1", t0 + 3 * interval, 481_000)])
        XCTAssertEqual(e.chargedFen, 99_613 + 10_150 + 300)
        a = try h.account("a1")
        XCTAssertEqual(a.tiers.map(\.energy), [276_000, 204_000, 1_000])
        XCTAssertEqual(a.tiers.map(\.chargeFen), [0, 50 + 10_150, 300])
        XCTAssertEqual(a.cycleStartMs, cst(2025, 1, 1))
        // The last interval of the year (23:45–00:00 local) is still 2025: tier 3 again.
        try h.read([reading("m1", cst(2025, 12, 31, 23, 45), 481_100)])
        e = try h.read([reading("m1", cst(2026, 1, 1), 481_200)])
        // 481,200 × 4883 → 234,969.96 → 234,970 − 234,921 = 49; tier 3: 1,200 × 3000 → 360 − 330 = 30
        XCTAssertEqual(e.chargedFen, 49 + 30)
        // 00:00–00:15 local on January 1st opens the 2026 cycle: back in tier 1.
        e = try h.read([reading("m1", cst(2026, 1, 1, 0, 15), 481_300)])
        XCTAssertEqual(e.chargedFen, 49)
        a = try h.account("a1")
        XCTAssertEqual(a.cycleStartMs, cst(2026, 1, 1))
        XCTAssertEqual(a.tiers.map(\.energy), [100, 0, 0])
    }

    /// Rule: "A meter without TOU registers has each interval's energy assigned to the period
    /// of the hour in which the interval starts"; readings sit on "the meter's interval grid".
    /// A reading taken a few seconds early (07:59:58 for the 08:00 slot) must not drag the
    /// whole 08:00–08:15 interval into the 07h period.
    func testJitteredReadingRatedByTheIntervalItCloses() throws {
        var h = Harness()
        try h.param(.tariff(touTariff()))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "tou")))
        let t = cst(2025, 1, 8, 7, 45) - 2_000 // Wednesday 07:44:58 local
        try h.read([reading("m1", t, 0)])
        var e = try h.read([reading("m1", t + interval, 20)]) // 07:45–08:00: flat
        XCTAssertEqual(e.chargedFen, 20)
        e = try h.read([reading("m1", t + 2 * interval, 40)]) // 08:00–08:15: peak, 1.1 CNY/kWh
        XCTAssertEqual(e.chargedFen, 22)
        XCTAssertEqual(try h.account("a1").periods.map(\.energy), [0, 20, 20, 0])
    }

    /// Rule: "A charge line is energy × price, rounded half up to the fen": energy in 0.01 kWh
    /// × price in 0.0001 CNY/kWh is 10^-6 CNY = 10^-4 fen.
    func testLineUnitsAreTenThousandthsOfAFen() throws {
        XCTAssertEqual(try TariffRules.lineFen(energy: 100, price: 10_000), 100) // 1 kWh × 1 CNY/kWh = 100 fen
        XCTAssertEqual(try TariffRules.lineFen(energy: 1, price: 1), 0) // 10^-4 fen
        XCTAssertEqual(try TariffRules.lineFen(energy: 4_999, price: 1), 0) // 0.4999 fen
        XCTAssertEqual(try TariffRules.lineFen(energy: 5_000, price: 1), 1) // 0.5 fen, half up
        XCTAssertEqual(try TariffRules.lineFen(energy: 15_000, price: 1), 2) // 1.5 fen
        XCTAssertEqual(try TariffRules.lineFen(energy: 15_000, price: -1), -2)
    }

    /// Tariffs that cannot be billed are rejected (INVALID_ARGUMENT) instead of stored.
    func testMalformedTariffRejected() throws {
        var h = Harness()
        var bad = flatTariff(limits: [100, 50], surcharges: [1, 2])
        XCTAssertThrowsError(try h.param(.tariff(bad))) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        bad = flatTariff()
        bad.weekdaySchedule = [UInt8](repeating: 1, count: 288) // names period 1 of 1
        XCTAssertThrowsError(try h.param(.tariff(bad))) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        XCTAssertNil(h.state.entries[ContractKeys.tariff("flat")])
    }
}
