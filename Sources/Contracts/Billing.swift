import GridProto

/// Rating of one billed segment into an account (DOMAIN.md "Tariffs").
///
/// A segment is the consumption from the billing cursor to the next accepted reading, split
/// into pieces on the grid (one piece unless slots were missing). Pieces are grouped by the
/// billing cycle their start falls in; each group produces its own charge lines:
/// - one line per period with energy: period energy × the period's base price;
/// - one line per tier above the first with energy: energy in that tier × its surcharge;
/// - the fixed charge, when the cycle has not had it yet (the cycle's first billed reading).
/// Every line is rounded on its own (`TariffRules.lineFen`); the segment's charge is the sum
/// of its rounded lines.
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
    static func bill(pieces: [Piece], touDeltas: [UInt64]?, tariff: Tariff, customer: CustomerArchive, account: inout Account) -> [Line] {
        var lines: [Line] = []
        var index = 0
        while index < pieces.count {
            let cycleStart = TariffRules.cycleStart(at: pieces[index].startMs, tariff: tariff, customer: customer)
            var group: [Piece] = []
            while index < pieces.count,
                TariffRules.cycleStart(at: pieces[index].startMs, tariff: tariff, customer: customer) == cycleStart
            {
                group.append(pieces[index])
                index += 1
            }
            lines += billGroup(group, cycleStart: cycleStart, touDeltas: touDeltas, tariff: tariff, account: &account)
        }
        return lines
    }

    private static func billGroup(_ group: [Piece], cycleStart: Int64, touDeltas: [UInt64]?, tariff: Tariff, account: inout Account) -> [Line] {
        let energy = group.reduce(UInt64(0)) { $0 + $1.energy }
        var periodEnergy = Array(repeating: UInt64(0), count: tariff.periods.count)
        if let tou = touDeltas, tariff.periods.count >= 4, tou.contains(where: { $0 > 0 }) {
            for (i, e) in TariffRules.cumulativeSplit(energy, weights: tou).enumerated() { periodEnergy[i] += e }
        } else {
            for piece in group { periodEnergy[TariffRules.period(at: piece.startMs, tariff: tariff)] += piece.energy }
        }
        startCycleIfNeeded(cycleStart, tariff: tariff, account: &account)

        var lines: [Line] = []
        for (i, e) in periodEnergy.enumerated() {
            let fen = TariffRules.lineFen(energy: e, price: tariff.periods[i].basePrice)
            account.periods[i].energy += e
            account.periods[i].chargeFen += fen
            if e > 0 { lines.append(Line(kind: .period(i), cycleStartMs: cycleStart, energy: e, fen: fen)) }
        }
        let tiers = TariffRules.tierSplit(before: account.cycleEnergy, energy: energy, limits: tariff.tierLimits)
        for (i, e) in tiers.enumerated() {
            let fen = i == 0 ? 0 : TariffRules.lineFen(energy: e, price: tariff.tierSurcharges[i - 1])
            account.tiers[i].energy += e
            account.tiers[i].chargeFen += fen
            if i > 0, e > 0 { lines.append(Line(kind: .tier(i + 1), cycleStartMs: cycleStart, energy: e, fen: fen)) }
        }
        account.cycleEnergy += energy
        if tariff.fixedChargeFen != 0, account.fixedChargedFen == 0 {
            account.fixedChargedFen = tariff.fixedChargeFen
            lines.append(Line(kind: .fixed, cycleStartMs: cycleStart, energy: 0, fen: tariff.fixedChargeFen))
        }
        let charge = lines.reduce(Int64(0)) { $0 + $1.fen }
        account.cycleChargedFen += charge
        account.totalChargedFen += charge
        account.balanceFen -= charge
        return lines
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
