/// The rule for party names and districts written into certificate subjects:
/// 1 to 64 characters from `[A-Za-z0-9._-]`.
///
/// The rule keeps subjects unambiguous in the `CN=…/OU=…/L=…` text form and safe as file
/// names (`<name>.key`, `<name>.crt`).
enum PartyNameRules {
    static let maximumLength = 64

    /// Throws `PKIError.invalidName` naming `field` when `value` breaks the rule.
    static func validate(_ value: String, field: String) throws {
        let bytes = Array(value.utf8)
        if bytes.isEmpty {
            throw PKIError.invalidName(field: field, value: value, reason: "must not be empty")
        }
        if bytes.count > maximumLength {
            throw PKIError.invalidName(field: field, value: value, reason: "longer than \(maximumLength) characters")
        }
        if let bad = bytes.first(where: { !isAllowed($0) }) {
            let shown = bad < 0x80 ? String(UnicodeScalar(bad)) : "non-ASCII"
            throw PKIError.invalidName(field: field, value: value, reason: "character '\(shown)' is not in [A-Za-z0-9._-]")
        }
        if value == "." || value == ".." {
            throw PKIError.invalidName(field: field, value: value, reason: "must not be '.' or '..'")
        }
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
