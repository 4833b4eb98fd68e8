/// The fee-control contract's world-state key grammar (Docs/contracts.md "State keys").
///
/// ```
/// customer/<account>              -> CustomerArchive (proto)
/// meter-account/<meter>           -> account id (UTF-8)
/// tariff/<tariff_id>              -> Tariff (proto)
/// thresholds/<thresholds_id>      -> FeeControlThresholds (proto); "thresholds/" = district default
/// account/<account>               -> Account (proto): balance, state, cycle usage, billing cursor
/// vee/<meter>                     -> VeeRecord (binary, below): billed and accepted registers,
///                                    held spike, trailing 7-day consumption window
/// profile/<meter>/<weekday>       -> u32 BE energy per interval slot of the local day
///                                    (weekday 0 = Sunday .. 6), the last real value seen
/// estimate/<meter>/<ts20>         -> EstimateRecord (binary): an estimated grid reading,
///                                    deleted when the real reading arrives
/// list/warning/<account>          -> [state u8] while WARNING1 or WARNING2
/// list/disconnected/<account>     -> empty while DISCONNECTED
/// command/<id>                    -> ControlCommand (proto)
/// command-status/<status>/<id>    -> empty; status = CommandStatus raw value; exactly one per
///                                    command, moved on each status change
/// commands/pending                -> PendingCommands (binary): (valid_until, id) of every
///                                    ISSUED command, sorted
/// notice/<id>                     -> Notice (proto)
/// payment/<serial>                -> Payment (proto): the serial has been applied (a top-up,
///                                    or a reversal naming the serial it reverses)
/// payment-reversed/<serial>       -> serial of the reversal (UTF-8): the payment was reversed
/// contract/fee-control/notice-templates -> NoticeTemplates (proto): notice language and texts
/// contract/fee-control            -> ActivationRecord (binary): versions by activation height
/// contract/fee-control/seq        -> (height u64, next u32): id counter of the current block
/// ```
///
/// `<ts20>` is a UTC ms timestamp as 20 zero-padded decimal digits, so keys of one meter sort
/// chronologically. Account, meter, tariff, thresholds ids and payment serials never contain
/// "/" (parameters with one are rejected), so every prefix above selects exactly its kind.
/// Binary records are big-endian (see `ContractRecord.swift`).
public enum ContractKeys {
    public static let customerPrefix = "customer/"
    public static let meterAccountPrefix = "meter-account/"
    public static let tariffPrefix = "tariff/"
    public static let thresholdsPrefix = "thresholds/"
    public static let accountPrefix = "account/"
    public static let veePrefix = "vee/"
    public static let profilePrefix = "profile/"
    public static let estimatePrefix = "estimate/"
    /// Prefix scan: the warning list (WARNING1 and WARNING2).
    public static let warningListPrefix = "list/warning/"
    /// Prefix scan: the disconnect list.
    public static let disconnectedListPrefix = "list/disconnected/"
    public static let commandPrefix = "command/"
    public static let commandStatusPrefix = "command-status/"
    public static let pendingCommands = "commands/pending"
    public static let noticePrefix = "notice/"
    public static let paymentPrefix = "payment/"
    public static let reversalPrefix = "payment-reversed/"
    /// The district's notice language and templates (`NoticeTemplates`).
    public static let noticeTemplates = "contract/fee-control/notice-templates"
    /// The fee-control contract's activation record.
    public static let feeControlContract = "contract/fee-control"
    /// The per-block id counter for commands and notices.
    public static let idCounter = "contract/fee-control/seq"

    public static func customer(_ account: String) -> String { customerPrefix + account }
    public static func meterAccount(_ meter: String) -> String { meterAccountPrefix + meter }
    public static func tariff(_ id: String) -> String { tariffPrefix + id }
    /// `""` is the district default, stored at `thresholds/`.
    public static func thresholds(_ id: String) -> String { thresholdsPrefix + id }
    public static func account(_ account: String) -> String { accountPrefix + account }
    public static func vee(_ meter: String) -> String { veePrefix + meter }
    public static func profile(_ meter: String, weekday: Int) -> String { "\(profilePrefix)\(meter)/\(weekday)" }
    public static func estimate(_ meter: String, timestampMs: Int64) -> String {
        "\(estimatePrefix)\(meter)/\(paddedTimestamp(timestampMs))"
    }
    /// Prefix of every estimate of one meter.
    public static func estimates(_ meter: String) -> String { "\(estimatePrefix)\(meter)/" }
    public static func warningList(_ account: String) -> String { warningListPrefix + account }
    public static func disconnectedList(_ account: String) -> String { disconnectedListPrefix + account }
    public static func command(_ id: String) -> String { commandPrefix + id }
    public static func commandStatus(_ status: CommandStatusNumber, _ id: String) -> String {
        "\(commandStatusPrefix)\(status)/\(id)"
    }
    /// Prefix scan: every command in one status.
    public static func commandStatusPrefix(_ status: CommandStatusNumber) -> String { "\(commandStatusPrefix)\(status)/" }
    public static func notice(_ id: String) -> String { noticePrefix + id }
    public static func payment(_ serial: String) -> String { paymentPrefix + serial }
    /// The serial of the reversal that reversed payment `serial`.
    public static func reversal(_ serial: String) -> String { reversalPrefix + serial }

    public typealias CommandStatusNumber = Int32

    /// 20 decimal digits, zero padded (negative timestamps clamp to 0).
    static func paddedTimestamp(_ ms: Int64) -> String {
        let digits = String(max(ms, 0))
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// Whether `id` may appear as a key component: non-empty (unless `allowEmpty`), no "/".
    static func isValidComponent(_ id: String, allowEmpty: Bool = false) -> Bool {
        (allowEmpty || !id.isEmpty) && !id.utf8.contains(UInt8(ascii: "/"))
    }
}
