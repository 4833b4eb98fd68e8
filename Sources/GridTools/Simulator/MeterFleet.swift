import Node
import Contracts
import GridBase
import GridProto

/// A seeded, deterministic fleet of smart electricity meters, district by district, for
/// tests, demos and benchmarks (Docs: DOMAIN.md "Readings", "Tariffs", "Data for realistic
/// load"). Pure: no I/O, no clock, no global randomness.
///
/// ## What is modelled
/// - **Meters.** Each district has `metersPerDistrict` customer meters `"<district>-m0001"`,
///   `"<district>-m0002"`, … and one summary (master) meter `"<district>-summary"`.
///   Customer meter *n* (1-based) is on phase A, B, C round robin (`(n − 1) mod 3`), except
///   every 10th meter (n divisible by 10), which is three-phase; the summary meter is
///   three-phase. Customer class: residential 80%, commercial 15%, small industrial 5%.
/// - **Load.** Mean power of the class (residential 0.4 kW, commercial 2.5 kW, small
///   industrial 10 kW) × a per-meter log-normal scale (σ = 0.5, mean 1) × the class's daily
///   shape at the interval's local mid-time × a weekday/weekend factor × a seasonal factor
///   by local month × multiplicative log-normal noise per interval. Daily shapes (each
///   normalised to mean 1 over the day): residential has a morning peak near 07:15, a small
///   midday bump, the evening peak 19:00–21:00 and a night trough near 03:30; commercial is
///   a 08:00–18:00 plateau on a low base; small industrial is flat with a day-shift bump.
///   Weekend factors: residential 1.10, commercial 0.60, small industrial 0.55. Seasonal
///   factors (Jan…Dec): 1.15 1.10 0.95 0.90 0.92 1.05 1.25 1.28 1.05 0.90 0.95 1.10.
/// - **Local time** is UTC + `Configuration.utcOffsetMs` (+08:00 by default), a fixed offset
///   as for tariffs.
/// - **Registers** (0.01 kWh, `UInt64`) are cumulative and never decrease. Each interval's
///   energy is accumulated with a fractional remainder, so the integer registers are exact
///   and carry no drift. All forward energy of an interval goes to one time-of-use register,
///   the period of the local hour in which the interval *starts* (`touPeriod(localHour:)`),
///   so `energyTotal == energySharp + energyPeak + energyFlat + energyValley` holds exactly
///   in every reading. Registers start at seeded values far below the 1,000,000.00 kWh
///   rollover; rollover is not modelled.
/// - **Rooftop PV.** About 1% of customer meters (`Configuration.pvShare`) have 3–8 kWp of
///   PV. Net export goes to `energyReverse` and sets `REVERSE_POWER`; active power and
///   current are then negative.
/// - **Summary meter.** Per interval its net energy (forward − reverse delta) is
///   `N + round(N · x)`, where `N` is the exact sum of its customers' net register deltas and
///   `x` is the district's line-loss ratio drawn each interval from the district's base (uniform
///   3–5%) plus N(0, 0.3%) noise, clamped to 2.5–5.5%. So the summary is 2–6% above its
///   customers whenever `N` is large enough for the rounding not to matter (N ≥ 100, i.e.
///   1 kWh). The summary meter never has events of its own and is never powered down.
/// - **Voltage** (0.1 V, one entry per phase: 1 for single-phase, 3 = A, B, C for
///   three-phase): the district's transformer level (about 225 V) plus a per-phase AR(1)
///   common component shared by all meters on that phase (so topology identification by
///   voltage correlation has a signal), minus a feeder drop proportional to the meter's
///   distance and to the residential load shape, plus a per-meter offset and noise.
///   `Configuration.weakSupplyShare` (5%) of meters sit at the far end of their feeder and
///   sag below 198.0 V around the evening peak. Current (mA) = phase power / (V · PF).
/// - **Power.** Active power (W) is the interval's average net power; reactive power (var)
///   follows from a per-meter power factor in 0.85–0.98.
/// - **Events** (small seeded probabilities per meter and interval, see `Configuration`):
///   a power-down of 1–8 intervals (the reading of the first interval carries `POWER_DOWN`;
///   while down the meter reports zero consumption, zero voltage, current and power; the
///   first interval back carries `POWER_UP`), `COVER_OPEN`, `MAGNETIC_INTERFERENCE`.
/// - **Missing readings.** Each meter skips an interval's reading with probability
///   `Configuration.missingProbability` (0.5%). The meter keeps metering; a skipped reading's
///   event bits are reported with the meter's next delivered reading.
///
/// ## Determinism contract
/// The readings are a pure function of (seed, district names, meters per district,
/// interval, aligned start, configuration) and of how many intervals were generated before.
/// Every meter draws from its own `SplitMix64` stream derived from (seed, meter id), and each
/// district's common voltage and loss terms from a stream derived from (seed, district);
/// so a meter's readings do not depend on the order or number of other districts. Floating
/// point uses only IEEE-754 basic operations, `√` and `DeterministicMath` (no libm), so the
/// output is bit-identical across platforms. Nothing reads the clock or the system
/// random source.
public struct MeterFleet: Sendable {
    /// Customer class: selects the daily load shape, weekend factor and mean power.
    public enum CustomerClass: String, Sendable, CaseIterable {
        case residential, commercial, smallIndustrial
    }

    /// The phase(s) a meter is wired to.
    public enum Phase: String, Sendable {
        case a = "A", b = "B", c = "C", three = "ABC"
    }

    /// Chinese time-of-use periods.
    public enum TOUPeriod: String, Sendable, CaseIterable {
        case sharp, peak, flat, valley
    }

    /// Tunables; the defaults are what the doc comments describe.
    public struct Configuration: Sendable {
        /// Local time offset from UTC (tariff local time), +08:00 for China.
        public var utcOffsetMs: Int64 = 8 * 3_600_000
        /// Probability that a meter's reading for an interval is not delivered.
        public var missingProbability: Double = 0.005
        /// Probability per interval that a powered meter loses supply.
        public var powerDownProbability: Double = 0.0005
        /// Longest power-down, in intervals (uniform 1...this).
        public var maxPowerDownIntervals: Int = 8
        public var coverOpenProbability: Double = 0.0002
        public var magneticInterferenceProbability: Double = 0.0001
        /// Share of customer meters with rooftop PV.
        public var pvShare: Double = 0.01
        /// Share of customer meters at the far end of a weak feeder (evening sags < 198 V).
        public var weakSupplyShare: Double = 0.05

        public init() {}
    }

    /// The archive description of one meter.
    public struct Meter: Sendable, Equatable {
        public let id: String
        public let district: String
        /// 1-based number within the district; 0 for the summary meter.
        public let number: Int
        public let phase: Phase
        /// nil for the summary meter.
        public let customerClass: CustomerClass?
        public var isSummary: Bool { customerClass == nil }
        /// Mean load before shape, season and noise, kW (0 for the summary meter).
        public let meanLoadKW: Double
        /// Rooftop PV peak power, kWp (0 without PV).
        public let pvKWp: Double
        /// At the end of a weak feeder: sags below 198.0 V around the evening peak.
        public let weakSupply: Bool
        /// Power factor around which this meter's load varies (0 for the summary meter, whose
        /// power factor follows from its customers' active and reactive power).
        public let powerFactor: Double
    }

    /// The summary (master) meter id of a district.
    public static func summaryMeterId(_ district: String) -> String { "\(district)-summary" }

    /// Customer meter id: `"<district>-m<nnnn>"`.
    public static func customerMeterId(_ district: String, _ number: Int) -> String {
        let digits = String(number)
        return "\(district)-m" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The TOU period table used for the registers (local hour 0–23):
    ///
    /// | period | local hours                      | hours/day |
    /// |--------|----------------------------------|-----------|
    /// | sharp  | 19–21                            | 2         |
    /// | peak   | 08–11, 17–19, 21–22              | 6         |
    /// | flat   | 07–08, 11–17, 22–23              | 8         |
    /// | valley | 23–07                            | 8         |
    ///
    /// (a–b means from a:00 up to, not including, b:00.)
    public static func touPeriod(localHour hour: Int) -> TOUPeriod {
        switch hour {
        case 19, 20: return .sharp
        case 8, 9, 10, 17, 18, 21: return .peak
        case 7, 11...16, 22: return .flat
        default: return .valley
        }
    }

    /// Local hour (0–23), day of week (0 = Monday … 6 = Sunday) and month (1–12) of a UTC
    /// instant at the given offset. Proleptic Gregorian calendar.
    public static func localCalendar(
        _ utcMs: Int64, utcOffsetMs: Int64 = 8 * 3_600_000
    ) -> (hour: Int, weekday: Int, month: Int) {
        let local = CivilTime.local(utcMs, offsetMs: utcOffsetMs)
        // CivilTime counts weekdays from Sunday; here 0 is Monday.
        return (Int(local.hour), Int((local.weekday + 6) % 7), Int(local.month))
    }

    /// CSV header for `csvRows(_:)`.
    public static let csvHeader =
        "meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,energy_valley,"
        + "energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,current_a_ma,current_b_ma,"
        + "current_c_ma,active_power_w,reactive_power_var,events"

    public let seed: UInt64
    public let districts: [String]
    public let metersPerDistrict: Int
    public let intervalMs: Int64
    /// `startMs` of the initialiser rounded down to the interval grid (UTC epoch based).
    public let startMs: Int64
    public let configuration: Configuration
    /// Timestamp of the last generated readings; `startMs` before the first interval. The
    /// next call to `nextInterval()` returns readings at `currentMs + intervalMs`, metering
    /// the interval [currentMs, currentMs + intervalMs).
    public private(set) var currentMs: Int64

    private var districtStates: [DistrictState]
    private let shapes: Shapes
    private let phaseById: [String: Phase]

    /// - Parameters:
    ///   - seed: the only source of randomness.
    ///   - districts: district names, in the order `meters` lists them.
    ///   - metersPerDistrict: customer meters per district (the summary meter is extra).
    ///   - intervalMs: reading interval, 15 min by default.
    ///   - startMs: UTC ms; rounded down to the interval grid. Registers hold their initial
    ///     values at this instant; the first readings are one interval later.
    public init(
        seed: UInt64,
        districts: [String],
        metersPerDistrict: Int,
        intervalMs: Int64 = 15 * 60_000,
        startMs: Int64,
        configuration: Configuration = Configuration()
    ) {
        precondition(intervalMs > 0, "intervalMs must be positive")
        precondition(metersPerDistrict >= 0, "metersPerDistrict must not be negative")
        precondition(Set(districts).count == districts.count, "district names must be unique")
        self.seed = seed
        self.districts = districts
        self.metersPerDistrict = metersPerDistrict
        self.intervalMs = intervalMs
        self.startMs = startMs - CivilTime.floorMod(startMs, intervalMs)
        self.currentMs = self.startMs
        self.configuration = configuration
        self.shapes = Shapes()
        var states: [DistrictState] = []
        var phases: [String: Phase] = [:]
        for district in districts {
            let state = DistrictState(
                seed: seed, name: district, meters: metersPerDistrict, configuration: configuration)
            for meter in state.customers { phases[meter.meter.id] = meter.meter.phase }
            phases[state.summary.meter.id] = .three
            states.append(state)
        }
        self.districtStates = states
        self.phaseById = phases
    }

    /// Every meter, district by district: customers in number order, then the summary meter.
    public var meters: [Meter] {
        districtStates.flatMap { $0.customers.map(\.meter) + [$0.summary.meter] }
    }

    /// The archive description of a meter, or nil.
    public func meter(_ id: String) -> Meter? {
        for district in districtStates {
            if district.summary.meter.id == id { return district.summary.meter }
            if let found = district.customers.first(where: { $0.meter.id == id }) {
                return found.meter
            }
        }
        return nil
    }

    /// Advances one interval and returns, per district, the readings at the new grid
    /// timestamp (customers in number order, then the summary meter; skipped readings are
    /// absent).
    public mutating func nextInterval() -> [String: [GridProto.Reading]] {
        var result: [String: [GridProto.Reading]] = [:]
        for (district, readings) in nextIntervalInOrder() { result[district] = readings }
        return result
    }

    /// As `nextInterval()`, in the order of `districts`.
    public mutating func nextIntervalInOrder() -> [(district: String, readings: [GridProto.Reading])] {
        let start = currentMs
        let end = start + intervalMs
        currentMs = end
        let offset = configuration.utcOffsetMs
        let startHour = MeterFleet.localCalendar(start, utcOffsetMs: offset).hour
        let period = MeterFleet.touPeriod(localHour: startHour)
        let mid = start + intervalMs / 2
        let calendar = MeterFleet.localCalendar(mid, utcOffsetMs: offset)
        let local = mid + offset
        let msOfDay = local - CivilTime.floorDiv(local, 86_400_000) * 86_400_000
        let context = IntervalContext(
            end: end,
            hours: Double(intervalMs) / 3_600_000,
            period: period,
            factors: shapes.factors(
                hourOfDay: Double(msOfDay) / 3_600_000, weekday: calendar.weekday,
                month: calendar.month),
            configuration: configuration)
        var output: [(district: String, readings: [GridProto.Reading])] = []
        output.reserveCapacity(districtStates.count)
        for index in districtStates.indices {
            output.append(
                (districtStates[index].summary.meter.district, districtStates[index].step(context)))
        }
        return output
    }

    /// One CSV line per reading, in the `csvHeader` format. Voltage and current go to the
    /// columns of the meter's phase(s); cells of absent phases are empty. For ids this fleet
    /// does not know, three entries are A, B, C and one entry is A.
    public func csvRows(_ readings: [GridProto.Reading]) -> [String] {
        readings.map { reading in
            let phase = phaseById[reading.meterId]
            var voltage = ["", "", ""]
            var current = ["", "", ""]
            func place(_ values: [String], into cells: inout [String]) {
                if values.count >= 3 {
                    for i in 0..<3 { cells[i] = values[i] }
                } else if let first = values.first {
                    switch phase {
                    case .b: cells[1] = first
                    case .c: cells[2] = first
                    default: cells[0] = first
                    }
                }
            }
            place(reading.voltageDv.map { String($0) }, into: &voltage)
            place(reading.currentMa.map { String($0) }, into: &current)
            let fields: [String] =
                [
                    reading.meterId, String(reading.timestampMs), String(reading.energyTotal),
                    String(reading.energySharp), String(reading.energyPeak),
                    String(reading.energyFlat), String(reading.energyValley),
                    String(reading.energyReverse),
                ] + voltage + current + [
                    String(reading.activePowerW), String(reading.reactivePowerVar),
                    String(reading.events),
                ]
            return fields.joined(separator: ",")
        }
    }
}

// MARK: - Load shapes

/// What every meter of the fleet shares in one interval.
private struct IntervalContext {
    var end: Int64
    var hours: Double
    var period: MeterFleet.TOUPeriod
    var factors: Shapes.Factors
    var configuration: MeterFleet.Configuration
}

/// Daily shapes (mean 1 over the day), weekend and seasonal factors.
private struct Shapes: Sendable {
    struct Factors {
        /// Shape × weekday/weekend × season, per class (indexed like `CustomerClass.allCases`).
        var load: [Double]
        /// PV output per kWp, 0…1.
        var pv: Double
        /// Residential shape relative to its daily maximum, 0…1: drives feeder voltage drop.
        var feederLoad: Double
    }

    static let season: [Double] = [1.15, 1.10, 0.95, 0.90, 0.92, 1.05, 1.25, 1.28, 1.05, 0.90, 0.95, 1.10]
    static let pvSeason: [Double] = [0.60, 0.70, 0.85, 0.95, 1.0, 1.0, 1.0, 1.0, 0.90, 0.80, 0.65, 0.55]
    static let weekend: [Double] = [1.10, 0.60, 0.55]

    let normaliser: [Double]
    let residentialMax: Double

    init() {
        var normaliser: [Double] = []
        var residentialMax = 0.0
        for index in 0..<3 {
            var sum = 0.0
            for step in 0..<96 {
                let value = Shapes.raw(index, (Double(step) + 0.5) / 4)
                sum += value
                if index == 0 { residentialMax = max(residentialMax, value) }
            }
            normaliser.append(96 / sum)
        }
        self.normaliser = normaliser
        self.residentialMax = residentialMax
    }

    func factors(hourOfDay h: Double, weekday: Int, month: Int) -> Factors {
        let isWeekend = weekday >= 5
        var load: [Double] = []
        for index in 0..<3 {
            var value = Shapes.raw(index, h) * normaliser[index] * Shapes.season[month - 1]
            if isWeekend { value *= Shapes.weekend[index] }
            load.append(value)
        }
        let x = (h - 12.5) / 6
        let pv = max(0, 1 - x * x) * Shapes.pvSeason[month - 1]
        return Factors(load: load, pv: pv, feederLoad: Shapes.raw(0, h) / residentialMax)
    }

    /// Unnormalised daily shape of a class at local hour `h` (0 ≤ h < 24).
    static func raw(_ classIndex: Int, _ h: Double) -> Double {
        switch classIndex {
        case 0:  // residential
            return 0.55 + 0.6 * bump(h, 7.25, 0.9) + 0.25 * bump(h, 12.5, 1.3)
                + 1.2 * bump(h, 20.0, 1.5) - 0.2 * bump(h, 3.5, 2.0)
        case 1:  // commercial
            return 0.2 + plateau(h, 8, 18, 0.35)
        default:  // small industrial
            return 0.8 + 0.2 * plateau(h, 8, 17, 0.5)
        }
    }

    /// Gaussian bump on the 24 h circle.
    static func bump(_ h: Double, _ centre: Double, _ width: Double) -> Double {
        var d = abs(h - centre)
        d = min(d, 24 - d)
        return DeterministicMath.exp(-d * d / (2 * width * width))
    }

    /// Smooth 0→1→0 step between `from` and `to`.
    static func plateau(_ h: Double, _ from: Double, _ to: Double, _ edge: Double) -> Double {
        logistic((h - from) / edge) * logistic((to - h) / edge)
    }

    static func logistic(_ x: Double) -> Double { 1 / (1 + DeterministicMath.exp(-x)) }
}

// MARK: - Registers

private struct Registers: Sendable {
    var sharp: UInt64 = 0
    var peak: UInt64 = 0
    var flat: UInt64 = 0
    var valley: UInt64 = 0
    var reverse: UInt64 = 0
    var total: UInt64 { sharp + peak + flat + valley }

    mutating func add(_ energy: UInt64, to period: MeterFleet.TOUPeriod) {
        switch period {
        case .sharp: sharp += energy
        case .peak: peak += energy
        case .flat: flat += energy
        case .valley: valley += energy
        }
    }

    /// Seeded starting registers of about `kWh`, split 10/30/30/30 over sharp/peak/flat/valley.
    static func initial(_ rng: inout SplitMix64, maxKWh: Double) -> Registers {
        let total = UInt64(rng.nextDouble() * maxKWh * 100)
        var registers = Registers()
        registers.sharp = total / 10
        registers.peak = total * 3 / 10
        registers.flat = total * 3 / 10
        registers.valley = total - registers.sharp - registers.peak - registers.flat
        return registers
    }

    func reading(_ id: String, _ timestampMs: Int64) -> GridProto.Reading {
        GridProto.Reading(
            meterId: id, timestampMs: timestampMs, energyTotal: total, energySharp: sharp,
            energyPeak: peak, energyFlat: flat, energyValley: valley, energyReverse: reverse)
    }
}

/// Adds fractional energy (0.01 kWh units) to a remainder and takes out the whole units.
private func takeWhole(_ remainder: inout Double, adding units: Double) -> UInt64 {
    remainder += units
    let whole = remainder.rounded(.down)
    remainder -= whole
    return UInt64(whole)
}

private func dv(_ value: Double) -> UInt32 { UInt32(max(0, value.rounded())) }

private func ma(_ watts: Double, _ voltageDv: UInt32, _ powerFactor: Double) -> Int32 {
    guard voltageDv > 0 else { return 0 }
    let amps = watts / (Double(voltageDv) / 10 * powerFactor)
    return Int32(max(-2e9, min(2e9, (amps * 1000).rounded())))
}

// MARK: - Customer meters

private struct CustomerState: Sendable {
    let meter: MeterFleet.Meter
    var rng: SplitMix64
    var registers: Registers
    var forwardRemainder = 0.0
    var reverseRemainder = 0.0
    /// Intervals of supply loss still to come, the current one included.
    var downRemaining = 0
    var wasDown = false
    /// Event bits of skipped readings, reported with the next delivered one.
    var pendingEvents: UInt32 = 0
    /// Feeder position 0 (at the transformer) … 1 (far end).
    let feederDistance: Double
    /// Fixed voltage offset of the meter, 0.1 V.
    let voltageOffsetDv: Double
    /// Per-phase share of a three-phase meter's power (sums to 1).
    let phaseWeights: [Double]

    init(seed: UInt64, district: String, number: Int, configuration: MeterFleet.Configuration) {
        let id = MeterFleet.customerMeterId(district, number)
        var rng = SplitMix64(seed: seed, label: id)
        let phase: MeterFleet.Phase =
            number % 10 == 0 ? .three : [.a, .b, .c][(number - 1) % 3]
        let classDraw = rng.nextDouble()
        let customerClass: MeterFleet.CustomerClass =
            classDraw < 0.80 ? .residential : classDraw < 0.95 ? .commercial : .smallIndustrial
        let classMean: Double
        let registerScale: Double
        switch customerClass {
        case .residential: (classMean, registerScale) = (0.4, 1)
        case .commercial: (classMean, registerScale) = (2.5, 5)
        case .smallIndustrial: (classMean, registerScale) = (10, 20)
        }
        let sigma = 0.5
        let scale = rng.nextLogNormal(mu: -sigma * sigma / 2, sigma: sigma)
        let hasPV = rng.chance(configuration.pvShare)
        let pvKWp = rng.nextDouble(in: 3, 8)
        let weak = rng.chance(configuration.weakSupplyShare)
        let u = rng.nextDouble()
        let powerFactor = rng.nextDouble(in: 0.87, 0.96)
        let offset = rng.nextGaussian(standardDeviation: 8)
        var weights = [1.0 / 3, 1.0 / 3, 1.0 / 3]
        if phase == .three {
            let raw = (0..<3).map { _ in 1 + rng.nextDouble(in: -0.15, 0.15) }
            let sum = raw[0] + raw[1] + raw[2]
            weights = raw.map { $0 / sum }
        } else {
            for _ in 0..<3 { _ = rng.nextDouble() }  // keep the stream layout uniform
        }
        var registers = Registers.initial(&rng, maxKWh: 20_000 * registerScale)
        let reverseStart = rng.nextDouble()
        if hasPV { registers.reverse = UInt64(reverseStart * 5_000 * 100) }
        self.meter = MeterFleet.Meter(
            id: id, district: district, number: number, phase: phase,
            customerClass: customerClass, meanLoadKW: classMean * scale,
            pvKWp: hasPV ? pvKWp : 0, weakSupply: weak, powerFactor: powerFactor)
        self.feederDistance = weak ? 0.9 + 0.1 * u : 0.6 * u * u
        self.voltageOffsetDv = offset
        self.phaseWeights = weights
        self.registers = registers
        self.rng = rng
    }

    /// Meters one interval. Returns the net register delta (forward − reverse, 0.01 kWh),
    /// the per-phase active power (W, A/B/C), reactive power (var) and the reading, if
    /// delivered.
    mutating func step(
        _ context: IntervalContext, district: DistrictVoltage
    ) -> (net: Int64, phaseWatts: [Double], vars: Double, reading: GridProto.Reading?) {
        let configuration = context.configuration
        var events: UInt32 = 0
        // Fixed draw order, whatever the state, except for the outage length.
        let noise = rng.nextLogNormal(mu: -0.12 * 0.12 / 2, sigma: 0.12)
        let cloud = rng.nextDouble(in: 0.4, 1.0)
        let pfJitter = rng.nextGaussian(standardDeviation: 0.005)
        let voltageNoise = (0..<3).map { _ in rng.nextGaussian(standardDeviation: 5) }
        let powerDown = rng.chance(configuration.powerDownProbability)
        let coverOpen = rng.chance(configuration.coverOpenProbability)
        let magnetic = rng.chance(configuration.magneticInterferenceProbability)
        let missing = rng.chance(configuration.missingProbability)

        if downRemaining == 0 && !wasDown && powerDown {
            downRemaining = 1 + rng.nextInt(below: max(1, configuration.maxPowerDownIntervals))
            events |= UInt32(MeterEvent.powerDown.rawValue)
        }
        let down = downRemaining > 0
        if down {
            downRemaining -= 1
            wasDown = true
        } else if wasDown {
            wasDown = false
            events |= UInt32(MeterEvent.powerUp.rawValue)
        }
        if coverOpen { events |= UInt32(MeterEvent.coverOpen.rawValue) }
        if magnetic { events |= UInt32(MeterEvent.magneticInterference.rawValue) }

        let classIndex = MeterFleet.CustomerClass.allCases.firstIndex(of: meter.customerClass!)!
        var loadKW = meter.meanLoadKW * context.factors.load[classIndex] * noise
        var pvKW = meter.pvKWp * context.factors.pv * cloud
        if down {
            loadKW = 0
            pvKW = 0
        }
        let netKW = loadKW - pvKW
        let units = netKW * context.hours * 100
        var forward: UInt64 = 0
        var reverse: UInt64 = 0
        if units >= 0 {
            forward = takeWhole(&forwardRemainder, adding: units)
        } else {
            reverse = takeWhole(&reverseRemainder, adding: -units)
            events |= UInt32(MeterEvent.reversePower.rawValue)
        }
        registers.add(forward, to: context.period)
        registers.reverse += reverse

        let powerFactor = min(0.98, max(0.85, meter.powerFactor + pfJitter))
        let watts = netKW * 1000
        let vars = loadKW * 1000 * (1 - powerFactor * powerFactor).squareRoot() / powerFactor
        let phaseIndices: [Int]
        switch meter.phase {
        case .a: phaseIndices = [0]
        case .b: phaseIndices = [1]
        case .c: phaseIndices = [2]
        case .three: phaseIndices = [0, 1, 2]
        }
        var phaseWatts = [0.0, 0.0, 0.0]
        var voltages: [UInt32] = []
        var currents: [Int32] = []
        for p in phaseIndices {
            let share = phaseIndices.count == 1 ? watts : watts * phaseWeights[p]
            phaseWatts[p] = share
            let volts: UInt32 =
                down
                ? 0
                : dv(
                    district.phaseLevelDv[p] + voltageOffsetDv + voltageNoise[p]
                        - 300 * feederDistance * context.factors.feederLoad)
            voltages.append(volts)
            currents.append(ma(share, volts, powerFactor))
        }

        let net = Int64(forward) - Int64(reverse)
        if missing {
            pendingEvents |= events
            return (net, phaseWatts, vars, nil)
        }
        var reading = registers.reading(meter.id, context.end)
        reading.voltageDv = voltages
        reading.currentMa = currents
        reading.activePowerW = Int64(watts.rounded())
        reading.reactivePowerVar = Int64(vars.rounded())
        reading.events = pendingEvents | events
        pendingEvents = 0
        return (net, phaseWatts, vars, reading)
    }
}

// MARK: - Districts and summary meters

/// Per-phase voltage level at the transformer in one interval, 0.1 V.
private struct DistrictVoltage {
    var phaseLevelDv: [Double]
}

private struct SummaryState: Sendable {
    let meter: MeterFleet.Meter
    var registers: Registers
    var pendingEvents: UInt32 = 0
}

private struct DistrictState: Sendable {
    var customers: [CustomerState]
    var summary: SummaryState
    /// District stream: common voltage terms, loss ratio, summary meter noise and gaps.
    var rng: SplitMix64
    /// Transformer secondary level, 0.1 V.
    let baseVoltageDv: Double
    /// AR(1) common component per phase, 0.1 V.
    var phaseOffsetDv: [Double] = [0, 0, 0]
    /// Base line-loss ratio (loss / customer energy).
    let lossBase: Double

    init(seed: UInt64, name: String, meters: Int, configuration: MeterFleet.Configuration) {
        var rng = SplitMix64(seed: seed, label: "district:" + name)
        baseVoltageDv = min(2270, max(2230, 2250 + rng.nextGaussian(standardDeviation: 8)))
        lossBase = rng.nextDouble(in: 0.03, 0.05)
        let registers = Registers.initial(&rng, maxKWh: 200_000)
        summary = SummaryState(
            meter: MeterFleet.Meter(
                id: MeterFleet.summaryMeterId(name), district: name, number: 0, phase: .three,
                customerClass: nil, meanLoadKW: 0, pvKWp: 0, weakSupply: false, powerFactor: 0),
            registers: registers)
        customers = (0..<meters).map {
            CustomerState(seed: seed, district: name, number: $0 + 1, configuration: configuration)
        }
        self.rng = rng
    }

    mutating func step(_ context: IntervalContext) -> [GridProto.Reading] {
        for p in 0..<3 {
            phaseOffsetDv[p] = 0.8 * phaseOffsetDv[p] + rng.nextGaussian(standardDeviation: 6)
        }
        let lossNoise = rng.nextGaussian(standardDeviation: 0.003)
        let summaryVoltageNoise = (0..<3).map { _ in rng.nextGaussian(standardDeviation: 2) }
        let summaryMissing = rng.chance(context.configuration.missingProbability)
        let voltage = DistrictVoltage(phaseLevelDv: phaseOffsetDv.map { baseVoltageDv + $0 })

        var readings: [GridProto.Reading] = []
        readings.reserveCapacity(customers.count + 1)
        var net: Int64 = 0
        var phaseWatts = [0.0, 0.0, 0.0]
        var vars = 0.0
        for index in customers.indices {
            let result = customers[index].step(context, district: voltage)
            net += result.net
            for p in 0..<3 { phaseWatts[p] += result.phaseWatts[p] }
            vars += result.vars
            if let reading = result.reading { readings.append(reading) }
        }

        // Summary meter: customers' net energy plus the line loss, exactly in integers.
        let x = min(0.055, max(0.025, lossBase + lossNoise))
        var events: UInt32 = 0
        if net >= 0 {
            let supplied = UInt64(net) + UInt64((Double(net) * x).rounded())
            summary.registers.add(supplied, to: context.period)
        } else {
            let exported = UInt64(-net)
            summary.registers.reverse += exported - UInt64((Double(exported) * x).rounded())
            events |= UInt32(MeterEvent.reversePower.rawValue)
        }
        if summaryMissing {
            summary.pendingEvents |= events
            return readings
        }
        let watts = phaseWatts.map { $0 * (1 + x) }
        let totalWatts = watts[0] + watts[1] + watts[2]
        let totalVars = vars * (1 + x)
        let apparent = (totalWatts * totalWatts + totalVars * totalVars).squareRoot()
        let powerFactor = apparent > 0 ? max(0.05, abs(totalWatts) / apparent) : 1
        var reading = summary.registers.reading(summary.meter.id, context.end)
        reading.voltageDv = (0..<3).map {
            dv(baseVoltageDv + 0.5 * phaseOffsetDv[$0] + summaryVoltageNoise[$0])
        }
        reading.currentMa = (0..<3).map { ma(watts[$0], reading.voltageDv[$0], powerFactor) }
        reading.activePowerW = Int64(totalWatts.rounded())
        reading.reactivePowerVar = Int64(totalVars.rounded())
        reading.events = summary.pendingEvents | events
        summary.pendingEvents = 0
        readings.append(reading)
        return readings
    }
}
