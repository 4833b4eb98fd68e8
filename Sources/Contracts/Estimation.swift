import GridBase

/// Gap estimation (DOMAIN.md "Gaps"): splitting the energy between two accepted readings
/// over the grid slots missing between them.
///
/// The energy split is what billing uses for TOU assignment and cycle boundaries; the total
/// is always the register delta, so estimation moves energy between intervals but never
/// creates or drops any.

/// A stretch of time with the energy consumed in it.
struct Piece: Equatable {
    var startMs: Int64
    var endMs: Int64
    var energy: UInt64
}

enum EstimationMethod: UInt8 {
    /// No slot was missing.
    case none = 0
    /// Registers interpolated linearly in time between the readings on both sides.
    case linear = 1
    /// Energy distributed by the customer's same-weekday profile.
    case profile = 2
    /// The gap was longer than `Estimation.maxEstimatedDays`: not estimated, billed as one
    /// interval.
    case tooLong = 3
}

/// An estimated grid reading at `estimate/<meter>/<ts20>`.
/// Grammar: `u8 version=1, u8 method, u64 total register, u64 energy of the interval ending here`.
struct EstimateRecord: Equatable {
    var method: EstimationMethod
    var total: UInt64
    var intervalEnergy: UInt64

    func encoded() -> [UInt8] {
        var w = BigEndianWriter()
        w.u8(1)
        w.u8(method.rawValue)
        w.u64(total)
        w.u64(intervalEnergy)
        return w.bytes
    }

    init(method: EstimationMethod, total: UInt64, intervalEnergy: UInt64) {
        self.method = method
        self.total = total
        self.intervalEnergy = intervalEnergy
    }

    init(decoding bytes: [UInt8]) throws {
        var r = BigEndianReader(contractRecord: bytes, what: "estimate")
        try r.expectVersion(1)
        method = EstimationMethod(rawValue: try r.u8()) ?? .linear
        total = try r.u64()
        intervalEnergy = try r.u64()
    }
}

/// A meter's same-weekday profile: for each local weekday, the energy of each interval slot
/// of the day as last measured (real, billed intervals only). Stored per weekday at
/// `profile/<meter>/<weekday>` as `u8 version=1, u32 n, n × u32`.
struct Profile {
    var days: [Int: [UInt32]] = [:]

    static func decode(_ bytes: [UInt8], slots: Int) throws -> [UInt32] {
        var r = BigEndianReader(contractRecord: bytes, what: "profile")
        try r.expectVersion(1)
        let n = Int(try r.u32())
        var values: [UInt32] = []
        for _ in 0..<n { values.append(try r.u32()) }
        // A record written for another interval length is stale: start over.
        return values.count == slots ? values : Array(repeating: 0, count: slots)
    }

    static func encode(_ values: [UInt32]) -> [UInt8] {
        var w = BigEndianWriter()
        w.u8(1)
        w.u32(UInt32(values.count))
        for v in values { w.u32(v) }
        return w.bytes
    }
}

enum Estimation {
    /// Gaps longer than this are not estimated (no estimate records; one piece).
    static let maxEstimatedDays: Int64 = 31

    /// The result of splitting one segment.
    struct Split {
        var pieces: [Piece]
        var method: EstimationMethod
        /// Grid timestamps of the missing slots, with the estimated cumulative energy from the
        /// segment start at each (so register = start register + cumulative).
        var estimates: [(timestampMs: Int64, cumulative: UInt64, intervalEnergy: UInt64)]
    }

    /// Splits `energy`, consumed from `startMs` to `endMs`, over the grid.
    ///
    /// Slots are the multiples of `intervalMs` since the epoch; a reading belongs to its
    /// nearest slot. The missing slots are those strictly between the two readings' slots.
    /// With none, the result is one piece. Otherwise the pieces run reading → slot → … →
    /// reading and their energies are the cumulative split (`TariffRules.cumulativeSplit`) of
    /// `energy` by weights: each piece's duration when the gap (endMs − startMs) is at most
    /// `maxInterpolationMs` (exactly linear interpolation of the registers), else the
    /// profile's value for the slot each piece starts in (durations again when the profile
    /// has nothing for any of them).
    static func split(
        startMs: Int64, endMs: Int64, energy: UInt64, intervalMs: Int64, maxInterpolationMs: Int64,
        profileWeight: (Int64) -> UInt64
    ) -> Split {
        let first = Vee.slot(startMs, intervalMs: intervalMs)
        let last = Vee.slot(endMs, intervalMs: intervalMs)
        let missing = last - first - 1
        let single = Split(pieces: [Piece(startMs: startMs, endMs: endMs, energy: energy)], method: .none, estimates: [])
        guard missing > 0 else { return single }
        guard missing <= maxEstimatedDays * CivilTime.msPerDay / intervalMs else {
            var s = single
            s.method = .tooLong
            return s
        }
        var bounds: [Int64] = [startMs]
        for k in 1...missing { bounds.append((first + k) * intervalMs) }
        bounds.append(endMs)
        let durations = (0..<(bounds.count - 1)).map { UInt64(bounds[$0 + 1] - bounds[$0]) }
        var method = EstimationMethod.linear
        var weights = durations
        if endMs - startMs > maxInterpolationMs {
            method = .profile
            let profile = (0..<(bounds.count - 1)).map { profileWeight(bounds[$0]) }
            if profile.contains(where: { $0 > 0 }) { weights = profile }
        }
        let parts = TariffRules.cumulativeSplit(energy, weights: weights)
        var pieces: [Piece] = []
        var estimates: [(Int64, UInt64, UInt64)] = []
        var cumulative: UInt64 = 0
        for i in 0..<parts.count {
            pieces.append(Piece(startMs: bounds[i], endMs: bounds[i + 1], energy: parts[i]))
            cumulative += parts[i]
            if i + 1 < bounds.count - 1 { estimates.append((bounds[i + 1], cumulative, parts[i])) }
        }
        return Split(pieces: pieces, method: method, estimates: estimates)
    }
}
