import GridBase

/// One 15-minute interval's line loss at `district/lineloss/i/<ts20>` (DOMAIN.md "Smart
/// district", "Line loss": "= (E_supply − Σ E_customers) / E_supply").
///
/// Grammar: `u8 version=1, u64 supply, bool summary present, u64 customers, u32 customer
/// meters with energy, u32 customer meters in the district, i64 rate bp, u8 category`.
/// Energies are in the readings' unit (0.01 kWh). `rateBp` is 0 when supply is 0.
public struct LineLossInterval: Equatable, Sendable {
    /// E_supply: the summary meter's validated or estimated energy in the interval.
    public var supply: UInt64 = 0
    /// Whether the summary meter has validated or estimated energy for the interval.
    public var summaryPresent = false
    /// Σ E_customers: the customer meters' validated or estimated energy.
    public var customers: UInt64 = 0
    /// Customer meters with validated or estimated energy in the interval.
    public var customerMeters: UInt32 = 0
    /// Customer meters of the district (customer archives other than the summary meter's)
    /// when the record was last computed.
    public var customerTotal: UInt32 = 0
    public var rateBp: Int64 = 0
    public var category: LineLoss.Category = .notComputable

    public init() {}

    /// DOMAIN.md: `not_computable` when the "summary reading [is] missing, or > 5% of
    /// customer readings missing and not estimable"; else by the rate.
    public var computable: Bool { category != .notComputable }

    /// Recomputes `rateBp` and `category` from the energies and counts.
    mutating func classify(settings: LineLoss.Settings) {
        rateBp = LineLoss.rateBp(supply: supply, customers: customers) ?? 0
        let enough = LineLoss.enoughCustomers(withEnergy: UInt64(customerMeters), total: UInt64(customerTotal), settings: settings)
        category = LineLoss.category(supply: supply, customers: customers, computable: summaryPresent && enough, settings: settings)
    }

    public func encoded() -> [UInt8] {
        var w = BigEndianWriter()
        w.u8(1)
        w.u64(supply)
        w.bool(summaryPresent)
        w.u64(customers)
        w.u32(customerMeters)
        w.u32(customerTotal)
        w.i64(rateBp)
        w.u8(category.rawValue)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = BigEndianReader(contractRecord: bytes, what: "line-loss interval")
        try r.expectVersion(1)
        supply = try r.u64()
        summaryPresent = try r.bool()
        customers = try r.u64()
        customerMeters = try r.u32()
        customerTotal = try r.u32()
        rateBp = try r.i64()
        category = LineLoss.Category(rawValue: try r.u8()) ?? .notComputable
    }
}
