/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): the one seeded generator of the project — Raft election-timeout jitter, the
/// simulator's meters and districts, and every seeded test.
///
/// Determinism contract: the whole state is one `UInt64`; `next()` is pure integer
/// arithmetic and `nextDouble()` uses only IEEE-754 basic operations, so the same seed gives
/// the same sequence on every platform and Swift version. Seeded tests and the simulator
/// depend on this exact sequence: do not change it.
///
/// The type conforms to `RandomNumberGenerator` for convenience, but the standard library's
/// `Int.random(in:using:)` and friends are not guaranteed to consume the generator the same
/// way across Swift versions: code that must replay across versions uses only the helpers
/// defined here. Not cryptographically secure.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    @usableFromInline var _state: UInt64

    /// The generator's entire state.
    public var state: UInt64 { _state }

    /// A generator whose whole output sequence is determined by `seed`.
    @inlinable
    public init(seed: UInt64) { _state = seed }

    /// A generator for one named sub-stream of `seed` (e.g. one meter): the label is hashed
    /// (FNV-1a 64) and mixed with the seed, so streams for different labels are independent
    /// and do not depend on how many other streams exist or in which order they are created.
    public init(seed: UInt64, label: String) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        _state = SplitMix64.mix(seed ^ SplitMix64.mix(hash &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// The SplitMix64 output function (a bijective 64-bit finaliser).
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inlinable
    public mutating func next() -> UInt64 {
        _state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(_state)
    }

    /// Uniform in [0, 1), 53 random bits.
    @inlinable
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [lower, upper).
    @inlinable
    public mutating func nextDouble(in lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * nextDouble()
    }

    /// Uniform integer in 0 ..< bound (bound > 0), by rejection, so exactly unbiased.
    @inlinable
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let n = UInt64(bound)
        let limit = UInt64.max - UInt64.max % n
        while true {
            let x = next()
            if x < limit { return Int(x % n) }
        }
    }

    /// True with probability `p` (one draw).
    @inlinable
    public mutating func chance(_ p: Double) -> Bool {
        nextDouble() < p
    }
}
