import GridBase
import GridProto
import GridCrypto

/// The hashes that bind a chain together (Docs/chain.md, "Hashes").
///
/// ```
/// header-hash = H(serialized BlockHeader)
/// tx-id       = H(TxPayload bytes as signed)
/// tx-root     = merkle(tx-id ...)         leaf = H(0x00 || id), node = H(0x01 || left || right),
///                                          an odd node is promoted unchanged; empty = H("")
/// state-root  = H(previous state-root || H(write-set))
/// write-set   = *( u32 len(key) key u8 flag u32 len(value) value )   ; flag 1 put, 0 delete
///               *( u32 code u32 accepted u32 duplicate [results] )   ; one per tx outcome
/// results     = u32 len(r) r     ; r = the outcome's contract fields (billed, charged, reading
///                                ; results, commands, notices, accounts) serialized as a
///                                ; TxOutcome; present only when one of them is set
/// genesis state-root = H("gridledger-genesis/" || chain-id)
/// ```
/// All integers big-endian. H is the chain's hash suite, a per-chain setting recorded in
/// every header (`sha256` or `sm3`); transaction ids are SHA-256 on every chain (clients
/// compute them).
///
/// Part of the client SDK's surface (GridClient verifies proofs with it): the header hash,
/// the transaction and outcomes roots and their Merkle paths are `public`; the state root,
/// which only the ledger computes, is `package`. A value type with no state but its suite.
public struct ChainHashing: Sendable, Equatable {
    /// The hash suite H of this chain.
    public let suite: Digest.Suite

    /// Hashing under `suite`.
    public init(suite: Digest.Suite) {
        self.suite = suite
    }

    /// The suite a stored header names (headers before the setting existed are SHA-256);
    /// nil for a suite this build does not know.
    public static func of(_ header: BlockHeader) -> ChainHashing? {
        header.hashSuite.isEmpty ? ChainHashing(suite: .sha256) : Digest.Suite(rawValue: header.hashSuite).map(ChainHashing.init)
    }

    /// H(bytes).
    public func hash(_ bytes: [UInt8]) -> [UInt8] { Digest.hash(suite, parts: [bytes]) }

    /// header-hash = H(serialized BlockHeader).
    public func headerHash(_ header: BlockHeader) -> [UInt8] {
        hash(header.serializedBytes())
    }

    /// tx-root over transaction ids (or any leaves) in block order; H("") when empty.
    public func txRoot(_ ids: [[UInt8]]) -> [UInt8] {
        if ids.isEmpty { return hash([]) }
        var level = ids.map { Digest.hash(suite, parts: [[0x00], $0]) }
        while level.count > 1 {
            var next: [[UInt8]] = []
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i < level.count {
                if i + 1 < level.count {
                    next.append(Digest.hash(suite, parts: [[0x01], level[i], level[i + 1]]))
                } else {
                    next.append(level[i])
                }
                i += 2
            }
            level = next
        }
        return level[0]
    }

    /// The state root before block 1 of chain `chainID`.
    package func genesisStateRoot(chainID: String) -> [UInt8] {
        hash(Array("gridledger-genesis/\(chainID)".utf8))
    }

    /// state-root = H(previous || H(write-set)) over a block's writes and outcomes, in order.
    package func stateRoot(previous: [UInt8], writes: [StateWriteRecord], outcomes: [TxOutcome]) -> [UInt8] {
        var set: [UInt8] = []
        set.reserveCapacity(writes.count * 48 + outcomes.count * 12)
        for w in writes {
            let key = Array(w.key.utf8)
            Self.append(&set, UInt32(key.count))
            set += key
            set.append(w.value == nil ? 0 : 1)
            Self.append(&set, UInt32(w.value?.count ?? 0))
            if let v = w.value { set += v }
        }
        for o in outcomes {
            Self.append(&set, o.code)
            Self.append(&set, o.readingsAccepted)
            Self.append(&set, o.readingsDuplicate)
            let results = TxOutcome(
                readingsBilled: o.readingsBilled, chargedFen: o.chargedFen, readingResults: o.readingResults,
                commandIds: o.commandIds, noticeIds: o.noticeIds, accounts: o.accounts)
            if results != TxOutcome() {
                let bytes = results.serializedBytes()
                Self.append(&set, UInt32(bytes.count))
                set += bytes
            }
        }
        return Digest.hash(suite, parts: [previous, hash(set)])
    }

    private static func append(_ out: inout [UInt8], _ v: UInt32) {
        BigEndianWriter.append(v, to: &out)
    }
}
