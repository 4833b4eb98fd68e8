import GridBase

/// One local day's line loss at `district/lineloss/d/<YYYYMMDD>` (DOMAIN.md "Smart
/// district": "Computed at the edge per interval (15 min default) and per day").
///
/// The day sums the energies of its computable intervals only; its rate is computed from
/// those sums. Its category is `not_computable` until all 96 intervals are computable (a
/// day with a missing summary reading or too many missing customers in any interval, or a
/// day still running), else by the rate (DOMAIN.md "Line loss").
///
/// Grammar: `u8 version=1, u64 supply, u64 customers, u32 computable intervals, i64 rate bp,
/// u8 category`.
public struct LineLossDay: Equatable, Sendable {
    public var supply: UInt64 = 0
    public var customers: UInt64 = 0
    public var computableIntervals: UInt32 = 0
    public var rateBp: Int64 = 0
    public var category: LineLoss.Category = .notComputable

    public init() {}

    /// Replaces `old`'s contribution (if it was computable) with `new`'s.
    mutating func replace(_ old: LineLossInterval?, with new: LineLossInterval, settings: LineLoss.Settings) {
        if let old, old.computable {
            supply &-= old.supply
            customers &-= old.customers
            computableIntervals &-= 1
        }
        if new.computable {
            supply &+= new.supply
            customers &+= new.customers
            computableIntervals &+= 1
        }
        rateBp = LineLoss.rateBp(supply: supply, customers: customers) ?? 0
        category = LineLoss.category(
            supply: supply, customers: customers,
            computable: Int64(computableIntervals) == LineLoss.intervalsPerDay, settings: settings
        )
    }

    public func encoded() -> [UInt8] {
        var w = BigEndianWriter()
        w.u8(1)
        w.u64(supply)
        w.u64(customers)
        w.u32(computableIntervals)
        w.i64(rateBp)
        w.u8(category.rawValue)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = BigEndianReader(contractRecord: bytes, what: "line-loss day")
        try r.expectVersion(1)
        supply = try r.u64()
        customers = try r.u64()
        computableIntervals = try r.u32()
        rateBp = try r.i64()
        category = LineLoss.Category(rawValue: try r.u8()) ?? .notComputable
    }
}
