import GridProto

/// The texts of notices for people (DOMAIN.md "Prepaid fee control": SMS to the customer,
/// formal notices to the grid worker), rendered from templates that are chain parameters.
///
/// A district uses the language of the last `NoticeTemplates` parameter it took, zh-CN until
/// one arrives. The built-in catalogue below gives every (kind, recipient) a text in zh-CN
/// and en; a template in the parameter replaces the built-in one of its kind and recipient.
/// Placeholders: {account}, {meter}, {balance} (yuan with two decimals), {state}.
enum NoticeText {
    static let languages = ["zh-CN", "en"]
    static let defaultLanguage = "zh-CN"
    static let placeholders = ["account", "meter", "balance", "state"]
    /// Longest template accepted, UTF-8 bytes: the clients' 500 characters at up to four
    /// bytes each (a few SMS).
    static let maxTemplateBytes = 2000

    /// The built-in catalogue: (kind, recipient) → text, per language.
    private static func builtIn(_ kind: NoticeKind, _ recipient: Prepaid.Recipient, language: String) -> String {
        let zh = language != "en"
        switch (kind, recipient) {
        case (.warning1, _):
            return zh ? "尊敬的客户，您的户号{account}电费余额为{balance}元，余额不足，请及时充值。"
                : "Account {account}: your balance is {balance} CNY and running low. Please top up."
        case (.warning2, _):
            return zh ? "尊敬的客户，您的户号{account}电费余额为{balance}元，请尽快充值，否则将停止供电。"
                : "Account {account}: your balance is {balance} CNY. Supply will be cut unless you top up."
        case (.disconnect, _):
            return zh ? "尊敬的客户，您的户号{account}因欠费（余额{balance}元）已停止供电，充值后即可恢复供电。"
                : "Account {account}: supply has been cut for arrears (balance {balance} CNY). Top up to reconnect."
        case (.formalDisconnect, _):
            return zh ? "停电通知：户号{account}，电能表{meter}，余额{balance}元，已因欠费停电。"
                : "Formal disconnect notice: account {account}, meter {meter}, balance {balance} CNY, cut for arrears."
        case (.reconnect, .customer):
            return zh ? "尊敬的客户，您的户号{account}已缴费，余额{balance}元，正在恢复供电。"
                : "Account {account}: payment received, balance {balance} CNY. Supply is being restored."
        case (.reconnect, .gridWorker):
            return zh ? "复电通知：户号{account}，电能表{meter}，余额{balance}元，请恢复供电。"
                : "Reconnect notice: account {account}, meter {meter}, balance {balance} CNY: restore supply."
        default:
            return zh ? "户号{account}：余额{balance}元，状态{state}。" : "Account {account}: balance {balance} CNY, state {state}."
        }
    }

    static func recipientName(_ r: Prepaid.Recipient) -> String { r == .customer ? "customer" : "grid_worker" }

    /// Throws INVALID_ARGUMENT unless the language is known and every template names a notice
    /// kind, a recipient ("customer", "grid_worker") and a non-empty text
    /// of at most 2,000 bytes whose placeholders are known; a (kind, recipient) may appear once.
    static func validate(_ t: NoticeTemplates) throws {
        func fail(_ why: String) -> ContractRejection { .invalidArgument("notice templates: \(why)") }
        guard languages.contains(t.language) else { throw fail("language must be one of \(languages.joined(separator: ", "))") }
        var seen = Set<String>()
        for (i, template) in t.templates.enumerated() {
            guard (1...5).contains(template.kind.rawValue) else {
                throw fail("template \(i): unknown notice kind")
            }
            guard template.recipient == "customer" || template.recipient == "grid_worker" else {
                throw fail("template \(i): recipient must be customer or grid_worker")
            }
            guard seen.insert("\(template.kind.rawValue)/\(template.recipient)").inserted else {
                throw fail("template \(i): a second text for the same kind and recipient")
            }
            guard !template.text.isEmpty, template.text.utf8.count <= maxTemplateBytes else {
                throw fail("template \(i): text must have 1 to \(maxTemplateBytes) bytes")
            }
            for case .placeholder(let name) in try pieces(template.text) where !placeholders.contains(name) {
                throw fail("template \(i): unknown placeholder {\(name.prefix(32))}; use \(placeholders.map { "{\($0)}" }.joined(separator: " "))")
            }
        }
    }

    /// A template's pieces: literal text and placeholder names, in order.
    enum Piece: Equatable {
        case text(String)
        case placeholder(String)
    }

    /// `text` split into literal text and `{name}` placeholders; throws INVALID_ARGUMENT on
    /// an unclosed, unopened or nested brace.
    static func pieces(_ text: String) throws -> [Piece] {
        var pieces: [Piece] = []
        var literal = ""
        var name: String?
        for c in text {
            if c == "{" {
                guard name == nil else { throw ContractRejection.invalidArgument("notice templates: nested '{'") }
                if !literal.isEmpty { pieces.append(.text(literal)) }
                literal = ""
                name = ""
            } else if c == "}" {
                guard let n = name else { throw ContractRejection.invalidArgument("notice templates: '}' without '{'") }
                pieces.append(.placeholder(n))
                name = nil
            } else if name != nil {
                name!.append(c)
            } else {
                literal.append(c)
            }
        }
        guard name == nil else { throw ContractRejection.invalidArgument("notice templates: unclosed '{'") }
        if !literal.isEmpty { pieces.append(.text(literal)) }
        return pieces
    }

    /// The language and text of a notice for `account`, from the district's templates.
    static func render(
        _ kind: NoticeKind, _ recipient: Prepaid.Recipient, account: Account, state: some ContractState
    ) throws -> (language: String, text: String) {
        let templates = try state.message(NoticeTemplates.self, ContractKeys.noticeTemplates)
        let language = templates?.language ?? defaultLanguage
        let name = recipientName(recipient)
        let template = templates?.templates.first { $0.kind == kind && $0.recipient == name }?.text
            ?? builtIn(kind, recipient, language: language)
        let values = [
            "account": account.account, "meter": account.meterId, "balance": yuan(account.balanceFen),
            "state": stateName(account.state, language: language),
        ]
        // Stored templates were validated when taken; a built-in one is well formed.
        var out = ""
        for piece in try pieces(template) {
            switch piece {
            case .text(let text): out += text
            case .placeholder(let name): out += values[name] ?? ""
            }
        }
        return (language, out)
    }

    /// "12.34" / "-0.05" from fen.
    static func yuan(_ fen: Int64) -> String {
        let m = fen.magnitude
        let cents = m % 100
        return "\(fen < 0 ? "-" : "")\(m / 100).\(cents < 10 ? "0" : "")\(cents)"
    }

    static func stateName(_ s: AccountState, language: String) -> String {
        let zh = language != "en"
        switch s {
        case .normal: return zh ? "正常" : "normal"
        case .warning1: return zh ? "一级预警" : "warning 1"
        case .warning2: return zh ? "二级预警" : "warning 2"
        case .disconnected: return zh ? "已停电" : "disconnected"
        default: return "\(s.rawValue)"
        }
    }
}
