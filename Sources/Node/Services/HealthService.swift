import GridBase
import GridClient
import GridProto
import Identity
import Synchronization
import Wire

/// Serving status per service name, after grpc.health.v1: `Health.Check` reads it,
/// `Health.Watch` follows it.
///
/// Thread safety: all state behind one mutex; callable from any task.
/// Invariant: a watcher's buffer holds at most the newest status (bounded memory however
/// slowly a watcher reads).
package final class HealthService: Sendable {
    private struct State {
        var statuses: [String: ServingStatus] = [:]
        var watchers: [Int: (service: String, continuation: AsyncStream<ServingStatus>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Sets the status of `service` ("" is the node as a whole) and tells its watchers.
    package func set(_ service: String, _ status: ServingStatus) {
        state.withLock { s in
            guard s.statuses[service] != status else { return }
            s.statuses[service] = status
            for watcher in s.watchers.values where watcher.service == service {
                watcher.continuation.yield(status)
            }
        }
    }

    /// Ends every Watch call (their streams finish normally), e.g. before shutdown.
    package func finishWatchers() {
        let watchers = state.withLock { s in
            let all = s.watchers.values.map(\.continuation)
            s.watchers.removeAll()
            return all
        }
        for w in watchers { w.finish() }
    }

    package func status(of service: String) -> ServingStatus? {
        state.withLock { $0.statuses[service] }
    }

    /// The statuses of `service`: the current one at once, then every change.
    func watch(_ service: String) -> AsyncStream<ServingStatus> {
        let (stream, continuation) = AsyncStream<ServingStatus>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s in
            let id = s.nextWatcher
            s.nextWatcher += 1
            s.watchers[id] = (service, continuation)
            continuation.yield(s.statuses[service] ?? .serviceUnknown)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Adds `Health.Check` and `Health.Watch` (every role may call them: `ReadPolicy` gives
    /// health, which holds no chain data, to every role).
    package func register(in router: inout RPCRouter) {
        router.unary(GridMethod.Health.check, roles: Set(Role.allCases)) { [self] (request: HealthCheckRequest, _) in
            guard let status = status(of: request.service) else {
                throw RPCError(.notFound, "unknown service \(Bounded.quote(request.service))")
            }
            return HealthCheckResponse(status: status)
        }
        router.serverStreaming(GridMethod.Health.watch, roles: Set(Role.allCases)) {
            [self] (request: HealthCheckRequest, out: ResponseWriter<HealthCheckResponse>, _) in
            for await status in watch(request.service) {
                try await out.send(HealthCheckResponse(status: status))
            }
        }
    }
}
