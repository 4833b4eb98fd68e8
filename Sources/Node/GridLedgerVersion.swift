/// The version of this GridLedger build, reported by `Ops.GetStatus` and `gridnode --version`.
public enum GridLedgerVersion {
    public static let string = "0.1.0"
}
