import GridProto
@testable import Node
import XCTest

/// `Control.SubscribeCommands` replays the pending commands in the order they were issued:
/// block height first, then the number within the block. Their state keys sort as text,
/// where "d1-10-0" comes before "d1-9-0".
final class CommandOrderTests: XCTestCase {
    func testIssueOrderIsHeightThenNumberNotText() {
        func command(_ height: UInt64, _ n: Int) -> ControlCommand {
            ControlCommand(commandId: "d1-\(height)-\(n)", issuedHeight: height)
        }
        let issued = [command(9, 0), command(9, 1), command(9, 10), command(10, 0), command(100, 2)]
        let byText = issued.sorted { $0.commandId < $1.commandId }
        XCTAssertNotEqual(byText.map(\.commandId), issued.map(\.commandId))
        let byIssue = byText.sorted { FeeControlService.issueOrder($0) < FeeControlService.issueOrder($1) }
        XCTAssertEqual(byIssue.map(\.commandId), issued.map(\.commandId))
    }
}
