import ChainHashing
import Contracts
import GridBase
import GridProto
import GridCrypto
import Store

/// Read access to the world state as of the end of the previous block.
package protocol ChainStateReader {
    /// Timestamp of the newest reading stored for `meter`, nil when none.
    func meterLatest(_ meter: String) throws -> Int64?
    /// Whether a value is stored under `key`.
    func exists(_ key: String) throws -> Bool
    /// The value stored under `key`.
    func get(_ key: String) throws -> [UInt8]?
    /// Calls `body(key, value)` for every live key starting with `prefix`, in ascending byte
    /// order of the UTF-8 key, until it returns false.
    func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws
}

/// Where and when a block executes: the same on every replica (the header's height and
/// timestamp), so contracts see no clock but the block's.
package struct ExecutionContext: Sendable {
    package var chainID: String
    package var height: UInt64
    package var timestampMs: Int64
}

/// A transaction refused while executing: recorded as its outcome (gRPC code and reason);
/// the transaction's writes are dropped.
package struct ExecutionRejection: Error, Equatable {
    package var code: StatusCode
    package var reason: String

    package static func failedPrecondition(_ reason: String) -> Self { Self(code: .failedPrecondition, reason: reason) }
    package static func alreadyExists(_ reason: String) -> Self { Self(code: .alreadyExists, reason: reason) }
    package static func permissionDenied(_ reason: String) -> Self { Self(code: .permissionDenied, reason: reason) }
    package static func notFound(_ reason: String) -> Self { Self(code: .notFound, reason: reason) }
    package static func invalidArgument(_ reason: String) -> Self { Self(code: .invalidArgument, reason: reason) }
}

/// Applies the transactions of one block to the world state, deterministically: the same
/// transactions over the same state give the same writes and outcomes on every replica
/// (no clock, no randomness, no iteration over unordered collections).
///
/// A dispatcher: each payload kind goes to the contract that owns it, inside the
/// transaction's scope of `BlockState` (its writes are kept only when it succeeds).
///
/// | Payload | Contract |
/// |---|---|
/// | `ReadingBatch` | the readings are stored here (below), then billed by `FeeControl` |
/// | `CommandAck` | `FeeControl.acknowledge` |
/// | `DistrictRegistration`, `DistrictParameter`, `Anchor` (main chain) | `CrossChain` |
/// | `AnchorReceipt` (district chain) | `CrossChain` |
/// | `Downlink` (district chain) | `CrossChain.takeDownlink`, then `FeeControl.applyParameter` |
/// | `ChargeReceiptBatch`, `BankPaymentBatch`, `AccountingEntryBatch`, `ReconcileRequest` (main chain) | `Reconciliation` (Docs/reconciliation.md) |
/// | `ReconcileSettings` (main chain) | `ReconciliationSchedule.applySettings` |
///
/// After the transactions, a block-level step runs the automatic daily reconciliation
/// (`runReconciliationSchedule`).
///
/// A refusal (`ExecutionRejection`, `ContractRejection`) becomes the transaction's outcome
/// (its code and reason). Signatures and roles were verified before (`TransactionValidator`):
/// the contracts judge only what depends on the state.
///
/// World state written for readings (Docs/storage-format.md, "World state"):
/// ```
/// "reading/" meter-id "/" timestamp(15 decimal digits) → u32 position of the reading in its batch
///                                                         (the version says block and transaction)
/// "meter/" meter-id                                    → i64 timestamp of the newest reading
/// ```
/// Cross-chain keys are in `AnchorKeys` (Docs/anchoring.md).
package struct BlockExecutor {
    /// The cross-chain contract, with GridCrypto's SHA-256.
    package static let crossChain = CrossChain(sha256: { Digest.sha256($0) })

    package static func readingKey(meter: String, timestampMs: Int64) -> String {
        let ts = String(timestampMs)
        return "reading/\(meter)/" + String(repeating: "0", count: max(0, 15 - ts.count)) + ts
    }

    package static func meterKey(_ meter: String) -> String { "meter/\(meter)" }

    package static func execute(_ transactions: [TxPayload], context: ExecutionContext, state reader: ChainStateReader) throws -> (writes: [StateWriteRecord], outcomes: [TxOutcome]) {
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
                var outcome = TxOutcome()
                switch payload.body {
                case .readings(let batch)?:
                    outcome = try applyReadings(batch, state: &state, latest: &latest, written: &written, contract: contract)
                case .commandAck(let ack)?:
                    outcome.record(try FeeControl.acknowledge(ack, context: contract, state: &state))
                case .districtRegistration(let registration)?:
                    crossChain.registerDistrict(registration, state: &state)
                case .parameter(let parameter)?:
                    try crossChain.acceptParameter(parameter, state: &state)
                case .anchor(let anchor)?:
                    try crossChain.applyAnchor(anchor, state: &state)
                case .anchorReceipt(let receipt)?:
                    try crossChain.applyReceipt(receipt, state: &state)
                case .downlink(let downlink)?:
                    let parameter = try crossChain.takeDownlink(downlink, state: &state)
                    outcome = try applyParameter(parameter, state: &state, contract: contract)
                case .chargeReceipts(let batch)?:
                    outcome.record(try Reconciliation.takeReceipts(batch, state: &state))
                case .bankPayments(let batch)?:
                    outcome.record(try Reconciliation.takePayments(batch, state: &state))
                case .accountingEntries(let batch)?:
                    outcome.record(try Reconciliation.takeEntries(batch, state: &state))
                case .reconcile(let request)?:
                    outcome.record(try Reconciliation.reconcile(date: request.date, context: contract, state: &state))
                case .reconcileSettings(let settings)?:
                    outcome.record(try ReconciliationSchedule.applySettings(settings, state: &state))
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
        try runReconciliationSchedule(after: transactions.count, state: &state, contract: contract)
        return (state.writes, outcomes)
    }

    // MARK: Reconciliation schedule

    /// Block-level step after the transactions: the automatic daily reconciliation and its
    /// reruns (`ReconciliationSchedule`, Docs/reconciliation.md "Schedule"; DOMAIN.md "Daily
    /// … once D+1 has closed", issue 13). Decided by the block's timestamp and the state only;
    /// at most `ReconciliationSchedule.maxRunsPerBlock` dates. Its writes carry the index
    /// `transactionCount` (after the last transaction's, so they are the keys' newest).
    /// Main chain only in effect: its queues (`recon/due/`, `recon/dirty/`) are written by
    /// reconciliation records alone, which admission takes on the main chain only; on a
    /// district chain the step finds them empty.
    /// A run the contract refuses (a total overflowing, a record that does not decode) is dropped with its writes and taken
    /// off its queue, so the schedule never stalls; a state that cannot be read is corrupt.
    private static func runReconciliationSchedule(after transactionCount: Int, state: inout BlockState, contract: BlockContext) throws {
        state.begin(UInt32(clamping: transactionCount))
        do {
            for run in try ReconciliationSchedule.scheduled(context: contract, state: state) {
                let savepoint = state.savepoint()
                do {
                    _ = try ReconciliationSchedule.run(run, context: contract, state: &state)
                } catch is ContractRejection {
                    state.rollback(to: savepoint)
                    try ReconciliationSchedule.refused(run, state: &state)
                }
            }
            state.commitTransaction()
        } catch let rejection as ContractRejection {
            throw StoreError.corrupt("reconciliation schedule failed at height \(contract.height): \(rejection.reason)")
        }
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

    // MARK: Downlink

    /// Applies a parameter the district took (`CrossChain.takeDownlink`) through the
    /// fee-control contract. A parameter the contract refuses keeps the cursor advanced (it
    /// is taken, with its refusal as the outcome), so the downlink never stalls on it.
    private static func applyParameter(_ parameter: DistrictParameter, state: inout BlockState, contract: BlockContext) throws -> TxOutcome {
        var outcome = TxOutcome()
        let savepoint = state.savepoint()
        do {
            outcome.record(try FeeControl.applyParameter(parameter, context: contract, state: &state))
        } catch let rejection as ContractRejection {
            state.rollback(to: savepoint)
            outcome.code = rejection.code.rawValue
            outcome.message = rejection.reason
        }
        return outcome
    }

    // MARK: Admission

    /// The cross-chain contract's anchor check (`CrossChain.checkAnchor`) over committed
    /// state, for the leader's admission check before an anchor is queued; a refusal is an
    /// `ExecutionRejection` with the contract's code and reason.
    package static func checkAnchor(_ anchor: Anchor, get: (String) throws -> [UInt8]?) throws -> AnchorRecord? {
        do {
            return try crossChain.checkAnchor(anchor, get: get)
        } catch let rejection as ContractRejection {
            throw ExecutionRejection(code: rejection.code, reason: rejection.reason)
        }
    }

    /// An 8-byte big-endian value (`BigEndianWriter.bytes(of:)`); nil for any other length.
    package static func decodeUInt64(_ bytes: [UInt8]) -> UInt64? {
        var r = BigEndianReader(bytes)
        guard let v = try? r.u64(), r.isAtEnd else { return nil }
        return v
    }

    package static func decodeInt64(_ bytes: [UInt8]) -> Int64? {
        decodeUInt64(bytes).map { Int64(bitPattern: $0) }
    }
}

extension TxOutcome {
    /// Copies what a contract call produced into the outcome.
    package mutating func record(_ effects: ContractEffects) {
        readingsBilled += effects.readingsBilled
        chargedFen += effects.chargedFen
        readingResults += effects.readingResults
        commandIds += effects.commandIDs
        noticeIds += effects.noticeIDs
        accounts += effects.accounts
        recordsAccepted += effects.recordsAccepted
        recordsDuplicate += effects.recordsDuplicate
        resultKeys += effects.resultKeys
        if message.isEmpty { message = effects.note }
    }
}
