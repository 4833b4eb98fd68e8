import ChainHashing
import Contracts
import Foundation
import GridProto
import GridCrypto
import Identity
import GridBase

/// A submission that passed every check that does not depend on chain state.
package struct ValidatedTransaction: Sendable {
    /// SHA-256 of the payload bytes.
    package let id: [UInt8]
    package let signed: SignedTransaction
    package let payload: TxPayload
    package let signer: PeerIdentity
    /// Encoded size of the signed transaction (for block size limits).
    package let byteSize: Int
}

/// Stateless admission checks of `Docs/wire-protocol.md` ("Chain services"): structure,
/// signer certificate and signature, payload, chain, role and district, limits. Each failure
/// is a `ChainError` with the documented status.
package struct TransactionValidator: Sendable {
    package let chainID: String
    package let verifier: SignerVerifier
    package let maxBatchReadings: Int
    /// Main chain or district chain: which payload kinds the chain takes.
    package var kind: ChainKind = .district
    /// A district's main chain (downlink transactions must come from it).
    package var mainChainID: String? = nil

    /// - Parameter now: the time certificates must be valid at, seconds since the epoch:
    ///   the wall clock when a transaction is admitted; the block's timestamp when a
    ///   committed block is re-verified, so replaying old blocks does not depend on today's
    ///   date (a certificate that expired since still verifies the blocks it signed then).
    package func validate(_ signed: SignedTransaction, now: Int64 = Int64(Date().timeIntervalSince1970)) throws(ChainError) -> ValidatedTransaction {
        guard !signed.payload.isEmpty else { throw ChainError(.invalidArgument, "transaction has no payload") }
        guard !signed.signature.isEmpty else { throw ChainError(.invalidArgument, "transaction has no signature") }
        guard !signed.signerCertificate.isEmpty else { throw ChainError(.invalidArgument, "transaction has no signer certificate") }
        let signer: PeerIdentity
        do {
            signer = try verifier.verify(certificateDER: signed.signerCertificate, signature: signed.signature, data: signed.payload, now: now)
        } catch {
            if case .malformedCertificate = error { throw ChainError(.invalidArgument, "\(error)") }
            throw ChainError(.unauthenticated, "\(error)")
        }
        let payload: TxPayload
        do {
            payload = try TxPayload(serializedBytes: signed.payload)
        } catch {
            throw ChainError(.invalidArgument, "payload is not a gridledger.TxPayload")
        }
        guard payload.chainId == chainID else {
            throw ChainError(.invalidArgument, "transaction is for chain \(Bounded.quote(payload.chainId)), this is chain '\(chainID)'")
        }
        switch payload.body {
        case nil:
            throw ChainError(.invalidArgument, "payload has no body")
        case .readings(let batch)?:
            try checkReadings(batch, signer: signer)
        case .districtRegistration(let registration)?:
            try requireKind(.main, "district registrations")
            try requireRole(signer, .admin, "register districts")
            try checkRegistration(registration, now: now)
        case .anchor(let anchor)?:
            try requireKind(.main, "anchors")
            try requireRole(signer, .node, "submit anchors")
            try checkAnchor(anchor, now: now)
        case .parameter(let parameter)?:
            try requireKind(.main, "district parameters")
            if case .activation? = parameter.body {
                try requireRole(signer, .admin, "activate contracts")
            } else {
                try requireRole(signer, .marketing, "submit district parameters")
            }
            guard Self.isValidMeterID(parameter.district) else { throw ChainError(.invalidArgument, "parameter names no valid district") }
            guard parameter.body != nil else { throw ChainError(.invalidArgument, "parameter has no body") }
        case .anchorReceipt(let receipt)?:
            try requireKind(.district, "anchor receipts")
            try requireOwnNode(signer, "record anchor receipts")
            guard receipt.fromHeight >= 1, receipt.toHeight >= receipt.fromHeight, receipt.toHeight - receipt.fromHeight < Self.maxAnchorRange else {
                throw ChainError(.invalidArgument, "receipt range \(receipt.fromHeight)...\(receipt.toHeight) is empty or longer than \(Self.maxAnchorRange) blocks")
            }
        case .downlink(let downlink)?:
            try requireKind(.district, "downlink transactions")
            try requireOwnNode(signer, "carry the downlink")
            try checkDownlink(downlink, now: now)
        case .chargeReceipts(let batch)?:
            try requireKind(.main, "charge receipts")
            try requireRole(signer, .marketing, "submit charge receipts")
            try checkReceipts(batch)
        case .bankPayments(let batch)?:
            try requireKind(.main, "bank payment records")
            try requireRole(signer, .bank, "submit bank payment records")
            try checkPayments(batch, signer: signer)
        case .accountingEntries(let batch)?:
            try requireKind(.main, "accounting entries")
            try requireRole(signer, .finance, "submit accounting entries")
            try checkEntries(batch)
        case .reconcile(let request)?:
            try requireKind(.main, "reconciliation requests")
            guard signer.role == .finance || signer.role == .admin else {
                throw ChainError(.permissionDenied, "role \(signer.role.rawValue) may not request a reconciliation (finance or admin only)")
            }
            try checkDate(request.date, "reconciliation request date")
        case .reconcileSettings(let settings)?:
            try requireKind(.main, "reconcile settings")
            try requireRole(signer, .admin, "set the reconciliation schedule")
            if let problem = ReconciliationSchedule.problem(settings) { throw ChainError(.invalidArgument, "reconcile settings: \(problem)") }
        case .commandAck(let ack)?:
            try requireKind(.district, "command acknowledgements")
            guard signer.role == .device else { throw ChainError(.permissionDenied, "role \(signer.role.rawValue) may not acknowledge commands (device only)") }
            guard signer.district == chainID else {
                throw ChainError(.permissionDenied, "device of district \(signer.district ?? "none") may not acknowledge commands of \(chainID)")
            }
            guard !ack.commandId.isEmpty else { throw ChainError(.invalidArgument, "acknowledgement names no command") }
        }
        return ValidatedTransaction(
            id: Digest.sha256(signed.payload), signed: signed, payload: payload, signer: signer,
            byteSize: signed.payload.count + signed.signature.count + signed.signerCertificate.count + 16)
    }

    /// The carrier rule of reading batches (Docs/wire-protocol.md, "Submitting"): a batch
    /// reaches the chain from the collector that signed it — the same key, not merely the
    /// same name — or from a node of this chain (`MemberBinding`: a follower forwarding to its
    /// leader, a node relaying). Nobody else may carry it: a collector of another district, or
    /// of the same one, cannot relay a collector's batch. The wire document states no carrier
    /// rule for the other kinds (their signer rules bind authorship), so they pass.
    package func checkCarrier(_ tx: ValidatedTransaction, carrier: PeerIdentity) throws(ChainError) {
        guard case .readings? = tx.payload.body else { return }
        if !carrier.publicKeySHA256.isEmpty, carrier.publicKeySHA256 == tx.signer.publicKeySHA256 { return }
        if kind.nodeMismatch(carrier, chainID: chainID) == nil { return }
        throw ChainError(.permissionDenied,
            "\(carrier.role.rawValue) \(carrier.name) (district \(carrier.district ?? "none")) may not submit a transaction signed by " +
            "\(tx.signer.role.rawValue) \(tx.signer.name) (district \(tx.signer.district ?? "none")): only the signer itself (same key) " +
            "or a node of chain \(chainID) may carry it")
    }

    /// Re-checks, at `now` (a block's time), the validity in time of every certificate the
    /// transaction relies on: the signer's, an anchor's signers', a registration's members',
    /// a downlink's original signer (at the main block's time).
    package func checkCertificateTimes(_ tx: ValidatedTransaction, now: Int64) throws(ChainError) {
        func check(_ der: [UInt8], at time: Int64) throws(ChainError) {
            do {
                _ = try verifier.identify(certificateDER: der, now: time)
            } catch {
                throw ChainError(.unauthenticated, "at the block's time: \(error)")
            }
        }
        try check(tx.signed.signerCertificate, at: now)
        switch tx.payload.body {
        case .anchor(let anchor)?:
            for s in anchor.signatures { try check(s.certificate, at: now) }
        case .districtRegistration(let registration)?:
            for der in registration.memberCertificates { try check(der, at: now) }
        default:
            break
        }
    }

    private func requireKind(_ wanted: ChainKind, _ what: String) throws(ChainError) {
        guard kind == wanted else {
            throw ChainError(.failedPrecondition, "\(what) belong on a \(wanted.rawValue) chain; \(chainID) is a \(kind.rawValue) chain")
        }
    }

    private func requireRole(_ signer: PeerIdentity, _ role: Role, _ what: String) throws(ChainError) {
        guard signer.role == role else {
            throw ChainError(.permissionDenied, "role \(signer.role.rawValue) may not \(what) (\(role.rawValue) only)")
        }
    }

    /// A node of this district (its certificate names the district).
    private func requireOwnNode(_ signer: PeerIdentity, _ what: String) throws(ChainError) {
        try requireRole(signer, .node, what)
        guard signer.district == chainID else {
            throw ChainError(.permissionDenied, "node \(signer.name) of district \(signer.district ?? "none") may not \(what) on \(chainID)")
        }
    }

    private func checkRegistration(_ registration: DistrictRegistration, now: Int64) throws(ChainError) {
        guard Self.isValidMeterID(registration.district) else { throw ChainError(.invalidArgument, "registration names no valid district") }
        guard !registration.memberCertificates.isEmpty, registration.memberCertificates.count <= 64 else {
            throw ChainError(.invalidArgument, "a district has 1 to 64 member certificates")
        }
        var seen = Set<[UInt8]>()
        for (i, der) in registration.memberCertificates.enumerated() {
            let member: PeerIdentity
            do {
                member = try verifier.identify(certificateDER: der, now: now)
            } catch {
                throw ChainError(.invalidArgument, "member certificate \(i): \(error)")
            }
            guard member.role == .node else { throw ChainError(.invalidArgument, "member certificate \(i) is a \(member.role.rawValue) certificate, not node") }
            guard member.district == registration.district else {
                throw ChainError(.invalidArgument, "member certificate \(i) (\(member.name)) is for district \(member.district ?? "none"), not \(registration.district)")
            }
            guard seen.insert(Digest.sha256(der)).inserted else { throw ChainError(.invalidArgument, "member certificate \(i) is listed twice") }
        }
    }

    /// Every signature must verify over the anchor digest with a node certificate of the
    /// anchor's district; membership and majority are checked against the registry when
    /// the anchor executes (BlockExecutor).
    private func checkAnchor(_ anchor: Anchor, now: Int64) throws(ChainError) {
        guard Self.isValidMeterID(anchor.district) else { throw ChainError(.invalidArgument, "anchor names no valid district") }
        guard anchor.fromHeight >= 1, anchor.toHeight >= anchor.fromHeight, anchor.toHeight - anchor.fromHeight < Self.maxAnchorRange else {
            throw ChainError(.invalidArgument, "anchor range \(anchor.fromHeight)...\(anchor.toHeight) is empty or longer than \(Self.maxAnchorRange) blocks")
        }
        guard !anchor.lastHeaderHash.isEmpty, anchor.lastHeaderHash.count <= 64, !anchor.headersRoot.isEmpty, anchor.headersRoot.count <= 64 else {
            throw ChainError(.invalidArgument, "anchor hashes are missing or too long")
        }
        guard !anchor.signatures.isEmpty, anchor.signatures.count <= 64 else { throw ChainError(.invalidArgument, "an anchor carries 1 to 64 signatures") }
        if !anchor.summary.isEmpty {
            guard (try? UplinkSummary(serializedBytes: anchor.summary)) != nil else { throw ChainError(.invalidArgument, "anchor summary is not a gridledger.UplinkSummary") }
        }
        let digest = AnchorDigest.of(anchor)
        for (i, signature) in anchor.signatures.enumerated() {
            let member: PeerIdentity
            do {
                member = try verifier.verify(certificateDER: signature.certificate, signature: signature.signature, data: digest, now: now)
            } catch {
                throw ChainError(.unauthenticated, "anchor signature \(i): \(error)")
            }
            guard member.role == .node, member.district == anchor.district else {
                throw ChainError(.permissionDenied, "anchor signature \(i) is by \(member.name) (\(member.role.rawValue), district \(member.district ?? "none")), not a node of \(anchor.district)")
            }
        }
    }

    private func checkDownlink(_ downlink: Downlink, now: Int64) throws(ChainError) {
        guard let mainChainID else { throw ChainError(.failedPrecondition, "chain \(chainID) has no main chain configured") }
        guard downlink.mainHeight >= 1 else { throw ChainError(.invalidArgument, "downlink names no main-chain height") }
        guard (downlink.mainHeight, downlink.mainIndex) > (downlink.afterHeight, downlink.afterIndex) else {
            throw ChainError(.invalidArgument, "downlink position \(downlink.mainHeight)/\(downlink.mainIndex) is not after its predecessor \(downlink.afterHeight)/\(downlink.afterIndex)")
        }
        let original: SignedTransaction
        let payload: TxPayload
        let signer: PeerIdentity
        do {
            original = try SignedTransaction(serializedBytes: downlink.original)
            payload = try TxPayload(serializedBytes: original.payload)
        } catch {
            throw ChainError(.invalidArgument, "downlink does not carry a gridledger.SignedTransaction")
        }
        do {
            // At the time the main chain took it: a marketing certificate that expired since
            // must not stall the downlink.
            signer = try verifier.verify(certificateDER: original.signerCertificate, signature: original.signature, data: original.payload,
                                         now: downlink.mainTimestampMs > 0 ? downlink.mainTimestampMs / 1000 : now)
        } catch {
            throw ChainError(.unauthenticated, "downlinked transaction: \(error)")
        }
        guard payload.chainId == mainChainID else { throw ChainError(.invalidArgument, "downlinked transaction is for chain \(Bounded.quote(payload.chainId)), not the main chain \(mainChainID)") }
        guard case .parameter(let parameter)? = payload.body, parameter.district == chainID else {
            throw ChainError(.invalidArgument, "downlinked transaction is not a parameter for district \(chainID)")
        }
        if case .activation? = parameter.body {
            guard signer.role == .admin else { throw ChainError(.permissionDenied, "downlinked activation is not signed by an admin") }
        } else {
            guard signer.role == .marketing else { throw ChainError(.permissionDenied, "downlinked parameter is not signed by marketing") }
        }
    }

    private func checkReadings(_ batch: ReadingBatch, signer: PeerIdentity) throws(ChainError) {
        guard signer.role == .collector else {
            throw ChainError(.permissionDenied, "role \(signer.role.rawValue) may not submit readings (collector only)")
        }
        guard let district = signer.district else {
            throw ChainError(.permissionDenied, "collector \(signer.name) has no district in its certificate")
        }
        guard batch.district == district else {
            throw ChainError(.permissionDenied, "collector of district \(district) may not submit readings for district \(Bounded.quote(batch.district))")
        }
        guard district == chainID else {
            throw ChainError(.permissionDenied, "collector of district \(district) may not submit to chain \(chainID)")
        }
        guard !batch.readings.isEmpty else { throw ChainError(.invalidArgument, "reading batch is empty") }
        guard batch.readings.count <= maxBatchReadings else {
            throw ChainError(.resourceExhausted, "batch of \(batch.readings.count) readings exceeds the limit of \(maxBatchReadings)")
        }
        for (i, r) in batch.readings.enumerated() {
            guard Self.isValidMeterID(r.meterId) else {
                throw ChainError(.invalidArgument, "reading \(i): meter id \(Bounded.quote(r.meterId)) is not [A-Za-z0-9._-]{1,64}")
            }
            guard r.timestampMs > 0, r.timestampMs < 100_000_000_000_000 else {
                throw ChainError(.invalidArgument, "reading \(i): timestamp \(r.timestampMs) out of range")
            }
            guard r.voltageDv.count <= 3, r.currentMa.count <= 3 else {
                throw ChainError(.invalidArgument, "reading \(i): more than 3 phases")
            }
        }
    }

    // MARK: Reconciliation records (Docs/reconciliation.md, "Records")

    /// Most records in one reconciliation batch.
    package static let maxReconciliationRecords = 10_000
    /// Largest amount of one record, fen (10^15: ten trillion yuan).
    package static let maxRecordAmountFen: Int64 = 1_000_000_000_000_000

    private func checkBatchSize(_ count: Int, _ id: String, _ what: String) throws(ChainError) {
        guard id.isEmpty || Self.isValidMeterID(id) else { throw ChainError(.invalidArgument, "\(what) batch id \(Bounded.quote(id)) is not [A-Za-z0-9._-]{1,64}") }
        guard count > 0 else { throw ChainError(.invalidArgument, "\(what) batch is empty") }
        guard count <= Self.maxReconciliationRecords else {
            throw ChainError(.resourceExhausted, "batch of \(count) \(what) exceeds the limit of \(Self.maxReconciliationRecords)")
        }
    }

    private func checkID(_ id: String, _ what: String) throws(ChainError) {
        guard Self.isValidMeterID(id) else { throw ChainError(.invalidArgument, "\(what) \(Bounded.quote(id)) is not [A-Za-z0-9._-]{1,64}") }
    }

    private func checkDate(_ date: UInt32, _ what: String) throws(ChainError) {
        guard Reconciliation.isValidDate(date) else { throw ChainError(.invalidArgument, "\(what) \(date) is not a calendar date YYYYMMDD in 1970…9999") }
    }

    private func checkAmount(_ amount: Int64, _ what: String) throws(ChainError) {
        guard amount != 0, amount.magnitude <= UInt64(Self.maxRecordAmountFen) else {
            throw ChainError(.invalidArgument, "\(what) amount \(amount) fen is zero or beyond ±10^15")
        }
    }

    private func checkReceipts(_ batch: ChargeReceiptBatch) throws(ChainError) {
        try checkBatchSize(batch.receipts.count, batch.batchId, "charge receipts")
        for (i, r) in batch.receipts.enumerated() {
            try checkID(r.serial, "receipt \(i): serial")
            try checkID(r.customerAccount, "receipt \(i): customer account")
            try checkID(r.bankAccount, "receipt \(i): bank account")
            try checkDate(r.workingDate, "receipt \(i): working date")
            try checkAmount(r.amountFen, "receipt \(i):")
            guard r.timeMs >= 0, r.timeMs < 100_000_000_000_000 else { throw ChainError(.invalidArgument, "receipt \(i): time \(r.timeMs) out of range") }
            if r.reversesSerial.isEmpty {
                guard r.amountFen > 0 else { throw ChainError(.invalidArgument, "receipt \(i): a negative amount is a reversal and must name the serial it reverses") }
            } else {
                try checkID(r.reversesSerial, "receipt \(i): reversed serial")
                guard r.amountFen < 0 else { throw ChainError(.invalidArgument, "receipt \(i): a reversal has a negative amount") }
                guard r.reversesSerial != r.serial else { throw ChainError(.invalidArgument, "receipt \(i): a reversal cannot reverse itself") }
            }
        }
    }

    private func checkPayments(_ batch: BankPaymentBatch, signer: PeerIdentity) throws(ChainError) {
        guard batch.bank == signer.name else {
            throw ChainError(.permissionDenied, "bank \(signer.name) may not submit payment records as bank \(Bounded.quote(batch.bank))")
        }
        try checkID(batch.bank, "bank name")
        try checkBatchSize(batch.payments.count, batch.batchId, "bank payment records")
        for (i, p) in batch.payments.enumerated() {
            try checkID(p.serial, "payment \(i): serial")
            if !p.marketingSerial.isEmpty { try checkID(p.marketingSerial, "payment \(i): marketing serial") }
            try checkID(p.customerAccount, "payment \(i): customer account")
            try checkID(p.bankAccount, "payment \(i): bank account")
            try checkDate(p.valueDate, "payment \(i): value date")
            try checkAmount(p.amountFen, "payment \(i):")
            guard p.amountFen > 0 else { throw ChainError(.invalidArgument, "payment \(i): amount must be positive (a reversal has status reversed)") }
            guard p.status == .success || p.status == .reversed else {
                throw ChainError(.invalidArgument, "payment \(i): status must be success or reversed")
            }
        }
    }

    private func checkEntries(_ batch: AccountingEntryBatch) throws(ChainError) {
        try checkBatchSize(batch.entries.count, batch.batchId, "accounting entries")
        for (i, e) in batch.entries.enumerated() {
            try checkID(e.voucherId, "entry \(i): voucher id")
            try checkID(e.bankAccount, "entry \(i): bank account")
            try checkDate(e.workingDate, "entry \(i): working date")
            try checkDate(e.collectionDate, "entry \(i): collection date")
            try checkAmount(e.amountFen, "entry \(i):")
            guard e.collectionDate <= e.workingDate else {
                throw ChainError(.invalidArgument, "entry \(i): collection date \(e.collectionDate) is after the working date \(e.workingDate)")
            }
        }
    }

    /// Longest range one anchor (and its receipt) may cover, in blocks.
    package static let maxAnchorRange: UInt64 = 10_000

    package static func isValidMeterID(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= 64 && utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }
}
