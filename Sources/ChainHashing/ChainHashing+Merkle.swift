import GridProto
import GridCrypto

extension ChainHashing {
    /// outcomes-root = merkle(H(serialized TxOutcome) ...), the tx-root rule, block order.
    public func outcomesRoot(_ outcomes: [TxOutcome]) -> [UInt8] {
        txRoot(outcomes.map { hash($0.serializedBytes()) })
    }

    /// The steps a path from leaf `index` in a tree of `count` leaves has, as (promoted,
    /// sibling left) pairs: a path of any other shape is refused, so a path names exactly
    /// one leaf position (no padding with promoted steps, no free directions).
    package static func pathShape(index: UInt64, count: UInt64) -> [(promoted: Bool, siblingLeft: Bool)]? {
        guard count > 0, index < count else { return nil }
        var shape: [(promoted: Bool, siblingLeft: Bool)] = []
        var i = index
        var n = count
        while n > 1 {
            if i % 2 == 0 {
                shape.append(i + 1 == n ? (true, false) : (false, false))
            } else {
                shape.append((false, true))
            }
            i /= 2
            n = (n + 1) / 2
        }
        return shape
    }

    /// Whether `steps` has the shape of leaf `index` in `count` leaves, with hash-length
    /// siblings and empty promoted steps.
    public func pathFits(_ steps: [MerkleStep], index: UInt64, count: UInt64) -> Bool {
        guard let shape = Self.pathShape(index: index, count: count), shape.count == steps.count else { return false }
        let length = hash([]).count
        for (step, expected) in zip(steps, shape) {
            guard step.promoted == expected.promoted else { return false }
            if step.promoted {
                guard step.sibling.isEmpty else { return false }
            } else {
                guard step.siblingLeft == expected.siblingLeft, step.sibling.count == length else { return false }
            }
        }
        return true
    }

    /// The Merkle path of leaf `index` under the tx-root rule: one step per level, from the
    /// leaf upwards. Folding `H(0x00 || id)` along it gives `txRoot(ids)`.
    public func merklePath(_ ids: [[UInt8]], index: Int) -> [MerkleStep] {
        precondition(index >= 0 && index < ids.count)
        var level = ids.map { Digest.hash(suite, parts: [[0x00], $0]) }
        var at = index
        var steps: [MerkleStep] = []
        while level.count > 1 {
            let sibling = at ^ 1
            if sibling < level.count {
                steps.append(MerkleStep(sibling: level[sibling], siblingLeft: sibling < at, promoted: false))
            } else {
                steps.append(MerkleStep(sibling: [], siblingLeft: false, promoted: true))
            }
            var next: [[UInt8]] = []
            var i = 0
            while i < level.count {
                next.append(i + 1 < level.count ? Digest.hash(suite, parts: [[0x01], level[i], level[i + 1]]) : level[i])
                i += 2
            }
            level = next
            at /= 2
        }
        return steps
    }

    /// The root a leaf id and its path give.
    public func foldPath(leaf id: [UInt8], _ steps: [MerkleStep]) -> [UInt8] {
        var node = Digest.hash(suite, parts: [[0x00], id])
        for step in steps where !step.promoted {
            node = step.siblingLeft ? Digest.hash(suite, parts: [[0x01], step.sibling, node]) : Digest.hash(suite, parts: [[0x01], node, step.sibling])
        }
        return node
    }
}
