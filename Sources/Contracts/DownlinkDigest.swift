import GridBase
public import GridProto

/// The digest of the sequence of parameters a district takes from the main chain, kept on
/// both sides: D(0) is empty, D(n) = SHA-256(D(n-1) || SHA-256(serialized parameter n)).
/// The main chain appends each parameter it accepts for a district; the district appends
/// each one it takes (whether its contract accepts it or not). Anchors carry the
/// district's (n, D(n)) and the main chain compares it with its own D(n): a parameter
/// skipped or reordered by a faulty district leader stops that district's anchoring.
///
/// Contracts link no OpenSSL: `sha256` is passed in (the chain passes GridCrypto's
/// `Digest.sha256`; Chain's `DownlinkDigest.next(_:_:)` does so).
public enum DownlinkDigest {
    public static func next(_ previous: [UInt8], _ parameter: DistrictParameter, sha256: ([UInt8]) -> [UInt8]) -> [UInt8] {
        sha256(previous + sha256(parameter.serializedBytes()))
    }

    /// `u64 n || digest`, the district's record.
    public static func encode(count: UInt64, digest: [UInt8]) -> [UInt8] {
        BigEndianWriter.bytes(of: count) + digest
    }

    /// The district's record; nil when shorter than its count.
    public static func decode(_ bytes: [UInt8]) -> (count: UInt64, digest: [UInt8])? {
        var r = BigEndianReader(bytes)
        guard let count = try? r.u64() else { return nil }
        return (count, r.rest())
    }
}
