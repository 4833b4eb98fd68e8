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
