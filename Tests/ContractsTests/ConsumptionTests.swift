import GridProto
import XCTest

@testable import Contracts

/// DOMAIN.md "Tariffs": "A meter with TOU registers has as its consumption the sum of its
/// TOU deltas (the total register only serves the sum check); that sum is what tiers count."
/// DOMAIN.md "Spike / high-low": "The check needs at least 4 intervals of history in that
/// window *(configurable)*; before that, readings are billed unchecked."
final class ConsumptionTests: XCTestCase {
    /// The total register moves 0.02 kWh more than the TOU registers (within the sum
    /// check's tolerance) every interval: the bill and the tiers follow the TOU registers.
    func testTOUMeterBillsAndTiersTheSumOfItsTOUDeltas() throws {
        var h = Harness()
        var tariff = flatTariff(price: 10_000, limits: [25], surcharges: [10_000])
        tariff.periods = ["sharp", "peak", "flat", "valley"].map { TariffPeriod(name: $0, basePrice: 10_000) }
        try h.param(.tariff(tariff))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 8, 3)
        try h.read([touReading("m1", t, [0, 0, 0, 0], total: 0)])
        // TOU deltas 1 + 2 + 3 + 4 = 10; the total register moves 12.
        var e = try h.read([touReading("m1", t + interval, [1, 2, 3, 4], total: 12)])
        XCTAssertEqual(flags(e), [])
        XCTAssertEqual(e.chargedFen, 10)
        var a = try h.account("a1")
        XCTAssertEqual(a.cycleEnergy, 10)
        XCTAssertEqual(a.periods.map(\.energy), [1, 2, 3, 4])
        // Two more intervals: 30 in all by TOU (32 by the total register). Tier 2 starts at
        // 25: 5 of the last 10 are in tier 2 (by the total register, 7 would be).
        XCTAssertEqual(flags(try h.read([touReading("m1", t + 2 * interval, [2, 4, 6, 8], total: 22)])), [])
        e = try h.read([touReading("m1", t + 3 * interval, [3, 6, 9, 12], total: 32)])
        a = try h.account("a1")
        XCTAssertEqual(a.cycleEnergy, 30)
        XCTAssertEqual(a.tiers.map(\.energy), [25, 5])
        XCTAssertEqual(e.chargedFen, 10 + 5)
    }

    /// Readings with a steady 10 and then a 100 (10× the average, above the default factor 5).
    private func spikeAfter(history: Int, minHistory: UInt32?) throws -> [ReadingFlag] {
        var h = Harness(spikeChecks: true)
        if let minHistory {
            try h.param(.activation(ContractActivation(contract: "fee-control", version: 1, activateAtHeight: 0,
                                                       vee: VeeParameters(spikeMinHistory: minHistory))))
        }
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 8, 3)
        try h.read([reading("m1", t, 0)])
        for i in 1...history { try h.read([reading("m1", t + Int64(i) * interval, UInt64(10 * i))]) }
        return flags(try h.read([reading("m1", t + Int64(history + 1) * interval, UInt64(10 * history + 100))]))
    }

    func testSpikeCheckNeedsItsMinimumHistoryDefaultFour() throws {
        XCTAssertEqual(try spikeAfter(history: 3, minHistory: nil), [], "3 intervals of history: billed unchecked")
        XCTAssertEqual(try spikeAfter(history: 4, minHistory: nil), [.spike])
    }

    func testSpikeMinimumHistoryIsAChainParameter() throws {
        XCTAssertEqual(try spikeAfter(history: 2, minHistory: 2), [.spike])
        XCTAssertEqual(try spikeAfter(history: 4, minHistory: 8), [], "4 of 8 intervals: billed unchecked")
        XCTAssertEqual(try spikeAfter(history: 8, minHistory: 8), [.spike])
    }

    /// Parameters no deployment could mean are refused with INVALID_ARGUMENT, nothing stored.
    func testVeeParametersValidated() throws {
        var h = Harness(spikeChecks: true)
        for bad in [
            VeeParameters(spikeMinHistory: 11_521), VeeParameters(futureToleranceMs: -1),
            VeeParameters(maxInterpolationMs: 8 * 86_400_000), VeeParameters(sumTolerance: 10_001),
            VeeParameters(spikeFactor: 1_001), VeeParameters(spikeFactor: 1),
        ] {
            XCTAssertThrowsError(try h.param(.activation(ContractActivation(contract: "fee-control", version: 1, vee: bad)))) {
                XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument)
                XCTAssertTrue("\($0)".contains("VEE parameters"), "\($0)")
            }
        }
        XCTAssertNil(h.state.entries[ContractKeys.feeControlContract])
    }
}
