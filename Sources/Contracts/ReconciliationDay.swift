import GridProto

/// A marketing record as stored: its key and the receipt (a reversal has a negative amount
/// and `reversesSerial`).
struct MarketingRecord {
    var key: String
    var receipt: ChargeReceipt
    var ref: String { "m:\(receipt.serial)" }
    var date: UInt32 { receipt.workingDate }
    var isReversal: Bool { !receipt.reversesSerial.isEmpty }
}

/// A bank record as stored: its key, the bank (from the key) and the payment.
struct BankRecord {
    var key: String
    var bank: String
    var payment: BankPayment
    var ref: String { "b:\(bank)/\(payment.serial)" }
    var date: UInt32 { payment.valueDate }
    var isReversed: Bool { payment.status == .reversed }
}

/// The records one run of the daily reconciliation sees (DOMAIN.md: "working date D; records
/// dated D and D+1 are considered"), loaded by prefix scan: marketing and bank records dated
/// D−1, D and D+1 (D−1 only for the fallback match of a credit landing on D), and finance's
/// entries booking collection day D that were booked by D+1. Counterparts dated earlier are
/// read through the id indexes (`ReconciliationKeys`). Every list is in key byte order.
///
/// Invariant: a record dated after D+1 is never considered ("visible" = dated ≤ D+1).
/// Memory: this step loads the three days' records of the two payment parties; streaming
/// the match over the store is a later step (Docs/reconciliation.md, "Not yet").
struct ReconciliationDay {
    let date: UInt32
    let previous: UInt32
    let next: UInt32
    /// Marketing records dated previous, date, next.
    var marketing: [MarketingRecord] = []
    /// Bank records dated previous, date, next.
    var bank: [BankRecord] = []
    /// Finance entries for collection day `date`, booked by `next`.
    var finance: [AccountingEntry] = []

    init<S: ContractState>(date: UInt32, state: S) throws {
        self.date = date
        previous = Reconciliation.date(date, plus: -1)
        next = Reconciliation.date(date, plus: 1)
        for day in [previous, date, next] {
            try state.scan(prefix: ReconciliationKeys.marketingDay(day)) { key, value in
                marketing.append(MarketingRecord(key: key, receipt: try Self.decode(ChargeReceipt.self, key, value)))
                return true
            }
            try state.scan(prefix: ReconciliationKeys.bankDay(day)) { key, value in
                bank.append(BankRecord(key: key, bank: try Self.bankName(key), payment: try Self.decode(BankPayment.self, key, value)))
                return true
            }
        }
        try state.scan(prefix: ReconciliationKeys.financeDay(date)) { key, value in
            let entry = try Self.decode(AccountingEntry.self, key, value)
            if entry.workingDate <= next { finance.append(entry) }
            return true
        }
    }

    func isVisible(_ day: UInt32) -> Bool { day <= next }

    static func decode<M: ProtoMessage>(_ type: M.Type, _ key: String, _ bytes: [UInt8]) throws -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch {
            throw ContractRejection.internalError("reconciliation record \(key) does not decode")
        }
    }

    /// The bank of `recon/b/<date>/<account>/<bank>/<serial>`.
    static func bankName(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 6 else { throw ContractRejection.internalError("bank record key \(key) is malformed") }
        return String(parts[4])
    }

    /// The marketing record stored at the data key `idKey` points to.
    static func marketingRecord<S: ContractState>(id idKey: String, state: S) throws -> MarketingRecord? {
        guard let keyBytes = try state.get(idKey) else { return nil }
        return try marketingRecord(at: String(decoding: keyBytes, as: UTF8.self), state: state)
    }

    static func marketingRecord<S: ContractState>(at key: String, state: S) throws -> MarketingRecord? {
        guard let bytes = try state.get(key) else { return nil }
        return MarketingRecord(key: key, receipt: try decode(ChargeReceipt.self, key, bytes))
    }

    static func bankRecord<S: ContractState>(at key: String, state: S) throws -> BankRecord? {
        guard let bytes = try state.get(key) else { return nil }
        return BankRecord(key: key, bank: try bankName(key), payment: try decode(BankPayment.self, key, bytes))
    }
}
