import GridBase
import GridProto
import GridCrypto

/// The state keys and byte formats of cross-chain synchronisation (Docs/anchoring.md).
///
/// Main chain:
/// ```
/// "district/" id                      → DistrictRegistration (the member certificates)
/// "anchor/" id                        → AnchorRecord of the district's newest anchor
/// "anchor/" id "/" from(20 digits)    → AnchorRecord of the anchor starting at `from`
///                                        (its version gives the main height and tx index)
/// "uplink/" id "/totals"              → UplinkSummary: the district's results, summed
/// "uplink/" id "/account/" account    → AccountResult as of the newest anchor
/// "parameters/" id "/count"           → u64 n: parameters addressed to the district so far
/// "parameters/" id "/" n(20 digits)   → DownlinkDigest after the n-th of them
/// ```
/// District chain:
/// ```
/// "receipt/last"                      → AnchorReceipt of the newest anchored range
/// "receipt/" to(20 digits)            → AnchorReceipt of the range ending at `to`
/// "downlink/cursor"                   → u64 main height, u32 tx index of the last taken
/// "downlink/digest"                   → u64 n, DownlinkDigest after the n-th taken
/// ```
enum AnchorKeys {
    static func district(_ id: String) -> String { "district/\(id)" }
    static func lastAnchor(_ district: String) -> String { "anchor/\(district)" }
    static func anchor(_ district: String, from: UInt64) -> String { "anchor/\(district)/\(padded(from))" }
    static func uplinkTotals(_ district: String) -> String { "uplink/\(district)/totals" }
    static func uplinkAccount(_ district: String, _ account: String) -> String { "uplink/\(district)/account/\(account)" }
    static let lastReceipt = "receipt/last"
    static let receiptPrefix = "receipt/0"
    static func receipt(to: UInt64) -> String { "receipt/\(padded(to))" }
    static let downlinkCursor = "downlink/cursor"
    static let downlinkDigest = "downlink/digest"
    static func parameterCount(_ district: String) -> String { "parameters/\(district)/count" }
    static func parameterDigest(_ district: String, _ n: UInt64) -> String { "parameters/\(district)/\(padded(n))" }

    static func padded(_ v: UInt64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }
}

/// What the main chain keeps of an anchor: the range and the hashes that proofs fold to.
struct AnchorRecord: Equatable, Sendable {
    var from: UInt64
    var to: UInt64
    var lastHeaderHash: [UInt8]
    var headersRoot: [UInt8]

    /// u64 from, u64 to, u16 len + last header hash, u16 len + headers root (big-endian).
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out += BigEndianWriter.bytes(of: from)
        out += BigEndianWriter.bytes(of: to)
        out += BigEndianWriter.bytes(of: UInt16(lastHeaderHash.count)) + lastHeaderHash
        out += BigEndianWriter.bytes(of: UInt16(headersRoot.count)) + headersRoot
        return out
    }

    init(from: UInt64, to: UInt64, lastHeaderHash: [UInt8], headersRoot: [UInt8]) {
        self.from = from
        self.to = to
        self.lastHeaderHash = lastHeaderHash
        self.headersRoot = headersRoot
    }

    init?(bytes: [UInt8]) {
        var r = BigEndianReader(bytes)
        guard let from = try? r.u64(), let to = try? r.u64(), let n = try? r.u16(), let last = try? r.bytes(Int(n)),
              let m = try? r.u16(), let root = try? r.bytes(Int(m)), r.isAtEnd else { return nil }
        self.init(from: from, to: to, lastHeaderHash: last, headersRoot: root)
    }
}

/// The main-chain position a district has taken its downlink up to.
struct DownlinkCursor: Equatable, Comparable, Sendable {
    var height: UInt64
    var index: UInt32

    static func < (a: Self, b: Self) -> Bool { (a.height, a.index) < (b.height, b.index) }

    var bytes: [UInt8] { BigEndianWriter.bytes(of: height) + BigEndianWriter.bytes(of: index) }

    init(height: UInt64, index: UInt32) {
        self.height = height
        self.index = index
    }

    init?(bytes: [UInt8]) {
        var r = BigEndianReader(bytes)
        guard let h = try? r.u64(), let i = try? r.u32(), r.isAtEnd else { return nil }
        self.init(height: h, index: i)
    }
}

/// The digest of the sequence of parameters a district takes from the main chain, kept on
/// both sides: D(0) is empty, D(n) = SHA-256(D(n-1) || SHA-256(serialized parameter n)).
/// The main chain appends each parameter it accepts for a district; the district appends
/// each one it takes (whether its contract accepts it or not). Anchors carry the
/// district's (n, D(n)) and the main chain compares it with its own D(n): a parameter
/// skipped or reordered by a faulty district leader stops that district's anchoring.
enum DownlinkDigest {
    static func next(_ previous: [UInt8], _ parameter: DistrictParameter) -> [UInt8] {
        Digest.sha256(previous + Digest.sha256(parameter.serializedBytes()))
    }

    /// `u64 n || digest`, the district's record.
    static func encode(count: UInt64, digest: [UInt8]) -> [UInt8] {
        BigEndianWriter.bytes(of: count) + digest
    }

    static func decode(_ bytes: [UInt8]) -> (count: UInt64, digest: [UInt8])? {
        var r = BigEndianReader(bytes)
        guard let count = try? r.u64() else { return nil }
        return (count, r.rest())
    }
}
