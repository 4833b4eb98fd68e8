import Chain
import ChainHashing
import Contracts
import GridProto
import Wire

/// The hashes and summary of a district range, as every member computes them from its own
/// blocks.
struct AnchorRange: Sendable {
    let from: UInt64
    let to: UInt64
    let headerHashes: [[UInt8]]
    let lastHeaderHash: [UInt8]
    let headersRoot: [UInt8]
    /// Serialized UplinkSummary.
    let summary: [UInt8]

    func digest(district: String) -> [UInt8] {
        AnchorDigest.compute(district: district, from: from, to: to, lastHeaderHash: lastHeaderHash, headersRoot: headersRoot, summary: summary)
    }

    static func compute(ledger: Ledger, from: UInt64, to: UInt64) throws -> AnchorRange {
        var hashes: [[UInt8]] = []
        var summary = UplinkSummary()
        var accounts: [String] = []
        try ledger.reader.blocks(from: from, to: to + 1) { _, bytes in
            let block = try Block(serializedBytes: bytes)
            guard let header = block.header else { throw RPCError(.dataLoss, "stored block has no header") }
            hashes.append(ledger.hashing.headerHash(header))
            summary.transactions += UInt64(block.transactions.count)
            for outcome in block.outcomes {
                summary.readingsAccepted += UInt64(outcome.readingsAccepted)
                summary.readingsBilled += UInt64(outcome.readingsBilled)
                // Saturating: hostile amounts must not trap the members that sign.
                let (sum, overflow) = summary.chargedFen.addingReportingOverflow(outcome.chargedFen)
                summary.chargedFen = overflow ? (outcome.chargedFen < 0 ? .min : .max) : sum
                summary.commandsIssued &+= UInt32(truncatingIfNeeded: outcome.commandIds.count)
                summary.noticesIssued &+= UInt32(truncatingIfNeeded: outcome.noticeIds.count)
            }
            accounts += UplinkAccounts.touched(by: block)
            return true
        }
        guard hashes.count == Int(to - from + 1) else {
            throw RPCError(.failedPrecondition, "blocks \(from)...\(to) are not all on this replica")
        }
        summary.accounts = try UplinkAccounts.results(Array(Set(accounts)).sorted(), from: from, to: to, ledger: ledger)
        if let taken = try ledger.reader.state(AnchorKeys.downlinkDigest, asOf: to).flatMap(DownlinkDigest.decode) {
            summary.downlinkCount = taken.count
            summary.downlinkDigest = taken.digest
        }
        return AnchorRange(
            from: from, to: to, headerHashes: hashes, lastHeaderHash: hashes[hashes.count - 1],
            headersRoot: ledger.hashing.txRoot(hashes), summary: summary.serializedBytes())
    }
}
