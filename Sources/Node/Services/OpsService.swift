import Chain
import GridClient
import GridProto
import Wire

/// `Ops.GetStatus`: what an operator asks a node. Roles `ops` and `admin` only: the router
/// refuses the others, and the handler asks `ReadPolicy` (node status) all the same.
struct OpsService: Sendable {
    let node: GridNode
    let gate: ReadGate

    func register(in router: inout RPCRouter) {
        router.unary(GridMethod.Ops.getStatus, roles: [.ops, .admin]) { [node, gate] (_: GetStatusRequest, ctx) in
            try gate.check(ctx, nil, .nodeStatus)
            var status = node.status()
            status.caller = CallerIdentity(
                name: ctx.peer.name, role: ctx.peer.role.rawValue, district: ctx.peer.district ?? "", serial: ctx.peer.serial)
            return status
        }
    }
}
