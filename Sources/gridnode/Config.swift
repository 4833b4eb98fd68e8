import ArgumentParser
import Node

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Configuration files.", subcommands: [Default.self])

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the annotated default configuration (YAML).")
        func run() {
            print(NodeConfiguration.annotatedDefault, terminator: "")
        }
    }
}
