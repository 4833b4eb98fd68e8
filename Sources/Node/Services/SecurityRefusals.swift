import GridClient
import Synchronization

/// How many calls the node refused for security reasons since it started, by kind (issue 11:
/// "Security refusals leave no trace ... Log each ... and count them"). Each refusal is also
/// logged, rate limited, where it happens (`RefusalLog`, `ReadGate`, the RPC layer's role
/// check); these counts are what `Ops.GetStatus` reports (`security_refusals`) for metrics.
///
/// Thread safety: behind a mutex; the set of kinds is small and fixed by the code.
final class SecurityRefusals: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        /// A read refused by role or district (`ReadGate`).
        case read
        /// A transaction with a signature that does not verify, or from an unknown signer.
        case signature
        /// A submission refused by role, district or carrier (relay).
        case submission
        /// A Raft message or anchor signature request from a peer that is not the member it claims.
        case membership
        /// Any other security refusal.
        case other
    }

    private let counts = Mutex<[Kind: UInt64]>([:])

    func record(_ kind: Kind) { counts.withLock { $0[kind, default: 0] += 1 } }

    /// Every kind with its count (zero included), in declaration order.
    var snapshot: [(kind: Kind, count: UInt64)] {
        let c = counts.withLock { $0 }
        return Kind.allCases.map { ($0, c[$0] ?? 0) }
    }

    /// The kind of a refusal logged by `RefusalLog`, from its method and status.
    static func kind(method: String, unauthenticated: Bool) -> Kind {
        if method == GridMethod.Raft.send || method == GridMethod.Anchor.sign { return .membership }
        if [GridMethod.Ingest.submit, GridMethod.Ingest.submitReadings, GridMethod.Ingest.streamReadings].contains(method) {
            return unauthenticated ? .signature : .submission
        }
        return .other
    }
}
