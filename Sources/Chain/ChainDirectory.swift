/// Where a node keeps one chain: `<data dir>/chains/<chain id>` holds the chain's store
/// (`chain.ldb`) and, with members, its Raft log (`raft.ldb`).
package enum ChainDirectory {
    package static func path(dataDirectory: String, chainID: String) -> String {
        dataDirectory + "/chains/" + chainID
    }
}
