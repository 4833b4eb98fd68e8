/// A small, fast, seedable pseudo-random generator (Steele, Lea & Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014), used for election-timeout jitter.
///
/// The Raft core never draws global randomness: every `RaftNode` owns one of these, seeded
/// by its creator, so a whole cluster run is replayable from its seeds.
/// Not cryptographically secure.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    /// A generator whose whole output sequence is determined by `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
