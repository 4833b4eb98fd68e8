import GridProto

/// Rating of one billed segment into an account (DOMAIN.md "Tariffs").
///
/// A segment is the consumption from the billing cursor to the next accepted reading, split
/// into pieces on the grid (one piece unless slots were missing). Pieces are grouped by the
/// billing cycle their start falls in; each group produces its own charge lines:
/// - one line per period with energy: period energy × the period's base price;
/// - one line per tier above the first with energy: energy in that tier × its surcharge;
/// - the fixed charge, when the cycle has not had it yet (the cycle's first billed reading).
/// Lines are rounded on their cycle-to-date energy (`accrue`): a segment's charge on a line
/// is what the rounded line grew by, so a cycle's charges add up exactly to its bill, line by
/// line, whatever the reading frequency. The segment's charge is the sum of its lines.
enum Billing {
    struct Line: Equatable {
        enum Kind: Equatable {
            case period(Int)
            /// 2 = second tier.
            case tier(Int)
            case fixed
        }
        var kind: Kind
        var cycleStartMs: Int64
        var energy: UInt64
        var fen: Int64
    }

    /// Bills `pieces` (chronological, consecutive) into `account` and returns the lines.
    ///
    /// `touDeltas` are the four TOU register deltas (sharp, peak, flat, valley) of the whole
    /// segment, or nil for a meter without TOU registers. With them (and a tariff of at least
    /// four periods), each cycle group's energy is split over periods 0...3 in proportion to
    /// the deltas (cumulative floors: exact sum); without, each piece goes to the period of
    /// the local hour in which it starts.
    ///
    /// A piece "starts" at its grid time: the start of the `intervalMs` slot nearest to its
    /// start (a reading belongs to its nearest slot, Docs/contracts.md), so a reading taken at
    /// 07:59:58 for the 08:00 slot rates the 08:00–08:15 interval in the 08h period, and a
    /// reading at 23:59:58 on the last day of a cycle starts the next cycle's first interval.
    /// Pieces after the first start on the grid already.
    /// - Throws: INVALID_ARGUMENT when an amount overflows (`TariffRules.overflow`); the
    ///   account is then partly updated and must be discarded with the rest of the call.
    static func bill(
        pieces: [Piece], touDeltas: [UInt64]?, tariff: Tariff, customer: CustomerArchive, intervalMs: Int64, account: inout Account
    ) throws -> [Line] {
        var lines: [Line] = []
        var index = 0
        func gridStart(_ piece: Piece) -> Int64 { Vee.slot(piece.startMs, intervalMs: intervalMs) * intervalMs }
        while index < pieces.count {
            let cycleStart = TariffRules.cycleStart(at: gridStart(pieces[index]), tariff: tariff, customer: customer)
            var group: [Piece] = []
            while index < pieces.count,
                TariffRules.cycleStart(at: gridStart(pieces[index]), tariff: tariff, customer: customer) == cycleStart
            {
                group.append(pieces[index])
                index += 1
            }
            lines += try billGroup(group, cycleStart: cycleStart, touDeltas: touDeltas, tariff: tariff, gridStart: gridStart, account: &account)
        }
        return lines
    }

    private static func billGroup(
        _ group: [Piece], cycleStart: Int64, touDeltas: [UInt64]?, tariff: Tariff, gridStart: (Piece) -> Int64, account: inout Account
    ) throws -> [Line] {
        var energy: UInt64 = 0
        for piece in group { energy = try TariffRules.add(energy, piece.energy, "segment energy") }
        var periodEnergy = Array(repeating: UInt64(0), count: tariff.periods.count)
        if let tou = touDeltas, tariff.periods.count >= 4, tou.contains(where: { $0 > 0 }) {
            for (i, e) in TariffRules.cumulativeSplit(energy, weights: tou).enumerated() { periodEnergy[i] += e }
        } else {
            for piece in group {
                let p = TariffRules.period(at: gridStart(piece), tariff: tariff)
                periodEnergy[p] = try TariffRules.add(periodEnergy[p], piece.energy, "period energy")
            }
        }
        startCycleIfNeeded(cycleStart, tariff: tariff, account: &account)

        var lines: [Line] = []
        for (i, e) in periodEnergy.enumerated() {
            let price = tariff.periods[i].basePrice
            var usage = account.periods[i]
            let fen = try accrue(e, price: price, lineEnergy: &usage.lineEnergy, linePrice: &usage.linePrice)
            usage.energy = try TariffRules.add(usage.energy, e, "period energy")
            usage.chargeFen = try TariffRules.add(usage.chargeFen, fen, "period charge")
            account.periods[i] = usage
            if e > 0 { lines.append(Line(kind: .period(i), cycleStartMs: cycleStart, energy: e, fen: fen)) }
        }
        let tiers = try TariffRules.tierSplit(before: account.cycleEnergy, energy: energy, limits: tariff.tierLimits)
        for (i, e) in tiers.enumerated() {
            var usage = account.tiers[i]
            let fen = i == 0 ? 0 : try accrue(e, price: tariff.tierSurcharges[i - 1], lineEnergy: &usage.lineEnergy, linePrice: &usage.linePrice)
            usage.energy = try TariffRules.add(usage.energy, e, "tier energy")
            usage.chargeFen = try TariffRules.add(usage.chargeFen, fen, "tier charge")
            account.tiers[i] = usage
            if i > 0, e > 0 { lines.append(Line(kind: .tier(i + 1), cycleStartMs: cycleStart, energy: e, fen: fen)) }
        }
        account.cycleEnergy = try TariffRules.add(account.cycleEnergy, energy, "cycle energy")
        if tariff.fixedChargeFen != 0, account.fixedChargedFen == 0 {
            account.fixedChargedFen = tariff.fixedChargeFen
            lines.append(Line(kind: .fixed, cycleStartMs: cycleStart, energy: 0, fen: tariff.fixedChargeFen))
        }
        var charge: Int64 = 0
        for line in lines { charge = try TariffRules.add(charge, line.fen, "segment charge") }
        account.cycleChargedFen = try TariffRules.add(account.cycleChargedFen, charge, "cycle charge")
        account.totalChargedFen = try TariffRules.add(account.totalChargedFen, charge, "total charged")
        account.balanceFen = try TariffRules.subtract(account.balanceFen, charge, "balance \(account.balanceFen) − \(charge)")
        return lines
    }

    /// Adds `energy` to a charge line and returns what it costs (DOMAIN.md "No rounding
    /// drift"): round(line energy after × price) − round(line energy before × price), so the
    /// charges of a cycle's readings add up exactly to the rounded line. A price other than
    /// the line's starts a new line (a tariff version that takes effect mid-cycle).
    static func accrue(_ energy: UInt64, price: Int64, lineEnergy: inout UInt64, linePrice: inout Int64) throws -> Int64 {
        if linePrice != price {
            lineEnergy = 0
            linePrice = price
        }
        guard energy > 0 else { return 0 }
        let before = try TariffRules.lineFen(energy: lineEnergy, price: price)
        lineEnergy = try TariffRules.add(lineEnergy, energy, "line energy")
        let after = try TariffRules.lineFen(energy: lineEnergy, price: price)
        return try TariffRules.subtract(after, before, "line charge")
    }

    /// Resets the cycle usage when `cycleStart` differs from the account's current cycle, and
    /// shapes the usage lists to the tariff (one PeriodUsage per period, one TierUsage per
    /// tier) — a tariff change keeps the usage of periods and tiers that still exist.
    static func startCycleIfNeeded(_ cycleStart: Int64, tariff: Tariff, account: inout Account) {
        if account.cycleStartMs != cycleStart {
            account.cycleStartMs = cycleStart
            account.cycleEnergy = 0
            account.periods = []
            account.tiers = []
            account.cycleChargedFen = 0
            account.fixedChargedFen = 0
        }
        var periods: [PeriodUsage] = []
        for (i, p) in tariff.periods.enumerated() {
            var usage = i < account.periods.count ? account.periods[i] : PeriodUsage()
            if usage.period != p.name {
                // Another period at this index: its energy is a new line.
                usage.lineEnergy = 0
            }
            usage.period = p.name
            periods.append(usage)
        }
        account.periods = periods
        var tiers: [TierUsage] = []
        for i in 0...tariff.tierLimits.count {
            var usage = i < account.tiers.count ? account.tiers[i] : TierUsage()
            usage.tier = UInt32(i + 1)
            tiers.append(usage)
        }
        account.tiers = tiers
    }
}
