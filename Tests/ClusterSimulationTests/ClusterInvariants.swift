import Consensus
import Foundation
import GridBase
import Store

@testable import Chain
@testable import Node

/// What a simulated cluster run must satisfy (issue 12 §3), checked while it runs and at
/// its end:
/// - **Agreement on every block**: no replica ever applies a block at a height where another
///   replica applied a different one (checked as each replica's head moves, so a fork is
///   caught when it happens, not only if it survives). Block hashes cover the header's state
///   root, so equal hashes mean equal state roots.
/// - **Durability of acknowledgements**: every transaction a client was told is on the chain
///   is, at the height and in the block it was told, on every member at the end.
/// - **Equal state**: at the end every member's world state (every key, value and version)
///   is the same.
/// - No replica halts (a replica halts rather than store a block it cannot verify).
struct ClusterInvariants {
    private(set) var violations: [String] = []
    var ok: Bool { violations.isEmpty }
    /// The first replica seen applying each height, and what it applied.
    private var blocks: [UInt64: (replica: NodeID, hash: [UInt8])] = [:]
    var acknowledged = 0

    mutating func fail(_ s: String) {
        if violations.count < 20 { violations.append(s) }
    }

    mutating func observe(replica: NodeID, height: UInt64, hash: [UInt8]) {
        if let first = blocks[height] {
            if first.hash != hash {
                fail("fork: n\(replica) applied block \(hash.hex.prefix(16)) at height \(height), n\(first.replica) applied \(first.hash.hex.prefix(16))")
            }
        } else {
            blocks[height] = (replica, hash)
        }
    }

    mutating func checkFinal(requests: [ClusterSimulation.Request], members: [SimulatedReplica]) {
        for (i, request) in requests.enumerated() {
            guard let told = request.acknowledged else { continue }
            for member in members {
                guard let ledger = member.ledger else { fail("member n\(member.id) is down at the end"); continue }
                let location = try? ledger.store.txLocation(request.id)
                let hash = try? ledger.blockHash(at: told.height)
                if location?.height != told.height || hash != told.hash {
                    fail("lost acknowledgement: request #\(i) (\(request.kind.rawValue)) was acknowledged at height \(told.height); n\(member.id) has it at \(location.map { "\($0.height)" } ?? "nowhere")")
                }
            }
        }
        var states: [(NodeID, [String])] = []
        for member in members {
            guard let ledger = member.ledger else { continue }
            var entries: [String] = []
            do {
                try ledger.store.allState { key, height, index, value in
                    entries.append("\(key)@\(height).\(index)=\(value?.hex ?? "-")")
                }
            } catch {
                fail("n\(member.id) cannot scan its state: \(error)")
            }
            states.append((member.id, entries))
        }
        if let first = states.first {
            for (id, entries) in states.dropFirst() where entries != first.1 {
                let differing = zip(entries, first.1).first { $0 != $1 }.map { "\($0.0) vs \($0.1)" } ?? "\(entries.count) vs \(first.1.count) entries"
                fail("state differs between n\(first.0) and n\(id): \(differing)")
            }
        }
    }
}
