import GridBase
import GridProto

/// The fee-control contract's versions by activation height, at `contract/fee-control`.
///
/// Grammar: `u8 version=1, u32 n, n × (u64 activate_at_height, u32 contract version,
/// bool has_vee, bytes VeeParameters)`, ascending by height, heights unique.
///
/// The entry in effect at height h is the one with the greatest activate_at_height ≤ h;
/// with none, version 1 with default VEE parameters is in effect. Every replica applies the
/// same activations in the same blocks, so all switch at the same height.
/// Invariant: at most one stored entry has a height ≤ the height of the block that last
/// wrote the record (older ones are pruned: they can never be in effect again).
struct ActivationRecord: Equatable {
    struct Entry: Equatable {
        var height: UInt64
        var version: UInt32
        var vee: VeeParameters?
    }

    static let contractName = "fee-control"
    static let implementedVersions: ClosedRange<UInt32> = 1...1

    var entries: [Entry] = []

    init() {}

    static func load(_ state: some ContractState) throws -> ActivationRecord {
        var record = ActivationRecord()
        guard let bytes = try state.get(ContractKeys.feeControlContract) else { return record }
        var r = BigEndianReader(contractRecord: bytes, what: "activation")
        try r.expectVersion(1)
        for _ in 0..<(try r.u32()) {
            let height = try r.u64()
            let version = try r.u32()
            let hasVee = try r.bool()
            let vee = try r.lengthPrefixed()
            record.entries.append(Entry(height: height, version: version, vee: hasVee ? try VeeParameters(serializedBytes: vee) : nil))
        }
        return record
    }

    func store(_ state: inout some ContractState) {
        var w = BigEndianWriter()
        w.u8(1)
        w.u32(UInt32(entries.count))
        for e in entries {
            w.u64(e.height)
            w.u32(e.version)
            w.bool(e.vee != nil)
            w.lengthPrefixed(e.vee?.serializedBytes() ?? [])
        }
        state.set(ContractKeys.feeControlContract, w.bytes)
    }

    func inEffect(at height: UInt64) -> Entry? {
        entries.last { $0.height <= height }
    }

    /// Adds (or replaces, for the same height) an activation, then prunes entries that can
    /// no longer be in effect at `currentHeight` or later.
    mutating func add(_ entry: Entry, currentHeight: UInt64) {
        entries.removeAll { $0.height == entry.height }
        entries.append(entry)
        entries.sort { $0.height < $1.height }
        if let current = entries.lastIndex(where: { $0.height <= currentHeight }) {
            entries.removeFirst(current)
        }
    }

    /// VEE settings in effect at `height`.
    func settings(at height: UInt64) -> VeeSettings {
        VeeSettings(inEffect(at: height)?.vee)
    }
}
