import GridProto
import GridTLS

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
/// ```
/// District chain:
/// ```
/// "receipt/last"                      → AnchorReceipt of the newest anchored range
/// "receipt/" to(20 digits)            → AnchorReceipt of the range ending at `to`
/// "downlink/cursor"                   → u64 main height, u32 tx index of the last taken
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
        out += BlockExecutor.bigEndian(from)
        out += BlockExecutor.bigEndian(to)
        out += BlockExecutor.bigEndian(UInt16(lastHeaderHash.count)) + lastHeaderHash
        out += BlockExecutor.bigEndian(UInt16(headersRoot.count)) + headersRoot
        return out
    }

    init(from: UInt64, to: UInt64, lastHeaderHash: [UInt8], headersRoot: [UInt8]) {
        self.from = from
        self.to = to
        self.lastHeaderHash = lastHeaderHash
        self.headersRoot = headersRoot
    }

    init?(bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard let from = r.u64(), let to = r.u64(), let n = r.u16(), let last = r.take(Int(n)),
              let m = r.u16(), let root = r.take(Int(m)), r.atEnd else { return nil }
        self.init(from: from, to: to, lastHeaderHash: last, headersRoot: root)
    }
}

/// The main-chain position a district has taken its downlink up to.
struct DownlinkCursor: Equatable, Comparable, Sendable {
    var height: UInt64
    var index: UInt32

    static func < (a: Self, b: Self) -> Bool { (a.height, a.index) < (b.height, b.index) }

    var bytes: [UInt8] { BlockExecutor.bigEndian(height) + BlockExecutor.bigEndian(index) }

    init(height: UInt64, index: UInt32) {
        self.height = height
        self.index = index
    }

    init?(bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard let h = r.u64(), let i = r.u32(), r.atEnd else { return nil }
        self.init(height: h, index: i)
    }
}

struct ByteReader {
    private let bytes: [UInt8]
    private var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { at == bytes.count }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, bytes.count - at >= n else { return nil }
        defer { at += n }
        return Array(bytes[at..<at + n])
    }

    mutating func u16() -> UInt16? { take(2).map { UInt16($0[0]) << 8 | UInt16($0[1]) } }
    mutating func u32() -> UInt32? { take(4).map { $0.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } } }
    mutating func u64() -> UInt64? { take(8).map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } }
}

/// The bytes a district member signs for an anchor (Docs/anchoring.md, "Anchor"):
/// ```
/// anchor-digest = SHA-256("gridledger-anchor/v1" || u16 len district || district ||
///                         u64 from || u64 to || u16 len || last-header-hash ||
///                         u16 len || headers-root || SHA-256(summary))
/// ```
/// The signature is ECDSA P-256 over SHA-256(anchor-digest), like a transaction's.
enum AnchorDigest {
    static func compute(district: String, from: UInt64, to: UInt64, lastHeaderHash: [UInt8], headersRoot: [UInt8], summary: [UInt8]) -> [UInt8] {
        let name = Array(district.utf8)
        var out = Array("gridledger-anchor/v1".utf8)
        out += BlockExecutor.bigEndian(UInt16(name.count)) + name
        out += BlockExecutor.bigEndian(from) + BlockExecutor.bigEndian(to)
        out += BlockExecutor.bigEndian(UInt16(lastHeaderHash.count)) + lastHeaderHash
        out += BlockExecutor.bigEndian(UInt16(headersRoot.count)) + headersRoot
        out += Digest.sha256(summary)
        return Digest.sha256(out)
    }

    static func of(_ anchor: Anchor) -> [UInt8] {
        compute(district: anchor.district, from: anchor.fromHeight, to: anchor.toHeight,
                lastHeaderHash: anchor.lastHeaderHash, headersRoot: anchor.headersRoot, summary: anchor.summary)
    }
}

extension ChainHashing {
    /// The Merkle path of leaf `index` under the tx-root rule: one step per level, from the
    /// leaf upwards. Folding `H(0x00 || id)` along it gives `txRoot(ids)`.
    func merklePath(_ ids: [[UInt8]], index: Int) -> [MerkleStep] {
        precondition(index >= 0 && index < ids.count)
        var level = ids.map { Digest.hash(suite, parts: [[0x00], $0]) }
        var at = index
        var steps: [MerkleStep] = []
        while level.count > 1 {
            let sibling = at ^ 1
            if sibling < level.count {
                steps.append(MerkleStep(sibling: level[sibling], siblingLeft: sibling < at, promoted: false))
            } else {
                steps.append(MerkleStep(sibling: [], siblingLeft: false, promoted: true))
            }
            var next: [[UInt8]] = []
            var i = 0
            while i < level.count {
                next.append(i + 1 < level.count ? Digest.hash(suite, parts: [[0x01], level[i], level[i + 1]]) : level[i])
                i += 2
            }
            level = next
            at /= 2
        }
        return steps
    }

    /// The root a leaf id and its path give.
    func foldPath(leaf id: [UInt8], _ steps: [MerkleStep]) -> [UInt8] {
        var node = Digest.hash(suite, parts: [[0x00], id])
        for step in steps where !step.promoted {
            node = step.siblingLeft ? Digest.hash(suite, parts: [[0x01], step.sibling, node]) : Digest.hash(suite, parts: [[0x01], node, step.sibling])
        }
        return node
    }
}
