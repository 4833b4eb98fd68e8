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
package struct ChainHashing: Sendable, Equatable {
    package let suite: Digest.Suite

    /// The suite a stored header names (headers before the setting existed are SHA-256).
    package static func of(_ header: BlockHeader) -> ChainHashing? {
        header.hashSuite.isEmpty ? ChainHashing(suite: .sha256) : Digest.Suite(rawValue: header.hashSuite).map(ChainHashing.init)
    }

    package func hash(_ bytes: [UInt8]) -> [UInt8] { Digest.hash(suite, parts: [bytes]) }

    package func headerHash(_ header: BlockHeader) -> [UInt8] {
        hash(header.serializedBytes())
    }

    package func txRoot(_ ids: [[UInt8]]) -> [UInt8] {
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

    package func genesisStateRoot(chainID: String) -> [UInt8] {
        hash(Array("gridledger-genesis/\(chainID)".utf8))
    }

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

/// One state change made by a transaction of a block.
package struct StateWriteRecord: Sendable, Equatable {
    package var key: String
    /// nil deletes the key.
    package var value: [UInt8]?
    package var txIndex: UInt32
}

extension Array where Element == UInt8 {
    package var hex: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }

    package init?(hex: String) {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x57
            case 0x41...0x46: return c - 0x37
            default: return nil
            }
        }
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}
