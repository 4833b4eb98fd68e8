import GridProto
import XCTest

@testable import Contracts

/// Issue 10: "Notices are texts for people: their templates are chain parameters with a
/// language (zh-CN by default, en available)". DOMAIN.md "Prepaid fee control": "≤ alarm1 →
/// warning 1 (SMS to the customer, alarm-on command)".
final class NoticeTemplateTests: XCTestCase {
    private func warningNotice(_ templates: NoticeTemplates?) throws -> Notice {
        var h = Harness()
        try h.param(.tariff(flatTariff()))
        try h.param(.thresholds(PrepaidTests.thresholds))
        if let templates { try h.param(.noticeTemplates(templates)) }
        try h.param(.customer(customer("a1", meter: "m1", opening: 5_010)))
        let t = cst(2025, 1, 8)
        try h.read([reading("m1", t, 0)])
        let e = try h.read([reading("m1", t + interval, 20)])  // 4,990 fen ≤ alarm1
        XCTAssertEqual(try h.noticeKinds(e), [.warning1])
        return try h.notice(e.noticeIDs[0])
    }

    func testNoticesAreInChineseByDefault() throws {
        let n = try warningNotice(nil)
        XCTAssertEqual(n.language, "zh-CN")
        XCTAssertTrue(n.text.contains("a1"), n.text)
        XCTAssertTrue(n.text.contains("49.90元"), n.text)
        XCTAssertTrue(n.text.contains("充值"), n.text)
    }

    func testEnglishOnRequest() throws {
        let n = try warningNotice(NoticeTemplates(language: "en"))
        XCTAssertEqual(n.language, "en")
        XCTAssertEqual(n.text, "Account a1: your balance is 49.90 CNY and running low. Please top up.")
    }

    func testTemplateReplacesTheBuiltInText() throws {
        let n = try warningNotice(NoticeTemplates(language: "zh-CN", templates: [
            NoticeTemplate(kind: .warning1, recipient: "customer", text: "户号{account}（表{meter}）余额{balance}元，状态：{state}"),
        ]))
        XCTAssertEqual(n.text, "户号a1（表m1）余额49.90元，状态：一级预警")
    }

    func testBadTemplatesRefused() throws {
        var h = Harness()
        for bad in [
            NoticeTemplates(language: "fr"),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .warning1, recipient: "customer", text: "{name}")]),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .warning1, recipient: "customer", text: "{account")]),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .unspecified, recipient: "customer", text: "x")]),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .warning1, recipient: "bank", text: "x")]),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .warning1, recipient: "customer", text: "")]),
            NoticeTemplates(language: "en", templates: [NoticeTemplate(kind: .warning1, recipient: "customer", text: String(repeating: "x", count: 2001))]),
            NoticeTemplates(language: "en", templates: [
                NoticeTemplate(kind: .warning1, recipient: "customer", text: "a"), NoticeTemplate(kind: .warning1, recipient: "customer", text: "b"),
            ]),
        ] {
            XCTAssertThrowsError(try h.param(.noticeTemplates(bad)), "\(bad)") { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        }
        XCTAssertNil(h.state.entries[ContractKeys.noticeTemplates])
    }
}
