import ArgumentParser
import Node

@main
struct GridNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gridnode",
        abstract: "GridLedger ledger node for smart electricity grids.",
        version: "\(GridLedgerVersion.string) (chain format \(GridLedgerVersion.chainFormat))",
        subcommands: [Start.self, Status.self, Verify.self, Rebuild.self, Simulate.self, CA.self, Config.self, Bench.self]
    )
}

/// Certificate, key and CA of the calling party, shared by every client subcommand.
struct ClientOptions: ParsableArguments {
    @Option(help: "Node address, host:port.")
    var addr = "127.0.0.1:7443"
    @Option(help: "Client certificate (PEM).")
    var cert: String
    @Option(help: "Client private key (PEM).")
    var key: String
    @Option(help: "Deployment CA certificate (PEM).")
    var ca: String
    @Option(help: "Name the server certificate must carry (default: the host of --addr).")
    var serverName: String?
    @Option(help: "Call deadline in milliseconds.")
    var timeout = 10_000
}
