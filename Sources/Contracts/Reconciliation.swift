import GridBase
public import GridProto

/// The multi-party reconciliation contract of the main chain (DOMAIN.md, "Multi-party
/// reconciliation"; Docs/reconciliation.md): marketing, the banks and finance put their
/// original records on the chain; `reconcile` matches them for a working date and writes the
/// results, shared by all three.
///
/// Records (`takeReceipts`, `takePayments`, `takeEntries`): "each party submits only its own
/// kind, signed, in batches" — the signer's role, the batch's size and every field's syntax
/// are checked on admission (`TransactionValidator`); this contract stores each record under
/// its day's prefix (`ReconciliationKeys`) and its id. "A record is immutable once on chain":
/// a record whose id (party + serial) is already stored is never stored or counted again
/// (`recordsDuplicate`; the first stands, a differing repeat is named in the note). A batch
/// is never refused for repeats.
///
/// Reconciliation (`reconcile`): for working date D, records dated up to D+1 are visible
/// ("records dated D and D+1 are considered"); marketing ↔ bank payment by payment
/// (`Reconciliation+Payments.swift`), finance ↔ bank and marketing ↔ finance per bank account
/// and day on totals (`Reconciliation+Totals.swift`). Each run writes one
/// `ReconciliationResult` per pair under `recon/result/<D>/<pair>/<run>`; a later run
/// supersedes the earlier (`recon/latest/<D>/<pair>`), both stay.
///
/// Schedule (`ReconciliationSchedule`): storing records queues the dates they change; the
/// block executor runs the due dates after each block's transactions, through `reconcile`.
///
/// Determinism: integer fen only, every collection iterated in sorted order, no clock (the
/// block's height and timestamp are recorded, never compared), no randomness.
/// Errors: `ContractRejection` INVALID_ARGUMENT (an invalid date; a total that would
/// overflow Int64), INTERNAL (a stored record does not decode). The caller drops the
/// call's writes.
public enum Reconciliation {
    /// The three pairs, in the order each run writes them.
    public static let pairs: [ReconPair] = [.marketingBank, .financeBank, .marketingFinance]

    // MARK: Records

    /// Stores marketing's receipts and reversals (`recon/m/…`, `recon/id/m/…`, and for a
    /// reversal `recon/reversal/<reversed>/<serial>`).
    public static func takeReceipts<S: ContractState>(_ batch: ChargeReceiptBatch, state: inout S) throws -> ContractEffects {
        var effects = ContractEffects()
        var conflicts: [String] = []
        var dates = Set<UInt32>()
        for receipt in batch.receipts {
            let key = ReconciliationKeys.receipt(receipt)
            guard try store(receipt.serializedBytes(), at: key, id: ReconciliationKeys.marketingID(receipt.serial),
                            named: "m:\(receipt.serial)", state: &state, effects: &effects, conflicts: &conflicts) else { continue }
            if !receipt.reversesSerial.isEmpty {
                state.set(ReconciliationKeys.reversal(receipt.reversesSerial, serial: receipt.serial), Array(key.utf8))
            }
            dates.insert(receipt.workingDate)
        }
        try ReconciliationSchedule.recordsStored(dates: dates, neighbours: true, state: &state)
        effects.note = conflictNote(conflicts)
        return effects
    }

    /// Stores a bank's payment records (`recon/b/…`, `recon/id/b/…`, and when it names a
    /// marketing serial `recon/by-serial/<serial>/<bank>/<bank serial>`).
    public static func takePayments<S: ContractState>(_ batch: BankPaymentBatch, state: inout S) throws -> ContractEffects {
        var effects = ContractEffects()
        var conflicts: [String] = []
        var dates = Set<UInt32>()
        for payment in batch.payments {
            let key = ReconciliationKeys.bankPayment(payment, bank: batch.bank)
            guard try store(payment.serializedBytes(), at: key, id: ReconciliationKeys.bankID(bank: batch.bank, serial: payment.serial),
                            named: "b:\(batch.bank)/\(payment.serial)", state: &state, effects: &effects, conflicts: &conflicts) else { continue }
            if !payment.marketingSerial.isEmpty {
                state.set(ReconciliationKeys.bySerial(payment.marketingSerial, bank: batch.bank, serial: payment.serial), Array(key.utf8))
            }
            dates.insert(payment.valueDate)
        }
        try ReconciliationSchedule.recordsStored(dates: dates, neighbours: true, state: &state)
        effects.note = conflictNote(conflicts)
        return effects
    }

    /// Stores finance's accounting entries (`recon/f/…`, `recon/id/f/…`).
    public static func takeEntries<S: ContractState>(_ batch: AccountingEntryBatch, state: inout S) throws -> ContractEffects {
        var effects = ContractEffects()
        var conflicts: [String] = []
        var dates = Set<UInt32>()
        for entry in batch.entries {
            guard try store(entry.serializedBytes(), at: ReconciliationKeys.entry(entry), id: ReconciliationKeys.financeID(entry.voucherId),
                            named: "f:\(entry.voucherId)", state: &state, effects: &effects, conflicts: &conflicts) else { continue }
            // Considered only by the run of its collection day, and only when booked by the
            // day after it ("records dated D and D+1").
            if entry.workingDate <= date(entry.collectionDate, plus: 1) { dates.insert(entry.collectionDate) }
        }
        try ReconciliationSchedule.recordsStored(dates: dates, neighbours: false, state: &state)
        effects.note = conflictNote(conflicts)
        return effects
    }

    /// Stores one party's record `bytes` under `key` and its id under `idKey` (pointing at
    /// `key`) and counts it accepted — unless the id is already on the chain ("a record is
    /// immutable once on chain"): then it counts as a duplicate, and a repeat whose bytes
    /// differ from the stored record is named (`name`) in `conflicts`. Returns whether it was
    /// stored.
    private static func store<S: ContractState>(
        _ bytes: [UInt8], at key: String, id idKey: String, named name: String,
        state: inout S, effects: inout ContractEffects, conflicts: inout [String]
    ) throws -> Bool {
        if let stored = try state.get(idKey) {
            effects.recordsDuplicate += 1
            if try state.get(String(decoding: stored, as: UTF8.self)) != bytes { conflicts.append(name) }
            return false
        }
        state.set(key, bytes)
        state.set(idKey, Array(key.utf8))
        effects.recordsAccepted += 1
        return true
    }

    private static func conflictNote(_ ids: [String]) -> String {
        guard !ids.isEmpty else { return "" }
        let shown = ids.prefix(10).joined(separator: ", ")
        return "\(ids.count) repeated id(s) with different content ignored (records are immutable; the first stands): \(shown)\(ids.count > 10 ? ", …" : "")"
    }

    // MARK: Running

    /// Reconciles working date `date` (YYYYMMDD): one new result per pair, each superseding
    /// the pair's earlier results for the date. Returns the result keys written.
    /// - Throws: INVALID_ARGUMENT (not a calendar date; a total overflowing Int64), INTERNAL
    ///   (a stored record does not decode).
    public static func reconcile<S: ContractState>(date: UInt32, context: BlockContext, state: inout S) throws -> ContractEffects {
        guard isValidDate(date), isValidDate(Self.date(date, plus: 1)), isValidDate(Self.date(date, plus: -1)) else {
            throw ContractRejection.invalidArgument("reconciliation date \(date) is not a calendar date YYYYMMDD in 1970-01-02…9999-12-30")
        }
        let day = try ReconciliationDay(date: date, state: state)
        let payments = try day.matchPayments(state: state)
        let totals = try day.compareTotals(payments: payments)
        var effects = ContractEffects()
        for (pair, items) in [(ReconPair.marketingBank, payments.items), (.financeBank, totals.financeBank), (.marketingFinance, totals.marketingFinance)] {
            let run = (try state.get(ReconciliationKeys.latest(date: date, pair: pair)).flatMap(decodeRun) ?? 0) &+ 1
            var result = ReconciliationResult(date: date, pair: pair, run: run, height: context.height, blockTimestampMs: context.timestampMs)
            result.totals = try statusTotals(items)
            result.items = items.filter { $0.status != .matched }
            let key = ReconciliationKeys.result(date: date, pair: pair, run: run)
            state.set(key, result.serializedBytes())
            state.set(ReconciliationKeys.latest(date: date, pair: pair), BigEndianWriter.bytes(of: run))
            effects.resultKeys.append(key)
        }
        // This run saw every record so far: a pending rerun after late records is done.
        if try state.get(ReconciliationKeys.dirty(date)) != nil { state.set(ReconciliationKeys.dirty(date), nil) }
        return effects
    }

    /// The newest result of `pair` for `date`, nil before the first run.
    public static func latestResult<S: ContractState>(date: UInt32, pair: ReconPair, state: S) throws -> ReconciliationResult? {
        guard let run = try state.get(ReconciliationKeys.latest(date: date, pair: pair)).flatMap(decodeRun),
              let bytes = try state.get(ReconciliationKeys.result(date: date, pair: pair, run: run)) else { return nil }
        do {
            return try ReconciliationResult(serializedBytes: bytes)
        } catch {
            throw ContractRejection.internalError("reconciliation result \(date) \(ReconciliationKeys.pairName(pair)) run \(run) does not decode")
        }
    }

    /// Counts and totals per status, in status-number order.
    static func statusTotals(_ items: [ReconItem]) throws -> [ReconStatusTotal] {
        var totals: [ReconStatusTotal] = []
        for status in (1...8).map({ ReconStatus(rawValue: $0) }) {
            var total = ReconStatusTotal(status: status)
            for item in items where item.status == status {
                total.count += 1
                total.leftAmountFen = try add(total.leftAmountFen, item.leftAmountFen)
                total.rightAmountFen = try add(total.rightAmountFen, item.rightAmountFen)
            }
            if total.count > 0 { totals.append(total) }
        }
        return totals
    }

    /// a + b, or INVALID_ARGUMENT when it overflows (never a trap).
    static func add(_ a: Int64, _ b: Int64) throws -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw ContractRejection.invalidArgument("reconciliation total overflows Int64 fen") }
        return sum
    }

    private static func decodeRun(_ bytes: [UInt8]) -> UInt32? {
        var r = BigEndianReader(bytes)
        guard let v = try? r.u32(), r.isAtEnd else { return nil }
        return v
    }
}
