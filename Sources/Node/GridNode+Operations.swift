import Chain
import GridClient
import NIOCore
import NIOHTTP1

/// The node's operations listener (`metrics_listen`): Prometheus metrics and the liveness
/// and readiness probes (Docs/operations.md).
extension GridNode {
    /// The address of the `/metrics`, `/livez`, `/readyz` listener while it runs.
    public var metricsAddress: SocketAddress? { metricsServer.withLock { $0?.address } }

    /// Whether the node is ready for traffic, and if not, why (one line per cause).
    ///
    /// Ready = the node serves (started, not stopping: Health `""` is SERVING) and every
    /// chain it serves is open and applying (its `ChainHealth`, what Health reports for
    /// `chain/<id>`, is serving) and, for a chain with a Raft group, has a known leader.
    /// During an election a chain is not ready even though Health still says SERVING for
    /// the grace period (`ChainHealth`): readiness is the stricter of the two.
    public func readiness() -> (ready: Bool, reasons: [String]) {
        var reasons: [String] = []
        if localAddress == nil || health.status(of: "") != .serving {
            reasons.append("node: not serving (starting or stopping)")
        }
        for (id, reason) in chainSet.closed {
            reasons.append("chain \(id): closed: \(reason)")
        }
        for runtime in chainSet.all {
            let id = runtime.ledger.chainID
            let chainHealth = runtime.ledger.health()
            if !chainHealth.serving {
                reasons.append("chain \(id): \(chainHealth.reason)")
            } else if let raft = runtime.raft, raft.driver.status.leader == 0 {
                reasons.append("chain \(id): no Raft leader known yet")
            }
        }
        return (reasons.isEmpty, reasons)
    }

    /// The chains whose anchor and downlink series exist (configured with a main chain).
    private var metricsChainRoles: NodeMetrics.ChainRoles {
        var roles = NodeMetrics.ChainRoles()
        for (chain, id) in zip(configuration.allChains, chainIDs) {
            guard let link = chain.mainChain else { continue }
            roles.anchoring.insert(id)
            if link.downlink { roles.downlink.insert(id) }
        }
        return roles
    }

    /// The answer of the operations listener to GET `path`.
    func operationsResponse(_ path: String) -> MetricsServer.Response {
        let text = "text/plain; charset=utf-8"
        switch path {
        case "/metrics":
            return .init(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.scrape(status(), chains: metricsChainRoles))
        case "/livez":
            return .init(status: .ok, contentType: text, body: Array("ok\n".utf8))
        case "/readyz":
            let (ready, reasons) = readiness()
            return ready
                ? .init(status: .ok, contentType: text, body: Array("ready\n".utf8))
                : .init(status: .serviceUnavailable, contentType: text, body: Array(("not ready\n" + reasons.map { $0 + "\n" }.joined()).utf8))
        case "/":
            return .init(status: .ok, contentType: text, body: Array("GridLedger node \(nodeID): /metrics /livez /readyz\n".utf8))
        default:
            return .init(status: .notFound, contentType: text, body: Array("not found: /metrics /livez /readyz\n".utf8))
        }
    }

    /// Binds the operations listener when `metrics_listen` is set; throws when it cannot.
    func startMetricsServer() async throws {
        guard !configuration.metricsListen.isEmpty, metricsAddress == nil else { return }
        let (host, port) = try NodeConfiguration.address(configuration.metricsListen)
        let server = MetricsServer { [weak self] path in
            self?.operationsResponse(path)
                ?? .init(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: Array("node gone\n".utf8))
        }
        do {
            let address = try await server.start(host: host, port: port)
            metricsServer.withLock { $0 = (server, address) }
            logger.info("metrics listener serving", metadata: ["metrics_listen": "\(Self.describe(address))"])
        } catch {
            await server.stop()
            throw ConfigurationError("cannot listen on \(configuration.metricsListen) (metrics_listen): \(Self.describe(bindError: error))")
        }
    }

    /// Closes the operations listener, if it runs.
    func stopMetricsServer() async {
        let running = metricsServer.withLock { m in defer { m = nil }; return m }
        await running?.server.stop()
    }
}
