import Contracts
import GridBase
import GridProto
import GridCrypto
import Store

/// Read access to the world state as of the end of the previous block.
protocol ChainStateReader {
    /// Timestamp of the newest reading stored for `meter`, nil when none.
    func meterLatest(_ meter: String) throws -> Int64?
    /// Whether a value is stored under `key`.
    func exists(_ key: String) throws -> Bool
    /// The value stored under `key`.
    func get(_ key: String) throws -> [UInt8]?
}

/// Where and when a block executes: the same on every replica (the header's height and
/// timestamp), so contracts see no clock but the block's.
struct ExecutionContext: Sendable {
    var chainID: String
    var height: UInt64
    var timestampMs: Int64
}

/// A transaction refused while executing: recorded as its outcome (gRPC code and reason);
/// the transaction's writes are dropped.
struct ExecutionRejection: Error, Equatable {
    var code: StatusCode
    var reason: String

    static func failedPrecondition(_ reason: String) -> Self { Self(code: .failedPrecondition, reason: reason) }
    static func alreadyExists(_ reason: String) -> Self { Self(code: .alreadyExists, reason: reason) }
    static func permissionDenied(_ reason: String) -> Self { Self(code: .permissionDenied, reason: reason) }
    static func notFound(_ reason: String) -> Self { Self(code: .notFound, reason: reason) }
    static func invalidArgument(_ reason: String) -> Self { Self(code: .invalidArgument, reason: reason) }
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
/// Cross-chain keys are in `AnchorKeys` (Docs/anchoring.md).
struct BlockExecutor {
    static func readingKey(meter: String, timestampMs: Int64) -> String {
        let ts = String(timestampMs)
        return "reading/\(meter)/" + String(repeating: "0", count: max(0, 15 - ts.count)) + ts
    }

    static func meterKey(_ meter: String) -> String { "meter/\(meter)" }

    static func execute(_ transactions: [TxPayload], context: ExecutionContext, state reader: ChainStateReader) throws -> (writes: [StateWriteRecord], outcomes: [TxOutcome]) {
        var state = BlockState(reader: reader)
        var outcomes: [TxOutcome] = []
        var latest: [String: Int64?] = [:]
        var written = Set<String>()
        let contract = BlockContext(district: context.chainID, height: context.height, timestampMs: context.timestampMs)
        // Block-level contract work first: commands past their valid-until expire (their
        // writes carry transaction index 0).
        if !transactions.isEmpty {
            state.begin(0)
            do {
                _ = try FeeControl.expireCommands(context: contract, state: &state)
                state.commitTransaction()
            } catch let rejection as ContractRejection {
                throw StoreError.corrupt("command expiry failed at height \(context.height): \(rejection.reason)")
            }
        }
        for (index, payload) in transactions.enumerated() {
            state.begin(UInt32(index))
            do {
                var outcome: TxOutcome
                switch payload.body {
                case .readings(let batch)?:
                    outcome = try applyReadings(batch, state: &state, latest: &latest, written: &written, contract: contract)
                case .districtRegistration(let registration)?:
                    state.set(AnchorKeys.district(registration.district), registration.serializedBytes())
                    outcome = TxOutcome()
                case .anchor(let anchor)?:
                    try applyAnchor(anchor, state: &state)
                    outcome = TxOutcome()
                case .parameter(let parameter)?:
                    guard try state.get(AnchorKeys.district(parameter.district)) != nil else {
                        throw ExecutionRejection.failedPrecondition("district \(parameter.district) is not registered on this main chain")
                    }
                    try appendParameter(parameter, state: &state)
                    outcome = TxOutcome()
                case .anchorReceipt(let receipt)?:
                    try applyReceipt(receipt, state: &state)
                    outcome = TxOutcome()
                case .downlink(let downlink)?:
                    outcome = try applyDownlink(downlink, state: &state, contract: contract)
                case .commandAck(let ack)?:
                    outcome = TxOutcome()
                    outcome.record(try FeeControl.acknowledge(ack, context: contract, state: &state))
                case nil:
                    throw ExecutionRejection.invalidArgument("payload has no body")
                }
                state.commitTransaction()
                outcomes.append(outcome)
            } catch let rejection as ExecutionRejection {
                state.rollbackTransaction()
                outcomes.append(TxOutcome(code: rejection.code.rawValue, message: rejection.reason))
            } catch let rejection as ContractRejection {
                state.rollbackTransaction()
                outcomes.append(TxOutcome(code: rejection.code.rawValue, message: rejection.reason))
            }
        }
        return (state.writes, outcomes)
    }

    // MARK: Readings

    /// Stores each reading not already on the chain (`written`: the reading keys of this
    /// block so far), advances the meters' newest times, then bills through the contract.
    private static func applyReadings(
        _ batch: ReadingBatch, state: inout BlockState, latest: inout [String: Int64?], written: inout Set<String>, contract: BlockContext
    ) throws -> TxOutcome {
        var accepted: UInt32 = 0
        var duplicate: UInt32 = 0
        var touched: [String] = []
        var touchedSet = Set<String>()
        var positions: [Int] = []
        for (position, reading) in batch.readings.enumerated() {
            let meter = reading.meterId
            let newest: Int64?
            if let cached = latest[meter] {
                newest = cached
            } else {
                newest = try state.reader.meterLatest(meter)
                latest[meter] = newest
            }
            let key = readingKey(meter: meter, timestampMs: reading.timestampMs)
            if let newest, reading.timestampMs <= newest {
                // Older than the newest: stored unless the very reading is already there
                // (earlier in this block, or in the store).
                let stored = written.contains(key) ? true : try state.reader.exists(key)
                if stored {
                    duplicate += 1
                    continue
                }
            }
            written.insert(key)
            state.setUnique(key, BigEndianWriter.bytes(of: UInt32(position)))
            positions.append(position)
            accepted += 1
            if newest.map({ reading.timestampMs > $0 }) ?? true {
                if touchedSet.insert(meter).inserted { touched.append(meter) }
                latest[meter] = reading.timestampMs
            }
        }
        for meter in touched {
            if let ts = latest[meter] ?? nil {
                state.set(meterKey(meter), BigEndianWriter.bytes(of: UInt64(bitPattern: ts)))
            }
        }
        var outcome = TxOutcome(code: StatusCode.ok.rawValue, message: "", readingsAccepted: accepted, readingsDuplicate: duplicate)
        // Billing: the fee-control contract sees every reading stored for the first time.
        guard !positions.isEmpty else { return outcome }
        let savepoint = state.savepoint()
        do {
            outcome.record(try FeeControl.applyReadings(batch, positions: positions, context: contract, state: &state))
        } catch let rejection as ContractRejection {
            // The readings stay stored; the contract's partial writes go, the reason stays.
            state.rollback(to: savepoint)
            outcome.message = "not billed: \(rejection.reason)"
            return outcome
        }
        return outcome
    }

    // MARK: Main chain

    /// Checks an anchor against the registry and the district's previous anchor. Used when
    /// the anchor executes and, before it is queued, by the leader's admission check.
    static func checkAnchor(_ anchor: Anchor, get: (String) throws -> [UInt8]?) throws -> AnchorRecord? {
        guard let bytes = try get(AnchorKeys.district(anchor.district)),
              let registration = try? DistrictRegistration(serializedBytes: bytes) else {
            throw ExecutionRejection.failedPrecondition("district \(anchor.district) is not registered on this main chain")
        }
        let members = Set(registration.memberCertificates.map { Digest.sha256($0) })
        var signers = Set<[UInt8]>()
        for (i, signature) in anchor.signatures.enumerated() {
            let fingerprint = Digest.sha256(signature.certificate)
            guard members.contains(fingerprint) else {
                throw ExecutionRejection.permissionDenied("anchor signature \(i) is not by a registered member of district \(anchor.district)")
            }
            guard signers.insert(fingerprint).inserted else {
                throw ExecutionRejection.invalidArgument("anchor signature \(i) repeats a member")
            }
        }
        guard signers.count * 2 > members.count else {
            throw ExecutionRejection.permissionDenied("anchor has \(signers.count) member signatures; district \(anchor.district) needs a majority of \(members.count)")
        }
        let previous = try get(AnchorKeys.lastAnchor(anchor.district)).flatMap(AnchorRecord.init(bytes:))
        let (expected, overflow) = (previous?.to ?? 0).addingReportingOverflow(1)
        guard !overflow else { throw ExecutionRejection.failedPrecondition("district \(anchor.district) has no height left to anchor") }
        guard anchor.fromHeight == expected else {
            if anchor.fromHeight < expected, let same = try get(AnchorKeys.anchor(anchor.district, from: anchor.fromHeight)).flatMap(AnchorRecord.init(bytes:)),
               same.to == anchor.toHeight, same.lastHeaderHash == anchor.lastHeaderHash {
                throw ExecutionRejection.alreadyExists("district \(anchor.district) range \(anchor.fromHeight)...\(anchor.toHeight) is already anchored")
            }
            throw ExecutionRejection.failedPrecondition("anchor range starts at \(anchor.fromHeight); district \(anchor.district) continues at \(expected)")
        }
        try checkDownlink(anchor, get: get)
        return previous
    }

    /// Main chain: one more parameter accepted for its district (`DownlinkDigest`).
    private static func appendParameter(_ parameter: DistrictParameter, state: inout BlockState) throws {
        let count = try state.get(AnchorKeys.parameterCount(parameter.district)).flatMap(decodeUInt64) ?? 0
        let previous = count == 0 ? [] : try state.get(AnchorKeys.parameterDigest(parameter.district, count)) ?? []
        state.set(AnchorKeys.parameterCount(parameter.district), BigEndianWriter.bytes(of: count &+ 1))
        state.set(AnchorKeys.parameterDigest(parameter.district, count &+ 1), DownlinkDigest.next(previous, parameter))
    }

    /// An anchor's downlink position must be one the main chain gave this district.
    private static func checkDownlink(_ anchor: Anchor, get: (String) throws -> [UInt8]?) throws {
        guard !anchor.summary.isEmpty, let summary = try? UplinkSummary(serializedBytes: anchor.summary), summary.downlinkCount > 0 else { return }
        let issued = try get(AnchorKeys.parameterCount(anchor.district)).flatMap(decodeUInt64) ?? 0
        guard summary.downlinkCount <= issued,
              try get(AnchorKeys.parameterDigest(anchor.district, summary.downlinkCount)) == summary.downlinkDigest else {
            throw ExecutionRejection.failedPrecondition(
                "district \(anchor.district) took a parameter sequence this main chain did not give it (at parameter \(summary.downlinkCount) of \(issued)): a parameter was skipped or reordered")
        }
    }

    /// An 8-byte big-endian value (`BigEndianWriter.bytes(of:)`); nil for any other length.
    static func decodeUInt64(_ bytes: [UInt8]) -> UInt64? {
        var r = BigEndianReader(bytes)
        guard let v = try? r.u64(), r.isAtEnd else { return nil }
        return v
    }

    private static func applyAnchor(_ anchor: Anchor, state: inout BlockState) throws {
        let reader = state
        _ = try checkAnchor(anchor) { try reader.get($0) }
        let record = AnchorRecord(from: anchor.fromHeight, to: anchor.toHeight, lastHeaderHash: anchor.lastHeaderHash, headersRoot: anchor.headersRoot)
        state.set(AnchorKeys.lastAnchor(anchor.district), record.bytes)
        state.set(AnchorKeys.anchor(anchor.district, from: anchor.fromHeight), record.bytes)
        guard !anchor.summary.isEmpty, let summary = try? UplinkSummary(serializedBytes: anchor.summary) else { return }
        var totals = try state.get(AnchorKeys.uplinkTotals(anchor.district)).flatMap { try? UplinkSummary(serializedBytes: $0) } ?? UplinkSummary()
        totals.transactions &+= summary.transactions
        totals.readingsAccepted &+= summary.readingsAccepted
        totals.readingsBilled &+= summary.readingsBilled
        totals.chargedFen &+= summary.chargedFen
        totals.commandsIssued &+= summary.commandsIssued
        totals.noticesIssued &+= summary.noticesIssued
        if summary.downlinkCount > 0 {  // the newest downlink position, checked above
            totals.downlinkCount = summary.downlinkCount
            totals.downlinkDigest = summary.downlinkDigest
        }
        state.set(AnchorKeys.uplinkTotals(anchor.district), totals.serializedBytes())
        for account in summary.accounts {
            state.set(AnchorKeys.uplinkAccount(anchor.district, account.account), account.serializedBytes())
        }
    }

    // MARK: District chains

    private static func applyReceipt(_ receipt: AnchorReceipt, state: inout BlockState) throws {
        let last = try state.get(AnchorKeys.lastReceipt).flatMap { try? AnchorReceipt(serializedBytes: $0) }
        let (expected, overflow) = (last?.toHeight ?? 0).addingReportingOverflow(1)
        guard !overflow else { throw ExecutionRejection.failedPrecondition("no height left to receipt") }
        guard receipt.fromHeight == expected else {
            if receipt.toHeight < expected { throw ExecutionRejection.alreadyExists("range ending at \(receipt.toHeight) already has its receipt") }
            throw ExecutionRejection.failedPrecondition("receipt starts at \(receipt.fromHeight); receipts continue at \(expected)")
        }
        state.set(AnchorKeys.lastReceipt, receipt.serializedBytes())
        state.set(AnchorKeys.receipt(to: receipt.toHeight), receipt.serializedBytes())
    }

    /// Advances the cursor, then applies the parameter. A parameter the contract refuses
    /// keeps the cursor advanced (it is taken, with its refusal as the outcome), so the
    /// downlink never stalls on it.
    private static func applyDownlink(_ downlink: Downlink, state: inout BlockState, contract: BlockContext) throws -> TxOutcome {
        let position = DownlinkCursor(height: downlink.mainHeight, index: downlink.mainIndex)
        let cursor = try state.get(AnchorKeys.downlinkCursor).flatMap(DownlinkCursor.init(bytes:)) ?? DownlinkCursor(height: 0, index: 0)
        if position <= cursor {
            throw ExecutionRejection.alreadyExists("main position \(position.height)/\(position.index) is at or before the downlink cursor \(cursor.height)/\(cursor.index)")
        }
        // Taken only right after its predecessor: a downlink whose predecessor did not land
        // is refused (ABORTED) and the cursor stays, so no parameter is ever skipped.
        guard cursor == DownlinkCursor(height: downlink.afterHeight, index: downlink.afterIndex) else {
            throw ExecutionRejection(code: .aborted, reason: "downlink follows \(downlink.afterHeight)/\(downlink.afterIndex); the cursor is at \(cursor.height)/\(cursor.index)")
        }
        state.set(AnchorKeys.downlinkCursor, position.bytes)
        guard let original = try? SignedTransaction(serializedBytes: downlink.original),
              case .parameter(let parameter)? = (try? TxPayload(serializedBytes: original.payload))?.body else {
            throw ExecutionRejection.invalidArgument("downlink carries no parameter")
        }
        let taken = try state.get(AnchorKeys.downlinkDigest).flatMap(DownlinkDigest.decode) ?? (0, [])
        state.set(AnchorKeys.downlinkDigest, DownlinkDigest.encode(count: taken.count &+ 1, digest: DownlinkDigest.next(taken.digest, parameter)))
        var outcome = TxOutcome()
        let savepoint = state.savepoint()
        do {
            outcome.record(try FeeControl.applyParameter(parameter, context: contract, state: &state))
        } catch let rejection as ContractRejection {
            state.rollback(to: savepoint)
            outcome.code = rejection.code.rawValue
            outcome.message = rejection.reason
            return outcome
        }
        return outcome
    }

    static func decodeInt64(_ bytes: [UInt8]) -> Int64? {
        decodeUInt64(bytes).map { Int64(bitPattern: $0) }
    }
}

extension TxOutcome {
    /// Copies what a contract call produced into the outcome.
    mutating func record(_ effects: ContractEffects) {
        readingsBilled += effects.readingsBilled
        chargedFen += effects.chargedFen
        readingResults += effects.readingResults
        commandIds += effects.commandIDs
        noticeIds += effects.noticeIDs
        accounts += effects.accounts
    }
}
