import GridBase
public import GridProto

/// The cross-chain contract (Docs/anchoring.md): the rules by which the main chain keeps its
/// district registry, anchors and parameters, and a district chain keeps its receipts and
/// takes the main chain's parameters down, in order. It sits beside the fee-control
/// contract (`FeeControl`); the block executor hands it the cross-chain payloads.
///
/// Main chain:
/// - a `DistrictRegistration` replaces the district's member certificates;
/// - a `DistrictParameter` is taken only for a registered district; each one advances the
///   district's parameter count and downlink digest (`DownlinkDigest`);
/// - an `Anchor` is taken when its signers are distinct registered members and more than half
///   of the registered set, its range starts right after the district's previous anchor
///   (the first at 1), and the downlink position it reports is one this chain gave the
///   district; it records the range and sums the district's uplink results.
///
/// District chain:
/// - an `AnchorReceipt` is taken only for the range right after the previous receipt;
/// - a `Downlink` is taken only right after its predecessor (the cursor), so no parameter is
///   ever skipped; it advances the cursor and the district's downlink digest and yields the
///   parameter for the fee-control contract to apply.
///
/// What this contract trusts the chain to have checked: the signatures (an anchor's member
/// signatures over the anchor digest, the signature of a downlinked transaction) and the
/// signers' roles are verified by the chain's transaction validator before a transaction is
/// queued or a block re-verified; this contract sees only verified transactions and judges
/// what depends on the world state. Contracts link no OpenSSL: the SHA-256 it needs (member
/// certificate fingerprints, the downlink digest) is passed in as `sha256`, GridCrypto's
/// `Digest.sha256` on every node.
///
/// Errors: a refused transaction throws `ContractRejection` (FAILED_PRECONDITION,
/// PERMISSION_DENIED, INVALID_ARGUMENT, ALREADY_EXISTS or ABORTED, with the reason); the
/// caller discards the transaction's writes. Deterministic: no clock, no randomness, no
/// iteration over unordered collections that reaches the state.
public struct CrossChain: Sendable {
    /// SHA-256 of a byte string (32 bytes).
    public let sha256: @Sendable ([UInt8]) -> [UInt8]

    public init(sha256: @escaping @Sendable ([UInt8]) -> [UInt8]) {
        self.sha256 = sha256
    }

    // MARK: Main chain

    /// `district/<id>` ← the registration (replacing an earlier set of members).
    public func registerDistrict<S: ContractState>(_ registration: DistrictRegistration, state: inout S) {
        state.set(AnchorKeys.district(registration.district), registration.serializedBytes())
    }

    /// One more parameter accepted for its district: the count and `DownlinkDigest` advance.
    /// - Throws: FAILED_PRECONDITION when the district is not registered.
    public func acceptParameter<S: ContractState>(_ parameter: DistrictParameter, state: inout S) throws {
        guard try state.get(AnchorKeys.district(parameter.district)) != nil else {
            throw ContractRejection.failedPrecondition("district \(parameter.district) is not registered on this main chain")
        }
        let count = try state.get(AnchorKeys.parameterCount(parameter.district)).flatMap(Self.decodeUInt64) ?? 0
        let previous = count == 0 ? [] : try state.get(AnchorKeys.parameterDigest(parameter.district, count)) ?? []
        state.set(AnchorKeys.parameterCount(parameter.district), BigEndianWriter.bytes(of: count &+ 1))
        state.set(AnchorKeys.parameterDigest(parameter.district, count &+ 1), DownlinkDigest.next(previous, parameter, sha256: sha256))
    }

    /// Checks an anchor against the registry and the district's previous anchor; returns the
    /// previous anchor's record. The chain runs it when the anchor executes and, before the
    /// anchor is queued, as the leader's admission check (`get` reads the committed state).
    /// - Throws: FAILED_PRECONDITION (unregistered district, a gap, a downlink position this
    ///   chain did not give), PERMISSION_DENIED (a non-member, no majority),
    ///   INVALID_ARGUMENT (a member twice), ALREADY_EXISTS (this very range is anchored).
    public func checkAnchor(_ anchor: Anchor, get: (String) throws -> [UInt8]?) throws -> AnchorRecord? {
        guard let bytes = try get(AnchorKeys.district(anchor.district)),
              let registration = try? DistrictRegistration(serializedBytes: bytes) else {
            throw ContractRejection.failedPrecondition("district \(anchor.district) is not registered on this main chain")
        }
        let members = Set(registration.memberCertificates.map { sha256($0) })
        var signers = Set<[UInt8]>()
        for (i, signature) in anchor.signatures.enumerated() {
            let fingerprint = sha256(signature.certificate)
            guard members.contains(fingerprint) else {
                throw ContractRejection(code: .permissionDenied, reason: "anchor signature \(i) is not by a registered member of district \(anchor.district)")
            }
            guard signers.insert(fingerprint).inserted else {
                throw ContractRejection.invalidArgument("anchor signature \(i) repeats a member")
            }
        }
        guard signers.count * 2 > members.count else {
            throw ContractRejection(code: .permissionDenied, reason: "anchor has \(signers.count) member signatures; district \(anchor.district) needs a majority of \(members.count)")
        }
        let previous = try get(AnchorKeys.lastAnchor(anchor.district)).flatMap(AnchorRecord.init(bytes:))
        let (expected, overflow) = (previous?.to ?? 0).addingReportingOverflow(1)
        guard !overflow else { throw ContractRejection.failedPrecondition("district \(anchor.district) has no height left to anchor") }
        guard anchor.fromHeight == expected else {
            if anchor.fromHeight < expected, let same = try get(AnchorKeys.anchor(anchor.district, from: anchor.fromHeight)).flatMap(AnchorRecord.init(bytes:)),
               same.to == anchor.toHeight, same.lastHeaderHash == anchor.lastHeaderHash {
                throw ContractRejection.alreadyExists("district \(anchor.district) range \(anchor.fromHeight)...\(anchor.toHeight) is already anchored")
            }
            throw ContractRejection.failedPrecondition("anchor range starts at \(anchor.fromHeight); district \(anchor.district) continues at \(expected)")
        }
        try checkDownlink(anchor, get: get)
        return previous
    }

    /// Takes an anchor (`checkAnchor`): records the range (`anchor/<id>` and
    /// `anchor/<id>/<from>`) and, with a summary, sums it into `uplink/<id>/totals` and
    /// stores each account result it carries.
    public func applyAnchor<S: ContractState>(_ anchor: Anchor, state: inout S) throws {
        let reader = state
        _ = try checkAnchor(anchor) { try reader.get($0) }
        let record = AnchorRecord(from: anchor.fromHeight, to: anchor.toHeight, lastHeaderHash: anchor.lastHeaderHash, headersRoot: anchor.headersRoot)
        state.set(AnchorKeys.lastAnchor(anchor.district), record.bytes)
        state.set(AnchorKeys.anchor(anchor.district, from: anchor.fromHeight), record.bytes)
        guard !anchor.summary.isEmpty, let summary = try? UplinkSummary(serializedBytes: anchor.summary) else { return }
        var totals = try state.get(AnchorKeys.uplinkTotals(anchor.district)).flatMap { try? UplinkSummary(serializedBytes: $0) } ?? UplinkSummary()
        totals.transactions &+= summary.transactions
        totals.readingsAccepted &+= summary.readingsAccepted
        totals.readingsBilled &+= summary.readingsBilled
        totals.chargedFen &+= summary.chargedFen
        totals.commandsIssued &+= summary.commandsIssued
        totals.noticesIssued &+= summary.noticesIssued
        if summary.downlinkCount > 0 {  // the newest downlink position, checked above
            totals.downlinkCount = summary.downlinkCount
            totals.downlinkDigest = summary.downlinkDigest
        }
        state.set(AnchorKeys.uplinkTotals(anchor.district), totals.serializedBytes())
        for account in summary.accounts {
            state.set(AnchorKeys.uplinkAccount(anchor.district, account.account), account.serializedBytes())
        }
    }

    /// An anchor's downlink position must be one the main chain gave this district: its
    /// (n, D(n)) equals this chain's digest after the district's n-th parameter.
    private func checkDownlink(_ anchor: Anchor, get: (String) throws -> [UInt8]?) throws {
        guard !anchor.summary.isEmpty, let summary = try? UplinkSummary(serializedBytes: anchor.summary), summary.downlinkCount > 0 else { return }
        let issued = try get(AnchorKeys.parameterCount(anchor.district)).flatMap(Self.decodeUInt64) ?? 0
        guard summary.downlinkCount <= issued,
              try get(AnchorKeys.parameterDigest(anchor.district, summary.downlinkCount)) == summary.downlinkDigest else {
            throw ContractRejection.failedPrecondition(
                "district \(anchor.district) took a parameter sequence this main chain did not give it (at parameter \(summary.downlinkCount) of \(issued)): a parameter was skipped or reordered")
        }
    }

    // MARK: District chain

    /// Records the receipt of the range right after the previous one (`receipt/last`,
    /// `receipt/<to>`).
    /// - Throws: ALREADY_EXISTS (the range already has its receipt), FAILED_PRECONDITION (a gap).
    public func applyReceipt<S: ContractState>(_ receipt: AnchorReceipt, state: inout S) throws {
        let last = try state.get(AnchorKeys.lastReceipt).flatMap { try? AnchorReceipt(serializedBytes: $0) }
        let (expected, overflow) = (last?.toHeight ?? 0).addingReportingOverflow(1)
        guard !overflow else { throw ContractRejection.failedPrecondition("no height left to receipt") }
        guard receipt.fromHeight == expected else {
            if receipt.toHeight < expected { throw ContractRejection.alreadyExists("range ending at \(receipt.toHeight) already has its receipt") }
            throw ContractRejection.failedPrecondition("receipt starts at \(receipt.fromHeight); receipts continue at \(expected)")
        }
        state.set(AnchorKeys.lastReceipt, receipt.serializedBytes())
        state.set(AnchorKeys.receipt(to: receipt.toHeight), receipt.serializedBytes())
    }

    /// Takes a downlink: advances the cursor and the district's downlink digest, and returns
    /// the parameter it carries for the fee-control contract. The parameter is taken whether
    /// or not that contract accepts it, so the downlink never stalls on one.
    /// - Throws: ALREADY_EXISTS (at or before the cursor), ABORTED (its predecessor is not the
    ///   cursor: a downlink whose predecessor did not land waits, nothing is skipped),
    ///   INVALID_ARGUMENT (it carries no parameter).
    public func takeDownlink<S: ContractState>(_ downlink: Downlink, state: inout S) throws -> DistrictParameter {
        let position = DownlinkCursor(height: downlink.mainHeight, index: downlink.mainIndex)
        let cursor = try state.get(AnchorKeys.downlinkCursor).flatMap(DownlinkCursor.init(bytes:)) ?? DownlinkCursor(height: 0, index: 0)
        if position <= cursor {
            throw ContractRejection.alreadyExists("main position \(position.height)/\(position.index) is at or before the downlink cursor \(cursor.height)/\(cursor.index)")
        }
        guard cursor == DownlinkCursor(height: downlink.afterHeight, index: downlink.afterIndex) else {
            throw ContractRejection(code: .aborted, reason: "downlink follows \(downlink.afterHeight)/\(downlink.afterIndex); the cursor is at \(cursor.height)/\(cursor.index)")
        }
        state.set(AnchorKeys.downlinkCursor, position.bytes)
        guard let original = try? SignedTransaction(serializedBytes: downlink.original),
              case .parameter(let parameter)? = (try? TxPayload(serializedBytes: original.payload))?.body else {
            throw ContractRejection.invalidArgument("downlink carries no parameter")
        }
        let taken = try state.get(AnchorKeys.downlinkDigest).flatMap(DownlinkDigest.decode) ?? (0, [])
        state.set(AnchorKeys.downlinkDigest, DownlinkDigest.encode(count: taken.count &+ 1, digest: DownlinkDigest.next(taken.digest, parameter, sha256: sha256)))
        return parameter
    }

    /// An 8-byte big-endian value; nil for any other length.
    private static func decodeUInt64(_ bytes: [UInt8]) -> UInt64? {
        var r = BigEndianReader(bytes)
        guard let v = try? r.u64(), r.isAtEnd else { return nil }
        return v
    }
}
