import GridProto

/// The totals pairs' items of one run.
struct TotalsComparison {
    var financeBank: [ReconItem] = []
    var marketingFinance: [ReconItem] = []
}

extension ReconciliationDay {
    /// Finance ↔ bank and marketing ↔ finance, "per bank account and day: totals compared"
    /// (DOMAIN.md). For collecting account A and working date D:
    /// - marketing(A) = every receipt and reversal dated D (a reversal nets its receipt);
    /// - bank(A) = the `success` records with value date D;
    /// - finance(A) = the entries booking collection day D, booked by D+1;
    /// - bank credits for D's collections = bank(A) − credits dated D for earlier receipts
    ///   + credits dated D+1 for receipts of D (from the payment match).
    ///
    /// Statuses (left side first: finance ↔ bank, marketing ↔ finance):
    /// both present and equal → `matched`; finance equal to the bank's credits for D's
    /// collections while the plain totals differ → `in_transit`; one side only →
    /// `only_in_bank` / `only_in_finance` / `only_in_marketing`; both present otherwise →
    /// `amount_diff` with the difference (right − left). An account with no record on either
    /// side is not listed. Items reference each side's records by their key prefix
    /// (`recon/f/<D>/<A>/`, `recon/b/<D>/<A>/`, `recon/m/<D>/<A>/`).
    func compareTotals(payments: PaymentMatch) throws -> TotalsComparison {
        var marketingTotal: [String: Int64] = [:], bankTotal: [String: Int64] = [:], financeTotal: [String: Int64] = [:]
        var accounts = Set<String>()
        for record in marketing where record.date == date {
            marketingTotal[record.receipt.bankAccount] = try Reconciliation.add(marketingTotal[record.receipt.bankAccount] ?? 0, record.receipt.amountFen)
            accounts.insert(record.receipt.bankAccount)
        }
        for record in bank where record.date == date && !record.isReversed {
            bankTotal[record.payment.bankAccount] = try Reconciliation.add(bankTotal[record.payment.bankAccount] ?? 0, record.payment.amountFen)
            accounts.insert(record.payment.bankAccount)
        }
        for entry in finance {
            financeTotal[entry.bankAccount] = try Reconciliation.add(financeTotal[entry.bankAccount] ?? 0, entry.amountFen)
            accounts.insert(entry.bankAccount)
        }
        var out = TotalsComparison()
        let day = ReconciliationKeys.date(date)
        for account in accounts.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let f = financeTotal[account], b = bankTotal[account], m = marketingTotal[account]
            let fRef = ["recon/f/\(day)/\(account)/"], bRef = ["recon/b/\(day)/\(account)/"], mRef = ["recon/m/\(day)/\(account)/"]
            // Finance ↔ bank.
            if f != nil || b != nil {
                let transit = payments.inTransit[account] ?? 0, carried = payments.carriedIn[account] ?? 0
                let forCollections = try Reconciliation.add(try Reconciliation.add(b ?? 0, 0 &- carried), transit)
                let status: ReconStatus
                var detail = ""
                if let f, let b, f == b {
                    status = .matched
                } else if (transit != 0 || carried != 0), (f ?? 0) == forCollections {
                    status = .inTransit
                    detail = "bank credits of \(carried) fen for earlier days, \(transit) fen for this day landing the next"
                } else if f == nil {
                    status = .onlyInBank
                } else if b == nil {
                    status = .onlyInFinance
                } else {
                    status = .amountDiff
                }
                out.financeBank.append(totalItem(status, account, fRef, bRef, f ?? 0, b ?? 0, detail))
            }
            // Marketing ↔ finance.
            if m != nil || f != nil {
                let status: ReconStatus
                if let m, let f { status = m == f ? .matched : .amountDiff } else { status = m == nil ? .onlyInFinance : .onlyInMarketing }
                out.marketingFinance.append(totalItem(status, account, mRef, fRef, m ?? 0, f ?? 0, ""))
            }
        }
        return out
    }

    private func totalItem(_ status: ReconStatus, _ account: String, _ leftRefs: [String], _ rightRefs: [String],
                           _ left: Int64, _ right: Int64, _ detail: String) -> ReconItem {
        ReconItem(status: status, bankAccount: account, date: date, leftRefs: leftRefs, rightRefs: rightRefs,
                  leftAmountFen: left, rightAmountFen: right, differenceFen: right &- left, detail: detail)
    }
}
