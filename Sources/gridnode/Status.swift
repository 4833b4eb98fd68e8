import ArgumentParser
import Foundation
import Node

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Call Ops.GetStatus and print the answer as JSON.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        do {
            let status = try await Ops.getStatus(
                address: client.addr, certificate: client.cert, key: client.key, ca: client.ca,
                serverName: client.serverName, timeoutMs: client.timeout)
            print(status.jsonString)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
