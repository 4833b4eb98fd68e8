import GridProto

/// Pure tariff arithmetic (DOMAIN.md "Tariffs"): TOU period lookup, billing cycles, tier
/// split, per-line rounding. Integers only.
///
/// Units: energy 0.01 kWh (`UInt64`), prices 0.0001 CNY/kWh (`Int64`), money fen (`Int64`).
/// energy × price is in 1e-6 CNY = 1e-4 fen.
enum TariffRules {
    /// Bounds checked by `validate` so that energy × price never overflows `Int64`:
    /// |price| ≤ 10^8 (10,000 CNY/kWh) and energy ≤ 10^10 (the largest rollover allowed;
    /// readings with a register at or above their rollover are refused by VEE, so one
    /// segment's energy is below 1.01 × 10^10). `lineFen` still checks the product and throws
    /// instead of trapping, so a replica never halts on hostile input.
    static let maxAbsPrice: Int64 = 100_000_000
    static let maxEnergy: UInt64 = 10_000_000_000
    /// |fixed charge| bound (10^9 CNY).
    static let maxAbsFixedFen: Int64 = 100_000_000_000
    static let scheduleSize = 12 * 24

    /// Throws INVALID_ARGUMENT unless the tariff can be billed: at least one period; each
    /// schedule empty or 288 bytes of period indices below the period count (empty weekday
    /// schedule = every hour in period 0; empty weekend schedule = the weekday one); as many
    /// surcharges as tier limits; limits strictly ascending and positive; prices and the
    /// fixed charge in bounds; the UTC offset within ±18 h.
    static func validate(_ t: Tariff) throws {
        func fail(_ why: String) -> ContractRejection { .invalidArgument("tariff \(t.tariffId): \(why)") }
        guard ContractKeys.isValidComponent(t.tariffId) else { throw fail("empty id or id with '/'") }
        guard !t.periods.isEmpty, t.periods.count <= 255 else { throw fail("needs 1...255 periods") }
        // `.magnitude`, not `abs`: abs(Int64.min) traps, and a trap halts the replica.
        for p in t.periods where p.basePrice.magnitude > maxAbsPrice.magnitude { throw fail("base price out of range") }
        for s in [t.weekdaySchedule, t.weekendSchedule] {
            guard s.isEmpty || s.count == scheduleSize else { throw fail("a schedule must have 288 entries") }
            guard s.allSatisfy({ Int($0) < t.periods.count }) else { throw fail("schedule names an unknown period") }
        }
        guard t.tierLimits.count == t.tierSurcharges.count else { throw fail("one surcharge per tier limit") }
        var previous: UInt64 = 0
        for limit in t.tierLimits {
            guard limit > previous else { throw fail("tier limits must be positive and ascending") }
            previous = limit
        }
        for s in t.tierSurcharges where s.magnitude > maxAbsPrice.magnitude { throw fail("surcharge out of range") }
        guard t.fixedChargeFen.magnitude <= maxAbsFixedFen.magnitude else { throw fail("fixed charge out of range") }
        guard t.utcOffsetMinutes.magnitude <= 18 * 60 else { throw fail("UTC offset out of range") }
        guard t.cycle == .monthly || t.cycle == .annual else { throw fail("unknown billing cycle") }
    }

    /// The period index in effect at `utcMs`: the tariff's weekday or weekend (Saturday,
    /// Sunday, local time) schedule at the local month and hour.
    static func period(at utcMs: Int64, tariff: Tariff) -> Int {
        let local = CivilTime.local(utcMs, offsetMinutes: tariff.utcOffsetMinutes)
        var schedule = local.isWeekend ? tariff.weekendSchedule : tariff.weekdaySchedule
        if schedule.isEmpty { schedule = tariff.weekdaySchedule }
        guard schedule.count == scheduleSize else { return 0 }
        return Int(schedule[Int((local.month - 1) * 24 + local.hour)])
    }

    /// UTC ms at which the billing cycle containing `utcMs` starts: the 1st of the local
    /// month at 00:00 (monthly), or the customer's cycle start date at 00:00 local (annual;
    /// month/day 0 = January 1st; a day past the month's end is its last day, so 29 February
    /// is 28 February in common years).
    static func cycleStart(at utcMs: Int64, tariff: Tariff, customer: CustomerArchive) -> Int64 {
        let offset = tariff.utcOffsetMinutes
        let local = CivilTime.local(utcMs, offsetMinutes: offset)
        if tariff.cycle == .annual {
            let month = Int64(customer.cycleStartMonth == 0 ? 1 : min(customer.cycleStartMonth, 12))
            let wantedDay = Int64(customer.cycleStartDay == 0 ? 1 : customer.cycleStartDay)
            func start(_ year: Int64) -> Int64 {
                CivilTime.days(year: year, month: month, day: min(wantedDay, CivilTime.daysInMonth(year: year, month: month)))
            }
            var day = start(local.year)
            if day > local.dayNumber { day = start(local.year - 1) }
            return CivilTime.utcMs(ofLocalDay: day, offsetMinutes: offset)
        }
        let first = CivilTime.days(year: local.year, month: local.month, day: 1)
        return CivilTime.utcMs(ofLocalDay: first, offsetMinutes: offset)
    }

    /// One charge line: energy × price rounded half away from zero to the fen (四舍五入 on the
    /// magnitude): fen = (|e·p| + 5000) / 10000 with the sign of e·p. Zero gives zero; a
    /// negative price gives exactly the negation of the same positive line.
    ///
    /// Units: 0.01 kWh × 0.0001 CNY/kWh = 10^-6 CNY = 10^-4 fen, hence the 10^4 divisor.
    /// The product is taken in 128 bits, so no input traps.
    /// - Throws: INVALID_ARGUMENT when the rounded line does not fit in `Int64` fen (only
    ///   possible outside the bounds `validate` and VEE enforce).
    static func lineFen(energy: UInt64, price: Int64) throws -> Int64 {
        let product = energy.multipliedFullWidth(by: price.magnitude)
        // (high, low) + 5000, then / 10^4: the quotient must fit in 63 bits.
        let (low, carry) = product.low.addingReportingOverflow(5000)
        let high = product.high + (carry ? 1 : 0) // product < 2^64 · 2^63: high < 2^63, no overflow
        guard high < 10_000 else { throw overflow("charge line \(energy) × \(price)") }
        let magnitude = UInt64(10_000).dividingFullWidth((high, low)).quotient
        guard magnitude <= UInt64(Int64.max) else { throw overflow("charge line \(energy) × \(price)") }
        return price < 0 ? -Int64(magnitude) : Int64(magnitude)
    }

    /// The rejection for an amount that does not fit its integer: the transaction is refused
    /// (INVALID_ARGUMENT) rather than trapping, which would halt the replica.
    static func overflow(_ what: String) -> ContractRejection {
        .invalidArgument("arithmetic overflow: \(what)")
    }

    /// a + b, or INVALID_ARGUMENT when it overflows.
    static func add<T: FixedWidthInteger>(_ a: T, _ b: T, _ what: @autoclosure () -> String) throws -> T {
        let (sum, overflowed) = a.addingReportingOverflow(b)
        if overflowed { throw overflow(what()) }
        return sum
    }

    /// a − b, or INVALID_ARGUMENT when it overflows.
    static func subtract<T: FixedWidthInteger>(_ a: T, _ b: T, _ what: @autoclosure () -> String) throws -> T {
        let (difference, overflowed) = a.subtractingReportingOverflow(b)
        if overflowed { throw overflow(what()) }
        return difference
    }

    /// Splits `energy` consumed after `before` (cumulative in the cycle) over the tiers:
    /// tier 1 is [0, limit1), tier n is [limit(n-1), limit n), the last is unbounded; energy
    /// exactly reaching a limit stays below it. Returns one entry per tier (limits + 1).
    static func tierSplit(before: UInt64, energy: UInt64, limits: [UInt64]) throws -> [UInt64] {
        let end = try add(before, energy, "cycle energy \(before) + \(energy)")
        var result: [UInt64] = []
        var lower: UInt64 = 0
        for upper in limits + [UInt64.max] {
            let lo = max(before, lower), hi = min(end, upper)
            result.append(hi > lo ? hi - lo : 0)
            lower = upper
        }
        return result
    }

    /// Splits `total` in proportion to `weights` by cumulative floors: part k =
    /// ⌊total·W_k/W⌋ − ⌊total·W_(k−1)/W⌋ with W_k the running weight sum. The parts add up to
    /// `total` exactly. All-zero weights split evenly by the same rule (weights all 1).
    static func cumulativeSplit(_ total: UInt64, weights: [UInt64]) -> [UInt64] {
        guard !weights.isEmpty else { return [] }
        // Callers pass weights ≤ 10^10 and fewer than 10^5 of them: the sum cannot overflow.
        var w = weights
        var sum = w.reduce(UInt64(0), +)
        if sum == 0 {
            w = Array(repeating: 1, count: w.count)
            sum = UInt64(w.count)
        }
        var parts: [UInt64] = []
        parts.reserveCapacity(w.count)
        var running: UInt64 = 0
        var previous: UInt64 = 0
        for weight in w {
            running += weight
            let product = total.multipliedFullWidth(by: running)
            let cumulative = sum.dividingFullWidth(product).quotient
            parts.append(cumulative - previous)
            previous = cumulative
        }
        return parts
    }
}
