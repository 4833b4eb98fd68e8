import Contracts
import GridCrypto
import GridProto

extension DownlinkDigest {
    /// D(n) after `parameter`, with GridCrypto's SHA-256 (the digest every node computes).
    package static func next(_ previous: [UInt8], _ parameter: DistrictParameter) -> [UInt8] {
        next(previous, parameter, sha256: { Digest.sha256($0) })
    }
}
