import GridBase

// Encoders and decoders for the key grammar at the top of ChainStore.swift (and in
// Docs/storage-format.md). Every byte layout of the chain store is built and parsed here and
// nowhere else. Integers are fixed-width big-endian so that bytewise key order is numeric
// order.

extension ChainStore {
    /// The chain store's key and value formats. Pure functions, no I/O.
    enum Layout {
        static let blockPrefix = UInt8(ascii: "b")
        static let hashPrefix = UInt8(ascii: "H")
        static let txPrefix = UInt8(ascii: "t")
        static let statePrefix = UInt8(ascii: "s")
        static let historyPrefix = UInt8(ascii: "h")
        static let metaPrefix = UInt8(ascii: "m")

        /// Length of block hashes, transaction ids and state roots.
        static let hashLength = 32
        /// "m" "head" value: height(8) block-hash(32) state-root(32).
        static let headValueLength = 8 + 2 * hashLength
        /// height(8) index(4): the version of a state write and a transaction's location.
        static let versionLength = 12

        static let headKey: [UInt8] = [metaPrefix] + Array("head".utf8)
        static let chainKey: [UInt8] = [metaPrefix] + Array("chain".utf8)
        static let formatKey: [UInt8] = [metaPrefix] + Array("format".utf8)

        // MARK: Keys

        /// "b" height(u64 BE)
        static func blockKey(_ height: UInt64) -> [UInt8] {
            var key: [UInt8] = [blockPrefix]
            key.reserveCapacity(9)
            appendU64(height, to: &key)
            return key
        }

        /// "H" block-hash(32)
        static func hashKey(_ hash: [UInt8]) -> [UInt8] { [hashPrefix] + hash }

        /// "t" tx-id(32)
        static func txKey(_ id: [UInt8]) -> [UInt8] { [txPrefix] + id }

        /// "s" state-key
        static func stateKey(_ key: [UInt8]) -> [UInt8] { [statePrefix] + key }

        /// "h" state-key 0x00: the prefix of every history entry of one state key. Unique per
        /// key because state keys contain no NUL.
        static func historyKeyPrefix(_ key: [UInt8]) -> [UInt8] { [historyPrefix] + key + [0] }

        /// "h" state-key 0x00 height(u64 BE) index(u32 BE)
        static func historyKey(_ key: [UInt8], height: UInt64, index: UInt32) -> [UInt8] {
            var out = historyKeyPrefix(key)
            out.reserveCapacity(out.count + versionLength)
            appendU64(height, to: &out)
            appendU32(index, to: &out)
            return out
        }

        /// Checks a state key (non-empty, no NUL) and returns its UTF-8 bytes.
        static func stateKeyBytes(_ key: String) throws -> [UInt8] {
            let bytes = Array(key.utf8)
            guard !bytes.isEmpty else {
                throw StoreError.invalidKey("state keys must not be empty")
            }
            guard !bytes.contains(0) else {
                throw StoreError.invalidKey("\(String(reflecting: key)) contains a NUL byte")
            }
            return bytes
        }

        /// Parses the state key out of stored key bytes (no NUL, valid UTF-8).
        static func decodeStateKey(_ bytes: ArraySlice<UInt8>) throws -> String {
            guard !bytes.isEmpty, !bytes.contains(0),
                  let key = String(validating: bytes, as: UTF8.self)
            else {
                throw StoreError.corrupt("stored state key \(bytes.map { $0 }) is not a valid key")
            }
            return key
        }

        // MARK: Values

        /// height(u64 BE)
        static func heightValue(_ height: UInt64) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(8)
            appendU64(height, to: &out)
            return out
        }

        /// height(u64 BE) index(u32 BE)
        static func versionValue(height: UInt64, index: UInt32) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(versionLength)
            appendU64(height, to: &out)
            appendU32(index, to: &out)
            return out
        }

        /// flag(u8: 1 live, 0 deleted) value: the history entry's value.
        static func flaggedValue(_ value: [UInt8]?) -> [UInt8] {
            guard let value else { return [0] }
            var out: [UInt8] = [1]
            out.reserveCapacity(1 + value.count)
            out += value
            return out
        }

        /// height(u64 BE) index(u32 BE) flag(u8) value: the current-state value.
        static func stateValue(height: UInt64, index: UInt32, value: [UInt8]?) -> [UInt8] {
            var out = versionValue(height: height, index: index)
            out.reserveCapacity(versionLength + 1 + (value?.count ?? 0))
            out += flaggedValue(value)
            return out
        }

        /// height(8) block-hash(32) state-root(32)
        static func headValue(_ head: Head) -> [UInt8] {
            var out = heightValue(head.height)
            out.reserveCapacity(headValueLength)
            out += head.hash
            out += head.stateRoot
            return out
        }

        static func decodeHeight(_ bytes: [UInt8], _ what: @autoclosure () -> String) throws -> UInt64 {
            guard bytes.count == 8 else {
                throw StoreError.corrupt("\(what()): expected an 8-byte height, found \(bytes.count) bytes")
            }
            return readU64(bytes[...])
        }

        static func decodeVersion(
            _ bytes: ArraySlice<UInt8>, _ what: @autoclosure () -> String
        ) throws -> (height: UInt64, index: UInt32) {
            guard bytes.count == versionLength else {
                throw StoreError.corrupt("\(what()): expected a 12-byte version, found \(bytes.count) bytes")
            }
            let start = bytes.startIndex
            return (readU64(bytes[start..<start + 8]), readU32(bytes[start + 8..<start + 12]))
        }

        /// flag value → value (nil when deleted).
        static func decodeFlagged(
            _ bytes: ArraySlice<UInt8>, _ what: @autoclosure () -> String
        ) throws -> [UInt8]? {
            guard let flag = bytes.first else {
                throw StoreError.corrupt("\(what()): missing live/deleted flag")
            }
            switch flag {
            case 1: return Array(bytes.dropFirst())
            case 0:
                guard bytes.count == 1 else {
                    throw StoreError.corrupt("\(what()): deleted entry carries a value")
                }
                return nil
            default:
                throw StoreError.corrupt("\(what()): live/deleted flag is \(flag), not 0 or 1")
            }
        }

        static func decodeStateValue(
            _ bytes: [UInt8], _ what: @autoclosure () -> String
        ) throws -> (height: UInt64, index: UInt32, value: [UInt8]?) {
            guard bytes.count >= versionLength + 1 else {
                throw StoreError.corrupt("\(what()): state value is \(bytes.count) bytes, shorter than 13")
            }
            let version = try decodeVersion(bytes[0..<versionLength], what())
            let value = try decodeFlagged(bytes[versionLength...], what())
            return (version.height, version.index, value)
        }

        static func decodeHead(_ bytes: [UInt8]) throws -> Head {
            guard bytes.count == headValueLength else {
                throw StoreError.corrupt("head record is \(bytes.count) bytes, not \(headValueLength)")
            }
            return Head(
                height: readU64(bytes[0..<8]),
                hash: Array(bytes[8..<8 + hashLength]),
                stateRoot: Array(bytes[8 + hashLength..<headValueLength]))
        }

        // MARK: Integers

        // Big-endian, through GridBase's one reader/writer.

        static func appendU64(_ value: UInt64, to out: inout [UInt8]) { BigEndianWriter.append(value, to: &out) }

        static func appendU32(_ value: UInt32, to out: inout [UInt8]) { BigEndianWriter.append(value, to: &out) }

        /// Precondition: exactly 8 bytes.
        static func readU64(_ bytes: ArraySlice<UInt8>) -> UInt64 { BigEndianReader.integer(exactly: bytes) }

        /// Precondition: exactly 4 bytes.
        static func readU32(_ bytes: ArraySlice<UInt8>) -> UInt32 { BigEndianReader.integer(exactly: bytes) }
    }
}
