import GridProto

/// Read access to the world state as of the end of the previous block.
protocol ChainStateReader {
    /// Timestamp of the newest reading stored for `meter`, nil when none.
    func meterLatest(_ meter: String) throws -> Int64?
    /// Whether a value is stored under `key`.
    func exists(_ key: String) throws -> Bool
}

/// Applies the transactions of one block to the world state, deterministically: the same
/// transactions over the same state give the same writes and outcomes on every replica
/// (no clock, no randomness, no iteration over unordered collections).
///
/// World state written for readings (Docs/storage-format.md, "World state"):
/// ```
/// "reading/" meter-id "/" timestamp(15 decimal digits) → u32 position of the reading in its batch
///                                                         (the version says block and transaction)
/// "meter/" meter-id                                    → i64 timestamp of the newest reading
/// ```
struct BlockExecutor {
    static func readingKey(meter: String, timestampMs: Int64) -> String {
        let ts = String(timestampMs)
        return "reading/\(meter)/" + String(repeating: "0", count: max(0, 15 - ts.count)) + ts
    }

    static func meterKey(_ meter: String) -> String { "meter/\(meter)" }

    static func execute(_ transactions: [TxPayload], state: ChainStateReader) throws -> (writes: [StateWriteRecord], outcomes: [TxOutcome]) {
        var writes: [StateWriteRecord] = []
        var outcomes: [TxOutcome] = []
        var latest: [String: Int64?] = [:]
        var written = Set<String>()
        for (index, payload) in transactions.enumerated() {
            let txIndex = UInt32(index)
            switch payload.body {
            case .readings(let batch)?:
                var accepted: UInt32 = 0
                var duplicate: UInt32 = 0
                var touched: [String] = []
                for (position, reading) in batch.readings.enumerated() {
                    let meter = reading.meterId
                    let newest: Int64?
                    if let cached = latest[meter] {
                        newest = cached
                    } else {
                        newest = try state.meterLatest(meter)
                        latest[meter] = newest
                    }
                    let key = readingKey(meter: meter, timestampMs: reading.timestampMs)
                    if let newest, reading.timestampMs <= newest {
                        // Older than the newest: stored unless the very reading is already there.
                        if written.contains(key) {
                            duplicate += 1
                            continue
                        }
                        if try state.exists(key) {
                            duplicate += 1
                            continue
                        }
                    }
                    written.insert(key)
                    writes.append(StateWriteRecord(key: key, value: bigEndian(UInt32(position)), txIndex: txIndex))
                    accepted += 1
                    if newest.map({ reading.timestampMs > $0 }) ?? true {
                        if !touched.contains(meter) { touched.append(meter) }
                        latest[meter] = reading.timestampMs
                    }
                }
                for meter in touched {
                    if let ts = latest[meter] ?? nil {
                        writes.append(StateWriteRecord(key: meterKey(meter), value: bigEndian(UInt64(bitPattern: ts)), txIndex: txIndex))
                    }
                }
                outcomes.append(TxOutcome(code: 0, message: "", readingsAccepted: accepted, readingsDuplicate: duplicate))
            case nil:
                outcomes.append(TxOutcome(code: 3, message: "payload has no body", readingsAccepted: 0, readingsDuplicate: 0))
            }
        }
        return (writes, outcomes)
    }

    static func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.bigEndian) { Array($0) }
    }

    static func decodeInt64(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count == 8 else { return nil }
        return Int64(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}
