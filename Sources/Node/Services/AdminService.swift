import Consensus
import GridProto
import Wire

/// `Admin.*` (role `admin`): leadership of a chain's Raft group.
struct AdminService: Sendable {
    static let transferLeaderMethod = "/gridledger.Admin/TransferLeader"

    let chainID: String
    let driver: RaftDriver

    func register(in router: inout RPCRouter) {
        let chainID = self.chainID
        let driver = self.driver
        router.unary(Self.transferLeaderMethod, roles: [.admin]) { (request: MemberRequest, _) in
            guard request.chainId == chainID else { throw RPCError(.notFound, "this node serves no chain '\(request.chainId)'") }
            guard request.nodeId != 0 else { throw RPCError(.invalidArgument, "node_id is required") }
            try await driver.transferLeadership(to: request.nodeId)
            // Leadership moves within an election timeout; report what this node sees then.
            let deadline = ContinuousClock.now + .seconds(2)
            while driver.status.leader != request.nodeId, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let status = driver.status
            guard status.leader == request.nodeId else {
                throw RPCError(.aborted, "leadership did not move to \(request.nodeId) in time (leader is \(status.leader))")
            }
            return MemberResponse(confState: nil, leader: status.leader)
        }
    }
}
