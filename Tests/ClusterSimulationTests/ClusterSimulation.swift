import Consensus
import Foundation
import GridBase
import GridClient
import GridProto
import SimulationKit
import Store

@testable import Chain
@testable import Node

/// A deterministic simulation of one district chain's cluster (issue 12 §3, in the style of
/// FoundationDB's and TigerBeetle's simulation testing): three or five full replicas
/// (`SimulatedReplica`: the node's `Ledger` with the contracts, and the `RaftShell` that
/// `RaftDriver` runs) in one task, over a seeded network that drops, delays, reorders and
/// duplicates messages and cuts partitions, with a manual clock (ticks of 100 ms), crashes
/// that lose what was not synced, restarts, leadership transfers and membership changes,
/// under a seeded workload of clients: reading batches from the district's collector and,
/// in main-chain order, the parameters marketing sends down (tariff, thresholds, customer
/// archives, then payments) carried by the district's node.
///
/// A client submits to the replica that believes it leads; that replica mirrors the node's
/// cutter: it screens, executes the batch into a block (`Ledger.prepareProposal`), proposes
/// it, and acknowledges each transaction once the block is applied at its height here
/// (`Ledger.proposalResult`), exactly the rule `Ledger.commitThroughRaft` follows. Clients
/// retry what was not acknowledged; a retry of a transaction already on the chain is
/// answered with its location (ALREADY_EXISTS), like a node does.
///
/// Everything random comes from one `SplitMix64(seed)` and nothing iterates a dictionary in
/// hash order, so a run's schedule is a function of `(seed, options)`. `ClusterInvariants`
/// judges it.
final class ClusterSimulation: @unchecked Sendable {
    struct Options: Sendable {
        var voters = 3
        /// Replicas beyond the founders that membership changes may add (they start empty).
        var spares = 0
        var electionTicks = 10
        var chaosTicks = 100
        var settleTicks = 30
        var commitTicks = 150
        var dropRate = 0.05
        var duplicateRate = 0.02
        /// Network delay in ticks: uniform in `0...maxDelay`.
        var maxDelay = 2
        var partitionRate = 0.015
        var healRate = 0.06
        var crashRate = 0.01
        var restartRate = 0.08
        /// Chance per tick that a client sends something new.
        var requestRate = 0.15
        /// Share of new requests that are payments (the rest are reading batches).
        var paymentShare = 0.25
        var transferRate = 0.003
        var membershipRate = 0.0
        /// Raft log compaction: entries kept beyond the snapshot before compacting.
        var compactEvery: UInt64 = 6
        /// Debug builds only: the leader commits without a quorum (`RaftConfiguration
        /// .testingCommitsWithoutQuorum`), a deliberately broken rule the invariants must catch.
        var breakQuorumRule = false
    }

    /// A client's transaction and what the cluster told the client.
    struct Request {
        enum Kind: String { case readings, downlink }
        let kind: Kind
        let signed: SignedTransaction
        let id: [UInt8]
        /// Where a node said it is: only set by an acknowledgement.
        var acknowledged: (height: UInt64, hash: [UInt8])?
        var inFlight = false
        /// The tick before which the client does not retry.
        var retryAt = 0
    }

    static let tickMs: Int64 = 100
    static let meters = ["m1", "m2", "m3"]

    let seed: UInt64
    let options: Options
    private(set) var rng: SplitMix64
    private(set) var now = 0
    let ids: [NodeID]
    private(set) var replicas: [NodeID: SimulatedReplica] = [:]
    private let directory: String
    private var network = SimulatedNetwork()
    var invariants = ClusterInvariants()
    /// When non-nil, every event is appended here (`GRIDLEDGER_SIM_TRACE=1` on replay).
    var trace: [String]?
    private(set) var requests: [Request] = []
    /// Downlinks go in main-chain order: the next one is sent once the previous is acknowledged.
    private var downlinkLane: [Int] = []
    private var downlinksLanded = 0
    private var removed: Set<NodeID> = []
    /// Replicas that were members at some point (the founders from the start).
    private var everMember: Set<NodeID> = []
    private var healed = false
    private var nextMainHeight: UInt64 = 1
    private var paymentSerial = 0
    private var readingsSent: [String: Int] = [:]
    private var nonceCounter: UInt64 = 0

    // Figures for the sweep's report.
    private(set) var blocksProposed = 0
    private(set) var crashes = 0
    private(set) var snapshotsSent = 0
    private(set) var membershipChanges = 0

    init(seed: UInt64, options: Options = Options(), tracing: Bool = false) throws {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        ids = (1...UInt64(options.voters + options.spares)).map { $0 }
        trace = tracing ? [] : nil
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        directory = base + "/gridledger-sim-\(ProcessInfo.processInfo.processIdentifier)-\(seed)-\(UUID().uuidString.prefix(8))"
        for id in ids {
            replicas[id] = SimulatedReplica(id: id, directory: directory + "/n\(id)")
        }
        // What marketing sends down first: a tariff, the thresholds, one archive per meter.
        let tariff = Tariff(
            tariffId: "flat", utcOffsetMinutes: 480, periods: [TariffPeriod(name: "flat", basePrice: 5000)],
            weekdaySchedule: [UInt8](repeating: 0, count: 288), weekendSchedule: [UInt8](repeating: 0, count: 288),
            cycle: .monthly, tierLimits: [], tierSurcharges: [], fixedChargeFen: 0)
        try addDownlink(.tariff(tariff))
        try addDownlink(.thresholds(FeeControlThresholds(
            thresholdsId: "", alarm1Fen: 1000, alarm2Fen: 500, overdraftLimitFen: 0, reconnectAllowedFen: 100,
            directClose: true, commandValidMs: 3_600_000, gridWorkerContact: "13900000000")))
        for (i, meter) in Self.meters.enumerated() {
            try addDownlink(.customer(CustomerArchive(
                account: "c\(i + 1)", meterId: meter, phase: "A", tariffId: "flat", contact: "1380000000\(i)", openingBalanceFen: 1500)))
        }
        let founders = Array(ids.prefix(options.voters))
        everMember = Set(founders)
        for id in ids { start(id, founders: founders) }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Randomness and tracing

    func chance(_ p: Double) -> Bool {
        p > 0 && Double(rng.next() % 1_000_000) < p * 1_000_000
    }

    func pick<T>(_ xs: [T]) -> T? {
        xs.isEmpty ? nil : xs[Int(rng.next() % UInt64(xs.count))]
    }

    func log(_ s: @autoclosure () -> String) {
        if trace != nil { trace?.append("t=\(now) \(s())") }
    }

    var clockMs: Int64 { SimulatedParties.epochMs + Int64(now) * Self.tickMs }

    // MARK: Workload

    private func nonce() -> String {
        nonceCounter += 1
        return "s\(seed)-\(nonceCounter)"
    }

    /// A parameter as it left the main chain (signed by marketing), carried down to the
    /// district by its node, naming its predecessor so none is skipped.
    private func addDownlink(_ body: DistrictParameter.Body) throws {
        let parties = SimulatedParties.shared
        let original = try parties.marketing.sign(TxPayload(
            chainId: SimulatedParties.mainChain, createdMs: clockMs, nonce: nonce(),
            body: .parameter(DistrictParameter(district: SimulatedParties.district, body: body))))
        let height = nextMainHeight
        nextMainHeight += 1
        let downlink = Downlink(
            mainHeight: height, mainIndex: 0, original: original.serializedBytes(), mainTimestampMs: clockMs,
            afterHeight: height - 1, afterIndex: 0)
        let signed = try parties.node.sign(TxPayload(
            chainId: SimulatedParties.district, createdMs: clockMs, nonce: nonce(), body: .downlink(downlink)))
        requests.append(Request(kind: .downlink, signed: signed, id: TransactionSigner.transactionID(signed)))
        downlinkLane.append(requests.count - 1)
    }

    /// A batch of one to three readings, each meter's 15 minutes after its previous one.
    private func addReadings() throws {
        let parties = SimulatedParties.shared
        var readings: [Reading] = []
        for meter in Self.meters where readings.isEmpty || chance(0.4) {
            let n = readingsSent[meter, default: 0]
            readingsSent[meter] = n + 1
            let energy = 100_000 + UInt64(n) * (200 + rng.next() % 400)
            readings.append(Reading(
                meterId: meter, timestampMs: SimulatedParties.epochMs - 2 * 86_400_000 + Int64(n) * 900_000,
                energyTotal: energy, energyFlat: energy, voltageDv: [2200], currentMa: [5000]))
        }
        let signed = try parties.collector.sign(TxPayload(
            chainId: SimulatedParties.district, createdMs: clockMs, nonce: nonce(),
            body: .readings(ReadingBatch(district: SimulatedParties.district, batchId: "b\(requests.count)", readings: readings))))
        requests.append(Request(kind: .readings, signed: signed, id: TransactionSigner.transactionID(signed)))
        submit(requests.count - 1)
    }

    private func addPayment() throws {
        paymentSerial += 1
        let account = "c\(1 + rng.next() % UInt64(Self.meters.count))"
        try addDownlink(.payment(Payment(account: account, amountFen: Int64(100 + rng.next() % 900), serial: "bank-\(paymentSerial)", paidMs: clockMs)))
    }

    /// Sends request `index` to the replica that believes it leads, as a client would (a
    /// node's follower forwards to the leader; the simulation goes there directly).
    func submit(_ index: Int) {
        guard !requests[index].inFlight, requests[index].acknowledged == nil else { return }
        let leaders = ids.filter { replicas[$0]!.isUp && replicas[$0]!.shell!.node.role == .leader }
        guard let target = pick(leaders), let replica = replicas[target], let ledger = replica.ledger else {
            requests[index].retryAt = now + 3 + Int(rng.next() % 8)
            return
        }
        let tx: ValidatedTransaction
        do {
            tx = try ledger.validator.validate(requests[index].signed, now: clockMs / 1000)
        } catch {
            invariants.fail("n\(target) refused a valid \(requests[index].kind.rawValue) transaction: \(error)")
            return
        }
        do {
            if let location = try ledger.store.txLocation(tx.id), let hash = try ledger.blockHash(at: location.height) {
                // ALREADY_EXISTS, with the location: the client learns where it is.
                acknowledge(index, height: location.height, hash: hash, by: target, code: nil)
                return
            }
        } catch {
            invariants.fail("n\(target) cannot read its store: \(error)")
            return
        }
        guard !replica.queue.contains(where: { $0.request == index }) else { return }
        replica.queue.append(.init(request: index, tx: tx))
        requests[index].inFlight = true
        log("submit #\(index) \(requests[index].kind.rawValue) to n\(target)")
    }

    private func acknowledge(_ index: Int, height: UInt64, hash: [UInt8], by replica: NodeID, code: UInt32?) {
        if let earlier = requests[index].acknowledged, earlier.height != height || earlier.hash != hash {
            invariants.fail("request #\(index) acknowledged at height \(earlier.height) and again by n\(replica) at \(height) with another block")
        }
        requests[index].acknowledged = (height, hash)
        requests[index].inFlight = false
        invariants.acknowledged += 1
        log("ack #\(index) at \(height) by n\(replica)" + (code.map { " code \($0)" } ?? " (already there)"))
        if requests[index].kind == .downlink, downlinksLanded < downlinkLane.count, downlinkLane[downlinksLanded] == index {
            downlinksLanded += 1
        }
    }

    private func unanswered(_ indexes: [Int]) {
        for i in indexes where requests[i].acknowledged == nil {
            requests[i].inFlight = false
            requests[i].retryAt = now + 5 + Int(rng.next() % 20)
        }
    }

    /// New requests, and retries of what was not acknowledged.
    private func clients(newRequests: Bool) throws {
        if newRequests, chance(options.requestRate) {
            if chance(options.paymentShare) { try addPayment() } else { try addReadings() }
        }
        for i in requests.indices where requests[i].kind == .readings && !requests[i].inFlight
            && requests[i].acknowledged == nil && requests[i].retryAt <= now {
            submit(i)
        }
        if downlinksLanded < downlinkLane.count {
            let next = downlinkLane[downlinksLanded]
            if !requests[next].inFlight, requests[next].retryAt <= now { submit(next) }
        }
    }

    // MARK: Replicas

    private func configuration(_ id: NodeID) -> RaftConfiguration {
        var c = RaftConfiguration(
            id: id, electionTicks: options.electionTicks, heartbeatTicks: 1, maxSizePerMessage: 64 << 10,
            maxInflightMessages: 8, maxInflightBytes: 1 << 20, preVote: true, checkQuorum: true,
            maxUncommittedEntriesSize: 8 << 20)
        #if DEBUG
        c.testingCommitsWithoutQuorum = options.breakQuorumRule
        #endif
        return c
    }

    func start(_ id: NodeID, founders: [NodeID]) {
        guard let replica = replicas[id], !replica.isUp, !removed.contains(id) else { return }
        do {
            try replica.start(
                configuration: configuration(id), founders: founders, seed: rng.next(), clock: { [unowned self] in self.clockMs },
                compactEvery: options.compactEvery,
                fetch: { [unowned self] leader, height in try self.fetchBlock(height, from: leader, to: id) })
            log("start n\(id) (incarnation \(replica.incarnation))")
        } catch {
            invariants.fail("n\(id) cannot start: \(error)")
        }
    }

    func crash(_ id: NodeID) {
        guard let replica = replicas[id], replica.isUp else { return }
        if let proposal = replica.proposal { unanswered(proposal.requests) }
        unanswered(replica.queue.map(\.request))
        replica.crash()
        crashes += 1
        log("crash n\(id)")
    }

    /// Block transfer during a snapshot install: the leader serves its stored blocks, if it
    /// is up and reachable from the follower.
    private func fetchBlock(_ height: UInt64, from leader: NodeID, to follower: NodeID) throws -> Block? {
        guard let source = replicas[leader]?.ledger, !network.isCut(leader, follower) else {
            throw StoreError.io("leader n\(leader) is unreachable for block transfer")
        }
        return try source.store.block(at: height)
    }

    /// Lets `id`'s shell perform what became ready, then forwards its messages to the
    /// network, compares its new blocks with the other replicas', and settles its proposal.
    private func process(_ id: NodeID) async {
        guard let replica = replicas[id], let shell = replica.shell, let ledger = replica.ledger else { return }
        _ = await shell.drain()
        for m in replica.outbox.take() { send(m) }
        if let reason = shell.halted {
            let state = try? replica.storage.load()
            invariants.fail("n\(id) halted: \(reason) (raft storage: hard state \(state.map { "\($0.hardState)" } ?? "?"), snapshot \(state?.snapshot?.metadata.index ?? 0), entries \(state?.entries.first?.index ?? 0)...\(state?.entries.last?.index ?? 0), applied \(state?.applied ?? 0))")
            return
        }
        observeBlocks(replica, ledger)
        settleProposal(replica, ledger)
    }

    private func observeBlocks(_ replica: SimulatedReplica, _ ledger: Ledger) {
        guard let head = ledger.reader.head, head.height > replica.observedHeight else { return }
        for height in (replica.observedHeight + 1)...head.height {
            guard let hash = try? ledger.blockHash(at: height) else {
                invariants.fail("n\(replica.id) cannot read block \(height) below its head \(head.height)")
                return
            }
            invariants.observe(replica: replica.id, height: height, hash: hash)
        }
        log("n\(replica.id) head \(head.height)")
        replica.observedHeight = head.height
    }

    private func settleProposal(_ replica: SimulatedReplica, _ ledger: Ledger) {
        guard let proposal = replica.proposal else { return }
        let height = proposal.built.header.height
        let reached = (ledger.reader.head?.height ?? 0) >= height
        guard reached || now >= proposal.deadline else { return }
        replica.proposal = nil
        do {
            let result = try ledger.proposalResult(proposal.built, reachedHeight: reached)
            for (i, request) in proposal.requests.enumerated() {
                acknowledge(request, height: result.height, hash: result.hash, by: replica.id, code: result.outcomes[i].code)
            }
        } catch {
            log("n\(replica.id) proposal at \(height) failed: \(error)")
            unanswered(proposal.requests)
        }
    }

    /// A leader with queued transactions and no block in flight cuts the next block, as the
    /// node's cutter does: already stored ones are answered with their location, the rest
    /// are executed into a block stamped with the clock (or the head's time, if later).
    private func cut(_ id: NodeID) async {
        guard let replica = replicas[id], let shell = replica.shell, let ledger = replica.ledger,
              replica.proposal == nil, !replica.queue.isEmpty else { return }
        let batch = Array(replica.queue.prefix(16))
        replica.queue.removeFirst(batch.count)
        var admitted: [SimulatedReplica.Queued] = []
        for queued in batch {
            if let location = try? ledger.store.txLocation(queued.tx.id), let hash = try? ledger.blockHash(at: location.height) {
                acknowledge(queued.request, height: location.height, hash: hash, by: id, code: nil)
            } else {
                admitted.append(queued)
            }
        }
        guard !admitted.isEmpty else { return }
        var timestampMs = clockMs
        if let head = ledger.reader.head, let headMs = try? ledger.store.block(at: head.height)?.header?.timestampMs, headMs > timestampMs {
            timestampMs = headMs
        }
        do {
            let built = try ledger.prepareProposal(admitted.map(\.tx), timestampMs: timestampMs)
            do {
                try shell.propose(built.bytes)
            } catch {
                ledger.forgetProposal()
                unanswered(admitted.map(\.request))
                return
            }
            blocksProposed += 1
            replica.proposal = .init(built: built, requests: admitted.map(\.request), deadline: now + 40)
            log("n\(id) proposes block \(built.header.height) with \(admitted.count) transactions")
        } catch {
            invariants.fail("n\(id) cannot build a block: \(error)")
            return
        }
        await process(id)
    }

    // MARK: Network

    private func send(_ m: Message) {
        if m.kind == .snapshot { snapshotsSent += 1 }
        if network.isCut(m.from, m.to) || (!healed && chance(options.dropRate)) {
            log("drop \(m.kind) n\(m.from)->n\(m.to)")
            return
        }
        let copies = !healed && chance(options.duplicateRate) ? 2 : 1
        for _ in 0..<copies {
            let delay = options.maxDelay == 0 ? 0 : Int(rng.next() % UInt64(options.maxDelay + 1))
            network.enqueue(m, at: now + delay)
        }
    }

    private func deliver(_ m: Message) async {
        guard let replica = replicas[m.to], let shell = replica.shell, !network.isCut(m.from, m.to) else { return }
        shell.step([m])
        await process(m.to)
    }

    // MARK: Faults

    private var upIDs: [NodeID] { ids.filter { replicas[$0]!.isUp } }

    private var leaderIDs: [NodeID] { upIDs.filter { replicas[$0]!.shell!.node.role == .leader } }

    private func injectFaults() async {
        if network.cuts.isEmpty {
            if chance(options.partitionRate) {
                var side: Set<NodeID> = []
                for id in ids where rng.next() % 2 == 0 { side.insert(id) }
                if chance(0.3), let lone = pick(ids) { side = [lone] }
                network.partition(side, among: ids)
                log("partition \(side.sorted()) | rest")
            }
        } else if chance(options.healRate) {
            network.heal()
            log("heal")
        }
        if chance(options.crashRate), let victim = pick(upIDs) { crash(victim) }
        for id in ids where !replicas[id]!.isUp && !removed.contains(id) && chance(options.restartRate) {
            start(id, founders: Array(ids.prefix(options.voters)))
        }
        if chance(options.transferRate), let leader = leaderIDs.first, let to = pick(ids), let shell = replicas[leader]?.shell {
            try? shell.transferLeadership(to: to)
            log("transfer leadership n\(leader) -> n\(to)")
            await process(leader)
        }
        if chance(options.membershipRate) { await membershipChange() }
    }

    /// A random single-step membership change by the leader, keeping at least three voters.
    private func membershipChange() async {
        guard let leader = leaderIDs.first, let shell = replicas[leader]?.shell else { return }
        let conf = shell.node.confState
        var choices: [ConfChange] = []
        for id in ids where !conf.contains(id) && !removed.contains(id) { choices.append(.addLearner(id)) }
        for id in conf.learners { choices.append(.promote(id)); choices.append(.remove(id)) }
        if conf.voters.count > 3 { for id in conf.voters where id != leader { choices.append(.remove(id)) } }
        guard let change = pick(choices) else { return }
        do {
            try shell.proposeConfChange(change)
            membershipChanges += 1
            log("n\(leader) proposes \(change)")
        } catch {
            log("n\(leader) refused \(change): \(error)")
        }
        await process(leader)
    }

    /// Members that left the group (per the leader's applied membership) are stopped for
    /// good; ids are never reused.
    private func retireRemoved() {
        guard let leader = leaderIDs.first, let conf = replicas[leader]?.shell?.node.confState else { return }
        for id in ids where conf.contains(id) { everMember.insert(id) }
        for id in ids where everMember.contains(id) && !conf.contains(id) && !removed.contains(id) {
            crash(id)
            removed.insert(id)
            log("n\(id) left the group")
        }
    }

    // MARK: Driving

    /// One tick: faults, clients, clocks, leaders cut blocks, then the messages due.
    func step(chaos: Bool) async throws {
        now += 1
        if chaos { await injectFaults() }
        try clients(newRequests: chaos)
        for id in upIDs {
            replicas[id]?.shell?.tick()
            await process(id)
        }
        for id in upIDs {
            if replicas[id]!.shell!.node.role == .leader {
                await cut(id)
            } else if !replicas[id]!.queue.isEmpty {
                // Deposed: the node's cutter would fail to propose them (UNAVAILABLE).
                unanswered(replicas[id]!.queue.map(\.request))
                replicas[id]!.queue = []
            }
        }
        var deliveries = 0
        while let m = network.popDue(now: now) {
            await deliver(m)
            deliveries += 1
            if deliveries > 50_000 { invariants.fail("message storm at tick \(now)"); return }
        }
        if options.membershipRate > 0 { retireRemoved() }
    }

    /// Chaos, then heal and restart everything and require progress and agreement.
    func run() async throws {
        for _ in 0..<options.chaosTicks {
            try await step(chaos: true)
            if !invariants.ok { return }
        }
        network.heal()
        healed = true
        log("heal all; restart all")
        for id in ids { start(id, founders: Array(ids.prefix(options.voters))) }
        for _ in 0..<options.settleTicks {
            try await step(chaos: false)
            if !invariants.ok { return }
        }
        // Liveness: a fresh batch is acknowledged, every downlink lands, and every member
        // reaches the same head.
        try addReadings()
        let marker = requests.count - 1
        var converged = false
        for _ in 0..<options.commitTicks {
            try await step(chaos: false)
            if !invariants.ok { return }
            if requests[marker].acknowledged != nil, downlinksLanded == downlinkLane.count, membersAgreeOnHead() {
                converged = true
                break
            }
        }
        if leaderIDs.isEmpty {
            invariants.fail("liveness: no leader \(options.settleTicks + options.commitTicks) ticks after healing")
        } else if requests[marker].acknowledged == nil {
            invariants.fail("liveness: a fresh reading batch was not acknowledged within \(options.commitTicks) ticks after healing")
        } else if downlinksLanded < downlinkLane.count {
            invariants.fail("liveness: downlink \(downlinksLanded + 1) of \(downlinkLane.count) never landed")
        } else if !converged {
            invariants.fail("liveness: members' heads differ after healing: \(members.map { "n\($0)=\(replicas[$0]!.ledger?.reader.head?.height ?? 0)" })")
        }
        guard invariants.ok else { return }
        invariants.checkFinal(requests: requests, members: members.compactMap { replicas[$0] })
    }

    /// The group's current members (per the leader), all up after healing.
    var members: [NodeID] {
        guard let leader = leaderIDs.first, let conf = replicas[leader]?.shell?.node.confState else { return [] }
        return ids.filter { conf.contains($0) && !removed.contains($0) }
    }

    private func membersAgreeOnHead() -> Bool {
        let heads = members.map { replicas[$0]!.ledger?.reader.head }
        guard let first = heads.first ?? nil else { return false }
        return heads.allSatisfy { $0?.height == first.height && $0?.hash == first.hash }
    }

    /// How many requests the clients made, and how many were acknowledged.
    var requestCounts: (made: Int, acknowledged: Int) {
        (requests.count, requests.filter { $0.acknowledged != nil }.count)
    }
}
