/// SplitMix64 (Steele, Lea, Flood 2014, "Fast splittable pseudorandom number generators"):
/// a tiny seeded generator for the simulator.
///
/// Determinism contract: the whole state is one `UInt64`; `next()` is pure integer
/// arithmetic, and `nextDouble()` / `nextGaussian()` use only IEEE-754 `+ − × ÷ √` and the
/// simulator's own `DeterministicMath.log`, never the platform's libm. The same seed therefore
/// gives the same sequence of integers *and* doubles on every platform and Swift version.
///
/// The type conforms to `RandomNumberGenerator` for convenience, but the standard library's
/// `Int.random(in:using:)` and friends are not guaranteed to consume the generator the same
/// way across Swift versions: simulator code uses only the helpers defined here.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's entire state.
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one named sub-stream of `seed` (e.g. one meter): the label is hashed
    /// (FNV-1a 64) and mixed with the seed, so streams for different labels are independent
    /// and do not depend on how many other streams exist or in which order they are created.
    public init(seed: UInt64, label: String) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        state = SplitMix64.mix(seed ^ SplitMix64.mix(hash &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// The SplitMix64 output function (a bijective 64-bit finaliser).
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// Uniform in [0, 1), 53 random bits.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [lower, upper).
    public mutating func nextDouble(in lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * nextDouble()
    }

    /// Uniform integer in 0 ..< bound (bound > 0), by rejection, so exactly unbiased.
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
    public mutating func chance(_ p: Double) -> Bool {
        nextDouble() < p
    }

    /// A normal deviate by Box–Muller in Marsaglia's polar form (no trigonometry, so it needs
    /// only `√` and the deterministic `log`). The second deviate of each pair is discarded,
    /// which keeps the state a single `UInt64`.
    public mutating func nextGaussian(mean: Double = 0, standardDeviation: Double = 1) -> Double {
        while true {
            let u = 2 * nextDouble() - 1
            let v = 2 * nextDouble() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let factor = (-2 * DeterministicMath.log(s) / s).squareRoot()
                return mean + standardDeviation * u * factor
            }
        }
    }

    /// exp(N(mu, sigma)): a log-normal deviate.
    public mutating func nextLogNormal(mu: Double = 0, sigma: Double) -> Double {
        DeterministicMath.exp(nextGaussian(mean: mu, standardDeviation: sigma))
    }
}

/// `exp` and `log` from IEEE-754 basic operations only (range reduction by exact powers of
/// two plus fixed-length series), so results are bit-identical on every platform, unlike
/// libm whose last-ulp rounding differs between glibc, Darwin and musl. Accuracy is a few
/// ulps, ample for load modelling.
enum DeterministicMath {
    static let ln2 = 0.693_147_180_559_945_309_417_232_121_458

    /// e^x. Underflows to 0 below −745 and overflows to +∞ above 709.
    static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > 709.7 { return .infinity }
        if x < -745.0 { return 0 }
        // x = k ln2 + r, |r| ≤ ln2/2; then halve r twice more (square at the end) for speed.
        let k = (x / ln2).rounded(.toNearestOrEven)
        let r = (x - k * ln2) / 4
        // Taylor series of e^r for |r| ≤ 0.087: 12 terms reach double precision.
        var term = 1.0
        var sum = 1.0
        for n in 1...12 {
            term = term * r / Double(n)
            sum += term
        }
        sum = sum * sum
        sum = sum * sum
        return scale(sum, Int(k))
    }

    /// Natural logarithm for x > 0 (NaN for x < 0, −∞ at 0).
    static func log(_ x: Double) -> Double {
        if x.isNaN || x < 0 { return .nan }
        if x == 0 { return -.infinity }
        if x.isInfinite { return x }
        // x = m · 2^e with m in [1, 2) (exact), then move m into [√½, √2).
        var e = Int(x.exponent)
        var m = x.significand
        if m > 1.414_213_562_373_095_048_8 {
            m /= 2
            e += 1
        }
        // log m = 2 atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716: series to s^41.
        let s = (m - 1) / (m + 1)
        let s2 = s * s
        var power = s
        var sum = 0.0
        var n = 1.0
        while n < 42 {
            sum += power / n
            power *= s2
            n += 2
        }
        return Double(e) * ln2 + 2 * sum
    }

    /// value · 2^k by exact power-of-two multiplications.
    private static func scale(_ value: Double, _ k: Int) -> Double {
        var result = value
        var k = k
        while k > 1000 {
            result *= 0x1.0p1000
            k -= 1000
        }
        while k < -1000 {
            result *= 0x1.0p-1000
            k += 1000
        }
        return result * Double(sign: .plus, exponent: k, significand: 1.0)
    }
}
