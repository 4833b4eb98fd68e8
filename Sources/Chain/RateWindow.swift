/// Committed transactions and readings over the last 10 seconds.
package struct RateWindow {
    private var samples: [(at: ContinuousClock.Instant, transactions: Int, readings: Int)] = []
    private(set) var totalTransactions: UInt64 = 0

    package mutating func record(transactions: Int, readings: Int) {
        let now = ContinuousClock.now
        samples.append((now, transactions, readings))
        totalTransactions += UInt64(transactions)
        samples.removeAll { now - $0.at > .seconds(10) }
    }

    package var transactionsPerSecond: Double { rate(\.transactions) }
    package var readingsPerSecond: Double { rate(\.readings) }

    private func rate(_ field: KeyPath<(at: ContinuousClock.Instant, transactions: Int, readings: Int), Int>) -> Double {
        let now = ContinuousClock.now
        let recent = samples.filter { now - $0.at <= .seconds(10) }
        return Double(recent.reduce(0) { $0 + $1[keyPath: field] }) / 10
    }
}
