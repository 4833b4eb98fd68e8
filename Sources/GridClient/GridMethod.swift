/// The one table of GridLedger's RPC method paths (Docs/wire-protocol.md, "Services").
///
/// Every place that names a method refers to this table: the node's services register
/// under these paths, `ChainClient` and the node's outbound calls (Raft, anchoring, leader
/// forwarding, block transfer) dial them, and the node's security-refusal classification
/// compares against them. A path is `/<package>.<Service>/<Method>`.
///
/// Invariant: the paths in `all` are distinct, and every method a `GridNode` registers is
/// in `all` (checked by `NodeTests`).
public enum GridMethod {
    /// `gridledger.Health`: liveness of the node (`""`) and of each chain (`chain/<id>`).
    public enum Health {
        public static let check = "/gridledger.Health/Check"
        public static let watch = "/gridledger.Health/Watch"
    }

    /// `gridledger.Ops`: the node's status (roles ops, admin).
    public enum Ops {
        public static let getStatus = "/gridledger.Ops/GetStatus"
    }

    /// `gridledger.Admin`: Raft membership and leadership (role admin).
    public enum Admin {
        public static let transferLeader = "/gridledger.Admin/TransferLeader"
        public static let addMember = "/gridledger.Admin/AddMember"
        public static let promoteMember = "/gridledger.Admin/PromoteMember"
        public static let removeMember = "/gridledger.Admin/RemoveMember"
    }

    /// `gridledger.Ingest`: signed transactions in.
    public enum Ingest {
        public static let submit = "/gridledger.Ingest/Submit"
        public static let submitReadings = "/gridledger.Ingest/SubmitReadings"
        public static let streamReadings = "/gridledger.Ingest/StreamReadings"
    }

    /// `gridledger.Query`: committed chain data out, and proofs.
    public enum Query {
        public static let getChainInfo = "/gridledger.Query/GetChainInfo"
        public static let getBlock = "/gridledger.Query/GetBlock"
        public static let getTransaction = "/gridledger.Query/GetTransaction"
        public static let getState = "/gridledger.Query/GetState"
        public static let getHistory = "/gridledger.Query/GetHistory"
        public static let listBlocks = "/gridledger.Query/ListBlocks"
        public static let subscribeBlocks = "/gridledger.Query/SubscribeBlocks"
        /// A district block's proof up to the main-chain block anchoring it (Docs/anchoring.md).
        public static let proveBlock = "/gridledger.Query/ProveBlock"
    }

    /// `gridledger.Anchor`: district members sign their leader's anchors (role node).
    public enum Anchor {
        public static let sign = "/gridledger.Anchor/Sign"
    }

    /// `gridledger.FeeControl`: the fee-control contract's records (Docs/contracts.md).
    public enum FeeControl {
        public static let getAccount = "/gridledger.FeeControl/GetAccount"
        public static let listAccounts = "/gridledger.FeeControl/ListAccounts"
        public static let listCommands = "/gridledger.FeeControl/ListCommands"
        /// Main chain only: what a district's anchors carried up.
        public static let getDistrictResults = "/gridledger.FeeControl/GetDistrictResults"
    }

    /// `gridledger.Control`: control commands to a district's devices.
    public enum Control {
        public static let subscribeCommands = "/gridledger.Control/SubscribeCommands"
    }

    /// `gridledger.Notices`: notices issued to customers.
    public enum Notices {
        public static let subscribe = "/gridledger.Notices/Subscribe"
    }

    /// `gridledger.Raft`: the client-streaming Raft traffic between members (role node).
    public enum Raft {
        public static let send = "/gridledger.Raft/Send"
    }

    /// Every method path above, in the order of this file.
    public static let all: [String] = [
        Health.check, Health.watch, Ops.getStatus,
        Admin.transferLeader, Admin.addMember, Admin.promoteMember, Admin.removeMember,
        Ingest.submit, Ingest.submitReadings, Ingest.streamReadings,
        Query.getChainInfo, Query.getBlock, Query.getTransaction, Query.getState, Query.getHistory,
        Query.listBlocks, Query.subscribeBlocks, Query.proveBlock,
        Anchor.sign,
        FeeControl.getAccount, FeeControl.listAccounts, FeeControl.listCommands, FeeControl.getDistrictResults,
        Control.subscribeCommands, Notices.subscribe,
        Raft.send,
    ]

    /// The service part of a method path: `gridledger.Ingest` for `/gridledger.Ingest/Submit`
    /// (the names `Health/Check` answers for). Nil when `path` is not `/<service>/<method>`.
    public static func service(of path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return String(parts[1])
    }
}
