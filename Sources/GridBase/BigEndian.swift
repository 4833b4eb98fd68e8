/// Big-endian byte records: the one writer and the one reader behind every fixed-layout
/// record of the project (Store's keys and values, Docs/storage-format.md; the contracts'
/// internal records, Docs/contracts.md; anchor digests and world-state values,
/// Docs/anchoring.md; Raft membership changes and read contexts).
///
/// Grammar: `u8`, `u16`, `u32`, `u64`, `i64` are fixed-width big-endian (two's complement
/// for `i64`); `bool` is one byte, 1 or 0 (any non-zero byte reads as true); `lengthPrefixed`
/// is `u32 length` + bytes, and `string` is that over UTF-8.
public struct BigEndianWriter: Sendable {
    @usableFromInline var storage: [UInt8]

    /// Everything written so far.
    public var bytes: [UInt8] { storage }

    @inlinable
    public init(capacity: Int = 0) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// The big-endian bytes of one integer (`UInt64` → 8 bytes, `UInt16` → 2, …).
    @inlinable
    public static func bytes<T: FixedWidthInteger>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// Appends the big-endian bytes of `value` to `out`.
    @inlinable
    public static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func integer<T: FixedWidthInteger>(_ value: T) { Self.append(value, to: &storage) }
    @inlinable
    public mutating func u8(_ value: UInt8) { storage.append(value) }
    @inlinable
    public mutating func u16(_ value: UInt16) { integer(value) }
    @inlinable
    public mutating func u32(_ value: UInt32) { integer(value) }
    @inlinable
    public mutating func u64(_ value: UInt64) { integer(value) }
    @inlinable
    public mutating func i64(_ value: Int64) { integer(value) }
    @inlinable
    public mutating func bool(_ value: Bool) { storage.append(value ? 1 : 0) }

    /// Bytes as they are, with no length (a fixed-size field, or the tail of a record).
    @inlinable
    public mutating func append(_ value: some Sequence<UInt8>) { storage.append(contentsOf: value) }

    /// `u32 length` + the bytes.
    @inlinable
    public mutating func lengthPrefixed(_ value: [UInt8]) {
        u32(UInt32(value.count))
        storage.append(contentsOf: value)
    }

    /// `u32 length` + the UTF-8 bytes.
    @inlinable
    public mutating func string(_ value: String) { lengthPrefixed(Array(value.utf8)) }
}

/// Reads what `BigEndianWriter` writes. Every read past the end throws, and reads nothing:
/// by default `BigEndianReader.Truncated`, or the error the owner of the record chose (a
/// contract record's truncation is the contract's INTERNAL rejection). `try?` turns a read
/// into an optional.
public struct BigEndianReader {
    /// A read past the end of `record`.
    public struct Truncated: Error, Sendable, Equatable, CustomStringConvertible {
        public var record: String
        public init(record: String) { self.record = record }
        public var description: String { "truncated \(record.isEmpty ? "" : record + " ")record" }
    }

    @usableFromInline let buffer: ArraySlice<UInt8>
    @usableFromInline var position: Int
    /// What the bytes are (e.g. "vee"), for error messages.
    public let record: String
    @usableFromInline let truncated: (String) -> any Error

    /// A reader of `bytes` (an `ArraySlice` reads in place, at its own indices).
    @inlinable
    public init(_ bytes: ArraySlice<UInt8>, record: String = "", truncated: @escaping (_ record: String) -> any Error = { Truncated(record: $0) }) {
        buffer = bytes
        position = bytes.startIndex
        self.record = record
        self.truncated = truncated
    }

    @inlinable
    public init(_ bytes: [UInt8], record: String = "", truncated: @escaping (_ record: String) -> any Error = { Truncated(record: $0) }) {
        self.init(bytes[...], record: record, truncated: truncated)
    }

    /// Reads one integer of exactly `bytes.count == T.bitWidth / 8` bytes (a fixed field of a
    /// key or value whose length was already checked). Precondition: the length is exact.
    @inlinable
    public static func integer<T: FixedWidthInteger>(_ type: T.Type = T.self, exactly bytes: ArraySlice<UInt8>) -> T {
        precondition(bytes.count == T.bitWidth / 8, "a \(T.self) is \(T.bitWidth / 8) bytes, not \(bytes.count)")
        return bytes.reduce(T(0)) { $0 << 8 | T($1) }
    }

    @inlinable
    public var isAtEnd: Bool { position == buffer.endIndex }
    /// How many bytes are not read yet.
    @inlinable
    public var remaining: Int { buffer.endIndex - position }

    /// The next `count` bytes, in place.
    @inlinable
    public mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, buffer.endIndex - position >= count else { throw truncated(record) }
        defer { position += count }
        return buffer[position..<position + count]
    }

    /// The next `count` bytes, copied (a fixed-size field with no length of its own).
    @inlinable
    public mutating func bytes(_ count: Int) throws -> [UInt8] { Array(try take(count)) }

    @inlinable
    public mutating func integer<T: FixedWidthInteger>(_ type: T.Type = T.self) throws -> T {
        try take(T.bitWidth / 8).reduce(T(0)) { $0 << 8 | T($1) }
    }

    @inlinable
    public mutating func u8() throws -> UInt8 { try take(1).first! }
    @inlinable
    public mutating func u16() throws -> UInt16 { try integer() }
    @inlinable
    public mutating func u32() throws -> UInt32 { try integer() }
    @inlinable
    public mutating func u64() throws -> UInt64 { try integer() }
    @inlinable
    public mutating func i64() throws -> Int64 { Int64(bitPattern: try u64()) }
    @inlinable
    public mutating func bool() throws -> Bool { try u8() != 0 }

    /// `u32 length` + that many bytes.
    @inlinable
    public mutating func lengthPrefixed() throws -> [UInt8] { Array(try take(Int(try u32()))) }

    /// `u32 length` + that many bytes, decoded as UTF-8 (invalid sequences repaired).
    @inlinable
    public mutating func string() throws -> String { String(decoding: try lengthPrefixed(), as: UTF8.self) }

    /// Everything not read yet.
    @inlinable
    public mutating func rest() -> [UInt8] {
        defer { position = buffer.endIndex }
        return Array(buffer[position...])
    }
}
