import Consensus
import XCTest

/// Tests that check the Raft paper's rules one by one (STYLE habit 14; the shape of
/// etcd-io/raft `raft_paper_test.go`). "Fig. 2" is the paper's summary of the protocol;
/// "thesis" is Ongaro's dissertation "Consensus: Bridging Theory and Practice" (2014).
final class RaftPaperTests: XCTestCase {
    // MARK: Helpers

    /// Member `id` of the founding group `voters`, pre-vote off unless asked.
    func member(_ id: NodeID, of voters: [NodeID] = [1, 2, 3], preVote: Bool = false, checkQuorum: Bool = false,
                state: PersistentState? = nil, seed: UInt64 = 1) -> RaftNode {
        var r = try! RaftNode(
            configuration: RaftConfiguration(id: id, preVote: preVote, checkQuorum: checkQuorum),
            state: state ?? .bootstrap(voters: voters), randomSeed: seed)
        _ = takeReady(&r)  // applies the bootstrap membership
        return r
    }

    /// Ticks until the member leaves the follower role; returns the ticks it took.
    @discardableResult
    func tickUntilCampaign(_ r: inout RaftNode) -> Int {
        for t in 1...100 {
            r.tick()
            if r.role != .follower { return t }
        }
        XCTFail("never campaigned")
        return 0
    }

    func msgs(_ rd: Ready, _ kind: MessageKind) -> [Message] { rd.messages.filter { $0.kind == kind } }

    /// A 3-member network with member 1 elected.
    func electedNetwork(preVote: Bool = true, checkQuorum: Bool = true, others: [NodeID] = [],
                        tweak: @escaping (inout RaftConfiguration) -> Void = { _ in }) -> TestNetwork {
        var net = TestNetwork(voters: [1, 2, 3], others: others) { c in
            c.preVote = preVote
            c.checkQuorum = checkQuorum
            tweak(&c)
        }
        net.campaign(1)
        XCTAssertEqual(net.leaders, [1])
        return net
    }

    // MARK: §5.1 Terms

    /// §5.1 / Fig. 2 "All servers": if an RPC carries a term T > currentTerm, set
    /// currentTerm = T and convert to follower (from candidate and from leader).
    func testHigherTermRevertsToFollower() throws {
        var candidate = member(1)
        tickUntilCampaign(&candidate)
        XCTAssertEqual(candidate.role, .candidate)
        try candidate.step(Message(kind: .append, from: 2, to: 1, term: 5, logTerm: 1, index: 1))
        XCTAssertEqual(candidate.role, .follower)
        XCTAssertEqual(candidate.term, 5)
        XCTAssertEqual(candidate.leader, 2)

        var net = electedNetwork()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            try r.step(Message(kind: .heartbeat, from: 3, to: 1, term: r.term + 1))
            XCTAssertEqual(r.role, .follower)
            XCTAssertEqual(r.leader, 3)
        }
    }

    /// §5.1: a server rejects a request with a stale term; the (stale) sender learns the
    /// newer term from the answer.
    func testStaleTermRequestRejected() throws {
        var r = member(2, preVote: true, state: PersistentState(hardState: HardState(term: 5, commit: 1), entries: PersistentState.bootstrap(voters: [1, 2, 3]).entries))
        try r.step(Message(kind: .append, from: 1, to: 2, term: 3, logTerm: 1, index: 1, entries: [Entry(term: 3, index: 2)]))
        let rd = takeReady(&r)
        XCTAssertEqual(r.log.lastIndex, 1, "stale append must not change the log")
        XCTAssertEqual(msgs(rd, .appendResponse).first?.term, 5)
        XCTAssertEqual(r.term, 5)
    }

    // MARK: §5.2 Leader election

    /// §5.2: a follower that receives no communication over the election timeout becomes a
    /// candidate: it increments its term, votes for itself and asks every other server for
    /// its vote with its last log index and term (Fig. 2 RequestVote arguments).
    func testFollowerStartsElectionAfterTimeout() {
        var r = member(1)
        let ticks = tickUntilCampaign(&r)
        XCTAssertGreaterThanOrEqual(ticks, 10)
        XCTAssertLessThan(ticks, 20)
        XCTAssertEqual(r.role, .candidate)
        XCTAssertEqual(r.term, 2)
        XCTAssertEqual(r.vote, 1, "a candidate votes for itself")
        let rd = takeReady(&r)
        XCTAssertEqual(rd.hardState?.vote, 1, "the self-vote is persisted before vote requests go out")
        let votes = msgs(rd, .vote)
        XCTAssertEqual(votes.map(\.to).sorted(), [2, 3])
        XCTAssertTrue(votes.allSatisfy { $0.term == 2 && $0.index == 1 && $0.logTerm == 1 })
    }

    /// §5.2: election timeouts are chosen randomly from a fixed interval
    /// ([electionTicks, 2·electionTicks)) so that split votes are rare.
    func testRandomizedElectionTimeouts() {
        var seen: Set<Int> = []
        for seed in 0..<200 as Range<UInt64> {
            var r = member(1, seed: seed)
            let t = tickUntilCampaign(&r)
            XCTAssert((10..<20).contains(t), "timeout \(t) outside [10, 20)")
            seen.insert(t)
        }
        XCTAssertGreaterThan(seen.count, 5, "timeouts must actually vary")
    }

    /// §5.2: each server votes for at most one candidate in a given term, first come first
    /// served (Fig. 2 RequestVote receiver rule 2); repeating the grant to the same
    /// candidate is harmless.
    func testGrantsAtMostOneVotePerTerm() throws {
        var r = member(1)
        try r.step(Message(kind: .vote, from: 2, to: 1, term: 2, logTerm: 1, index: 1))
        XCTAssertEqual(msgs(takeReady(&r), .voteResponse).first?.reject, false)
        try r.step(Message(kind: .vote, from: 3, to: 1, term: 2, logTerm: 1, index: 1))
        XCTAssertEqual(msgs(takeReady(&r), .voteResponse).first?.reject, true)
        try r.step(Message(kind: .vote, from: 2, to: 1, term: 2, logTerm: 1, index: 1))
        XCTAssertEqual(msgs(takeReady(&r), .voteResponse).first?.reject, false)
        XCTAssertEqual(r.vote, 2)
    }

    /// The vote survives a crash: it is in `Ready.hardState`, persisted before the grant
    /// is sent (Fig. 2 "Persistent state ... updated on stable storage before responding").
    func testVoteSurvivesRestart() throws {
        var net = TestNetwork(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            try r.step(Message(kind: .vote, from: 2, to: 1, term: 2, logTerm: 1, index: 1))
        }
        net.dropKinds = [.voteResponse]
        net.deliverAll()
        net.restart(1)
        XCTAssertEqual(net.nodes[1]?.vote, 2)
        XCTAssertEqual(net.nodes[1]?.term, 2)
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            try r.step(Message(kind: .vote, from: 3, to: 1, term: 2, logTerm: 1, index: 1))
            XCTAssertEqual(r.ready().messages.first { $0.kind == .voteResponse }?.reject, true)
        }
    }

    /// §5.2: a candidate wins an election if it receives votes from a majority of the
    /// servers in the full cluster for the same term; it then sends AppendEntries.
    func testCandidateWinsWithMajority() throws {
        var r = member(1)
        tickUntilCampaign(&r)
        _ = takeReady(&r)
        try r.step(Message(kind: .voteResponse, from: 2, to: 1, term: 2))
        XCTAssertEqual(r.role, .leader)
        XCTAssertEqual(r.leader, 1)
        let rd = takeReady(&r)
        XCTAssertEqual(Set(msgs(rd, .append).map(\.to)), [2, 3])
    }

    /// §5.2: a candidate that a majority rejects returns to follower.
    func testCandidateLosesWithMajorityRejections() throws {
        var r = member(1)
        tickUntilCampaign(&r)
        try r.step(Message(kind: .voteResponse, from: 2, to: 1, term: 2, reject: true))
        XCTAssertEqual(r.role, .candidate)
        try r.step(Message(kind: .voteResponse, from: 3, to: 1, term: 2, reject: true))
        XCTAssertEqual(r.role, .follower)
        XCTAssertEqual(r.term, 2)
    }

    // MARK: §5.3 Log replication

    /// §5.3: the leader appends the command to its log, replicates it with AppendEntries,
    /// and once it is replicated on a majority, commits it and every follower applies it.
    func testLeaderAppendsReplicatesAndCommits() throws {
        var net = electedNetwork()
        try net.propose(1, [42])
        net.deliverAll()
        for id: NodeID in [1, 2, 3] {
            XCTAssertEqual(net.applied[id]?.last?.data, [42], "member \(id)")
            XCTAssertEqual(net.persisted[id]?.entries.last?.data, [42])
        }
    }

    /// Fig. 2 AppendEntries receiver rule 2: reply false if the log does not contain an
    /// entry at prevLogIndex whose term matches prevLogTerm; the rejection carries a hint
    /// for fast backtracking (§5.3, "the follower can include the term of the conflicting
    /// entry and the first index it stores for that term").
    func testFollowerRejectsAppendOnLogMismatch() throws {
        var r = member(2)
        try r.step(Message(kind: .append, from: 1, to: 2, term: 2, logTerm: 2, index: 5, entries: [Entry(term: 2, index: 6)]))
        let resp = try XCTUnwrap(msgs(takeReady(&r), .appendResponse).first)
        XCTAssertTrue(resp.reject)
        XCTAssertEqual(resp.rejectHint, 1, "our last index is 1")
        XCTAssertEqual(resp.logTerm, 1)
        XCTAssertEqual(r.log.lastIndex, 1)
    }

    /// Fig. 2 AppendEntries receiver rule 3: if an existing entry conflicts with a new one
    /// (same index, different terms), delete it and all that follow; rule 4: append new
    /// entries. The truncation reaches stable storage through `entriesToPersist`.
    func testConflictingEntriesAreDeleted() throws {
        let boot = PersistentState.bootstrap(voters: [1, 2, 3])
        var state = boot
        state.entries += [Entry(term: 2, index: 2, data: [2]), Entry(term: 2, index: 3, data: [3])]
        state.hardState.term = 2
        var r = member(2, state: state)
        try r.step(Message(kind: .append, from: 1, to: 2, term: 3, logTerm: 1, index: 1, entries: [Entry(term: 3, index: 2, data: [9])], commit: 1))
        let rd = takeReady(&r)
        XCTAssertEqual(r.log.lastIndex, 2)
        XCTAssertEqual(r.log.entry(at: 2)?.term, 3)
        XCTAssertEqual(rd.entriesToPersist, [Entry(term: 3, index: 2, data: [9])])
        XCTAssertEqual(msgs(rd, .appendResponse).first?.index, 2)
    }

    /// §5.3: the leader sends entries in batches bounded by `maxSizePerMessage` and keeps
    /// at most `maxInflightMessages` unacknowledged appends per follower (pipelining).
    func testBatchingAndInflightWindow() throws {
        var net = electedNetwork { c in
            c.maxSizePerMessage = 10
            c.maxInflightMessages = 2
        }
        net.isolate(2)
        for i in 0..<10 { try net.propose(1, [UInt8](repeating: UInt8(i), count: 5)) }
        net.deliverAll()
        let toTwo = net.dropped.filter { $0.kind == .append && $0.to == 2 && !$0.entries.isEmpty }
        XCTAssertTrue(toTwo.allSatisfy { $0.entries.count <= 2 }, "10-byte batches of 5-byte entries")
        XCTAssertLessThanOrEqual(net.nodes[1]?.progress[2]?.inflightCount ?? 99, 2)
        net.heal()
        net.tickAll(3)
        XCTAssertEqual(net.applied[2]?.count, net.applied[1]?.count)
    }

    // MARK: §5.4 Safety

    /// §5.4.1: a voter denies its vote if its own log is more up-to-date than the
    /// candidate's (later last term, or same last term and longer).
    func testVoteDeniedToLessUpToDateLog() throws {
        var state = PersistentState.bootstrap(voters: [1, 2, 3])
        state.entries += [Entry(term: 2, index: 2), Entry(term: 2, index: 3)]
        state.hardState.term = 2
        let cases: [(index: UInt64, logTerm: UInt64, grant: Bool)] = [
            (5, 1, false),  // lower last term, longer log
            (2, 2, false),  // same term, shorter
            (3, 2, true),  // identical
            (4, 2, true),  // same term, longer
            (2, 3, true),  // higher last term
        ]
        for c in cases {
            var r = member(1, state: state)
            try r.step(Message(kind: .vote, from: 2, to: 1, term: 3, logTerm: c.logTerm, index: c.index))
            XCTAssertEqual(msgs(takeReady(&r), .voteResponse).first?.reject, !c.grant, "\(c)")
        }
    }

    /// §5.4.2 (Fig. 8): a leader never commits an entry from a previous term by counting
    /// replicas; only entries of its current term, which commits the earlier ones with it.
    func testLeaderDoesNotCommitPreviousTermEntriesByCounting() throws {
        var state = PersistentState.bootstrap(voters: [1, 2, 3])
        state.entries.append(Entry(term: 2, index: 2, data: [7]))  // from the term-2 leader
        state.hardState.term = 2
        var r = member(1, state: state)
        tickUntilCampaign(&r)
        try r.step(Message(kind: .voteResponse, from: 2, to: 1, term: 3))
        XCTAssertEqual(r.role, .leader)
        XCTAssertEqual(r.log.lastIndex, 3, "no-op of term 3 appended on election")
        _ = takeReady(&r)
        // Member 2 acknowledges index 2 (term 2) only: a majority holds it, but not commit.
        try r.step(Message(kind: .appendResponse, from: 2, to: 1, term: 3, index: 2))
        XCTAssertEqual(r.log.committed, 1)
        // Once the term-3 no-op is on a majority, both commit.
        try r.step(Message(kind: .appendResponse, from: 2, to: 1, term: 3, index: 3))
        XCTAssertEqual(r.log.committed, 3)
    }

    /// §5.4.3 / leader completeness in a scenario: a leader elected after a commit has it.
    func testNewLeaderHasAllCommittedEntries() throws {
        var net = electedNetwork()
        try net.propose(1, [1])
        net.deliverAll()
        net.isolate(1)
        net.tickAll(40)
        let leader = try XCTUnwrap(net.leaders.first { $0 != 1 })
        XCTAssertEqual(net.nodes[leader]?.log.entry(at: net.applied[1]!.last!.index)?.data, [1])
    }

    // MARK: Pre-vote, check-quorum, leases (thesis §9.6, §6.2, §4.2.3)

    /// Thesis §9.6: a member partitioned away keeps pre-voting without raising its term,
    /// so when it rejoins it does not depose the stable leader.
    func testPreVoteDoesNotDisruptStableLeader() {
        var net = electedNetwork()
        let term = net.nodes[1]!.term
        net.isolate(3)
        for _ in 0..<100 { net.nodes[3]?.tick(); net.deliverAll() }
        XCTAssertEqual(net.nodes[3]?.term, term, "pre-vote never bumps the term")
        net.heal()
        net.tickAll(5)
        XCTAssertEqual(net.leaders, [1])
        XCTAssertEqual(net.nodes[1]?.term, term)
    }

    /// Thesis §6.2 (check-quorum): a leader that has not heard from a quorum for a whole
    /// election-timeout round steps down (activity is checked per round, so within two
    /// election timeouts of losing the quorum).
    func testCheckQuorumLeaderStepsDown() {
        var net = electedNetwork()
        net.isolate(1)
        for _ in 0..<10 { net.nodes[1]?.tick(); net.deliverAll() }
        XCTAssertEqual(net.nodes[1]?.role, .leader, "the first round still counts pre-isolation activity")
        for _ in 0..<10 { net.nodes[1]?.tick(); net.deliverAll() }
        XCTAssertEqual(net.nodes[1]?.role, .follower)
        XCTAssertEqual(net.nodes[1]?.leader, noNode)
    }

    /// Thesis §4.2.3 (leader lease): a follower that heard from its leader within the
    /// election timeout ignores a vote request with a higher term — no term change, no answer.
    func testFollowerWithLiveLeaderIgnoresVoteRequests() throws {
        var net = electedNetwork()
        let term = net.nodes[2]!.term
        try net.with(2) { (r: inout RaftNode) throws(RaftError) in
            try r.step(Message(kind: .vote, from: 3, to: 2, term: term + 5, logTerm: 99, index: 99))
            XCTAssertEqual(r.term, term)
            XCTAssertTrue(r.ready().messages.isEmpty)
        }
    }

    // MARK: Membership (thesis §4.1–4.2), one change at a time

    /// Thesis §4.2.1: a new member joins as a learner; it receives the log but does not
    /// vote, does not campaign, and does not count towards the commit quorum.
    func testLearnerReceivesLogButIsNotCountedOrCampaigning() throws {
        var net = electedNetwork(others: [4])
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.proposeConfChange(.addLearner(4)) }
        net.deliverAll()
        net.tickAll(2)
        XCTAssertEqual(net.nodes[4]?.role, .learner)
        XCTAssertEqual(net.nodes[4]?.confState.learners, [4])
        XCTAssertEqual(net.applied[4]?.count, net.applied[1]?.count, "the learner caught up from index 1")
        // Quorum: voters 2 and 3 down, learner up → nothing commits.
        net.isolate(2)
        net.isolate(3)
        let before = net.nodes[1]!.log.committed
        try net.propose(1, [5])
        net.deliverAll()
        XCTAssertEqual(net.nodes[1]?.log.committed, before)
        XCTAssertEqual(net.nodes[4]?.log.lastIndex, net.nodes[1]?.log.lastIndex, "learner has the entry")
        // A learner never campaigns.
        for _ in 0..<100 { net.nodes[4]?.tick() }
        XCTAssertEqual(net.nodes[4]?.role, .learner)
    }

    /// Promoting a caught-up learner makes it a voter that counts in the quorum.
    func testPromoteLearner() throws {
        var net = electedNetwork(others: [4])
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.proposeConfChange(.addLearner(4)) }
        net.deliverAll()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.proposeConfChange(.promote(4)) }
        net.deliverAll()
        net.tickAll(2)
        XCTAssertEqual(net.nodes[1]?.confState.voters, [1, 2, 3, 4])
        XCTAssertEqual(net.nodes[4]?.role, .follower)
        // 4 voters: quorum 3. With 3 and 4 cut, 1 and 2 cannot commit.
        net.isolate(3)
        net.isolate(4)
        let before = net.nodes[1]!.log.committed
        try net.propose(1, [6])
        net.deliverAll()
        XCTAssertEqual(net.nodes[1]?.log.committed, before)
    }

    /// Thesis §4.1: one change at a time; a second change is refused while one is pending.
    func testOneConfigChangeAtATime() throws {
        var net = electedNetwork(others: [4, 5])
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            try r.proposeConfChange(.addLearner(4))
            XCTAssertThrowsError(try r.proposeConfChange(.addLearner(5))) { XCTAssertEqual($0 as? RaftError, .configChangePending) }
            XCTAssertThrowsError(try r.proposeConfChange(.promote(2))) { _ in }
        }
        net.deliverAll()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            try r.proposeConfChange(.addLearner(5))
            XCTAssertThrowsError(try r.proposeConfChange(.promote(3))) { _ in }
        }
    }

    /// Thesis §4.2.2: a removed leader steps down once the change is committed (applied);
    /// the remaining voters elect a new leader and keep committing.
    func testRemovedLeaderStepsDown() throws {
        var net = electedNetwork()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.proposeConfChange(.remove(1)) }
        net.deliverAll()
        XCTAssertNotEqual(net.nodes[1]?.role, .leader)
        XCTAssertEqual(net.nodes[2]?.confState.voters, [2, 3])
        net.tickAll(25)
        XCTAssertEqual(net.leaders.count, 1)
        let leader = try XCTUnwrap(net.leaders.first)
        XCTAssertNotEqual(leader, 1)
        try net.propose(leader, [8])
        net.deliverAll()
        XCTAssertEqual(net.applied[2]?.last?.data, [8])
        XCTAssertEqual(net.applied[3]?.last?.data, [8])
    }

    // MARK: Leadership transfer (thesis §3.10)

    /// Thesis §3.10: the leader brings the target up to date, sends TimeoutNow, and the
    /// target wins the election at once (bypassing pre-vote and leases).
    func testTransferLeadership() throws {
        var net = electedNetwork()
        try net.propose(1, [1])
        net.deliverAll()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.transferLeadership(to: 3) }
        net.deliverAll()
        XCTAssertEqual(net.leaders, [3])
    }

    /// While a transfer is in progress the leader refuses proposals; the transfer is aborted
    /// after an election timeout, after which proposals are accepted again.
    func testTransferRefusesProposalsAndAbortsAfterTimeout() throws {
        var net = electedNetwork()
        net.isolate(3)
        try net.propose(1, [1])
        net.deliverAll()
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.transferLeadership(to: 3) }
        XCTAssertThrowsError(try net.propose(1, [2])) { XCTAssertEqual($0 as? RaftError, .transferInProgress) }
        net.tick(1, 10)
        XCTAssertEqual(net.leaders, [1])
        XCTAssertEqual(net.nodes[1]?.leadTransferee, noNode)
        XCTAssertNoThrow(try net.propose(1, [3]))
    }

    // MARK: ReadIndex (thesis §6.4)

    /// Thesis §6.4: the leader records its commit index, confirms leadership with a
    /// heartbeat round to a quorum, then the read may be served at that index.
    func testReadIndexOnLeaderAndFollower() throws {
        var net = electedNetwork()
        try net.propose(1, [1])
        net.deliverAll()
        let commit = net.nodes[1]!.log.committed
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.readIndex(context: [0xA]) }
        net.deliverAll()
        XCTAssertEqual(net.readStates[1], [ReadState(index: commit, context: [0xA])])
        try net.with(2) { (r: inout RaftNode) throws(RaftError) in try r.readIndex(context: [0xB]) }
        net.deliverAll()
        XCTAssertEqual(net.readStates[2], [ReadState(index: commit, context: [0xB])], "forwarded to the leader")
    }

    /// Thesis §6.4: without a quorum the leader cannot confirm a read.
    func testReadIndexNeedsQuorum() throws {
        var net = electedNetwork()
        net.isolate(1)
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.readIndex(context: [1]) }
        net.deliverAll()
        XCTAssertEqual(net.readStates[1] ?? [], [])
    }

    /// Thesis §6.4 step 1: a new leader serves reads only after committing an entry of its
    /// term (its no-op); until then the request waits.
    func testNewLeaderDefersReadsUntilItsTermCommits() throws {
        var net = TestNetwork(voters: [1, 2, 3]) { $0.preVote = false }
        net.dropKinds = [.appendResponse]
        net.campaign(1)
        XCTAssertEqual(net.leaders, [1])
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in try r.readIndex(context: [7]) }
        net.deliverAll()
        XCTAssertEqual(net.readStates[1] ?? [], [], "no-op not committed yet")
        net.heal()
        net.tick(1, 2)
        XCTAssertEqual(net.readStates[1]?.map(\.context), [[7]])
        XCTAssertEqual(net.readStates[1]?.first?.index, net.nodes[1]?.log.committed)
    }

    // MARK: Snapshots (§7)

    /// §7: a leader that compacted its log sends a snapshot to a follower whose next entry
    /// was discarded; the follower replaces its log with it and catches up.
    func testSnapshotInstallForLaggingFollower() throws {
        var net = electedNetwork()
        net.isolate(3)
        for i in 0..<20 { try net.propose(1, [UInt8(i)]) }
        net.deliverAll()
        let applied = net.nodes[1]!.log.applied
        try net.with(1) { (r: inout RaftNode) throws(RaftError) in
            _ = try r.compact(upTo: applied, snapshotData: [0xBB])
        }
        XCTAssertEqual(net.nodes[1]?.log.firstIndex, applied + 1)
        net.heal()
        net.tickAll(3)
        XCTAssertEqual(net.snapshotsInstalled[3]?.first?.metadata.index, applied)
        XCTAssertEqual(net.snapshotsInstalled[3]?.first?.data, [0xBB])
        XCTAssertEqual(net.snapshotsInstalled[3]?.first?.metadata.confState.voters, [1, 2, 3])
        try net.propose(1, [99])
        net.deliverAll()
        XCTAssertEqual(net.applied[3]?.last?.data, [99])
        XCTAssertEqual(net.nodes[3]?.log.committed, net.nodes[1]?.log.committed)
    }

    /// Compaction is refused beyond the applied index.
    func testCompactionBeyondAppliedRefused() {
        var r = member(1)
        XCTAssertThrowsError(try r.compact(upTo: 5, snapshotData: [])) { error in
            XCTAssertEqual(error as? RaftError, .compactionOutOfRange(requested: 5, applied: 1))
        }
    }

    // MARK: Proposals and robustness

    /// Proposals fail with a typed error off the leader and beyond the uncommitted limit.
    func testProposalErrors() throws {
        var f = member(2)
        XCTAssertThrowsError(try f.propose([1])) { XCTAssertEqual($0 as? RaftError, .notLeader(leader: noNode)) }
        var net = electedNetwork { $0.maxUncommittedEntriesSize = 10 }
        net.isolate(1)
        try net.propose(1, [UInt8](repeating: 0, count: 8))
        XCTAssertThrowsError(try net.propose(1, [UInt8](repeating: 0, count: 8))) {
            XCTAssertEqual($0 as? RaftError, .proposalDropped)
        }
        XCTAssertThrowsError(try net.propose(2, [1])) { XCTAssertEqual($0 as? RaftError, .notLeader(leader: 1)) }
    }

    /// Hostile or misdirected messages are refused with a typed error and change nothing;
    /// stale-term messages are handled silently.
    func testHostileMessagesAreRejectedGracefully() throws {
        var net = electedNetwork()
        var r = net.nodes[1]!
        let before = (r.term, r.log.lastIndex, r.log.committed)
        XCTAssertThrowsError(try r.step(Message(kind: .append, from: 2, to: 9, term: 99)))
        XCTAssertThrowsError(try r.step(Message(kind: .heartbeat, from: 0, to: 1, term: 99)))
        XCTAssertThrowsError(try r.step(Message(kind: .appendResponse, from: 77, to: 1, term: r.term, index: 1_000)))
        XCTAssertThrowsError(try r.step(Message(kind: .snapshot, from: 2, to: 1, term: r.term)))
        XCTAssertNoThrow(try r.step(Message(kind: .append, from: 2, to: 1, term: 0, logTerm: 5, index: 1_000_000)))
        XCTAssertNoThrow(try r.step(Message(kind: .appendResponse, from: 2, to: 1, term: r.term, index: UInt64.max - 1)))
        XCTAssertNoThrow(try r.step(Message(kind: .heartbeatResponse, from: 3, to: 1, term: r.term, context: [1, 2, 3])))
        XCTAssertEqual(before.0, r.term)
        XCTAssertEqual(before.1, r.log.lastIndex)
        net.nodes[1] = r
        // A follower given a commit beyond its log ignores it instead of crashing.
        var f = net.nodes[2]!
        XCTAssertNoThrow(try f.step(Message(kind: .heartbeat, from: 1, to: 2, term: f.term, commit: 10_000)))
        XCTAssertLessThanOrEqual(f.log.committed, f.log.lastIndex)
        _ = before.2
    }

    /// The persisted state is all a member needs: after a restart it rejoins and catches up.
    func testRestartFromPersistedState() throws {
        var net = electedNetwork()
        try net.propose(1, [1])
        net.deliverAll()
        net.restart(2)
        XCTAssertEqual(net.nodes[2]?.log.lastIndex, net.nodes[1]?.log.lastIndex)
        XCTAssertEqual(net.nodes[2]?.confState.voters, [1, 2, 3])
        try net.propose(1, [2])
        net.tickAll(2)
        XCTAssertEqual(net.applied[2]?.last?.data, [2])
    }
}
