/// The role a party holds in a GridLedger deployment, read from the subject OU of its
/// certificate. The set is closed: a certificate with any other OU is not accepted.
public enum Role: String, Sendable, CaseIterable, Codable {
    case node, collector, marketing, bank, finance, device, ops, admin
}
