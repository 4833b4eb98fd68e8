import Node
import GridBase

/// The simulator's continuous distributions over the one seeded generator (`SplitMix64`,
/// GridBase). Like the generator's own helpers they use only IEEE-754 `+ − × ÷ √` and
/// `DeterministicMath`, never the platform's libm, so a seed replays bit for bit everywhere.
extension SplitMix64 {
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
