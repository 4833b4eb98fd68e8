import Chain
import GridBase
import Consensus
import GridClient
import GridProto
import Wire

/// `Admin.*` (role `admin`): membership and leadership of a chain's Raft group. Membership
/// changes go one at a time through the leader: a new node joins as a learner (it receives
/// the log but does not vote), is promoted once caught up, and members are removed.
struct AdminService: Sendable {
    let chains: ChainSet

    func register(in router: inout RPCRouter) {
        let chains = self.chains
        /// The Raft group of the chain a request names.
        @Sendable func group(_ request: MemberRequest) throws -> (driver: RaftDriver, registry: MemberRegistry) {
            guard let raft = try chains.resolve(request.chainId).raft else {
                throw RPCError(.failedPrecondition, "chain \(Bounded.quote(request.chainId)) is ordered solo: it has no Raft group")
            }
            guard request.nodeId != 0 else { throw RPCError(.invalidArgument, "node_id is required") }
            return (raft.driver, raft.registry)
        }
        @Sendable func requireLeader(_ driver: RaftDriver, _ registry: MemberRegistry) throws {
            let status = driver.status
            guard status.role == .leader else {
                let where_ = registry.member(status.leader).map { " (\($0.name) at \($0.address))" } ?? ""
                throw RPCError(.failedPrecondition, "membership changes go through the leader: node \(status.leader)\(where_)")
            }
        }
        @Sendable func response(_ driver: RaftDriver) -> MemberResponse {
            let s = driver.status
            return MemberResponse(confState: RaftConfState(voters: s.voters, learners: s.learners), leader: s.leader)
        }
        @Sendable func waitFor(_ what: String, _ condition: @Sendable () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(5)
            while !condition() {
                guard ContinuousClock.now < deadline else { throw RPCError(.deadlineExceeded, "\(what) did not take effect in time") }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        router.unary(GridMethod.Admin.transferLeader, roles: [.admin]) { (request: MemberRequest, _) in
            let (driver, _) = try group(request)
            try await driver.transferLeadership(to: request.nodeId)
            try await waitFor("leadership transfer") { driver.status.leader == request.nodeId }
            return response(driver)
        }
        router.unary(GridMethod.Admin.addMember, roles: [.admin]) { (request: MemberRequest, _) in
            let (driver, registry) = try group(request)
            guard TransactionValidator.isValidMeterID(request.name) else { throw RPCError(.invalidArgument, "name must be the member's certificate CN") }
            do { _ = try HostPort.parse(request.address) } catch { throw RPCError(.invalidArgument, "\(error)") }
            let pin: String
            do { pin = try NodeConfiguration.Chain.Member.normalizedPin(request.publicKeySha256) } catch { throw RPCError(.invalidArgument, "\(error)") }
            try requireLeader(driver, registry)
            let status = driver.status
            guard !status.voters.contains(request.nodeId), !status.learners.contains(request.nodeId) else {
                throw RPCError(.alreadyExists, "node \(request.nodeId) is already a member")
            }
            // 1. Everyone learns how to reach and authenticate it; 2. it joins as a learner.
            try await driver.propose(MemberRegistry.entry(MemberRecord(
                nodeId: request.nodeId, name: request.name, address: request.address, removed: false, publicKeySha256: pin)))
            try await waitFor("member record") { registry.member(request.nodeId).map { $0.name == request.name && $0.publicKeySHA256 == pin } ?? false }
            try await driver.proposeConfChange(.addLearner(request.nodeId))
            try await waitFor("adding the learner") { driver.status.learners.contains(request.nodeId) }
            return response(driver)
        }
        router.unary(GridMethod.Admin.promoteMember, roles: [.admin]) { (request: MemberRequest, _) in
            let (driver, registry) = try group(request)
            try requireLeader(driver, registry)
            let status = driver.status
            guard status.learners.contains(request.nodeId) else { throw RPCError(.failedPrecondition, "node \(request.nodeId) is not a learner") }
            let match = status.progress[request.nodeId] ?? 0
            guard match >= status.commit else {
                throw RPCError(.failedPrecondition, "learner \(request.nodeId) is not caught up yet (match \(match), commit \(status.commit)); retry")
            }
            try await driver.proposeConfChange(.promote(request.nodeId))
            try await waitFor("promotion") { driver.status.voters.contains(request.nodeId) }
            return response(driver)
        }
        router.unary(GridMethod.Admin.removeMember, roles: [.admin]) { (request: MemberRequest, _) in
            let (driver, registry) = try group(request)
            try requireLeader(driver, registry)
            let status = driver.status
            guard status.voters.contains(request.nodeId) || status.learners.contains(request.nodeId) else {
                throw RPCError(.notFound, "node \(request.nodeId) is not a member")
            }
            try await driver.proposeConfChange(.remove(request.nodeId))
            try await waitFor("removal") { !driver.status.voters.contains(request.nodeId) && !driver.status.learners.contains(request.nodeId) }
            // Forget its address too (a removed leader has stepped down by now: then the
            // next leader's registry keeps the stale entry, which is harmless).
            try? await driver.propose(MemberRegistry.entry(MemberRecord(nodeId: request.nodeId, name: "", address: "", removed: true)))
            return response(driver)
        }
    }
}
