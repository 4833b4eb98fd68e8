import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Smart district": "Line loss = (E_supply − Σ E_customers) / E_supply.
/// Categories: `qualified` (0–10% (configurable)), `high_loss` (> upper), `negative_loss`
/// (< 0: an anomaly), `not_computable` (summary reading missing, or > 5% of customer readings
/// missing and not estimable). Use only validated or estimated energy."
final class LineLossTests: XCTestCase {
    /// Local midnight 2025-03-03 (+08:00): the first interval of that day.
    let t0 = cst(2025, 3, 3)

    /// A district with the summary meter "S" and customer meters c0..c<n-1>, all with a
    /// baseline reading of 0 at `t0`.
    func district(customers n: Int) throws -> Harness {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer(LineLoss.summaryAccount, meter: "S", protected: true)))
        for i in 0..<n { try h.param(.customer(customer("a\(i)", meter: "c\(i)"))) }
        try h.read([reading("S", t0, 0)] + (0..<n).map { reading("c\($0)", t0, 0) })
        return h
    }

    func lossAt(_ h: Harness, _ start: Int64) throws -> LineLossInterval {
        try LineLossInterval(decoding: XCTUnwrap(h.state.entries[LineLoss.intervalKey(start)]))
    }

    func day(_ h: Harness, _ yyyymmdd: Int64) throws -> LineLossDay {
        try LineLossDay(decoding: XCTUnwrap(h.state.entries[LineLoss.dayKey(yyyymmdd)]))
    }

    /// "(E_supply − Σ E_customers) / E_supply" on a known example: 1000 in, 300+400+200 out.
    func testFormulaOnAKnownExample() throws {
        var h = try district(customers: 3)
        try h.read([reading("S", t0 + interval, 1000), reading("c0", t0 + interval, 300),
                    reading("c1", t0 + interval, 400), reading("c2", t0 + interval, 200)])
        let r = try lossAt(h, t0)
        XCTAssertEqual(r.supply, 1000)
        XCTAssertEqual(r.customers, 900)
        XCTAssertTrue(r.summaryPresent)
        XCTAssertEqual(r.customerMeters, 3)
        XCTAssertEqual(r.customerTotal, 3)
        XCTAssertEqual(r.rateBp, 1000)  // 10.00 %: the upper limit itself is still qualified
        XCTAssertEqual(r.category, .qualified)
    }

    /// Rounding: basis points, half away from zero.
    func testRateRoundsHalfAwayFromZero() {
        XCTAssertEqual(LineLoss.rateBp(supply: 3, customers: 2), 3333)
        XCTAssertEqual(LineLoss.rateBp(supply: 3, customers: 1), 6667)
        XCTAssertEqual(LineLoss.rateBp(supply: 20_000, customers: 19_999), 1)   // 0.5 bp → 1
        XCTAssertEqual(LineLoss.rateBp(supply: 20_000, customers: 20_001), -1)  // −0.5 bp → −1
        XCTAssertNil(LineLoss.rateBp(supply: 0, customers: 5))
        XCTAssertEqual(LineLoss.rateBp(supply: 1, customers: .max), -.max)  // saturates, never traps
    }

    /// "`qualified` (0–10%)", "`high_loss` (> upper)", "`negative_loss` (< 0: an anomaly)".
    func testEachCategory() throws {
        let cases: [(UInt64, LineLoss.Category, Int64)] = [
            (1000, .qualified, 0), (950, .qualified, 500), (900, .qualified, 1000),
            (899, .highLoss, 1010), (700, .highLoss, 3000), (1001, .negativeLoss, -10),
        ]
        for (customers, category, bp) in cases {
            var h = try district(customers: 1)
            try h.read([reading("S", t0 + interval, 1000), reading("c0", t0 + interval, customers)])
            let r = try lossAt(h, t0)
            XCTAssertEqual(r.category, category, "customers \(customers)")
            XCTAssertEqual(r.rateBp, bp, "customers \(customers)")
        }
        // Exact comparison, not the rounded rate: 10.004 % rounds to 1000 bp but is above 10 %.
        XCTAssertEqual(LineLoss.category(supply: 100_000, customers: 89_996, computable: true, settings: .init()), .highLoss)
        XCTAssertEqual(LineLoss.rateBp(supply: 100_000, customers: 89_996), 1000)
    }

    /// "`not_computable` (summary reading missing, …)".
    func testNotComputableWithoutSummaryReading() throws {
        var h = try district(customers: 2)
        try h.read([reading("c0", t0 + interval, 300), reading("c1", t0 + interval, 400)])
        let r = try lossAt(h, t0)
        XCTAssertFalse(r.summaryPresent)
        XCTAssertEqual(r.customers, 700)
        XCTAssertEqual(r.category, .notComputable)
        // The summary reading lands late: the interval is recomputed.
        try h.read([reading("S", t0 + interval, 770)])
        XCTAssertEqual(try lossAt(h, t0).category, .qualified)
        XCTAssertEqual(try lossAt(h, t0).rateBp, 909)  // 70/770 = 9.0909 %
    }

    /// "… or > 5% of customer readings missing and not estimable": 1 of 20 missing (5%) is
    /// still computable, 2 of 20 (10%) is not.
    func testNotComputableWithMoreThanFivePercentCustomersMissing() throws {
        var h = try district(customers: 20)
        try h.read([reading("S", t0 + interval, 2000)] + (0..<19).map { reading("c\($0)", t0 + interval, 100) })
        var r = try lossAt(h, t0)
        XCTAssertEqual(r.customerMeters, 19)
        XCTAssertEqual(r.customerTotal, 20)
        XCTAssertEqual(r.category, .qualified)
        XCTAssertEqual(r.rateBp, 500)

        var g = try district(customers: 20)
        try g.read([reading("S", t0 + interval, 2000)] + (0..<18).map { reading("c\($0)", t0 + interval, 100) })
        r = try lossAt(g, t0)
        XCTAssertEqual(r.customerMeters, 18)
        XCTAssertEqual(r.category, .notComputable)
        XCTAssertEqual(r.rateBp, 1000)  // the rate is still shown
    }

    /// "Use only validated or estimated energy": a gap is estimated (linear) and the estimate
    /// counts for the interval it was estimated for, once the reading after the gap lands.
    func testEstimatedEnergyCounts() throws {
        var h = try district(customers: 1)
        try h.read([reading("S", t0 + interval, 1000)])
        XCTAssertEqual(try lossAt(h, t0).category, .notComputable)  // c0 missing: 1 of 1
        try h.read([reading("S", t0 + 2 * interval, 2000), reading("c0", t0 + 2 * interval, 1900)])
        let first = try lossAt(h, t0), second = try lossAt(h, t0 + interval)
        XCTAssertEqual(first.customers, 950)  // estimated: half of 1900 (linear)
        XCTAssertEqual(second.customers, 950)
        XCTAssertEqual(first.category, .qualified)
        XCTAssertEqual(first.rateBp, 500)
        XCTAssertNotNil(h.state.entries[ContractKeys.estimate("c0", timestampMs: t0 + interval)])
    }

    /// "Use only validated or estimated energy": a reading VEE rejects (registers going
    /// backwards: NEGATIVE) adds nothing; the meter counts as missing.
    func testRejectedReadingsDoNotCount() throws {
        var h = try district(customers: 1)
        try h.read([reading("S", t0 + interval, 1000), reading("c0", t0 + interval, 500)])
        let effects = try h.read([reading("S", t0 + 2 * interval, 2000), reading("c0", t0 + 2 * interval, 400)])
        XCTAssertEqual(flags(effects), [.negative])
        let r = try lossAt(h, t0 + interval)
        XCTAssertEqual(r.customers, 0)
        XCTAssertEqual(r.customerMeters, 0)
        XCTAssertEqual(r.category, .notComputable)
    }

    /// "Computed at the edge per interval (15 min default) and per day": the day sums its
    /// computable intervals and is categorised once all 96 are computable.
    func testPerDayAggregate() throws {
        var h = try district(customers: 2)
        for k in 1...96 {
            let ts = t0 + Int64(k) * interval
            // Interval k−1: supply 100, customers 45 + 48 = 93 (7 %), except interval 10: 88 (12 %).
            let c1: UInt64 = k == 11 ? 43 : 48
            let before = k == 1 ? UInt64(0) : (k <= 11 ? 48 * UInt64(k - 1) : 48 * UInt64(k - 1) - 5)
            try h.read([reading("S", ts, 100 * UInt64(k)), reading("c0", ts, 45 * UInt64(k)), reading("c1", ts, before + c1)])
            if k == 95 { XCTAssertEqual(try day(h, 20250303).category, .notComputable) }  // day not complete
        }
        XCTAssertEqual(try lossAt(h, t0 + 10 * interval).category, .highLoss)
        let d = try day(h, 20250303)
        XCTAssertEqual(d.computableIntervals, 96)
        XCTAssertEqual(d.supply, 9600)
        XCTAssertEqual(d.customers, 96 * 93 - 5)
        XCTAssertEqual(d.rateBp, 705)  // 677/9600 = 7.052 %
        XCTAssertEqual(d.category, .qualified)
        // The last reading (at the next local midnight) belongs to interval 23:45–24:00 of 3 March.
        XCTAssertNil(h.state.entries[LineLoss.dayKey(20250304)])
    }

    /// A piece over several intervals (an hourly customer meter) is split equally among
    /// them: DOMAIN.md "Computed at the edge per interval (15 min default)".
    func testHourlyMeterIsSpreadOverItsIntervals() throws {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer(LineLoss.summaryAccount, meter: "S", protected: true)))
        var hourly = customer("a0", meter: "c0")
        hourly.intervalMinutes = 60
        try h.param(.customer(hourly))
        try h.read([reading("S", t0, 0), reading("c0", t0, 0)])
        try h.read((1...4).map { reading("S", t0 + Int64($0) * interval, 110 * UInt64($0)) } + [reading("c0", t0 + 4 * interval, 402)])
        let parts = try (0..<4).map { try lossAt(h, t0 + Int64($0) * interval) }
        XCTAssertEqual(parts.map(\.customers), [100, 101, 100, 101])  // 402 split exactly (cumulative floor)
        XCTAssertEqual(parts.map(\.supply), [110, 110, 110, 110])
        XCTAssertEqual(parts.map(\.category), [.qualified, .qualified, .qualified, .qualified])
    }

    /// Determinism: the records are identical whatever the order of the readings in a block.
    func testOrderOfReadingsInABlockDoesNotMatter() throws {
        func run(_ permute: ([Reading]) -> [Reading]) throws -> [(key: String, value: [UInt8])] {
            var h = try district(customers: 5)
            var batch: [Reading] = []
            for k in 1...4 {
                let ts = t0 + Int64(k) * interval
                batch.append(reading("S", ts, 1000 * UInt64(k)))
                for i in 0..<5 where !(i == 2 && k == 2) { batch.append(reading("c\(i)", ts, UInt64(150 + 10 * i) * UInt64(k))) }
            }
            try h.read(permute(batch))
            return try h.state.entries(withPrefix: "district/lineloss/")
        }
        let base = try run { $0 }
        XCTAssertFalse(base.isEmpty)
        XCTAssertEqual(base.map(\.value), try run { $0.reversed() }.map(\.value))
        XCTAssertEqual(base.map(\.key), try run { $0.reversed() }.map(\.key))
        var rng = SplitMix(seed: 7)
        for _ in 0..<5 {
            let shuffled = try run { batch in batch.shuffled(using: &rng) }
            XCTAssertEqual(base.map(\.key), shuffled.map(\.key))
            XCTAssertEqual(base.map(\.value), shuffled.map(\.value))
        }
    }
}

/// A seeded generator for test permutations.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
