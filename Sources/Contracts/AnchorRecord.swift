import GridBase

/// What the main chain keeps of an anchor: the range and the hashes that proofs fold to.
///
/// Record: u64 from, u64 to, u16 len + last header hash, u16 len + headers root (big-endian).
public struct AnchorRecord: Equatable, Sendable {
    public var from: UInt64
    public var to: UInt64
    public var lastHeaderHash: [UInt8]
    public var headersRoot: [UInt8]

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out += BigEndianWriter.bytes(of: from)
        out += BigEndianWriter.bytes(of: to)
        out += BigEndianWriter.bytes(of: UInt16(lastHeaderHash.count)) + lastHeaderHash
        out += BigEndianWriter.bytes(of: UInt16(headersRoot.count)) + headersRoot
        return out
    }

    public init(from: UInt64, to: UInt64, lastHeaderHash: [UInt8], headersRoot: [UInt8]) {
        self.from = from
        self.to = to
        self.lastHeaderHash = lastHeaderHash
        self.headersRoot = headersRoot
    }

    /// nil when `bytes` is not exactly one record.
    public init?(bytes: [UInt8]) {
        var r = BigEndianReader(bytes)
        guard let from = try? r.u64(), let to = try? r.u64(), let n = try? r.u16(), let last = try? r.bytes(Int(n)),
              let m = try? r.u16(), let root = try? r.bytes(Int(m)), r.isAtEnd else { return nil }
        self.init(from: from, to: to, lastHeaderHash: last, headersRoot: root)
    }
}
