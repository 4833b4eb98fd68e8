/// Line loss of the district (DOMAIN.md "Smart district": "Line loss = (E_supply − Σ
/// E_customers) / E_supply. Categories: `qualified` (0–10% (configurable)), `high_loss`
/// (> upper), `negative_loss` (< 0: an anomaly), `not_computable` (summary reading missing,
/// or > 5% of customer readings missing and not estimable). Use only validated or estimated
/// energy."). Docs/district-analytics.md has the worked example.
///
/// Computed by the fee-control contract while it applies readings: every energy piece that
/// VEE validated or estimated and billed (`ReadingRun.billSegment`) is added to the
/// 15-minute interval it covers (`LineLossAccumulator`); at the end of the batch the touched
/// interval records are recomputed and the day records follow (`LineLossInterval`,
/// `LineLossDay`). Integers only, no clock, no randomness, no unordered iteration.
///
/// State keys:
/// ```
/// district/lineloss/i/<ts20>          -> LineLossInterval (binary): interval starting at ts (UTC ms)
/// district/lineloss/m/<ts20>/<meter>  -> empty: the customer meter has energy in the interval
/// district/lineloss/d/<YYYYMMDD>      -> LineLossDay (binary), local day at `utcOffsetMinutes`
/// ```
public enum LineLoss {
    /// The account id that marks the district's summary (master) meter: the meter mapped to
    /// this account is E_supply; every other meter with a customer archive is a customer.
    /// (Interim convention: the archive has no summary-meter field yet.)
    public static let summaryAccount = "district-summary"
    /// The line-loss interval: 15 minutes (DOMAIN.md "Smart district": "per interval (15 min
    /// default)").
    public static let intervalMs: Int64 = 15 * 60_000
    public static let intervalsPerDay: Int64 = 96
    /// A billed piece spanning more intervals than this (a gap estimation refused, e.g. a
    /// meter silent for over 31 days) is not spread over intervals: its energy is left out.
    static let maxSpreadIntervals: Int64 = intervalsPerDay

    public static let intervalPrefix = "district/lineloss/i/"
    public static let meterPrefix = "district/lineloss/m/"
    public static let dayPrefix = "district/lineloss/d/"

    public static func intervalKey(_ startMs: Int64) -> String { intervalPrefix + ContractKeys.paddedTimestamp(startMs) }
    public static func meterKey(_ startMs: Int64, meter: String) -> String {
        "\(meterPrefix)\(ContractKeys.paddedTimestamp(startMs))/\(meter)"
    }
    /// `yyyymmdd` as 8 digits (years 0...9999).
    public static func dayKey(_ yyyymmdd: Int64) -> String {
        let digits = String(max(0, yyyymmdd))
        return dayPrefix + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The category of an interval or a day (DOMAIN.md "Smart district", "Line loss").
    public enum Category: UInt8, Sendable, CaseIterable {
        case qualified = 1
        case highLoss = 2
        case negativeLoss = 3
        case notComputable = 4

        /// The name DOMAIN.md uses.
        public var name: String {
            switch self {
            case .qualified: "qualified"
            case .highLoss: "high_loss"
            case .negativeLoss: "negative_loss"
            case .notComputable: "not_computable"
            }
        }
    }

    /// Thresholds. DOMAIN.md: qualified "0–10% (configurable)"; "> 5% of customer readings
    /// missing". Fixed defaults for now: no parameter body carries them yet.
    public struct Settings: Equatable, Sendable {
        /// Upper limit of `qualified`, basis points (1000 = 10%); above it `high_loss`.
        public var upperBp: Int64 = 1000
        /// Most customers without energy for an interval, basis points of the customer count
        /// (500 = 5%); more makes the interval `not_computable`.
        public var maxMissingBp: Int64 = 500
        /// The district's local day for the day records: UTC + this (480 = +08:00, China).
        public var utcOffsetMinutes: Int32 = 480
        public init() {}
    }

    /// Loss rate in basis points, (supply − customers) × 10000 / supply rounded half away
    /// from zero; nil when supply is 0. Saturates at ±Int64.max (never traps).
    public static func rateBp(supply: UInt64, customers: UInt64) -> Int64? {
        guard supply > 0 else { return nil }
        let negative = customers > supply
        let diff = negative ? customers - supply : supply - customers
        let product = diff.multipliedFullWidth(by: 10_000)
        guard product.high < supply else { return negative ? -.max : .max }
        let (q, r) = supply.dividingFullWidth(product)
        let rounded = r >= supply - r ? q + 1 : q
        let magnitude = rounded > UInt64(Int64.max) ? Int64.max : Int64(rounded)
        return negative ? -magnitude : magnitude
    }

    /// The category from the exact energies (not the rounded rate): `negative_loss` when the
    /// customers exceed the supply, `high_loss` when the loss is above `upperBp` of the
    /// supply, else `qualified`. `not_computable` when `computable` is false or supply is 0.
    public static func category(supply: UInt64, customers: UInt64, computable: Bool, settings: Settings) -> Category {
        guard computable, supply > 0 else { return .notComputable }
        if customers > supply { return .negativeLoss }
        let loss = (supply - customers).multipliedFullWidth(by: 10_000)
        let limit = supply.multipliedFullWidth(by: UInt64(max(0, settings.upperBp)))
        return (loss.high, loss.low) > (limit.high, limit.low) ? .highLoss : .qualified
    }

    /// Whether `withEnergy` of `total` customers is enough: missing ≤ maxMissingBp of total.
    public static func enoughCustomers(withEnergy: UInt64, total: UInt64, settings: Settings) -> Bool {
        let missing = total > withEnergy ? total - withEnergy : 0
        let lhs = missing.multipliedFullWidth(by: 10_000)
        let rhs = total.multipliedFullWidth(by: UInt64(max(0, settings.maxMissingBp)))
        return (lhs.high, lhs.low) <= (rhs.high, rhs.low)
    }
}
