extension ReconciliationKeys {
    /// Whose original record a main-chain key holds (DOMAIN.md, "Multi-party reconciliation":
    /// "Each party reads its own records and every result; nobody reads another party's raw
    /// records beyond what a result names").
    public enum Owner: Equatable, Sendable {
        case marketing
        /// A bank, by its certificate name (the name its batches carry).
        case bank(String)
        case finance
    }

    /// The party whose raw record (or index of one) `key` is; nil for results
    /// (`recon/result/…`, `recon/latest/…`) and for every key outside reconciliation.
    ///
    /// ```
    /// recon/m/<date>/<account>/<serial>        recon/id/m/<serial>      recon/reversal/<serial>/<serial>  → marketing
    /// recon/b/<date>/<account>/<bank>/<serial> recon/id/b/<bank>/<serial> recon/by-serial/<serial>/<bank>/<serial> → bank
    /// recon/f/<date>/<account>/<voucher>       recon/id/f/<voucher>                                     → finance
    /// ```
    public static func owner(of key: String) -> Owner? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "recon" else { return nil }
        switch parts[1] {
        case "m", "reversal":
            return .marketing
        case "f":
            return .finance
        case "b":
            return parts.count >= 6 ? .bank(String(parts[4])) : .bank("")
        case "by-serial":
            return parts.count >= 5 ? .bank(String(parts[3])) : .bank("")
        case "id":
            switch parts[2] {
            case "m": return .marketing
            case "f": return .finance
            case "b": return parts.count >= 5 ? .bank(String(parts[3])) : .bank("")
            default: return nil
            }
        default:
            return nil
        }
    }

    /// Whether `key` is a reconciliation result every party reads.
    public static func isResult(_ key: String) -> Bool {
        key.hasPrefix("recon/result/") || key.hasPrefix("recon/latest/")
    }
}
