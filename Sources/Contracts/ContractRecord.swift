import GridBase

/// The contract's internal records (Docs/contracts.md), written with GridBase's
/// `BigEndianWriter` and read with its `BigEndianReader`: `u8`, `u32`, `u64`, `i64`
/// fixed-width big-endian; `string` is `u32 length` + UTF-8 bytes; `bytes` is `u32 length` +
/// bytes (`lengthPrefixed`). Every record starts with a `u8` format version (currently 1).
///
/// A record that does not decode is corrupt contract state: reading one throws
/// `ContractRejection` INTERNAL ("truncated <what> record", "<what> record version <v>").
extension BigEndianReader {
    /// A reader of the contract record `what` (e.g. "vee") whose truncation is INTERNAL.
    init(contractRecord bytes: [UInt8], what: String) {
        self.init(bytes, record: what, truncated: { ContractRejection.internalError("truncated \($0) record") })
    }

    /// Checks the leading format version.
    mutating func expectVersion(_ version: UInt8) throws {
        let v = try u8()
        guard v == version else { throw ContractRejection.internalError("\(record) record version \(v)") }
    }
}
