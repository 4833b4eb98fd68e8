public import GridProto

/// World-state keys of the reconciliation contract (Docs/reconciliation.md, "Key layout").
///
/// ```
/// recon/m/<date>/<bankAccount>/<serial>          ChargeReceipt   (date = working date)
/// recon/b/<date>/<bankAccount>/<bank>/<serial>   BankPayment     (date = value date)
/// recon/f/<date>/<bankAccount>/<voucher>         AccountingEntry (date = collection date)
/// recon/id/m/<serial>                            data key of the receipt, UTF-8
/// recon/id/b/<bank>/<serial>                     data key of the bank record, UTF-8
/// recon/id/f/<voucher>                           data key of the entry, UTF-8
/// recon/by-serial/<marketingSerial>/<bank>/<serial>   data key of a bank record naming that receipt
/// recon/reversal/<reversedSerial>/<serial>       data key of a marketing reversal naming it
/// recon/result/<date>/<pair>/<run>               ReconciliationResult
/// recon/latest/<date>/<pair>                     u32 run of the newest result (big-endian)
/// recon/settings                                 ReconcileSettings (the schedule's parameter)
/// recon/due/<date>                               empty: the date's first automatic run is pending
/// recon/dirty/<date>                             empty: a late record arrived after the automatic run
/// recon/auto/<date>                              u32 run of the date's first automatic run (0: refused)
///
/// <date> = YYYYMMDD (8 digits); <pair> = marketing-bank | finance-bank | marketing-finance;
/// <run>  = 6 decimal digits, zero padded (000001, 000002, …)
/// ```
/// Ids, serials and accounts are `[A-Za-z0-9._-]{1,64}` (checked on admission), so they
/// never contain `/` and each prefix selects exactly its kind: a day's records of one party
/// are one prefix (`recon/m/<date>/`), and one collecting account's a longer one.
public enum ReconciliationKeys {
    public static let marketingPrefix = "recon/m/"
    public static let bankPrefix = "recon/b/"
    public static let financePrefix = "recon/f/"

    public static func date(_ ymd: UInt32) -> String {
        let digits = String(ymd)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    public static func marketingDay(_ ymd: UInt32) -> String { marketingPrefix + date(ymd) + "/" }
    public static func bankDay(_ ymd: UInt32) -> String { bankPrefix + date(ymd) + "/" }
    public static func financeDay(_ ymd: UInt32) -> String { financePrefix + date(ymd) + "/" }

    public static func receipt(_ r: ChargeReceipt) -> String {
        "\(marketingDay(r.workingDate))\(r.bankAccount)/\(r.serial)"
    }

    public static func bankPayment(_ p: BankPayment, bank: String) -> String {
        "\(bankDay(p.valueDate))\(p.bankAccount)/\(bank)/\(p.serial)"
    }

    public static func entry(_ e: AccountingEntry) -> String {
        "\(financeDay(e.collectionDate))\(e.bankAccount)/\(e.voucherId)"
    }

    public static func marketingID(_ serial: String) -> String { "recon/id/m/\(serial)" }
    public static func bankID(bank: String, serial: String) -> String { "recon/id/b/\(bank)/\(serial)" }
    public static func financeID(_ voucher: String) -> String { "recon/id/f/\(voucher)" }

    /// Bank records naming marketing receipt `serial`.
    public static func bySerialPrefix(_ marketingSerial: String) -> String { "recon/by-serial/\(marketingSerial)/" }
    public static func bySerial(_ marketingSerial: String, bank: String, serial: String) -> String {
        bySerialPrefix(marketingSerial) + "\(bank)/\(serial)"
    }

    /// Marketing reversals naming receipt `serial`.
    public static func reversalsPrefix(_ reversedSerial: String) -> String { "recon/reversal/\(reversedSerial)/" }
    public static func reversal(_ reversedSerial: String, serial: String) -> String { reversalsPrefix(reversedSerial) + serial }

    public static func pairName(_ pair: ReconPair) -> String {
        switch pair {
        case .marketingBank: return "marketing-bank"
        case .financeBank: return "finance-bank"
        case .marketingFinance: return "marketing-finance"
        default: return "pair-\(pair.rawValue)"
        }
    }

    public static func resultsPrefix(date ymd: UInt32, pair: ReconPair) -> String {
        "recon/result/\(date(ymd))/\(pairName(pair))/"
    }

    public static func result(date ymd: UInt32, pair: ReconPair, run: UInt32) -> String {
        let digits = String(run)
        return resultsPrefix(date: ymd, pair: pair) + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    public static func latest(date ymd: UInt32, pair: ReconPair) -> String {
        "recon/latest/\(date(ymd))/\(pairName(pair))"
    }

    // MARK: Schedule (ReconciliationSchedule)

    public static let settings = "recon/settings"
    public static let duePrefix = "recon/due/"
    public static let dirtyPrefix = "recon/dirty/"
    public static let autoPrefix = "recon/auto/"

    public static func due(_ ymd: UInt32) -> String { duePrefix + date(ymd) }
    public static func dirty(_ ymd: UInt32) -> String { dirtyPrefix + date(ymd) }
    public static func auto(_ ymd: UInt32) -> String { autoPrefix + date(ymd) }

    /// The date of a `recon/due/…`, `recon/dirty/…` or `recon/auto/…` key; nil when its last
    /// component is not 8 digits.
    public static func scheduledDate(_ key: String) -> UInt32? {
        guard let slash = key.lastIndex(of: "/") else { return nil }
        let digits = key[key.index(after: slash)...]
        guard digits.utf8.count == 8, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt32(digits)
    }
}
