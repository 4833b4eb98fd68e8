import Consensus

/// The Raft shell's network: hands a `Ready`'s messages to their recipients. Sending is
/// best effort (Raft tolerates loss, duplication and reordering); a peer that cannot be
/// reached is reported back to the driver by the implementation. Today's implementation is
/// `RaftTransport` (one `Raft.Send` stream per peer over mutual TLS).
protocol RaftNetwork: Sendable {
    func send(_ messages: [Message])
}
