import Chain
import ChainHashing
import Contracts
import Foundation
import GridBase
import GridClient
import GridProto
import GridTLS
import GridCrypto
import Logging
import NIOCore
import Synchronization
import Wire

/// Cross-chain synchronisation of one district chain with its main chain
/// (Docs/anchoring.md): on the district leader, a loop that
/// 1. records the main chain's receipts for anchors that have none yet on the district,
/// 2. anchors the next range when `anchor_every_blocks` blocks or `anchor_every_ms` have
///    piled up, signed by a majority of the district's members (`Anchor.Sign`),
/// 3. takes the main chain's parameters addressed to this district, in main-chain order,
///    as `Downlink` transactions (the district's cursor makes it exactly once).
/// Every member answers `Anchor.Sign` for headers it has itself applied.
///
/// Every step reads where it stands from the two chains' state, so the loop is idempotent:
/// after either side was down, or a leader change, it resumes where the chains are.
/// Thread safety: the loop runs in one task; `sign`, `decorate` may be called from any task.
final class ChainSync: Sendable {
    let ledger: Ledger
    let link: NodeConfiguration.Chain.MainChainLink
    private let keyPair: CertificateKeyPair
    private let signer: TransactionSigner
    /// The district's members other than this node; their servers must be bound to them
    /// (`MemberBinding`) before they are asked to sign.
    private let peers: @Sendable () -> [NodeConfiguration.Chain.Member]
    private let isLeader: @Sendable () -> Bool
    private let tls: TLSContext
    private let group: EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        var mainClient: RPCClient?
        var endpoint = 0
        var peerClients: [String: RPCClient] = [:]
        var lastError = ""
        var lastErrorLogged: ContinuousClock.Instant?
        /// Main height the downlink has scanned (in memory: after a restart it rescans from the cursor).
        var scanned: UInt64 = 0
    }

    var district: String { ledger.chainID }

    init(ledger: Ledger, link: NodeConfiguration.Chain.MainChainLink, certificatePath: String, keyPath: String,
         peers: @escaping @Sendable () -> [NodeConfiguration.Chain.Member], isLeader: @escaping @Sendable () -> Bool,
         tls: TLSContext, group: EventLoopGroup, logger: Logger) throws {
        self.ledger = ledger
        self.link = link
        keyPair = try CertificateKeyPair(certificatePath: certificatePath, privateKeyPath: keyPath)
        signer = try TransactionSigner(certificatePath: certificatePath, keyPath: keyPath)
        self.peers = peers
        self.isLeader = isLeader
        self.tls = tls
        self.group = group
        self.logger = logger
    }

    func start() {
        task.withLock { t in
            guard t == nil else { return }
            t = Task { await self.run() }
        }
    }

    func stop() async {
        let running = task.withLock { t in defer { t = nil }; return t }
        running?.cancel()
        await running?.value
        let clients = state.withLock { s in
            defer { s.mainClient = nil; s.peerClients = [:] }
            return [s.mainClient].compactMap { $0 } + Array(s.peerClients.values)
        }
        for client in clients { await client.close() }
    }

    private func run() async {
        while !Task.isCancelled {
            var busy = false
            if isLeader() {
                do {
                    busy = try await step()
                    state.withLock { $0.lastError = "" }
                } catch is CancellationError {
                    return
                } catch {
                    record(error)
                }
            }
            try? await Task.sleep(for: busy ? .milliseconds(10) : .milliseconds(200))
        }
    }

    /// One round; true when there is more to do right away.
    private func step() async throws -> Bool {
        let main = try await mainClient()
        var busy = try await recordReceipts(main)
        busy = try await anchorIfDue(main) || busy
        if link.downlink { busy = try await pullDownlink(main) || busy }
        return busy
    }

    private func record(_ error: Error) {
        let message = "\(error)"
        let log = state.withLock { s -> Bool in
            s.lastError = message
            // A broken connection is dialled again next round.
            if let rpc = error as? RPCError, rpc.code == .unavailable || rpc.code == .deadlineExceeded { s.mainClient = nil }
            if !(error is RPCError) { s.mainClient = nil }
            let now = ContinuousClock.now
            if let last = s.lastErrorLogged, now - last < .seconds(10) { return false }
            s.lastErrorLogged = now
            return true
        }
        if log { logger.warning("main-chain sync failing; retrying", metadata: ["chain": "\(district)", "error": "\(message)"]) }
    }

    // MARK: Receipts

    /// Records, on the district, the main chain's receipt of every anchor that has none.
    private func recordReceipts(_ main: ChainClient) async throws -> Bool {
        var recorded = false
        while true {
            let last = try lastReceipt()
            let from = (last?.toHeight ?? 0) + 1
            let found = try await main.state(AnchorKeys.anchor(district, from: from), chain: link.id, consistency: .linearizable)
            guard found.found, let record = AnchorRecord(bytes: found.value), let version = found.version else { return recorded }
            guard let own = try ledger.blockHash(at: record.to) else {
                throw RPCError(.unavailable, "main chain anchors \(district) up to \(record.to); this replica has not applied it yet")
            }
            guard own == record.lastHeaderHash else {
                throw RPCError(.dataLoss, "main chain anchors \(district) block \(record.to) with a hash this replica does not have")
            }
            let block = try await main.block(at: version.height, chain: link.id)
            guard let tx = block.block?.transactions.dropFirst(Int(version.txIndex)).first else {
                throw RPCError(.dataLoss, "main block \(version.height) has no transaction \(version.txIndex)")
            }
            try await recordReceipt(AnchorReceipt(
                fromHeight: record.from, toHeight: record.to, mainHeight: version.height, mainIndex: version.txIndex,
                anchorTxId: Digest.sha256(tx.payload), mainBlockHash: block.hash), rediscovered: true)
            recorded = true
        }
    }

    /// Records `receipt` on the district (a receipt already recorded is fine).
    private func recordReceipt(_ receipt: AnchorReceipt, rediscovered: Bool) async throws {
        if let outcome = try await submitLocal(.anchorReceipt(receipt)), outcome.code != StatusCode.ok.rawValue, outcome.code != StatusCode.alreadyExists.rawValue {
            throw RPCError(.failedPrecondition, "receipt \(receipt.fromHeight)...\(receipt.toHeight) refused: \(outcome.message)")
        }
        logger.info("anchor receipt recorded", metadata: [
            "chain": "\(district)", "range": "\(receipt.fromHeight)...\(receipt.toHeight)", "main_height": "\(receipt.mainHeight)",
            "from": "\(rediscovered ? "main-chain state (resuming)" : "the main chain's answer")",
        ])
    }

    // MARK: Anchors

    private func anchorIfDue(_ main: ChainClient) async throws -> Bool {
        guard let head = ledger.reader.head?.height else { return false }
        let anchored = try lastReceipt()?.toHeight ?? 0
        guard head > anchored else { return false }
        let to = min(head, anchored + UInt64(link.maxAnchorBlocks))
        if head - anchored < UInt64(link.anchorEveryBlocks) {
            guard let age = try oldestSubstantialAge(after: anchored, upTo: head), age >= Int64(link.anchorEveryMs) else { return false }
        }
        let range = try AnchorRange.compute(ledger: ledger, from: anchored + 1, to: to)
        let digest = range.digest(district: district)
        // Only signatures the main chain will count: by registered members, verifying.
        let registered = try await registeredMembers(main)
        var signatures: [AnchorSignature] = []
        if registered.contains(Digest.sha256(keyPair.certificateDER)) {
            signatures.append(AnchorSignature(certificate: keyPair.certificateDER, signature: try keyPair.sign(digest)))
        }
        let needed = registered.count / 2 + 1
        if signatures.count < needed {
            for s in await collectSignatures(range, from: peers()) where registered.contains(Digest.sha256(s.certificate)) {
                guard !signatures.contains(where: { $0.certificate == s.certificate }),
                      (try? CertificateKeyPair.verify(signature: s.signature, data: digest, certificateDER: s.certificate)) == true else { continue }
                signatures.append(s)
            }
        }
        guard signatures.count >= needed else {
            throw RPCError(.unavailable, "anchor \(range.from)...\(range.to): \(signatures.count) of \(registered.count) registered members signed; \(needed) needed")
        }
        let anchor = Anchor(
            district: district, fromHeight: range.from, toHeight: range.to, lastHeaderHash: range.lastHeaderHash,
            headersRoot: range.headersRoot, hashSuite: ledger.hashing.suite.rawValue, summary: range.summary, signatures: signatures)
        let tx = try signer.sign(payload(.anchor(anchor), chain: link.id))
        do {
            let response = try await main.submit(tx, chain: link.id)
            logger.info("anchored", metadata: [
                "chain": "\(district)", "range": "\(range.from)...\(range.to)", "signatures": "\(signatures.count)",
                "main_height": "\(response.location?.height ?? 0)",
            ])
            // The normal path: the receipt comes from the main chain's answer (its block, index
            // and hash). Only after a failure or a restart does the receipt step rediscover it
            // from the main chain's state.
            if let location = response.location, response.outcome?.code == StatusCode.ok.rawValue,
                location.txId == Digest.sha256(tx.payload), !location.blockHash.isEmpty
            {
                try await recordReceipt(AnchorReceipt(
                    fromHeight: range.from, toHeight: range.to, mainHeight: location.height, mainIndex: location.index,
                    anchorTxId: location.txId, mainBlockHash: location.blockHash), rediscovered: false)
            }
        } catch let error as RPCError where error.code == .alreadyExists {
            // A previous leader (or this node before a crash) anchored it: the receipt step records it.
        }
        return true
    }

    /// The receipt of the newest anchored range on this district (nil before the first).
    func lastReceipt() throws -> AnchorReceipt? {
        try ledger.reader.state(AnchorKeys.lastReceipt).flatMap { try? AnchorReceipt(serializedBytes: $0.value) }
    }

    /// Fingerprints (SHA-256 of the DER) of the district's members as the main chain has
    /// them registered.
    private func registeredMembers(_ main: ChainClient) async throws -> Set<[UInt8]> {
        let entry = try await main.state(AnchorKeys.district(district), chain: link.id)
        guard entry.found, let registration = try? DistrictRegistration(serializedBytes: entry.value) else {
            throw RPCError(.failedPrecondition, "district \(district) is not registered on main chain \(link.id)")
        }
        return Set(registration.memberCertificates.map { Digest.sha256($0) })
    }

    /// Age in ms of the oldest block after `anchored` that holds more than anchor receipts
    /// (receipt-only blocks wait for the next anchor instead of triggering one each).
    private func oldestSubstantialAge(after anchored: UInt64, upTo head: UInt64) throws -> Int64? {
        var found: Int64?
        try ledger.reader.blocks(from: anchored + 1, to: min(head, anchored + 64) + 1) { _, bytes in
            let block = try Block(serializedBytes: bytes)
            let onlyReceipts = block.transactions.allSatisfy { tx in
                if case .anchorReceipt? = (try? TxPayload(serializedBytes: tx.payload))?.body { return true }
                return false
            }
            if !onlyReceipts, let header = block.header {
                found = header.timestampMs
                return false
            }
            return true
        }
        return found.map { Int64(Date().timeIntervalSince1970 * 1000) - $0 }
    }

    private func collectSignatures(_ range: AnchorRange, from peers: [NodeConfiguration.Chain.Member]) async -> [AnchorSignature] {
        let request = AnchorSignRequest(
            chainId: district, fromHeight: range.from, toHeight: range.to, lastHeaderHash: range.lastHeaderHash,
            headersRoot: range.headersRoot, summary: range.summary)
        return await withTaskGroup(of: AnchorSignature?.self) { group in
            for peer in peers {
                group.addTask {
                    do {
                        let client = try await self.peerClient(peer)
                        let response = try await ChainClient(client).signAnchor(request, timeout: .seconds(5))
                        return response.signature
                    } catch {
                        self.state.withLock { _ = $0.peerClients.removeValue(forKey: peer.name) }
                        self.logger.debug("anchor signature not obtained", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
                        return nil
                    }
                }
            }
            var out: [AnchorSignature] = []
            for await signature in group { if let signature { out.append(signature) } }
            return out
        }
    }

    /// Member side of `Anchor.Sign`: signs the range only when this replica's own blocks
    /// give the same hashes and summary.
    func sign(_ request: AnchorSignRequest) throws -> AnchorSignResponse {
        guard request.fromHeight >= 1, request.toHeight >= request.fromHeight, request.toHeight - request.fromHeight < TransactionValidator.maxAnchorRange else {
            throw RPCError(.invalidArgument, "anchor range \(request.fromHeight)...\(request.toHeight) is not valid")
        }
        let head = ledger.reader.head?.height ?? 0
        guard request.toHeight <= head else {
            throw RPCError(.failedPrecondition, "this replica has applied up to \(head), not \(request.toHeight)")
        }
        let range = try AnchorRange.compute(ledger: ledger, from: request.fromHeight, to: request.toHeight)
        guard range.lastHeaderHash == request.lastHeaderHash, range.headersRoot == request.headersRoot else {
            logger.error("anchor request differs from this replica's blocks", metadata: ["chain": "\(district)", "range": "\(request.fromHeight)...\(request.toHeight)"])
            throw RPCError(.failedPrecondition, "headers \(request.fromHeight)...\(request.toHeight) differ from this replica's")
        }
        guard range.summary == request.summary else {
            throw RPCError(.failedPrecondition, "uplink summary of \(request.fromHeight)...\(request.toHeight) differs from this replica's")
        }
        return AnchorSignResponse(signature: AnchorSignature(certificate: keyPair.certificateDER, signature: try keyPair.sign(range.digest(district: district))))
    }

    // MARK: Downlink

    /// Takes main-chain parameters addressed to this district after the cursor, in order.
    private func pullDownlink(_ main: ChainClient) async throws -> Bool {
        let cursor = try ledger.reader.state(AnchorKeys.downlinkCursor).flatMap { DownlinkCursor(bytes: $0.value) } ?? DownlinkCursor(height: 0, index: 0)
        let mainHead = try await main.chainInfo(chain: link.id).height
        var height = max(cursor.height, state.withLock { $0.scanned } + 1, 1)
        guard height <= mainHead else { return false }
        let stop = min(mainHead, height + 255)
        var taken: [SignedTransaction] = []
        var last = cursor
        while height <= stop, taken.count < 500 {
            let response = try await main.block(at: height, chain: link.id)
            guard let block = response.block else { throw RPCError(.dataLoss, "main chain returned no block \(height)") }
            for (i, tx) in block.transactions.enumerated() {
                let position = DownlinkCursor(height: height, index: UInt32(i))
                guard position > cursor, i < block.outcomes.count, block.outcomes[i].code == StatusCode.ok.rawValue,
                      case .parameter(let parameter)? = (try? TxPayload(serializedBytes: tx.payload))?.body,
                      parameter.district == district else { continue }
                // Each names its predecessor, so the chain takes them in this order or not at all.
                let downlink = Downlink(
                    mainHeight: height, mainIndex: UInt32(i), original: tx.serializedBytes(),
                    mainTimestampMs: block.header?.timestampMs ?? 0, afterHeight: last.height, afterIndex: last.index)
                taken.append(try signer.sign(payload(.downlink(downlink), chain: district)))
                last = position
            }
            height += 1
        }
        if !taken.isEmpty {
            for result in await ledger.submitInOrder(taken).map({ $0.mapError(RPCError.answering) }) {
                switch result {
                case .failure(let error) where (error as? RPCError)?.code != .alreadyExists:
                    throw error
                case .success(let response) where response.outcome?.code == StatusCode.aborted.rawValue:
                    // A predecessor did not land: rescan from the cursor next round.
                    throw RPCError(.aborted, "downlink out of step: \(response.outcome?.message ?? "")")
                default:
                    break
                }
            }
            logger.info("downlink taken", metadata: ["chain": "\(district)", "transactions": "\(taken.count)", "main_position": "\(last.height)/\(last.index)"])
        }
        state.withLock { $0.scanned = height - 1 }
        return height <= mainHead
    }

    // MARK: Plumbing

    private func payload(_ body: TxPayload.Body, chain: String) -> TxPayload {
        signer.payload(chainID: chain, body: body)
    }

    /// Submits a district transaction (this node is the leader, so it queues locally);
    /// returns its outcome (nil when it was already on the chain).
    @discardableResult
    private func submitLocal(_ body: TxPayload.Body) async throws -> TxOutcome? {
        do {
            return try await answeringChainErrors { try await ledger.submit(try signer.sign(payload(body, chain: district))).outcome }
        } catch let error as RPCError where error.code == .alreadyExists {
            return nil
        }
    }

    private func mainClient() async throws -> ChainClient {
        if let client = state.withLock({ $0.mainClient }), client.channel.isActive { return ChainClient(client) }
        var failures: [String] = []
        let start = state.withLock { $0.endpoint }
        for k in 0..<link.endpoints.count {
            let endpoint = link.endpoints[(start + k) % link.endpoints.count]
            do {
                let (host, port) = try HostPort.parse(endpoint)
                let client = try await GridConnection.connect(host: host, port: port, tls: tls, serverName: host, group: group, connectTimeout: .seconds(2), logger: logger)
                // A main-chain node: role node, no district (`MemberBinding`), not any party of the CA.
                if let refusal = MemberBinding(chainID: link.id, kind: .main).nodeMismatch(client.serverIdentity) {
                    await client.close()
                    throw RPCError(.permissionDenied, "\(client.serverIdentity.name) is not a main-chain node: \(refusal)")
                }
                state.withLock { $0.mainClient = client; $0.endpoint = (start + k) % link.endpoints.count }
                return ChainClient(client)
            } catch {
                failures.append("\(endpoint): \(error)")
            }
        }
        state.withLock { $0.endpoint = ($0.endpoint + 1) % max(1, link.endpoints.count) }
        throw RPCError(.unavailable, "no main-chain node reachable (\(failures.joined(separator: "; ")))")
    }

    private func peerClient(_ peer: NodeConfiguration.Chain.Member) async throws -> RPCClient {
        if let client = state.withLock({ $0.peerClients[peer.name] }), client.channel.isActive { return client }
        let (host, port) = try HostPort.parse(peer.address)
        let client = try await GridConnection.connect(host: host, port: port, tls: tls, serverName: host, group: group, connectTimeout: .seconds(2), logger: logger)
        if let refusal = MemberBinding(chainID: district, kind: .district).mismatch(client.serverIdentity, peer) {
            await client.close()
            throw RPCError(.unavailable, "\(peer.address) is not member \(peer.id) (\(peer.name)): \(refusal)")
        }
        state.withLock { $0.peerClients[peer.name] = client }
        return client
    }

    /// Anchor lag, downlink cursor and the last sync error, for `Ops.GetStatus`.
    func decorate(_ status: inout ChainStatus) {
        let recorded = (try? lastReceipt())??.toHeight ?? 0
        // One view: the head the status already reports (a receipt committed since then may
        // name a later height).
        let head = status.height
        let anchored = min(recorded, head)
        status.anchoredHeight = anchored
        status.anchorLagBlocks = head > anchored ? head - anchored : 0
        if head > anchored, let block = try? ledger.reader.block(at: anchored + 1), let header = block.header {
            status.anchorLagMs = UInt64(max(0, Int64(Date().timeIntervalSince1970 * 1000) - header.timestampMs))
        }
        status.downlinkMainHeight = (try? ledger.reader.state(AnchorKeys.downlinkCursor)).flatMap { $0 }.flatMap { DownlinkCursor(bytes: $0.value) }?.height ?? 0
        status.syncError = state.withLock { $0.lastError }
    }
}

extension ChainSync {
    /// A proof from district block `height` up to the main-chain block holding its anchor
    /// (Docs/anchoring.md, "Proofs"). NOT_FOUND while the block is not anchored yet.
    func prove(height: UInt64) async throws -> BlockProof {
        guard height >= 1 else { throw RPCError(.invalidArgument, "the genesis block is not anchored; ask for height 1 or more") }
        guard let entry = try ledger.reader.states(prefix: AnchorKeys.receiptPrefix, from: AnchorKeys.receipt(to: height), limit: 1).first,
              let receipt = try? AnchorReceipt(serializedBytes: entry.value), receipt.fromHeight <= height, height <= receipt.toHeight else {
            let anchored = try lastReceipt()?.toHeight ?? 0
            throw RPCError(.notFound, "block \(height) of \(district) is not anchored yet (anchored up to \(anchored))")
        }
        guard let block = try ledger.reader.block(at: height), let header = block.header else {
            throw RPCError(.notFound, "no block at height \(height)")
        }
        let range = try AnchorRange.compute(ledger: ledger, from: receipt.fromHeight, to: receipt.toHeight)
        let main = try await mainClient()
        let mainBlock = try await main.block(at: receipt.mainHeight, chain: link.id)
        guard let mainHeader = mainBlock.block?.header, let transactions = mainBlock.block?.transactions,
              Int(receipt.mainIndex) < transactions.count, let mainHashing = ChainHashing.of(mainHeader) else {
            throw RPCError(.dataLoss, "main block \(receipt.mainHeight) does not hold the anchor the receipt names")
        }
        let ids = transactions.map { Digest.sha256($0.payload) }
        let index = Int(receipt.mainIndex)
        guard ids[index] == receipt.anchorTxId, let outcomes = mainBlock.block?.outcomes, outcomes.count == ids.count else {
            throw RPCError(.dataLoss, "main block \(receipt.mainHeight) index \(receipt.mainIndex) is not the anchor the receipt names")
        }
        let proof = BlockProof(
            district: district, height: height, header: header.serializedBytes(),
            headerPath: ledger.hashing.merklePath(range.headerHashes, index: Int(height - receipt.fromHeight)),
            anchorTransaction: transactions[index].serializedBytes(),
            txPath: mainHashing.merklePath(ids, index: index),
            mainHeader: mainHeader.serializedBytes(), mainIndex: receipt.mainIndex,
            anchorOutcome: outcomes[index].serializedBytes(),
            outcomePath: mainHashing.merklePath(outcomes.map { mainHashing.hash($0.serializedBytes()) }, index: index))
        if case .failure(let error) = ProofVerifier.verify(proof) {
            logger.error("this replica's block does not match its anchor", metadata: ["chain": "\(district)", "height": "\(height)", "error": "\(error)"])
        }
        return proof
    }
}
