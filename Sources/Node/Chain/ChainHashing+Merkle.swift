import GridProto
import GridTLS

extension ChainHashing {
    /// The Merkle path of leaf `index` under the tx-root rule: one step per level, from the
    /// leaf upwards. Folding `H(0x00 || id)` along it gives `txRoot(ids)`.
    func merklePath(_ ids: [[UInt8]], index: Int) -> [MerkleStep] {
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
    func foldPath(leaf id: [UInt8], _ steps: [MerkleStep]) -> [UInt8] {
        var node = Digest.hash(suite, parts: [[0x00], id])
        for step in steps where !step.promoted {
            node = step.siblingLeft ? Digest.hash(suite, parts: [[0x01], step.sibling, node]) : Digest.hash(suite, parts: [[0x01], node, step.sibling])
        }
        return node
    }
}
