import GridBase
import GridProto
import GridCrypto

/// The bytes a district member signs for an anchor (Docs/anchoring.md, "Anchor"):
/// ```
/// anchor-digest = SHA-256("gridledger-anchor/v1" || u16 len district || district ||
///                         u64 from || u64 to || u16 len || last-header-hash ||
///                         u16 len || headers-root || SHA-256(summary))
/// ```
/// The signature is ECDSA P-256 over SHA-256(anchor-digest), like a transaction's.
public enum AnchorDigest {
    /// The anchor digest of the range `from...to` of `district`'s chain.
    public static func compute(district: String, from: UInt64, to: UInt64, lastHeaderHash: [UInt8], headersRoot: [UInt8], summary: [UInt8]) -> [UInt8] {
        let name = Array(district.utf8)
        var out = Array("gridledger-anchor/v1".utf8)
        out += BigEndianWriter.bytes(of: UInt16(name.count)) + name
        out += BigEndianWriter.bytes(of: from) + BigEndianWriter.bytes(of: to)
        out += BigEndianWriter.bytes(of: UInt16(lastHeaderHash.count)) + lastHeaderHash
        out += BigEndianWriter.bytes(of: UInt16(headersRoot.count)) + headersRoot
        out += Digest.sha256(summary)
        return Digest.sha256(out)
    }

    /// The anchor digest `anchor` names (its signatures are not part of it).
    public static func of(_ anchor: Anchor) -> [UInt8] {
        compute(district: anchor.district, from: anchor.fromHeight, to: anchor.toHeight,
                lastHeaderHash: anchor.lastHeaderHash, headersRoot: anchor.headersRoot, summary: anchor.summary)
    }
}
