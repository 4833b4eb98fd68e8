import Foundation
import GridBase
import GridProto
@testable import GridTools
import Node
import XCTest

/// The simulated meter fleet (Sources/Node/Simulator): DOMAIN.md "Readings" (registers in
/// 0.01 kWh, monotonic, total = sharp + peak + flat + valley, 15-min grid, gaps), "Tariffs"
/// (TOU periods by local hour at +08:00), "Smart district" (summary meter vs customers:
/// line loss) and "Data for realistic load" (seeded and reproducible).
final class MeterFleetTests: XCTestCase {
    /// 2024-07-01 00:00 +08:00 (a Monday), in UTC ms.
    static let start: Int64 = 1_719_792_000_000 - 8 * 3_600_000
    static let interval: Int64 = 15 * 60_000

    /// Independent copy of the documented TOU table (local hour → register).
    static func expectedPeriod(localHour: Int) -> String {
        switch localHour {
        case 19..<21: return "sharp"
        case 8..<11, 17..<19, 21..<22: return "peak"
        case 7..<8, 11..<17, 22..<23: return "flat"
        default: return "valley"
        }
    }

    static func localHour(_ utcMs: Int64) -> Int {
        Int(((utcMs + 8 * 3_600_000) / 3_600_000) % 24)
    }

    func makeFleet(
        seed: UInt64 = 42, districts: [String] = ["d1", "d2"], meters: Int = 30,
        configuration: MeterFleet.Configuration = .init()
    ) -> MeterFleet {
        MeterFleet(
            seed: seed, districts: districts, metersPerDistrict: meters,
            startMs: Self.start, configuration: configuration)
    }

    /// Runs `count` intervals; returns every reading, in generation order.
    func run(_ fleet: inout MeterFleet, _ count: Int) -> [[(district: String, readings: [Reading])]] {
        (0..<count).map { _ in fleet.nextIntervalInOrder() }
    }

    /// Readings per meter id, in time order.
    func byMeter(_ intervals: [[(district: String, readings: [Reading])]]) -> [String: [Reading]] {
        var result: [String: [Reading]] = [:]
        for interval in intervals {
            for district in interval {
                for reading in district.readings { result[reading.meterId, default: []].append(reading) }
            }
        }
        return result
    }

    // MARK: Determinism ("Data for realistic load": seeded and reproducible)

    func testSameSeedGivesIdenticalReadingsOver200Intervals() {
        var a = makeFleet(seed: 7)
        var b = makeFleet(seed: 7)
        for step in 0..<200 {
            let ra = a.nextInterval()
            let rb = b.nextInterval()
            XCTAssertEqual(ra, rb, "interval \(step)")
            XCTAssertEqual(ra.keys.sorted(), ["d1", "d2"])
        }
        XCTAssertEqual(a.meters, b.meters)
    }

    func testAMetersStreamDoesNotDependOnOtherDistricts() {
        var alone = makeFleet(seed: 7, districts: ["d2"])
        var together = makeFleet(seed: 7, districts: ["d1", "d2", "d3"])
        for _ in 0..<50 {
            XCTAssertEqual(alone.nextInterval()["d2"], together.nextInterval()["d2"])
        }
    }

    func testDifferentSeedDiffers() {
        var a = makeFleet(seed: 1)
        var b = makeFleet(seed: 2)
        var differing = 0
        for _ in 0..<20 where a.nextInterval() != b.nextInterval() { differing += 1 }
        XCTAssertEqual(differing, 20)
        XCTAssertNotEqual(a.meters.map(\.customerClass), b.meters.map(\.customerClass))
    }

    // MARK: Registers ("Readings": monotonic registers, sum check)

    func testRegistersAreMonotonic() {
        var fleet = makeFleet()
        for (id, readings) in byMeter(run(&fleet, 400)) {
            for (previous, current) in zip(readings, readings.dropFirst()) {
                XCTAssertGreaterThanOrEqual(current.energyTotal, previous.energyTotal, id)
                XCTAssertGreaterThanOrEqual(current.energySharp, previous.energySharp, id)
                XCTAssertGreaterThanOrEqual(current.energyPeak, previous.energyPeak, id)
                XCTAssertGreaterThanOrEqual(current.energyFlat, previous.energyFlat, id)
                XCTAssertGreaterThanOrEqual(current.energyValley, previous.energyValley, id)
                XCTAssertGreaterThanOrEqual(current.energyReverse, previous.energyReverse, id)
                XCTAssertGreaterThan(current.timestampMs, previous.timestampMs, id)
            }
        }
    }

    func testTotalEqualsSumOfTOURegistersExactly() {
        var fleet = makeFleet()
        var count = 0
        for interval in run(&fleet, 300) {
            for reading in interval.flatMap(\.readings) {
                XCTAssertEqual(
                    reading.energyTotal,
                    reading.energySharp + reading.energyPeak + reading.energyFlat + reading.energyValley,
                    reading.meterId)
                count += 1
            }
        }
        XCTAssertGreaterThan(count, 300 * 60 * 9 / 10)
    }

    // MARK: TOU ("Tariffs": periods by local hour at +08:00; the interval's start hour)

    func testTheRegisterThatGrewMatchesThePeriodOfTheIntervalsLocalHour() {
        var fleet = makeFleet()
        var grewPerPeriod: [String: Int] = [:]
        for (id, readings) in byMeter(run(&fleet, 2 * 96)) {
            for (previous, current) in zip(readings, readings.dropFirst())
            where current.timestampMs - previous.timestampMs == Self.interval {
                let grew = [
                    ("sharp", current.energySharp - previous.energySharp),
                    ("peak", current.energyPeak - previous.energyPeak),
                    ("flat", current.energyFlat - previous.energyFlat),
                    ("valley", current.energyValley - previous.energyValley),
                ].filter { $0.1 > 0 }.map(\.0)
                let expected = Self.expectedPeriod(localHour: Self.localHour(previous.timestampMs))
                XCTAssertTrue(grew.isEmpty || grew == [expected], "\(id) at \(current.timestampMs): \(grew)")
                if let period = grew.first { grewPerPeriod[period, default: 0] += 1 }
            }
        }
        XCTAssertEqual(Set(grewPerPeriod.keys), ["sharp", "peak", "flat", "valley"])
    }

    func testTOUTableCoversTheDayAsDocumented() {
        var hours: [MeterFleet.TOUPeriod: Int] = [:]
        for hour in 0..<24 {
            let period = MeterFleet.touPeriod(localHour: hour)
            XCTAssertEqual(period.rawValue, Self.expectedPeriod(localHour: hour), "hour \(hour)")
            hours[period, default: 0] += 1
        }
        XCTAssertEqual(hours, [.sharp: 2, .peak: 6, .flat: 8, .valley: 8])
    }

    // MARK: Summary meter ("Smart district": line loss = supply − Σ customers)

    func testSummaryMeterIsTwoToSixPercentAboveItsCustomers() {
        var fleet = makeFleet(meters: 40)
        var checked = 0
        var previous: [String: Reading] = [:]
        for interval in run(&fleet, 300) {
            for district in interval {
                var current: [String: Reading] = [:]
                for reading in district.readings { current[reading.meterId] = reading }
                defer { for (id, reading) in current { previous[id] = reading } }
                let summaryId = MeterFleet.summaryMeterId(district.district)
                let customers = (1...40).map { MeterFleet.customerMeterId(district.district, $0) }
                let ids = customers + [summaryId]
                // Both ends of the interval delivered for every meter of the district.
                let end = district.readings.first?.timestampMs ?? 0
                guard
                    ids.allSatisfy({
                        current[$0]?.timestampMs == end && previous[$0]?.timestampMs == end - Self.interval
                    })
                else { continue }
                func net(_ id: String) -> Int64 {
                    let now = current[id]!, before = previous[id]!
                    return Int64(now.energyTotal) - Int64(before.energyTotal)
                        - (Int64(now.energyReverse) - Int64(before.energyReverse))
                }
                let sum = customers.map(net).reduce(0, +)
                guard sum >= 100 else { continue }  // below 1 kWh, rounding of 0.01 kWh dominates
                let ratio = Double(net(summaryId)) / Double(sum)
                XCTAssertGreaterThanOrEqual(ratio, 1.02, "\(district.district) \(ratio)")
                XCTAssertLessThanOrEqual(ratio, 1.06, "\(district.district) \(ratio)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 300)
    }

    // MARK: Load shape

    func testResidentialEveningEnergyExceedsNightEnergy() {
        var fleet = makeFleet(meters: 50)
        let residential = Set(fleet.meters.filter { $0.customerClass == .residential }.map(\.id))
        XCTAssertGreaterThan(residential.count, 60)
        var evening: [Double] = []
        var night: [Double] = []
        for (id, readings) in byMeter(run(&fleet, 7 * 96)) where residential.contains(id) {
            for (previous, current) in zip(readings, readings.dropFirst())
            where current.timestampMs - previous.timestampMs == Self.interval {
                let energy = Double(current.energyTotal - previous.energyTotal)
                switch Self.localHour(previous.timestampMs) {
                case 19..<22: evening.append(energy)
                case 1..<5: night.append(energy)
                default: break
                }
            }
        }
        let eveningMean = evening.reduce(0, +) / Double(evening.count)
        let nightMean = night.reduce(0, +) / Double(night.count)
        XCTAssertGreaterThan(eveningMean, 2 * nightMean, "evening \(eveningMean) night \(nightMean)")
    }

    func testClassesPhasesAndIds() {
        let fleet = makeFleet(districts: ["north", "south"], meters: 500)
        let customers = fleet.meters.filter { !$0.isSummary }
        XCTAssertEqual(customers.count, 1000)
        let residential = customers.filter { $0.customerClass == .residential }.count
        let commercial = customers.filter { $0.customerClass == .commercial }.count
        let industrial = customers.filter { $0.customerClass == .smallIndustrial }.count
        XCTAssertEqual(Double(residential) / 1000, 0.80, accuracy: 0.05)
        XCTAssertEqual(Double(commercial) / 1000, 0.15, accuracy: 0.04)
        XCTAssertEqual(Double(industrial) / 1000, 0.05, accuracy: 0.025)
        XCTAssertEqual(fleet.meter("north-m0001")?.phase, .a)
        XCTAssertEqual(fleet.meter("north-m0002")?.phase, .b)
        XCTAssertEqual(fleet.meter("north-m0003")?.phase, .c)
        XCTAssertEqual(fleet.meter("north-m0010")?.phase, .three)
        XCTAssertEqual(fleet.meter("south-summary")?.phase, .three)
        XCTAssertEqual(fleet.meter("south-summary")?.isSummary, true)
        XCTAssertEqual(customers.filter { $0.phase == .three }.count, 100)
        XCTAssertEqual(fleet.meters.last?.id, "south-summary")
    }

    // MARK: Grid and gaps ("Readings": 15-min grid, expected minus received)

    func testTimestampsAreOnTheFifteenMinuteGrid() {
        var fleet = MeterFleet(
            seed: 3, districts: ["d"], metersPerDistrict: 10, startMs: Self.start + 123_456)
        XCTAssertEqual(fleet.startMs, Self.start + 0)
        for step in 1...200 {
            let readings = fleet.nextInterval()["d"]!
            for reading in readings {
                XCTAssertEqual(reading.timestampMs % Self.interval, 0)
                XCTAssertEqual(reading.timestampMs, Self.start + Int64(step) * Self.interval)
            }
        }
    }

    func testShareOfMissingReadingsIsAboutTheConfiguredProbability() {
        var fleet = makeFleet(meters: 50)
        let intervals = 400
        let delivered = run(&fleet, intervals).flatMap { $0.flatMap(\.readings) }.count
        let expected = intervals * 2 * 51
        let share = Double(expected - delivered) / Double(expected)
        XCTAssertEqual(share, fleet.configuration.missingProbability, accuracy: 0.002, "\(share)")
        XCTAssertGreaterThan(expected - delivered, 0)
    }

    // MARK: Events, voltage, power

    func testPowerDownReportsNoConsumptionUntilPowerUp() {
        var configuration = MeterFleet.Configuration()
        configuration.powerDownProbability = 0.01
        configuration.missingProbability = 0
        var fleet = makeFleet(configuration: configuration)
        let down = UInt32(MeterEvent.powerDown.rawValue)
        let up = UInt32(MeterEvent.powerUp.rawValue)
        var outages = 0
        for (id, readings) in byMeter(run(&fleet, 300)) where !id.hasSuffix("summary") {
            var isDown = false
            for (previous, current) in zip(readings, readings.dropFirst()) {
                if current.events & down != 0 {
                    XCTAssertFalse(isDown, id)
                    isDown = true
                    outages += 1
                } else if current.events & up != 0 {
                    XCTAssertTrue(isDown, id)
                    isDown = false
                }
                if isDown {
                    XCTAssertEqual(current.energyTotal, previous.energyTotal, id)
                    XCTAssertEqual(current.energyReverse, previous.energyReverse, id)
                    XCTAssertTrue(current.voltageDv.allSatisfy { $0 == 0 }, id)
                    XCTAssertEqual(current.activePowerW, 0, id)
                }
            }
        }
        XCTAssertGreaterThan(outages, 50)
    }

    func testVoltageAround220WithEveningSagsAndPlausiblePower() {
        var fleet = makeFleet(meters: 100)
        var voltages: [UInt32] = []
        var eveningSags = 0
        var otherSags = 0
        for interval in run(&fleet, 2 * 96) {
            for reading in interval.flatMap(\.readings) where reading.voltageDv.allSatisfy({ $0 > 0 }) {
                XCTAssertTrue(reading.voltageDv.count == 1 || reading.voltageDv.count == 3)
                XCTAssertEqual(reading.voltageDv.count, reading.currentMa.count)
                voltages += reading.voltageDv
                let sag = reading.voltageDv.contains { $0 < 1980 }
                let hour = Self.localHour(reading.timestampMs - Self.interval)
                if sag { if (18..<22).contains(hour) { eveningSags += 1 } else { otherSags += 1 } }
                // Power factor of a load without PV stays in the modelled 0.85–0.98.
                if reading.activePowerW > 0 && fleet.meter(reading.meterId)?.pvKWp == 0 {
                    let pf = Double(reading.activePowerW)
                        / (Double(reading.activePowerW * reading.activePowerW
                            + reading.reactivePowerVar * reading.reactivePowerVar)).squareRoot()
                    XCTAssertGreaterThanOrEqual(pf, 0.84, reading.meterId)
                    XCTAssertLessThanOrEqual(pf, 0.99, reading.meterId)
                }
            }
        }
        voltages.sort()
        let median = voltages[voltages.count / 2]
        XCTAssertTrue((2150...2300).contains(median), "median \(median)")
        XCTAssertGreaterThan(eveningSags, 0)
        XCTAssertGreaterThan(eveningSags, 5 * otherSags)
    }

    // MARK: CSV

    func testCSVRowsPutPhasesInTheirColumns() {
        var configuration = MeterFleet.Configuration()
        configuration.missingProbability = 0
        var fleet = MeterFleet(
            seed: 5, districts: ["d"], metersPerDistrict: 10, startMs: Self.start,
            configuration: configuration)
        let readings = fleet.nextInterval()["d"]!
        let header = MeterFleet.csvHeader.split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertEqual(header.count, 17)
        XCTAssertEqual(header.first, "meter_id")
        let rows = fleet.csvRows(readings)
        XCTAssertEqual(rows.count, 11)
        let cells = rows.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        for row in cells { XCTAssertEqual(row.count, 17) }
        let b = cells.first { $0[0] == "d-m0002" }!
        XCTAssertEqual(b[8], "")
        XCTAssertEqual(b[9], String(readings[1].voltageDv[0]))
        XCTAssertEqual(b[10], "")
        XCTAssertEqual(b[12], String(readings[1].currentMa[0]))
        let three = cells.first { $0[0] == "d-m0010" }!
        XCTAssertTrue(three[8...13].allSatisfy { !$0.isEmpty })
        let summary = cells.last!
        XCTAssertEqual(summary[0], "d-summary")
        XCTAssertEqual(summary[2], String(readings.last!.energyTotal))
    }

    // MARK: Generator

    func testSplitMix64ReferenceValuesAndDistributions() {
        // Reference outputs for seed 1234567 (Vigna's splitmix64.c).
        var rng = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(rng.next(), 6_457_827_717_110_365_317)
        XCTAssertEqual(rng.next(), 3_203_168_211_198_807_973)
        var sum = 0.0
        var squares = 0.0
        var uniformMin = 1.0
        var uniformMax = 0.0
        for _ in 0..<20_000 {
            let g = rng.nextGaussian()
            sum += g
            squares += g * g
            let u = rng.nextDouble()
            uniformMin = min(uniformMin, u)
            uniformMax = max(uniformMax, u)
        }
        XCTAssertEqual(sum / 20_000, 0, accuracy: 0.03)
        XCTAssertEqual(squares / 20_000, 1, accuracy: 0.05)
        XCTAssertGreaterThanOrEqual(uniformMin, 0)
        XCTAssertLessThan(uniformMax, 1)
    }

    func testDeterministicMathMatchesLibm() {
        for x in stride(from: -30.0, through: 30.0, by: 0.37) {
            XCTAssertEqual(DeterministicMath.exp(x), Foundation.exp(x), accuracy: Foundation.exp(x) * 1e-14)
        }
        for x in [1e-300, 1e-9, 0.001, 0.5, 0.999, 1, 1.5, 2, 10, 12345.678, 1e300] {
            let expected = Foundation.log(x)
            XCTAssertEqual(DeterministicMath.log(x), expected, accuracy: 1e-13 * max(1, abs(expected)))
        }
    }
}
