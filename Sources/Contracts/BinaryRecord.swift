/// Big-endian encoding of the contract's internal records.
///
/// Grammar: `u8`, `u32`, `u64`, `i64` are fixed-width big-endian; `string` is
/// `u32 length` + UTF-8 bytes; `bytes` is `u32 length` + bytes. Every record starts with a
/// `u8` format version (currently 1).
struct BinaryWriter {
    private(set) var bytes: [UInt8] = []

    init() {}

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }
    mutating func raw(_ v: [UInt8]) {
        u32(UInt32(v.count))
        bytes.append(contentsOf: v)
    }
    mutating func string(_ v: String) { raw(Array(v.utf8)) }
}

/// Reads what `BinaryWriter` wrote; throws `ContractRejection` INTERNAL on truncated data
/// (corrupt contract state).
struct BinaryReader {
    private let bytes: [UInt8]
    private var offset = 0
    private let what: String

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, bytes.count - offset >= n else {
            throw ContractRejection.internalError("truncated \(what) record")
        }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func u64() throws -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func i64() throws -> Int64 { Int64(bitPattern: try u64()) }
    mutating func bool() throws -> Bool { try u8() != 0 }
    mutating func raw() throws -> [UInt8] { Array(try take(Int(try u32()))) }
    mutating func string() throws -> String { String(decoding: try raw(), as: UTF8.self) }

    /// Checks the leading format version.
    mutating func expectVersion(_ version: UInt8) throws {
        let v = try u8()
        guard v == version else { throw ContractRejection.internalError("\(what) record version \(v)") }
    }
}
