import Foundation
import Store

/// Baselines for the chain benchmark: what LevelDB alone sustains on this machine.
public enum LevelDBBenchmark {
    /// Writes `batches` synced (or unsynced) batches of `batchSize` sequential 8-byte
    /// big-endian keys with `valueBytes`-byte values into a fresh database at
    /// `<directory>/rawwrite.ldb` (destroyed before and after), and reports the rate.
    ///
    /// Durability measured: with `sync`, each batch is fdatasync'ed before the next starts,
    /// exactly like a `ChainStore.commit`. Time covers the writes only (not open/close).
    /// `bytesPerSecond` counts key + value bytes.
    public static func rawWriteRate(
        directory: String,
        batches: Int,
        batchSize: Int,
        valueBytes: Int,
        sync: Bool
    ) throws -> (putsPerSecond: Double, bytesPerSecond: Double) {
        precondition(batches > 0 && batchSize > 0 && valueBytes >= 0)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/rawwrite.ldb"
        try LevelDB.destroy(path: path)
        defer { try? LevelDB.destroy(path: path) }

        let seconds: Double
        do {
            let database = try LevelDB(path: path, createIfMissing: true)
            // A non-constant payload so Snappy does not make the test meaningless.
            var value = [UInt8](repeating: 0, count: valueBytes)
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for i in value.indices {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                value[i] = UInt8(truncatingIfNeeded: state >> 56)
            }
            let batch = WriteBatch()
            var next: UInt64 = 0
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<batches {
                batch.clear()
                for _ in 0..<batchSize {
                    var key: [UInt8] = []
                    key.reserveCapacity(8)
                    withUnsafeBytes(of: next.bigEndian) { key.append(contentsOf: $0) }
                    next += 1
                    batch.put(key, value)
                }
                try database.write(batch, sync: sync)
            }
            let elapsed = clock.now - start
            seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        let puts = Double(batches * batchSize)
        let duration = max(seconds, 1e-9)
        return (puts / duration, puts * Double(8 + valueBytes) / duration)
    }
}
