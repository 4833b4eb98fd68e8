import Chain
import Contracts
import GridBase
import GridClient
import GridProto
import Identity
import Wire

/// `/gridledger.FeeControl/GetDistrictResults` on the main chain: what a district's anchors
/// carried up (DOMAIN.md "Prepaid fee control": the warning list, the disconnect list and
/// each customer's charge are sent up to the main chain), decoded: the district's totals and
/// each account's newest result, a page at a time in account order.
///
/// Readers: as for the district's `uplink/<district>/account/` keys (`ReadPolicy`): `admin`
/// and `marketing`, and the district's own nodes; account results are customer data
/// (DOMAIN.md "Who may read what"), so never `ops`, `bank`, `finance` or another district.
struct DistrictResultsService: Sendable {
    static let maxPage = 1000
    let chains: ChainSet
    let gate: ReadGate

    func register(in router: inout RPCRouter) {
        let chains = self.chains, gate = self.gate
        router.unary(GridMethod.FeeControl.getDistrictResults, roles: Set(Role.allCases)) { (request: GetDistrictResultsRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            guard ledger.kind == .main else {
                throw RPCError(.failedPrecondition, "chain \(ledger.chainID) is a district chain; district results are on the main chain")
            }
            for (name, value) in [("district", request.district), ("after_account", request.afterAccount)] {
                guard value.utf8.count <= 128, !value.contains("/"), !value.utf8.contains(0) else {
                    throw RPCError(.invalidArgument, "\(name) must have at most 128 bytes, without '/'")
                }
            }
            guard !request.district.isEmpty else { throw RPCError(.invalidArgument, "name a district") }
            try gate.check(ctx, ledger, .state(key: AnchorKeys.uplinkAccount(request.district, "")))
            guard try ledger.reader.state(AnchorKeys.district(request.district)) != nil else {
                throw RPCError(.notFound, "district \(Bounded.quote(request.district)) is not registered on chain \(ledger.chainID)")
            }
            var response = GetDistrictResultsResponse(district: request.district)
            if let bytes = try ledger.reader.state(AnchorKeys.uplinkTotals(request.district))?.value {
                response.totals = try UplinkSummary(serializedBytes: bytes)
            }
            let limit = request.limit == 0 ? 100 : min(Int(request.limit), Self.maxPage)
            let prefix = AnchorKeys.uplinkAccount(request.district, "")
            let start = request.afterAccount.isEmpty ? nil : prefix + request.afterAccount
            var page = try ledger.reader.states(prefix: prefix, from: start, limit: limit + 2)
            if let first = page.first, !request.afterAccount.isEmpty, first.key == prefix + request.afterAccount { page.removeFirst() }
            let more = page.count > limit
            for entry in page.prefix(limit) {
                let result = try AccountResult(serializedBytes: entry.value)
                response.accounts.append(result)
                switch AccountState(rawValue: Int32(truncatingIfNeeded: result.state)) {
                case .warning1, .warning2: response.warning.append(result.account)
                case .disconnected: response.disconnected.append(result.account)
                default: break
                }
            }
            if more, let last = response.accounts.last { response.nextAfter = last.account }
            return response
        }
    }
}
