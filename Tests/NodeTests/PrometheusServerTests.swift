import Foundation
import GridClient
import GridProto
import XCTest

/// The real Prometheus server (Debian package `prometheus`, installed by scripts/setup)
/// scraping a three-process district chain under load, checked through Prometheus' own
/// HTTP query API (`/api/v1/query`): what an operator's dashboard would show.
///
/// In CI (`CI=true`) a missing `prometheus` fails the test; elsewhere it skips, saying so.
final class PrometheusServerTests: XCTestCase {
    func testPrometheusScrapesThreeNodeDistrictUnderLoad() async throws {
        try NodeProcess.requireExecutable()
        let prometheus = try Self.prometheusExecutable()
        let pki = try TestPKI()
        defer { pki.remove() }
        let ops = try pki.issue(.ops, "ops1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        // Three metrics listeners and Prometheus' own web port.
        let side = try await NodeProcess.freePorts(4)
        let (nodes, ports) = try await NodeProcess.districtCluster(pki) { i in
            ["--tick-ms", "50", "--max-block-delay-ms", "5", "--log-level", "warning", "--metrics-listen", "127.0.0.1:\(side[i - 1])"]
        }
        defer { for n in nodes { n.terminate() } }
        for n in nodes { try n.start() }
        for p in ports { try await NodeProcess.waitUntilServing(port: p, pki: pki, ops: ops) }

        // Prometheus, its configuration and TSDB in the test's temp dir, scraping every second.
        let web = "127.0.0.1:\(side[3])"
        let config = pki.dir + "/prometheus.yml"
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: gridledger
                static_configs:
                  - targets: [\(side.prefix(3).map { "'127.0.0.1:\($0)'" }.joined(separator: ", "))]

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = NodeProcess(arguments: [
            "--config.file=\(config)", "--storage.tsdb.path=\(pki.dir)/tsdb", "--web.listen-address=\(web)", "--log.level=warn",
        ], log: pki.dir + "/prometheus.log", launcher: [prometheus])
        try server.start()
        defer { server.terminate() }

        // Load: 20 batches of readings through member 1 (forwarded to the leader if it is not).
        let client = ChainClient(try await GridConnection.connect(to: "127.0.0.1:\(ports[0])", certificate: col.cert, key: col.key, ca: pki.caCert))
        let signer = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        var height: UInt64 = 0
        var sent = 0
        let loadEnd = ContinuousClock.now + .seconds(60)
        while sent < 20, ContinuousClock.now < loadEnd {
            var readings: [Reading] = []
            for m in 0..<10 {
                var r = Reading()
                r.meterId = "m\(m)"
                r.timestampMs = 1_700_000_000_000 + Int64(sent) * 900_000
                r.energyTotal = UInt64(sent * 10 + m)
                readings.append(r)
            }
            do {
                let response = try await client.submitReadings(
                    signer.sign(signer.readingsPayload(chainID: "d1", batchID: "b\(sent)", readings: readings)), timeout: .seconds(5))
                height = max(height, response.location?.height ?? 0)
                sent += 1
            } catch {
                try await Task.sleep(for: .milliseconds(100))  // the group is still electing
            }
        }
        await client.rpc.close()
        XCTAssertEqual(sent, 20, "the load was acknowledged")

        // Prometheus' view: all three targets up, every replica at the acknowledged height,
        // exactly one leader, the calls counted, the peers' lag reported by the leader.
        func scalar(_ query: String) async -> Double? {
            let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            guard let answer = try? await PrometheusText.get("http://\(web)/api/v1/query?query=\(encoded)"), answer.status == 200,
                  let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                  let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let value = result.first?["value"] as? [Any], let text = value.last as? String
            else { return nil }
            return Double(text)
        }
        func eventually(_ what: String, _ query: String, _ accept: @escaping (Double) -> Bool) async {
            var last: Double?
            let ok = await NodeProcess.poll(timeout: .seconds(40)) {
                last = await scalar(query)
                return last.map(accept) ?? false
            }
            XCTAssertTrue(ok, "\(what): \(query) = \(last.map { "\($0)" } ?? "no answer"); Prometheus log: \(server.output.suffix(1500))")
        }
        await eventually("three targets up", "count(up{job=\"gridledger\"} == 1)") { $0 == 3 }
        await eventually("three replicas report d1", "count(gridledger_chain_height{chain=\"d1\"})") { $0 == 3 }
        await eventually("every replica at height \(height)", "min(gridledger_chain_height{chain=\"d1\"})") { $0 >= Double(height) }
        await eventually("exactly one leader", "sum(gridledger_raft_role{chain=\"d1\",role=\"leader\"})") { $0 == 1 }
        await eventually("one term on every replica", "max(gridledger_raft_term{chain=\"d1\"}) - min(gridledger_raft_term{chain=\"d1\"})") { $0 == 0 }
        await eventually("the leader reports two peers' lag", "count(gridledger_raft_peer_lag_entries{chain=\"d1\"})") { $0 >= 2 }
        await eventually("every replica committed the blocks", "min(gridledger_blocks_committed_total{chain=\"d1\"})") { $0 >= Double(height) }
        await eventually("every replica timed its Raft log writes", "min(gridledger_raft_log_persist_duration_seconds_count{chain=\"d1\"})") { $0 >= 1 }
        await eventually("the calls counted", "sum(gridledger_rpc_calls_total{method=\"\(GridMethod.Ingest.submitReadings)\",status=\"OK\"})") { $0 >= 20 }
        await eventually("every replica ready (no chain not serving)", "min(gridledger_chain_serving{chain=\"d1\"})") { $0 == 1 }
    }

    /// `prometheus` on PATH (or Debian's /usr/bin/prometheus); in CI its absence fails the test.
    static func prometheusExecutable() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        if let dir = path.first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/prometheus") }) { return dir + "/prometheus" }
        let message = "prometheus is not installed (Debian package prometheus; scripts/setup installs it)"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw NodeProcess.MustRunError(message: message + " (CI: this test must run)") }
        throw XCTSkip(message)
    }
}
