import ArgumentParser
import Foundation
import Chain
import Node

struct Rebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set a stopped replica's chain aside so that it rejoins empty and is rebuilt from its peers.",
        discussion: """
            For a replica that halted on a Raft log or store the chain cannot apply (`gridnode verify` \
            names the problem). The chain's directory is moved to <chain>.broken-<time> and kept. Then, \
            on the chain's leader, as admin: remove the member, add it again (a learner), start this \
            node with the same flags plus --join, and promote it once it has caught up \
            (Docs/chain.md, "Rebuilding a replica").
            """)
    @Option(help: "The stopped node's data directory.")
    var data: String
    @Option(help: "The chain to rebuild.")
    var chain: String

    func run() throws {
        let inconsistency = (try? ChainVerifier.verify(dataDirectory: data, chainID: chain))?.firstInconsistency
        let aside = try ReplicaRebuild.moveAside(dataDirectory: data, chainID: chain)
        print("chain \(chain) moved aside to \(aside)\(inconsistency.map { " (verify said: \($0))" } ?? "")")
        print("""
            next, on the chain's leader as admin (python -m gridledger or gridctl):
              admin remove --chain \(chain) --node ID
              admin add-member --chain \(chain) --node ID --name CN --address HOST:PORT [--pin sha256:HEX]
            then start this node with its usual flags plus --join, and once it has caught up:
              admin promote --chain \(chain) --node ID
            """)
    }
}
