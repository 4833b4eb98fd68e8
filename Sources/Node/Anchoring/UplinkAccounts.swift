import GridProto
import Store

/// The account results an anchor carries up: every account a transaction of the range
/// changed (its outcome lists them), as of the range's last height.
enum UplinkAccounts {
    static func touched(by block: Block) -> [String] {
        block.outcomes.flatMap(\.accounts)
    }

    /// Each account's state at `height` (the newest version at or below it), read from the
    /// key history so that every member gives the same answer whatever its head.
    static func results(_ accounts: [String], asOf height: UInt64, ledger: Ledger) throws -> [AccountResult] {
        var out: [AccountResult] = []
        for id in accounts {
            guard let bytes = try ledger.store.state("account/\(id)", asOf: height), let account = try? Account(serializedBytes: bytes) else { continue }
            out.append(AccountResult(account: id, balanceFen: account.balanceFen, state: UInt32(account.state.rawValue), chargedFen: 0))
        }
        return out
    }
}
