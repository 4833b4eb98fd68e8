import GridBase
import GridProto

/// A meter's register readout at one instant: total then sharp, peak, flat, valley
/// (0.01 kWh).
struct RegisterPoint: Equatable {
    var timestampMs: Int64
    /// Exactly 5 entries: total, sharp, peak, flat, valley.
    var registers: [UInt64]

    init(timestampMs: Int64, registers: [UInt64]) {
        self.timestampMs = timestampMs
        self.registers = registers
    }

    init(_ r: Reading) {
        self.init(timestampMs: r.timestampMs, registers: [r.energyTotal, r.energySharp, r.energyPeak, r.energyFlat, r.energyValley])
    }

    var total: UInt64 { registers[0] }
    var tou: ArraySlice<UInt64> { registers[1...4] }
    /// A meter without TOU registers reports all four as zero.
    var hasTOU: Bool { tou.contains { $0 != 0 } }
}

/// One UTC day of the trailing consumption window.
struct DayBucket: Equatable {
    var day: Int64
    var energy: UInt64
    var intervals: UInt64
}

/// The per-meter VEE record at `vee/<meter>`.
///
/// Grammar (big-endian): `u8 version=1, bool hasBaseline, point billed, point accepted,
/// bool held, u32 n, n × (i64 day, u64 energy, u64 intervals)` where
/// `point = i64 timestamp, 5 × u64 register`.
///
/// Invariants: `billed` is the point billing has reached: the sum of every energy billed for
/// the meter equals `billed.total` − the baseline total (modulo rollovers), because each
/// billed segment is exactly `billed` → the next point. `accepted` is the latest reading that
/// passed VEE; `accepted == billed` unless `held` (a spike waits for confirmation), and then
/// `accepted.timestampMs > billed.timestampMs`. `window` holds at most 8 buckets (the current
/// UTC day and the 7 before), ascending by day.
struct VeeRecord: Equatable {
    var hasBaseline = false
    var billed = RegisterPoint(timestampMs: 0, registers: [0, 0, 0, 0, 0])
    var accepted = RegisterPoint(timestampMs: 0, registers: [0, 0, 0, 0, 0])
    var held = false
    var window: [DayBucket] = []

    static let windowDays: Int64 = 7

    func encoded() -> [UInt8] {
        var w = BigEndianWriter()
        w.u8(1)
        w.bool(hasBaseline)
        for p in [billed, accepted] {
            w.i64(p.timestampMs)
            for r in p.registers { w.u64(r) }
        }
        w.bool(held)
        w.u32(UInt32(window.count))
        for b in window {
            w.i64(b.day)
            w.u64(b.energy)
            w.u64(b.intervals)
        }
        return w.bytes
    }

    init() {}

    init(decoding bytes: [UInt8]) throws {
        var r = BigEndianReader(contractRecord: bytes, what: "vee")
        try r.expectVersion(1)
        hasBaseline = try r.bool()
        func point() throws -> RegisterPoint {
            let ts = try r.i64()
            var regs: [UInt64] = []
            for _ in 0..<5 { regs.append(try r.u64()) }
            return RegisterPoint(timestampMs: ts, registers: regs)
        }
        billed = try point()
        accepted = try point()
        held = try r.bool()
        let n = try r.u32()
        for _ in 0..<n { window.append(DayBucket(day: try r.i64(), energy: try r.u64(), intervals: try r.u64())) }
    }

    /// Adds billed consumption to the trailing window (bucket of the segment's end day) and
    /// drops days older than the window.
    mutating func record(energy: UInt64, intervals: UInt64, endMs: Int64) {
        let day = CivilTime.floorDiv(endMs, CivilTime.msPerDay)
        if let i = window.firstIndex(where: { $0.day == day }) {
            window[i].energy = Vee.saturatingAdd(window[i].energy, energy)
            window[i].intervals = Vee.saturatingAdd(window[i].intervals, intervals)
        } else {
            window.append(DayBucket(day: day, energy: energy, intervals: intervals))
            window.sort { $0.day < $1.day }
        }
        window.removeAll { $0.day < day - Self.windowDays }
    }

    /// (energy, intervals) of the window as seen from a reading at `atMs`: the reading's UTC
    /// day and the 7 days before it.
    func trailing(atMs: Int64) -> (energy: UInt64, intervals: UInt64) {
        let day = CivilTime.floorDiv(atMs, CivilTime.msPerDay)
        var e: UInt64 = 0, n: UInt64 = 0
        for b in window where b.day >= day - Self.windowDays && b.day <= day {
            e = Vee.saturatingAdd(e, b.energy)
            n = Vee.saturatingAdd(n, b.intervals)
        }
        return (e, n)
    }
}

/// VEE parameters with defaults filled in (DOMAIN.md "Validation, estimation, editing").
struct VeeSettings: Equatable {
    var sumTolerance: UInt64 = 2
    var spikeFactor: UInt64 = 5
    var futureToleranceMs: Int64 = 300_000
    var maxInterpolationMs: Int64 = 7_200_000
    /// Spike checks need at least this many intervals of billed history in the window (and a
    /// non-zero trailing energy: a factor over a zero average means nothing); before that,
    /// readings are billed unchecked (DOMAIN.md "Spike / high-low").
    var spikeMinHistory: UInt64 = 4

    init() {}

    init(_ p: VeeParameters?) {
        guard let p else { return }
        if p.sumTolerance != 0 { sumTolerance = p.sumTolerance }
        if p.spikeFactor != 0 { spikeFactor = UInt64(p.spikeFactor) }
        if p.futureToleranceMs > 0 { futureToleranceMs = p.futureToleranceMs }
        if p.maxInterpolationMs > 0 { maxInterpolationMs = p.maxInterpolationMs }
        if p.spikeMinHistory != 0 { spikeMinHistory = UInt64(p.spikeMinHistory) }
    }

    /// Throws INVALID_ARGUMENT for VEE parameters no deployment could mean (zero = default):
    /// sum tolerance above 10,000 (100 kWh); spike factor 1 (every reading above the average
    /// would be held) or above 1,000; future tolerance negative or above a day; interpolation
    /// limit negative or above 7 days; spike history above 11,520 intervals (the 8-day
    /// trailing window holds no more, even at 1-minute readings).
    static func validate(_ p: VeeParameters) throws {
        func fail(_ why: String) -> ContractRejection { .invalidArgument("VEE parameters: \(why)") }
        guard p.sumTolerance <= 10_000 else { throw fail("sum_tolerance \(p.sumTolerance) above 10000 (100 kWh)") }
        guard p.spikeFactor != 1, p.spikeFactor <= 1_000 else { throw fail("spike_factor \(p.spikeFactor) outside 2...1000 (0 = default 5)") }
        guard p.futureToleranceMs >= 0, p.futureToleranceMs <= CivilTime.msPerDay else {
            throw fail("future_tolerance_ms \(p.futureToleranceMs) outside 0...86400000")
        }
        guard p.maxInterpolationMs >= 0, p.maxInterpolationMs <= 7 * CivilTime.msPerDay else {
            throw fail("max_interpolation_ms \(p.maxInterpolationMs) outside 0...604800000")
        }
        guard p.spikeMinHistory <= 11_520 else { throw fail("spike_min_history \(p.spikeMinHistory) above 11520") }
    }
}

/// How one register moved between two readings.
enum RegisterStep: Equatable {
    case forward(UInt64)
    /// Wrapped past the rollover point: the consumption.
    case rollover(UInt64)
    case negative
}

/// Pure VEE checks.
enum Vee {
    static let defaultRollover: UInt64 = 100_000_000
    /// Latest reading timestamp accepted whatever the future tolerance (9999-12-31T23:59:59.999Z):
    /// keeps slot and calendar arithmetic far from Int64's end.
    static let maxTimestampMs: Int64 = 253_402_300_799_999

    /// Consumption from `previous` to `now` for a register rolling over at `rollover`: a
    /// decrease is a rollover only when `previous` is within 1% of the rollover point
    /// (rollover − previous ≤ rollover / 100) and `now` is below it; otherwise negative.
    static func step(from previous: UInt64, to now: UInt64, rollover: UInt64) -> RegisterStep {
        if now >= previous { return .forward(now - previous) }
        if previous <= rollover, rollover - previous <= rollover / 100, now < rollover {
            return .rollover(rollover - previous + now)
        }
        return .negative
    }

    /// Total vs the TOU registers: |total − (sharp + peak + flat + valley)| ≤ tolerance,
    /// compared modulo `rollover`. Every register shows its true value modulo the rollover
    /// point (DOMAIN.md "Readings"), so once the total register has wrapped (and the four TOU
    /// registers not, or not all) the plain sum is off by exactly the rollover; the distance
    /// is therefore taken on the circle of `rollover` values. Meters without TOU registers pass.
    static func sumMatches(_ p: RegisterPoint, tolerance: UInt64, rollover: UInt64) -> Bool {
        guard p.hasTOU else { return true }
        let r = max(rollover, 1)
        var sum: UInt64 = 0
        for v in p.tou { sum = (sum + v % r) % r } // each term < r ≤ 10^10: no overflow
        let total = p.total % r
        let diff = sum > total ? sum - total : total - sum
        return min(diff, r - diff) <= tolerance
    }

    /// Whether every register is a value the meter can show: below its rollover point
    /// (a DL/T 645 register XXXXXX.XX is below 1,000,000.00 kWh). Readings outside are
    /// refused before any arithmetic, which bounds one segment's energy by 1.01 × rollover.
    static func registersInRange(_ p: RegisterPoint, rollover: UInt64) -> Bool {
        p.registers.allSatisfy { $0 < rollover }
    }

    /// a + b, saturating at `UInt64.max` (statistics only, never money).
    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : s
    }

    /// Spike: energy over `intervals` intervals exceeds factor × the trailing average interval
    /// (trailing energy / trailing intervals), i.e. energy·n > factor·E·intervals, computed
    /// without division or overflow.
    static func isSpike(
        energy: UInt64, intervals: UInt64, trailing: (energy: UInt64, intervals: UInt64), factor: UInt64, minHistory: UInt64
    ) -> Bool {
        guard trailing.intervals >= minHistory, trailing.energy > 0 else { return false }
        let lhs = energy.multipliedFullWidth(by: trailing.intervals)
        let (scale, overflow) = factor.multipliedReportingOverflow(by: max(intervals, 1))
        if overflow { return false }
        let rhs = trailing.energy.multipliedFullWidth(by: scale)
        return lhs.high > rhs.high || (lhs.high == rhs.high && lhs.low > rhs.low)
    }

    /// Nearest grid slot index of a timestamp (the grid is every `intervalMs` from the epoch).
    static func slot(_ ms: Int64, intervalMs: Int64) -> Int64 {
        CivilTime.floorDiv(ms + intervalMs / 2, intervalMs)
    }
}
