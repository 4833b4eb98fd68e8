/// The state keys of cross-chain synchronisation (Docs/anchoring.md); the `CrossChain`
/// contract writes them, the node's sync agent and services read them.
///
/// Main chain:
/// ```
/// "district/" id                      → DistrictRegistration (the member certificates)
/// "anchor/" id                        → AnchorRecord of the district's newest anchor
/// "anchor/" id "/" from(20 digits)    → AnchorRecord of the anchor starting at `from`
///                                        (its version gives the main height and tx index)
/// "uplink/" id "/totals"              → UplinkSummary: the district's results, summed
/// "uplink/" id "/account/" account    → AccountResult as of the newest anchor
/// "parameters/" id "/count"           → u64 n: parameters addressed to the district so far
/// "parameters/" id "/" n(20 digits)   → DownlinkDigest after the n-th of them
/// ```
/// District chain:
/// ```
/// "receipt/last"                      → AnchorReceipt of the newest anchored range
/// "receipt/" to(20 digits)            → AnchorReceipt of the range ending at `to`
/// "downlink/cursor"                   → u64 main height, u32 tx index of the last taken
/// "downlink/digest"                   → u64 n, DownlinkDigest after the n-th taken
/// ```
public enum AnchorKeys {
    public static func district(_ id: String) -> String { "district/\(id)" }
    public static func lastAnchor(_ district: String) -> String { "anchor/\(district)" }
    public static func anchor(_ district: String, from: UInt64) -> String { "anchor/\(district)/\(padded(from))" }
    public static func uplinkTotals(_ district: String) -> String { "uplink/\(district)/totals" }
    public static func uplinkAccount(_ district: String, _ account: String) -> String { "uplink/\(district)/account/\(account)" }
    public static let lastReceipt = "receipt/last"
    public static let receiptPrefix = "receipt/0"
    public static func receipt(to: UInt64) -> String { "receipt/\(padded(to))" }
    public static let downlinkCursor = "downlink/cursor"
    public static let downlinkDigest = "downlink/digest"
    public static func parameterCount(_ district: String) -> String { "parameters/\(district)/count" }
    public static func parameterDigest(_ district: String, _ n: UInt64) -> String { "parameters/\(district)/\(padded(n))" }

    /// `v` in 20 decimal digits, zero-padded (so keys sort by number).
    public static func padded(_ v: UInt64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }
}
