import GridProto
import GridTLS
import Wire

/// A submission that passed every check that does not depend on chain state.
struct ValidatedTransaction: Sendable {
    /// SHA-256 of the payload bytes.
    let id: [UInt8]
    let signed: SignedTransaction
    let payload: TxPayload
    let signer: PeerIdentity
    /// Encoded size of the signed transaction (for block size limits).
    let byteSize: Int
}

/// Stateless admission checks of `Docs/wire-protocol.md` ("Chain services"): structure,
/// signer certificate and signature, payload, chain, role and district, limits. Each failure
/// is an `RPCError` with the documented status.
struct TransactionValidator: Sendable {
    let chainID: String
    let verifier: SignerVerifier
    let maxBatchReadings: Int

    func validate(_ signed: SignedTransaction) throws(RPCError) -> ValidatedTransaction {
        guard !signed.payload.isEmpty else { throw RPCError(.invalidArgument, "transaction has no payload") }
        guard !signed.signature.isEmpty else { throw RPCError(.invalidArgument, "transaction has no signature") }
        guard !signed.signerCertificate.isEmpty else { throw RPCError(.invalidArgument, "transaction has no signer certificate") }
        let signer: PeerIdentity
        do {
            signer = try verifier.verify(certificateDER: signed.signerCertificate, signature: signed.signature, data: signed.payload)
        } catch {
            if case .malformedCertificate = error { throw RPCError(.invalidArgument, "\(error)") }
            throw RPCError(.unauthenticated, "\(error)")
        }
        let payload: TxPayload
        do {
            payload = try TxPayload(serializedBytes: signed.payload)
        } catch {
            throw RPCError(.invalidArgument, "payload is not a gridledger.TxPayload")
        }
        guard payload.chainId == chainID else {
            throw RPCError(.invalidArgument, "transaction is for chain '\(payload.chainId)', this is chain '\(chainID)'")
        }
        switch payload.body {
        case nil:
            throw RPCError(.invalidArgument, "payload has no body")
        case .readings(let batch)?:
            try checkReadings(batch, signer: signer)
        }
        return ValidatedTransaction(
            id: Digest.sha256(signed.payload), signed: signed, payload: payload, signer: signer,
            byteSize: signed.payload.count + signed.signature.count + signed.signerCertificate.count + 16)
    }

    private func checkReadings(_ batch: ReadingBatch, signer: PeerIdentity) throws(RPCError) {
        guard signer.role == .collector else {
            throw RPCError(.permissionDenied, "role \(signer.role.rawValue) may not submit readings (collector only)")
        }
        guard let district = signer.district else {
            throw RPCError(.permissionDenied, "collector \(signer.name) has no district in its certificate")
        }
        guard batch.district == district else {
            throw RPCError(.permissionDenied, "collector of district \(district) may not submit readings for district '\(batch.district)'")
        }
        guard district == chainID else {
            throw RPCError(.permissionDenied, "collector of district \(district) may not submit to chain \(chainID)")
        }
        guard !batch.readings.isEmpty else { throw RPCError(.invalidArgument, "reading batch is empty") }
        guard batch.readings.count <= maxBatchReadings else {
            throw RPCError(.resourceExhausted, "batch of \(batch.readings.count) readings exceeds the limit of \(maxBatchReadings)")
        }
        for (i, r) in batch.readings.enumerated() {
            guard Self.isValidMeterID(r.meterId) else {
                throw RPCError(.invalidArgument, "reading \(i): meter id '\(r.meterId)' is not [A-Za-z0-9._-]{1,64}")
            }
            guard r.timestampMs > 0, r.timestampMs < 100_000_000_000_000 else {
                throw RPCError(.invalidArgument, "reading \(i): timestamp \(r.timestampMs) out of range")
            }
            guard r.voltageDv.count <= 3, r.currentMa.count <= 3 else {
                throw RPCError(.invalidArgument, "reading \(i): more than 3 phases")
            }
        }
    }

    static func isValidMeterID(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= 64 && utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }
}
