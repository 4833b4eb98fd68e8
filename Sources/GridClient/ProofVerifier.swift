import ChainHashing
import GridBase
import GridProto
import GridCrypto

/// Offline verification of a `BlockProof` (Docs/anchoring.md, "Proofs"), as the C and
/// Python clients do it: recompute the district header hash, fold it up to the anchor's
/// headers root, fold the anchor's transaction id up to the main block's transaction root
/// and its outcome (code 0: accepted, so the main chain checked membership and majority)
/// up to the outcomes root, every path of exactly the shape of its leaf position, and
/// (with a CA) check that the member signatures verify.
///
/// Part of the client SDK: it needs no connection and no ledger, only the proof (fetch one
/// with `ChainClient.proveBlock`, or fetch and verify with `ChainClient.proveAndVerifyBlock`)
/// and, for the signatures, the deployment CA. Pure and thread-safe.
public enum ProofVerifier {
    /// What a proof that verifies establishes: district block `height` of `district`, with
    /// header hash `headerHash`, lies in the anchored range `anchorFrom...anchorTo`, whose
    /// anchor the main chain `mainChain` accepted in its block `mainHeight`.
    public struct Verified: Sendable, Equatable {
        public var district: String
        public var height: UInt64
        public var headerHash: [UInt8]
        public var anchorFrom: UInt64
        public var anchorTo: UInt64
        public var mainChain: String
        public var mainHeight: UInt64
        /// The header hash of main-chain block `mainHeight` (compare it with the main chain's).
        public var mainBlockHash: [UInt8]
        /// Anchor signatures that verified against the CA (0 without a CA).
        public var validSignatures: Int
    }

    /// Why a proof does not verify: the first check that failed, as a sentence.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Verifies `proof` offline. With `verifier` (the deployment CA), every anchor signature
    /// must also verify as a distinct node certificate of the anchor's district, and there
    /// must be at least one; without it signatures are not checked (the main chain's accepted
    /// outcome already says a majority signed). Never throws: the result says which.
    public static func verify(_ proof: BlockProof, verifier: SignerVerifier? = nil) -> Result<Verified, Failure> {
        guard let header = try? BlockHeader(serializedBytes: proof.header), let hashing = ChainHashing.of(header) else {
            return .failure(Failure("district header does not decode or names an unknown hash suite"))
        }
        guard header.chainId == proof.district, header.height == proof.height else {
            return .failure(Failure("header is block \(header.height) of \(header.chainId), the proof says \(proof.height) of \(proof.district)"))
        }
        guard let tx = try? SignedTransaction(serializedBytes: proof.anchorTransaction),
              let payload = try? TxPayload(serializedBytes: tx.payload), case .anchor(let anchor)? = payload.body else {
            return .failure(Failure("anchor transaction does not decode to an anchor"))
        }
        guard anchor.district == proof.district, anchor.fromHeight <= header.height, header.height <= anchor.toHeight else {
            return .failure(Failure("anchor covers \(anchor.district) \(anchor.fromHeight)...\(anchor.toHeight), not block \(header.height)"))
        }
        let headerHash = hashing.headerHash(header)
        guard hashing.hash(proof.header) == headerHash else {
            return .failure(Failure("header bytes are not in canonical form"))
        }
        guard hashing.pathFits(proof.headerPath, index: header.height - anchor.fromHeight, count: anchor.toHeight - anchor.fromHeight + 1) else {
            return .failure(Failure("the header path does not have the shape of block \(header.height) in \(anchor.fromHeight)...\(anchor.toHeight)"))
        }
        guard hashing.foldPath(leaf: headerHash, proof.headerPath) == anchor.headersRoot else {
            return .failure(Failure("district block \(header.height) does not fold to the anchored headers root"))
        }
        if header.height == anchor.toHeight, headerHash != anchor.lastHeaderHash {
            return .failure(Failure("last header hash of the anchor differs"))
        }
        guard let mainHeader = try? BlockHeader(serializedBytes: proof.mainHeader), let mainHashing = ChainHashing.of(mainHeader) else {
            return .failure(Failure("main header does not decode"))
        }
        guard mainHeader.chainId == payload.chainId else {
            return .failure(Failure("anchor is for chain \(payload.chainId), the main header is of \(mainHeader.chainId)"))
        }
        guard mainHashing.pathFits(proof.txPath, index: UInt64(proof.mainIndex), count: UInt64(mainHeader.txCount)),
              mainHashing.pathFits(proof.outcomePath, index: UInt64(proof.mainIndex), count: UInt64(mainHeader.txCount)) else {
            return .failure(Failure("a main-block path does not have the shape of transaction \(proof.mainIndex) of \(mainHeader.txCount)"))
        }
        guard mainHashing.foldPath(leaf: Digest.sha256(tx.payload), proof.txPath) == mainHeader.txRoot else {
            return .failure(Failure("anchor transaction does not fold to main block \(mainHeader.height)'s transaction root"))
        }
        guard let outcome = try? TxOutcome(serializedBytes: proof.anchorOutcome), !mainHeader.outcomesRoot.isEmpty,
              mainHashing.foldPath(leaf: mainHashing.hash(proof.anchorOutcome), proof.outcomePath) == mainHeader.outcomesRoot else {
            return .failure(Failure("the anchor's outcome does not fold to main block \(mainHeader.height)'s outcomes root"))
        }
        guard outcome.code == StatusCode.ok.rawValue else {
            return .failure(Failure("the main chain refused this anchor (code \(outcome.code): \(outcome.message))"))
        }
        var valid = 0
        if let verifier {
            let digest = AnchorDigest.of(anchor)
            var seen = Set<[UInt8]>()
            for signature in anchor.signatures {
                guard let who = try? verifier.verify(certificateDER: signature.certificate, signature: signature.signature, data: digest),
                      who.role == .node, who.district == anchor.district, seen.insert(Digest.sha256(signature.certificate)).inserted else {
                    return .failure(Failure("an anchor signature does not verify against the CA"))
                }
                valid += 1
            }
            guard valid >= 1 else { return .failure(Failure("anchor carries no signature")) }
        }
        return .success(Verified(
            district: proof.district, height: header.height, headerHash: headerHash, anchorFrom: anchor.fromHeight, anchorTo: anchor.toHeight,
            mainChain: mainHeader.chainId, mainHeight: mainHeader.height, mainBlockHash: mainHashing.headerHash(mainHeader), validSignatures: valid))
    }
}
