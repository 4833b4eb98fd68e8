import ArgumentParser
import Node

struct CA: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deployment PKI: make a CA, issue node and client certificates.",
        subcommands: [Init.self, Issue.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a deployment CA (P-256): DIR/ca.key (0600) and DIR/ca.crt.")
        @Option(help: "Directory to write the CA into.")
        var out: String
        @Option(help: "CA common name.")
        var name = "GridLedger Deployment CA"
        @Option(help: "Validity in days.")
        var days = 3650

        func run() throws {
            let issued = try PKI.initializeCA(outDirectory: out, commonName: name, days: days)
            print("CA certificate: \(issued.certificatePath)")
            print("CA key:         \(issued.privateKeyPath) (mode 0600)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a key and certificate for a node or a client party.")
        @Option(help: "CA directory (from `ca init`).")
        var ca: String
        @Option(help: "node | collector | marketing | bank | finance | device | ops | admin")
        var role: String
        @Option(help: "Party name (certificate CN), [A-Za-z0-9._-]{1,64}.")
        var name: String
        @Option(help: "District id, for district parties.")
        var district: String?
        @Option(help: "Extra subjectAltName for a node: DNS:name or IP:addr (repeatable).")
        var san: [String] = []
        @Option(help: "Validity in days.")
        var days = 365
        @Option(help: "Directory to write NAME.key (0600), NAME.crt and ca.crt into.")
        var out: String

        func run() throws {
            guard let role = PKI.role(named: role) else {
                throw ValidationError("unknown role '\(role)'; one of: \(PKI.roleNames.joined(separator: ", "))")
            }
            let issued = try PKI.issue(caDirectory: ca, role: role, name: name, district: district, subjectAltNames: san, days: days, outDirectory: out)
            print("certificate: \(issued.certificatePath)")
            print("key:         \(issued.privateKeyPath) (mode 0600)")
            print("CA:          \(issued.caCertificatePath)")
            if let identity = issued.identity {
                // What a chain's member list pins the node to (--member ID=NAME@HOST:PORT#sha256:HEX).
                print("public key:  sha256:\(identity.publicKeySHA256)")
            }
        }
    }
}
