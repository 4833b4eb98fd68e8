import GridProto
import Wire

/// `Ops.GetStatus`: what an operator asks a node. Roles `ops` and `admin` only.
struct OpsService: Sendable {
    static let getStatusMethod = "/gridledger.Ops/GetStatus"

    let node: GridNode

    func register(in router: inout RPCRouter) {
        router.unary(Self.getStatusMethod, roles: [.ops, .admin]) { [node] (_: GetStatusRequest, ctx) in
            var status = node.status()
            status.caller = CallerIdentity(
                name: ctx.peer.name, role: ctx.peer.role.rawValue, district: ctx.peer.district ?? "", serial: ctx.peer.serial)
            return status
        }
    }
}
