import GridProto

/// One payment as both sides see it: marketing's receipt (with the reversal that nets it),
/// the bank records that pay it; or a record alone.
struct PaymentUnit {
    var receipt: MarketingRecord?
    /// The reversal netting `receipt`; or, with no receipt, a reversal that nets nothing.
    var reversal: MarketingRecord?
    var bank: [BankRecord] = []

    var dates: [UInt32] { [receipt?.date, reversal?.date].compactMap { $0 } + bank.map(\.date) }
    var isOrphanReversal: Bool { receipt == nil && reversal != nil }
    var marketingNetted: Bool { receipt != nil && reversal != nil }
    var bankReversed: Bool { bank.contains { $0.isReversed } }
    var leftAmount: Int64 { (receipt?.receipt.amountFen ?? 0) &+ (reversal?.receipt.amountFen ?? 0) }
}

/// What the payment-by-payment match found: the items reported for the date, and per bank
/// account the credits that explain timing differences of the day's totals.
struct PaymentMatch {
    var items: [ReconItem] = []
    /// Bank credits dated D+1 for receipts dated D (items `in_transit` for D).
    var inTransit: [String: Int64] = [:]
    /// Bank credits dated D for receipts dated before D.
    var carriedIn: [String: Int64] = [:]
}

extension ReconciliationDay {
    /// Marketing ↔ bank, payment by payment (DOMAIN.md): "match on serial, else on account +
    /// amount + date".
    ///
    /// 1. Reversal netting: "a reversal and the record it reverses net to zero and leave
    ///    matching together (status `reversed`); a reversal of an unknown serial is
    ///    `status_diff`" — so is a reversal of a reversal, one that does not net its receipt
    ///    exactly, or a second reversal of a receipt.
    /// 2. Serial: a bank record naming a receipt's serial pays it (several records naming it
    ///    form one bank side: reversed if any is `reversed`, the amount of the `success` ones).
    /// 3. Fallback: a receipt and a bank record each left alone, with the same customer
    ///    account and amount, the bank dated the receipt's day or the next: paired greedily,
    ///    receipts in (date, customer, amount, serial) order, bank records in key order.
    /// 4. Reporting: an item is reported on the date of its latest record, with its status:
    ///    `reversed` (netted, and the bank side reversed or absent; a reversed bank record
    ///    alone), `status_diff` (one side reversed, the other not), `matched` or
    ///    `amount_diff`, `only_in_marketing`, `only_in_bank`. An item whose earliest record is
    ///    dated D and latest D+1 is `in_transit` for D ("a payment booked on D and credited
    ///    on D+1 is `in_transit` for D and matched when D+1 is reconciled").
    func matchPayments<S: ContractState>(state: S) throws -> PaymentMatch {
        var units: [PaymentUnit] = []
        var handled = Set<String>()  // record keys already in a unit (lookup only)
        // Serials of receipts to build, from the window's records.
        var serials = Set<String>()
        var orphanReversals: [MarketingRecord] = []
        for record in marketing {
            if record.isReversal {
                if let target = try Self.marketingRecord(id: ReconciliationKeys.marketingID(record.receipt.reversesSerial), state: state), !target.isReversal {
                    serials.insert(target.receipt.serial)
                } else {
                    orphanReversals.append(record)
                }
            } else {
                serials.insert(record.receipt.serial)
            }
        }
        for record in bank where !record.payment.marketingSerial.isEmpty {
            if let target = try Self.marketingRecord(id: ReconciliationKeys.marketingID(record.payment.marketingSerial), state: state),
               !target.isReversal, isVisible(target.date) {
                serials.insert(target.receipt.serial)
            }
        }
        for serial in serials.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let receipt = try Self.marketingRecord(id: ReconciliationKeys.marketingID(serial), state: state), isVisible(receipt.date) else { continue }
            var unit = PaymentUnit(receipt: receipt)
            handled.insert(receipt.key)
            for (_, keyBytes) in try state.entries(withPrefix: ReconciliationKeys.reversalsPrefix(serial)) {
                guard let reversal = try Self.marketingRecord(at: String(decoding: keyBytes, as: UTF8.self), state: state),
                      isVisible(reversal.date) else { continue }
                handled.insert(reversal.key)
                if unit.reversal == nil, reversal.receipt.amountFen == 0 &- receipt.receipt.amountFen {
                    unit.reversal = reversal
                } else {
                    orphanReversals.append(reversal)
                }
            }
            for (_, keyBytes) in try state.entries(withPrefix: ReconciliationKeys.bySerialPrefix(serial)) {
                guard let record = try Self.bankRecord(at: String(decoding: keyBytes, as: UTF8.self), state: state),
                      isVisible(record.date) else { continue }
                handled.insert(record.key)
                unit.bank.append(record)
            }
            units.append(unit)
        }
        var seenOrphans = Set<String>()
        for reversal in orphanReversals where seenOrphans.insert(reversal.key).inserted {
            handled.insert(reversal.key)
            units.append(PaymentUnit(receipt: nil, reversal: reversal))
        }
        // Fallback: account + amount + date, between receipts and bank records left alone.
        var lonelyBank = bank.filter { !handled.contains($0.key) && !$0.isReversed }
        var taken = [Bool](repeating: false, count: lonelyBank.count)
        let candidates = units.indices.filter {
            let u = units[$0]
            return u.bank.isEmpty && u.reversal == nil && (u.receipt.map { $0.date >= previous } ?? false)
        }.sorted { a, b in
            let x = units[a].receipt!.receipt, y = units[b].receipt!.receipt
            if x.workingDate != y.workingDate { return x.workingDate < y.workingDate }
            if x.customerAccount != y.customerAccount { return x.customerAccount.utf8.lexicographicallyPrecedes(y.customerAccount.utf8) }
            if x.amountFen != y.amountFen { return x.amountFen < y.amountFen }
            return x.serial.utf8.lexicographicallyPrecedes(y.serial.utf8)
        }
        for index in candidates {
            let r = units[index].receipt!.receipt
            let nextDay = Reconciliation.date(r.workingDate, plus: 1)
            if let j = lonelyBank.indices.first(where: { j in
                let p = lonelyBank[j].payment
                return !taken[j] && p.customerAccount == r.customerAccount && p.amountFen == r.amountFen &&
                    (p.valueDate == r.workingDate || p.valueDate == nextDay)
            }) {
                taken[j] = true
                units[index].bank = [lonelyBank[j]]
            }
        }
        lonelyBank = lonelyBank.indices.filter { !taken[$0] }.map { lonelyBank[$0] }
        for record in bank where !handled.contains(record.key) && record.isReversed { lonelyBank.append(record) }
        lonelyBank.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        for record in lonelyBank { units.append(PaymentUnit(receipt: nil, reversal: nil, bank: [record])) }

        var match = PaymentMatch()
        for unit in units {
            let dates = unit.dates
            guard let earliest = dates.min(), let latest = dates.max() else { continue }
            let status: ReconStatus
            if latest == date {
                status = finalStatus(unit)
                for record in unit.bank where record.date == date && !record.isReversed && (unit.receipt?.date ?? date) < date {
                    match.carriedIn[record.payment.bankAccount, default: 0] &+= record.payment.amountFen
                }
            } else if earliest == date && latest == next {
                status = .inTransit
                for record in unit.bank where record.date == next && !record.isReversed && unit.receipt?.date == date {
                    match.inTransit[record.payment.bankAccount, default: 0] &+= record.payment.amountFen
                }
            } else {
                continue
            }
            match.items.append(item(unit, status))
        }
        return match
    }

    private func finalStatus(_ unit: PaymentUnit) -> ReconStatus {
        if unit.isOrphanReversal { return .statusDiff }
        if unit.receipt == nil { return unit.bankReversed ? .reversed : .onlyInBank }
        if unit.bank.isEmpty { return unit.marketingNetted ? .reversed : .onlyInMarketing }
        if unit.marketingNetted != unit.bankReversed { return .statusDiff }
        if unit.marketingNetted { return .reversed }
        return bankAmount(unit) == unit.leftAmount ? .matched : .amountDiff
    }

    private func bankAmount(_ unit: PaymentUnit) -> Int64 {
        unit.bank.filter { !$0.isReversed }.reduce(0) { $0 &+ $1.payment.amountFen }
    }

    private func item(_ unit: PaymentUnit, _ status: ReconStatus) -> ReconItem {
        let left = unit.leftAmount, right = bankAmount(unit)
        var detail = ""
        if unit.isOrphanReversal, let r = unit.reversal {
            detail = "reversal \(r.receipt.serial) reverses \(r.receipt.reversesSerial), which it does not net (unknown serial, a reversal, a second reversal, or another amount)"
        } else if status == .statusDiff {
            detail = unit.marketingNetted ? "marketing reversed the receipt; the bank records a success" : "the bank reversed the payment; marketing did not"
        }
        let first = unit.receipt ?? unit.reversal
        return ReconItem(
            status: status,
            bankAccount: first?.receipt.bankAccount ?? unit.bank.first?.payment.bankAccount ?? "",
            customerAccount: first?.receipt.customerAccount ?? unit.bank.first?.payment.customerAccount ?? "",
            date: date,
            leftRefs: [unit.receipt?.ref, unit.reversal?.ref].compactMap { $0 },
            rightRefs: unit.bank.map(\.ref),
            leftAmountFen: left, rightAmountFen: right, differenceFen: right &- left, detail: detail)
    }
}
