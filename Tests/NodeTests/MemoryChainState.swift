@testable import Chain
import ChainHashing

/// World state in memory for executor tests: the previous blocks' writes, read back by key
/// and by prefix (in key byte order, as the store scans).
final class MemoryChainState: ChainStateReader {
    var values: [String: [UInt8]] = [:]
    func apply(_ writes: [StateWriteRecord]) { for w in writes { values[w.key] = w.value } }
    func meterLatest(_ meter: String) throws -> Int64? { nil }
    func exists(_ key: String) throws -> Bool { values[key] != nil }
    func get(_ key: String) throws -> [UInt8]? { values[key] }
    func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        for key in values.keys.filter({ $0.hasPrefix(prefix) }).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard try body(key, values[key]!) else { return }
        }
    }
}
