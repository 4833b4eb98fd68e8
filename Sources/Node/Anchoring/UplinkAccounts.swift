import Chain
import Contracts
import GridProto
import Store

/// The account results an anchor carries up: every account a transaction of the range
/// changed (its outcome lists them), as of the range's last height.
enum UplinkAccounts {
    static func touched(by block: Block) -> [String] {
        block.outcomes.flatMap(\.accounts)
    }

    /// Each account's state at the range's last height `to` (the newest version at or below
    /// it), read from the key history so that every member gives the same answer whatever
    /// its head; `chargedFen` is what the account was charged in `from...to` (its total
    /// charged at `to` minus at `from − 1`).
    static func results(_ accounts: [String], from: UInt64, to: UInt64, ledger: Ledger) throws -> [AccountResult] {
        var out: [AccountResult] = []
        for id in accounts {
            let key = ContractKeys.account(id)
            guard let bytes = try ledger.reader.state(key, asOf: to), let account = try? Account(serializedBytes: bytes) else { continue }
            let before = from == 0 ? nil : try ledger.reader.state(key, asOf: from - 1).flatMap { try? Account(serializedBytes: $0) }
            let (charged, overflow) = account.totalChargedFen.subtractingReportingOverflow(before?.totalChargedFen ?? 0)
            out.append(AccountResult(
                account: id, balanceFen: account.balanceFen, state: UInt32(account.state.rawValue),
                chargedFen: overflow ? 0 : charged, cycleStartMs: account.cycleStartMs, cycleChargedFen: account.cycleChargedFen,
                totalChargedFen: account.totalChargedFen, totalPaidFen: account.totalPaidFen))
        }
        return out
    }
}
