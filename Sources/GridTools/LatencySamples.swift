/// Latency samples of a benchmark, in nanoseconds.
struct LatencySamples {
    private(set) var sorted: [Int64]

    init(_ samples: [Int64]) {
        sorted = samples.sorted()
    }

    var count: Int { sorted.count }

    /// The `p` quantile (0...1) in nanoseconds; 0 without samples.
    func quantile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
    }
}
