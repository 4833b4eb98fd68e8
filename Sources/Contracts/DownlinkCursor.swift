import GridBase

/// The main-chain position a district has taken its downlink up to.
///
/// Record: u64 main height, u32 transaction index (big-endian).
public struct DownlinkCursor: Equatable, Comparable, Sendable {
    public var height: UInt64
    public var index: UInt32

    public static func < (a: Self, b: Self) -> Bool { (a.height, a.index) < (b.height, b.index) }

    public var bytes: [UInt8] { BigEndianWriter.bytes(of: height) + BigEndianWriter.bytes(of: index) }

    public init(height: UInt64, index: UInt32) {
        self.height = height
        self.index = index
    }

    /// nil when `bytes` is not exactly one record.
    public init?(bytes: [UInt8]) {
        var r = BigEndianReader(bytes)
        guard let h = try? r.u64(), let i = try? r.u32(), r.isAtEnd else { return nil }
        self.init(height: h, index: i)
    }
}
