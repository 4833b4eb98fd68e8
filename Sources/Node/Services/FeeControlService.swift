import GridBase
import Contracts
import GridClient
import GridProto
import Identity
import Wire

/// Fee-control results of district chains (Docs/contracts.md); who may read which is
/// `ReadPolicy`'s (Docs/permissions.md), checked before any data is touched:
/// - `/gridledger.FeeControl/GetAccount`, `ListAccounts` (warning and disconnect lists):
///   accounts — marketing, admin, nodes of the district;
/// - `/gridledger.FeeControl/ListCommands` (by status) and
///   `/gridledger.Control/SubscribeCommands` (the commands still pending, then each new one
///   as its block commits): commands — also the district's `device`;
/// - `/gridledger.Notices/Subscribe`: the notices issued from a height on — marketing,
///   admin, nodes of the district.
struct FeeControlService: Sendable {
    let chains: ChainSet
    let gate: ReadGate

    func register(in router: inout RPCRouter) {
        let chains = self.chains
        let gate = self.gate
        let any = Set(Role.allCases)
        router.unary(GridMethod.FeeControl.getAccount, roles: any) { (request: GetAccountRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .accounts)
            guard !request.account.isEmpty, !request.account.utf8.contains(0), !request.account.contains("/") else {
                throw RPCError(.invalidArgument, "name an account (no '/')")
            }
            guard let bytes = try ledger.reader.state(ContractKeys.account(request.account))?.value else {
                throw RPCError(.notFound, "no account \(Bounded.quote(request.account)) on chain \(ledger.chainID)")
            }
            let customer = try ledger.reader.state(ContractKeys.customer(request.account)).map { try CustomerArchive(serializedBytes: $0.value) }
            return GetAccountResponse(account: try Account(serializedBytes: bytes), customer: customer)
        }
        router.unary(GridMethod.FeeControl.listAccounts, roles: any) { (request: ListAccountsRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .accounts)
            let limit = Self.limit(request.limit)
            let prefix: String
            switch request.state {
            case _ where request.anyWarning, .warning1, .warning2: prefix = ContractKeys.warningListPrefix
            case .disconnected: prefix = ContractKeys.disconnectedListPrefix
            default:
                throw RPCError(.invalidArgument, "list the warning list (any_warning, WARNING1, WARNING2) or the disconnect list (DISCONNECTED)")
            }
            var accounts: [Account] = []
            try ledger.reader.forEachState(prefix: prefix) { key, _ in
                let id = String(key.dropFirst(prefix.count))
                guard let bytes = try ledger.reader.state(ContractKeys.account(id))?.value else { return true }
                let account = try Account(serializedBytes: bytes)
                if request.anyWarning || account.state == request.state { accounts.append(account) }
                return accounts.count < limit
            }
            return ListAccountsResponse(accounts: accounts)
        }
        router.unary(GridMethod.FeeControl.listCommands, roles: any) { (request: ListCommandsRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .commands)
            let limit = Self.limit(request.limit)
            var commands: [ControlCommand] = []
            if request.status == .unspecified {
                for entry in try ledger.reader.states(prefix: ContractKeys.commandPrefix, limit: limit) {
                    commands.append(try ControlCommand(serializedBytes: entry.value))
                }
            } else {
                let prefix = ContractKeys.commandStatusPrefix(request.status.rawValue)
                for entry in try ledger.reader.states(prefix: prefix, limit: limit) {
                    let id = String(entry.key.dropFirst(prefix.count))
                    if let bytes = try ledger.reader.state(ContractKeys.command(id))?.value {
                        commands.append(try ControlCommand(serializedBytes: bytes))
                    }
                }
            }
            return ListCommandsResponse(commands: commands)
        }
        router.serverStreaming(GridMethod.Control.subscribeCommands, roles: any) {
            (request: SubscribeCommandsRequest, out: ResponseWriter<ControlCommand>, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .commands)
            // The commands still waiting for the device, then every new one.
            let from = (ledger.reader.head?.height ?? 0) + 1
            var sent = Set<String>()
            let pending = ContractKeys.commandStatusPrefix(CommandStatus.issued.rawValue)
            // Every pending command (at most a few per customer of the district; a hard cap
            // keeps a hostile backlog from exhausting memory), then sorted.
            var waiting: [ControlCommand] = []
            try ledger.reader.forEachState(prefix: pending) { key, _ in
                let id = String(key.dropFirst(pending.count))
                if let bytes = try ledger.reader.state(ContractKeys.command(id))?.value {
                    waiting.append(try ControlCommand(serializedBytes: bytes))
                }
                return waiting.count < Self.maxReplayedCommands
            }
            // Keys sort as text ("d1-10-0" before "d1-9-0"); the device gets them in the
            // order they were issued, as the live stream delivers them.
            waiting.sort { Self.issueOrder($0) < Self.issueOrder($1) }
            for command in waiting {
                try await out.send(command)
                sent.insert(command.commandId)
            }
            try await answeringChainErrors {
                try await ledger.follow(from: from) { block, _ in
                    for id in block.outcomes.flatMap(\.commandIds) where sent.insert(id).inserted {
                        if let bytes = try ledger.reader.state(ContractKeys.command(id))?.value {
                            try await out.send(try ControlCommand(serializedBytes: bytes))
                        }
                    }
                }
            }
        }
        router.serverStreaming(GridMethod.Notices.subscribe, roles: any) {
            (request: SubscribeNoticesRequest, out: ResponseWriter<Notice>, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .notices)
            try await answeringChainErrors {
                try await ledger.follow(from: max(1, request.fromHeight)) { block, _ in
                    for id in block.outcomes.flatMap(\.noticeIds) {
                        if let bytes = try ledger.reader.state(ContractKeys.notice(id))?.value {
                            try await out.send(try Notice(serializedBytes: bytes))
                        }
                    }
                }
            }
        }
    }

    static let maxReplayedCommands = 200_000

    /// A command's place in issue order: its block, then its number within the block (the
    /// last part of `district-height-n`).
    static func issueOrder(_ command: ControlCommand) -> (UInt64, UInt32) {
        let n = command.commandId.split(separator: "-").last.flatMap { UInt32($0) } ?? 0
        return (command.issuedHeight, n)
    }

    private static func limit(_ requested: UInt32) -> Int {
        requested == 0 ? 100 : min(Int(requested), 1000)
    }
}
