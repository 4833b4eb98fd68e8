import GridBase
import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Validation, estimation, editing (VEE)". The flat test tariff charges 1 fen per
/// 0.01 kWh, so charged fen = billed energy.
final class VeeTests: XCTestCase {
    private func setUp(_ h: inout Harness, _ customers: [CustomerArchive]) throws {
        try h.param(.tariff(flatTariff()))
        for c in customers { try h.param(.customer(c)) }
    }

    /// Rule: "A decrease is a rollover only when R_prev is within 1% of the rollover point;
    /// otherwise it is flagged negative."
    func testRolloverVersusNegative() throws {
        var h = Harness()
        var c1 = customer("a1", meter: "m1")
        c1.rollover = 100_000
        var c2 = customer("a2", meter: "m2")
        c2.rollover = 100_000
        try setUp(&h, [c1, c2])
        let t = cst(2025, 1, 8)
        try h.read([reading("m1", t, 99_000), reading("m2", t, 98_999)]) // 1000 and 1001 below the point
        let e = try h.read([reading("m1", t + interval, 200), reading("m2", t + interval, 200)])
        XCTAssertEqual(e.readingResults.map(\.position), [0, 1])
        XCTAssertEqual(flags(e), [.rollover, .negative])
        XCTAssertEqual(e.readingsBilled, 1)
        XCTAssertEqual(e.chargedFen, 1_200) // 100000 − 99000 + 200
        XCTAssertEqual(try h.account("a1").lastTotal, 200)
        // The negative reading was not accepted: the next one is measured from 98,999.
        let f = try h.read([reading("m2", t + 2 * interval, 99_100)])
        XCTAssertEqual(flags(f), [])
        XCTAssertEqual(f.chargedFen, 101)
        XCTAssertEqual(try h.account("a2").cycleEnergy, 101)
    }

    /// Rules: "a register rolls over at 1,000,000.00 kWh (configurable per meter)" and "Sum
    /// check: total ≈ sharp + peak + flat + valley within 0.02 kWh". Once the total register
    /// has wrapped and the TOU registers have not, the plain sum is off by the rollover point:
    /// the check must compare modulo the rollover, or every later reading of the meter would
    /// be held as SUM_MISMATCH for ever.
    func testTOUMeterTotalRolloverStillPassesSumCheck() throws {
        var h = Harness()
        var c = customer("a1", meter: "m1")
        c.rollover = 100_000
        try setUp(&h, [c])
        let t = cst(2025, 1, 8, 3)
        try h.read([touReading("m1", t, [24_990, 25_000, 25_000, 24_998])]) // total 99,988
        // True total 100,020 shows as 20; the TOU registers add up to 100,020.
        var e = try h.read([touReading("m1", t + interval, [25_020, 25_000, 25_000, 25_000], total: 20)])
        XCTAssertEqual(flags(e), [.rollover])
        XCTAssertEqual(e.chargedFen, 32) // 100,000 − 99,988 + 20
        XCTAssertEqual(e.readingsBilled, 1)
        // A real mismatch after the wrap is still caught: 50 vs 100,060 ≡ 60 (mod 100,000).
        e = try h.read([touReading("m1", t + 2 * interval, [25_020, 25_000, 25_000, 25_040], total: 50)])
        XCTAssertEqual(flags(e), [.sumMismatch])
        e = try h.read([touReading("m1", t + 3 * interval, [25_020, 25_000, 25_000, 25_070], total: 90)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 70)
        XCTAssertEqual(try h.account("a1").cycleEnergy, 102)
    }

    /// Rule: "Sum check: total ≈ sharp + peak + flat + valley within 0.02 kWh". Chosen: a
    /// mismatching reading is held from billing (not accepted); the next good reading's delta
    /// covers its energy.
    func testSumMismatchHeldFromBilling() throws {
        var h = Harness()
        try setUp(&h, [customer("a1", meter: "m1")])
        let t = cst(2025, 1, 8, 3)
        try h.read([touReading("m1", t, [10, 20, 30, 40])])
        var e = try h.read([touReading("m1", t + interval, [10, 20, 30, 42], total: 102)]) // off by 2: fine
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 2)
        e = try h.read([touReading("m1", t + 2 * interval, [10, 20, 30, 50], total: 113)]) // off by 3
        XCTAssertEqual(flags(e), [.sumMismatch])
        XCTAssertEqual(e.chargedFen, 0)
        XCTAssertEqual(e.readingsBilled, 0)
        e = try h.read([touReading("m1", t + 3 * interval, [10, 20, 30, 60])])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 18) // 120 − 102: the held interval included, once
        XCTAssertEqual(try h.account("a1").cycleEnergy, 20)
    }

    /// Rule: "interval consumption above 5× the customer's trailing 7-day average interval is
    /// flagged spike and held from billing until confirmed". Chosen: a later reading that
    /// continues from the spike (no register below it) confirms it and its energy is billed
    /// then; one that falls back below it discards the spike (a glitch) and bills from the
    /// last billed reading. Nothing is lost or counted twice.
    func testSpikeHeldThenConfirmedOrDiscarded() throws {
        var h = Harness(spikeChecks: true) // the default factor 5
        try setUp(&h, [customer("a1", meter: "m1"), customer("a2", meter: "m2")])
        let t = cst(2025, 1, 8)
        var total: UInt64 = 1000
        for k in 0...8 { // 8 intervals of 10: the trailing average is 10
            try h.read([reading("m1", t + Int64(k) * interval, total), reading("m2", t + Int64(k) * interval, total)])
            total += 10
        }
        total -= 10
        let before = try h.account("a1").balanceFen
        // 50 is exactly 5× the average: not a spike; 51 is.
        var e = try h.read([reading("m1", t + 9 * interval, total + 50), reading("m2", t + 9 * interval, total + 51)])
        XCTAssertEqual(e.readingResults.map(\.position), [1])
        XCTAssertEqual(flags(e), [.spike])
        XCTAssertEqual(e.chargedFen, 50)
        XCTAssertEqual(e.readingsBilled, 1)
        XCTAssertEqual(try h.account("a2").balanceFen, before) // held
        // m2 continues from the spike: confirmed, both intervals billed now.
        e = try h.read([reading("m2", t + 10 * interval, total + 61)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 61)
        XCTAssertEqual(try h.account("a2").lastTotal, total + 61)
        XCTAssertEqual(try h.account("a2").balanceFen, before - 61)

        // A spike that the next reading falls back from is discarded.
        var g = Harness(spikeChecks: true)
        try setUp(&g, [customer("a1", meter: "m1")])
        for k in 0...8 { try g.read([reading("m1", t + Int64(k) * interval, 1000 + 10 * UInt64(k))]) }
        e = try g.read([reading("m1", t + 9 * interval, 9_000)])
        XCTAssertEqual(flags(e), [.spike])
        e = try g.read([reading("m1", t + 10 * interval, 1_100)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 20) // 1080 → 1100 over two intervals
        XCTAssertEqual(try g.account("a1").cycleEnergy, 100) // = 1100 − 1000
    }

    /// Rule: "Timestamps: not in the future beyond 5 min" — of the block timestamp, the only
    /// clock a contract has.
    func testFutureTimestampNotBilled() throws {
        var h = Harness()
        try setUp(&h, [customer("a1", meter: "m1")])
        let t = cst(2025, 1, 8)
        try h.read([reading("m1", t, 0)])
        var e = try h.read([reading("m1", t + 2 * interval, 50)], blockTs: t + 2 * interval - 300_001)
        XCTAssertEqual(flags(e), [.future])
        XCTAssertEqual(e.chargedFen, 0)
        e = try h.read([reading("m1", t + interval, 40)], blockTs: t + interval - 300_000) // exactly at the tolerance
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 40)
    }

    /// Rule: "not older than the previous accepted reading of that meter (out-of-order
    /// readings are stored, not billed)"; a reading for an already-billed time never bills.
    func testOutOfOrderStoredNotBilled() throws {
        var h = Harness()
        try setUp(&h, [customer("a1", meter: "m1")])
        let t = cst(2025, 1, 8)
        try h.read([reading("m1", t, 0)])
        // In one batch the contract orders by timestamp: t+2 then t+1 would both bill.
        var e = try h.read([reading("m1", t + 2 * interval, 30), reading("m1", t + interval, 10)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 30)
        e = try h.read([reading("m1", t + 3 * interval, 45)])
        XCTAssertEqual(e.chargedFen, 15)
        e = try h.read([reading("m1", t + interval, 12), reading("m1", t + 3 * interval, 45)])
        XCTAssertEqual(flags(e), [.outOfOrder, .outOfOrder])
        XCTAssertEqual(e.chargedFen, 0)
        XCTAssertEqual(e.readingsBilled, 0)
        XCTAssertEqual(try h.account("a1").cycleEnergy, 45)
    }

    /// Rule: "Gaps up to 2 h are estimated by linear interpolation between the registers on
    /// both sides ... Estimated values are marked as such and replaced when real data
    /// arrives." Billing is on register deltas, so the total billed is last − first.
    func testGapInterpolatedThenReplacedAndBilledOnce() throws {
        var h = Harness()
        try setUp(&h, [customer("a1", meter: "m1")])
        let t = cst(2025, 1, 8, 1)
        try h.read([reading("m1", t, 1000)])
        var e = try h.read([reading("m1", t + 4 * interval, 1400)]) // 3 slots missing
        XCTAssertEqual(e.chargedFen, 400)
        for (k, register) in [(1, 1100), (2, 1200), (3, 1300)] {
            let bytes = try XCTUnwrap(h.state.entries[ContractKeys.estimate("m1", timestampMs: t + Int64(k) * interval)])
            let estimate = try EstimateRecord(decoding: bytes)
            XCTAssertEqual(estimate.total, UInt64(register))
            XCTAssertEqual(estimate.intervalEnergy, 100)
            XCTAssertEqual(estimate.method, .linear)
        }
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.estimates("m1")).count, 3)
        // The real 00:30 reading arrives late: it replaces the estimate and bills nothing.
        e = try h.read([reading("m1", t + 2 * interval, 1250)])
        XCTAssertEqual(flags(e), [.replacesEstimate])
        XCTAssertEqual(e.chargedFen, 0)
        XCTAssertNil(h.state.entries[ContractKeys.estimate("m1", timestampMs: t + 2 * interval)])
        XCTAssertEqual(h.state.keys(withPrefix: ContractKeys.estimates("m1")).count, 2)
        e = try h.read([reading("m1", t + 5 * interval, 1450)])
        XCTAssertEqual(e.chargedFen, 50)
        let a = try h.account("a1")
        XCTAssertEqual(a.cycleEnergy, 1450 - 1000)
        XCTAssertEqual(a.totalChargedFen, 450)
    }

    /// Rule: "longer gaps are estimated from the customer's same-weekday profile".
    func testLongGapEstimatedFromSameWeekdayProfile() throws {
        var h = Harness()
        try setUp(&h, [customer("a1", meter: "m1")])
        // Monday 2025-01-06, 00:00–12:00 local: 1 per interval until 06:00, then 3.
        let monday = cst(2025, 1, 6)
        var total: UInt64 = 0
        var profile: [UInt64] = []
        try h.read([reading("m1", monday, 0)])
        for k in 1...48 {
            let e: UInt64 = k <= 24 ? 1 : 3
            profile.append(e)
            total += e
            try h.read([reading("m1", monday + Int64(k) * interval, total)])
        }
        // Silent until the next Monday 00:00 (no consumption), then a 12 h gap.
        let next = cst(2025, 1, 13)
        try h.read([reading("m1", next, total)])
        let sum = profile.reduce(0, +)
        let e = try h.read([reading("m1", next + 48 * interval, total + 2 * sum)])
        XCTAssertEqual(e.chargedFen, Int64(2 * sum))
        for k in 1..<48 {
            let bytes = try XCTUnwrap(h.state.entries[ContractKeys.estimate("m1", timestampMs: next + Int64(k) * interval)])
            let estimate = try EstimateRecord(decoding: bytes)
            XCTAssertEqual(estimate.method, .profile)
            XCTAssertEqual(estimate.intervalEnergy, 2 * profile[k - 1], "slot \(k)")
        }
        // Linear interpolation would have put 2·sum/48 = 4 in every slot; the profile puts 2
        // before 06:00 and 6 after.
        XCTAssertEqual(try EstimateRecord(decoding: h.state.entries[ContractKeys.estimate("m1", timestampMs: next + interval)]!).total, total + 2)
        XCTAssertEqual(try h.account("a1").lastTotal, total + 2 * sum)
    }

    /// Rule: billing never counts energy twice — whatever the mix of gaps, late readings,
    /// replacements, mismatches and spikes, the energy billed equals the last billed register
    /// minus the first (seeded random sequences).
    func testTotalBilledEqualsRegisterDifferenceUnderRandomSequences() throws {
        for seed in UInt64(1)...40 {
            var rng = SplitMix64(seed: seed)
            var h = Harness(spikeChecks: seed % 2 == 0)
            try setUp(&h, [customer("a1", meter: "m1")])
            let t = cst(2025, 1, 8)
            var register: UInt64 = 5_000
            var sent: [(Int64, UInt64)] = [(t, register)]
            try h.read([reading("m1", t, register)])
            var slot: Int64 = 0
            var billed: Int64 = 0
            for _ in 0..<60 {
                switch rng.next() % 10 {
                case 0: // a late reading for an earlier slot (replaces an estimate or out of order)
                    let old = sent[Int(rng.next() % UInt64(sent.count))]
                    billed += try h.read([reading("m1", old.0 + 1, old.1)]).chargedFen
                case 1: // a reading whose TOU registers do not add up
                    slot += 1
                    billed += try h.read([touReading("m1", t + slot * interval, [1, 1, 1, 1], total: register + 50)]).chargedFen
                default:
                    slot += Int64(1 + rng.next() % (rng.next() % 3 == 0 ? 12 : 1)) // sometimes a gap
                    register += rng.next() % (rng.next() % 7 == 0 ? 400 : 20)
                    sent.append((t + slot * interval, register))
                    billed += try h.read([reading("m1", t + slot * interval, register)]).chargedFen
                }
            }
            let a = try h.account("a1")
            XCTAssertEqual(UInt64(billed), a.lastTotal - 5_000, "seed \(seed)")
            XCTAssertEqual(a.cycleEnergy, a.lastTotal - 5_000, "seed \(seed)")
            XCTAssertEqual(a.totalChargedFen, billed, "seed \(seed)")
        }
    }
}
