import Chain
import Contracts
import Identity
import Wire

/// Who may read what (DOMAIN.md, "Places and parties", "Who may read what";
/// the table is in Docs/permissions.md):
///
/// > Writes are checked by role and district; so are reads. A customer's personal data
/// > (name, contact number) and account are readable by `marketing` and `admin`, and by the
/// > nodes of the customer's own district; `device` and `collector` see only what their
/// > district's work needs (commands, their own submissions' outcomes); `bank` and
/// > `finance` see reconciliation data; `ops` sees status and aggregates, never personal
/// > data. A certificate of district d2 reads nothing of district d1.
///
/// A pure function of the caller (role, district), the chain read (id, kind) and what is
/// read; every read RPC asks it before it touches the chain's data.
enum ReadPolicy {
    /// What a read call reads.
    enum Subject: Hashable, Sendable {
        /// `Health.Check`, `Health.Watch`: serving status, no chain data.
        case health
        /// `Ops.GetStatus`: the node's chains, heights, Raft and anchoring status.
        case nodeStatus
        /// `Query.GetChainInfo`: chain id, height, head hash.
        case chainInfo
        /// `Query.ListBlocks`: block headers and hashes (no transactions).
        case blockHeaders
        /// `Query.GetBlock`, `Query.SubscribeBlocks`: whole blocks, with every transaction
        /// (readings, customer archives, payments) and outcome.
        case blocks
        /// `Query.GetTransaction`: one transaction with its outcome.
        case transaction
        /// `Query.GetState`, `Query.GetHistory`: the raw value (and history) of one key.
        case state(key: String)
        /// `FeeControl.GetAccount`, `FeeControl.ListAccounts`: accounts and customer archives.
        case accounts
        /// `FeeControl.ListCommands`, `Control.SubscribeCommands`: control commands.
        case commands
        /// `Notices.Subscribe`: SMS notices (contact numbers, texts).
        case notices
        /// `Query.ProveBlock`: a district header and the main-chain anchor transaction,
        /// whose uplink summary carries the balances of the accounts the range changed.
        case blockProof
    }

    /// The chain a read is for.
    struct Chain: Hashable, Sendable {
        var id: String
        var kind: ChainKind
    }

    enum Decision: Equatable, Sendable {
        case allowed
        /// Allowed only for a transaction the caller itself signed (collector, device: their
        /// own submissions' outcomes); the handler checks the signer before answering.
        case ownSubmissionsOnly
        /// Refused; the reason names the caller and what it may not read, never any data.
        case denied(String)
    }

    /// The decision for `role` of `district` reading `subject` of `chain` (nil for reads
    /// that are not of a chain: health, node status).
    /// - Parameter name: the caller's certificate name (a bank reads the records its own
    ///   batches carry, which name it).
    static func decide(role: Role, district: String?, name: String = "", chain: Chain?, subject: Subject) -> Decision {
        let who = caller(role, district)
        switch subject {
        case .health:
            return .allowed
        case .nodeStatus:
            return [.ops, .admin].contains(role) ? .allowed : .denied("\(who) may not read node status (ops and admin only)")
        default:
            break
        }
        guard let chain else { return .denied("\(who) may not read \(describe(subject)) without a chain") }
        let on = "\(describe(subject)) of chain \(bounded(chain.id))"
        // A certificate of district d2 reads nothing of district d1: not its chain, nor its
        // keys on the main chain.
        if let district {
            if chain.kind == .district, district != chain.id {
                return .denied("\(who) may not read \(on): another district's chain")
            }
            if chain.kind == .main, case .state(let key) = subject, let owner = mainKeyDistrict(key), owner != district {
                return .denied("\(who) may not read \(on): another district's key")
            }
        }
        // Reconciliation records: each party reads its own, nobody another party's raw ones.
        if chain.kind == .main, case .state(let key) = subject, let owner = ReconciliationKeys.owner(of: key), role != .admin {
            let own: Bool
            switch owner {
            case .marketing: own = role == .marketing
            case .finance: own = role == .finance
            case .bank(let bank): own = role == .bank && bank == name && !name.isEmpty
            }
            if !own { return .denied("\(who) may not read \(on): another party's reconciliation record") }
            return .allowed
        }
        switch role {
        case .admin, .marketing:
            return .allowed
        case .node:
            return nodeDecision(who, district: district, chain: chain, subject: subject, on: on)
        case .collector, .device:
            if chain.kind == .main {
                return subject == .chainInfo ? .allowed : .denied("\(who) may not read \(on): the main chain is not its district's work")
            }
            // A district chain other than its own was refused above; a certificate without
            // a district has no district work.
            guard district == chain.id else { return .denied("\(who) may not read \(on): it names no district") }
            switch subject {
            case .chainInfo: return .allowed
            case .transaction: return .ownSubmissionsOnly
            case .commands where role == .device: return .allowed
            default: return .denied("\(who) may read only its district's chain info, \(role == .device ? "commands, " : "")and its own submissions' outcomes, not \(on)")
            }
        case .ops:
            switch subject {
            case .chainInfo, .blockHeaders: return .allowed
            case .state(let key) where chain.kind == .main && isAggregate(key): return .allowed
            default: return .denied("\(who) may read status, chain info, block headers and aggregates, never \(on)")
            }
        case .bank, .finance:
            // Reconciliation data: every result, and their own records (checked above);
            // the outcomes of their own submissions; the chains' progress.
            switch subject {
            case .chainInfo:
                return .allowed
            case .transaction where chain.kind == .main:
                return .ownSubmissionsOnly
            case .state(let key) where chain.kind == .main && ReconciliationKeys.isResult(key):
                return .allowed
            default:
                return .denied("\(who) may read reconciliation results, its own records and submissions, not \(on)")
            }
        }
    }

    /// Nodes: everything of their own district's chain (replication, anchoring, proofs);
    /// of the main chain, what anchoring and the downlink need (blocks, transactions, the
    /// state keys of their own district). A node without a district (a main-chain node)
    /// reads all of the main chain and no district's chain.
    private static func nodeDecision(_ who: String, district: String?, chain: Chain, subject: Subject, on: String) -> Decision {
        switch chain.kind {
        case .district:
            return district == chain.id ? .allowed : .denied("\(who) may not read \(on): not a node of that district")
        case .main:
            guard let district else { return .allowed }
            switch subject {
            case .chainInfo, .blockHeaders, .blocks, .transaction:
                return .allowed
            case .state(let key):
                return mainKeyDistrict(key) == district ? .allowed : .denied("\(who) may read only its own district's keys of chain \(chain.id)")
            default:
                return .denied("\(who) may not read \(on)")
            }
        }
    }

    /// The district a main-chain key belongs to (`district/ID`, `anchor/ID...`,
    /// `uplink/ID/...`, `parameters/ID/...`; Docs/anchoring.md); nil for any other key.
    static func mainKeyDistrict(_ key: String) -> String? {
        let parts = key.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, ["district", "anchor", "uplink", "parameters"].contains(parts[0]), !parts[1].isEmpty else { return nil }
        if parts[0] == "district" && parts.count > 2 { return nil }
        return String(parts[1])
    }

    /// Main-chain keys holding aggregates only: a district's summed uplink results
    /// (`uplink/ID/totals`).
    static func isAggregate(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0] == "uplink" && !parts[1].isEmpty && parts[2] == "totals"
    }

    static func isAllowed(_ decision: Decision) -> Bool {
        if case .denied = decision { return false }
        return true
    }

    static func caller(_ role: Role, _ district: String?) -> String {
        "role \(role.rawValue) of " + (district.map { "district \(bounded($0))" } ?? "no district")
    }

    static func describe(_ subject: Subject) -> String {
        switch subject {
        case .health: return "health"
        case .nodeStatus: return "node status"
        case .chainInfo: return "chain info"
        case .blockHeaders: return "block headers"
        case .blocks: return "blocks"
        case .transaction: return "transactions"
        case .state: return "raw state"
        case .accounts: return "accounts"
        case .commands: return "commands"
        case .notices: return "notices"
        case .blockProof: return "block proofs"
        }
    }

    /// Caller-supplied text as it may appear in a message or log line: at most `limit`
    /// bytes of UTF-8, cut on a character boundary, control characters replaced.
    static func bounded(_ text: String, limit: Int = 128) -> String {
        var out = ""
        var bytes = 0
        for c in text {
            let safe: Character = c.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F } ? c : "?"
            let n = String(safe).utf8.count
            if bytes + n > limit { return out + "…" }
            out.append(safe)
            bytes += n
        }
        return out
    }
}
