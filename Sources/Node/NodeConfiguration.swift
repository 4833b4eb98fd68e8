import Chain
import Foundation
import GridClient
import GridCrypto
import GridTLS
import Identity
import Wire
import Yams

/// Everything a node needs to run, as read from a YAML file (`gridnode config default`
/// prints an annotated one) and overridden by `gridnode start` flags.
///
/// Every field has a default, so a file may name only what it changes. Durations are in
/// milliseconds, sizes in bytes.
public struct NodeConfiguration: Codable, Sendable, Equatable {
    /// Node id reported by `Ops.GetStatus`; empty means the CN of the node's certificate.
    public var nodeID = ""
    /// `host:port` to listen on; port 0 picks a free port.
    public var listen = "127.0.0.1:7443"
    /// Directory for this node's data; created if missing, locked while the node runs.
    public var dataDir = "./var/node"
    public var tls = TLS()
    public var rpc = RPC()
    /// The chain this node serves (the single-chain shorthand; flags edit it).
    public var chain = Chain()
    /// Several chains on one node (a Fabric peer in several channels); when set, `chain` is
    /// ignored and every entry needs an `id`.
    public var chains: [Chain] = []

    /// The chains to serve: `chains`, or the single `chain`.
    public var allChains: [Chain] { chains.isEmpty ? [chain] : chains }
    /// trace, debug, info, notice, warning, error, critical.
    public var logLevel = "info"
    /// "text" (swift-log's lines) or "json" (one object per line: `JSONLogHandler`).
    public var logFormat = "text"
    /// `host:port` of the plain-HTTP operations listener (`/metrics`, `/livez`, `/readyz`:
    /// Docs/operations.md); empty = none. No TLS and no authentication: keep it on loopback
    /// or a management network (Docs/security.md).
    public var metricsListen = ""

    public struct TLS: Codable, Sendable, Equatable {
        /// The node's certificate (`gridnode ca issue --role node`).
        public var cert = ""
        /// The certificate's private key (mode 0600).
        public var key = ""
        /// The deployment CA certificate: the only trust root.
        public var ca = ""
        public var handshakeTimeoutMs = 10_000

        public init() {}
    }

    public struct RPC: Codable, Sendable, Equatable {
        public var maxMessageBytes = 4 << 20
        public var maxConcurrentStreams = 256
        public var keepaliveIntervalMs = 30_000
        public var keepaliveTimeoutMs = 10_000
        public var idleTimeoutMs = 300_000
        public var shutdownGraceMs = 10_000
        /// Event loop threads; 0 means one per core.
        public var threads = 0
        /// Authenticated connections at once, all roles (lowered at start to fit the
        /// process's descriptor limit; the effective value is logged).
        public var maxConnections = 1024
        /// Of `maxConnections`, kept for roles node, ops and admin.
        public var reservedConnections = 64
        /// Authenticated connections of one certificate.
        public var maxConnectionsPerIdentity = 32
        /// Connections whose TLS handshake has not finished; more are closed at once.
        public var maxHandshakes = 128
        /// Node-wide ceiling of buffered request and response bytes (Docs/security.md).
        public var memoryBudgetBytes = 256 << 20

        public init() {}
    }

    public struct Chain: Codable, Sendable, Equatable {
        /// Chain id: a district id for a district chain. Empty = the node certificate's
        /// district, or "main" when it has none.
        public var id = ""
        public var maxBlockTransactions = 1000
        public var maxBlockBytes = 2 << 20
        public var maxBlockDelayMs = 100
        public var maxPendingTransactions = 20_000
        public var maxBatchReadings = 10_000
        /// Hash suite of a new chain: "sha256" or "sm3" (an existing chain keeps its own).
        public var hashSuite = "sha256"
        /// This node's id in the chain's Raft group (required with `members`).
        public var raftID: UInt64 = 0
        /// The Raft group of the chain; empty = solo ordering (this node cuts blocks alone).
        public var members: [Member] = []
        /// One Raft tick; the election timeout is `electionTicks` ticks (randomized up to 2×).
        public var tickMs = 50
        public var electionTicks = 10
        /// The Raft log is compacted once this many applied entries pile up; a member that
        /// falls further behind catches up by block transfer.
        public var compactEvery = 256
        /// Start as a new member of an existing group (no bootstrap; the leader adds it with
        /// Admin.AddMember and it catches up by block transfer).
        public var join = false
        /// "district" (a district side chain) or "main" (the cloud main chain: district
        /// registry, anchors, parameters for the downlink).
        public var kind = "district"
        /// A district chain's link to the main chain: anchoring up, parameters down. nil =
        /// the district does not anchor.
        public var mainChain: MainChainLink?

        /// Where a district chain's main chain is and how often it anchors (Docs/anchoring.md).
        public struct MainChainLink: Codable, Sendable, Equatable {
            /// The main chain's id.
            public var id = "main"
            /// host:port of main-chain nodes (any member; followers forward to the leader).
            public var endpoints: [String] = []
            /// Anchor after this many new blocks ...
            public var anchorEveryBlocks = 20
            /// ... or when the oldest unanchored block (with more than receipts) is this old.
            public var anchorEveryMs = 5000
            /// Largest range one anchor covers (a district catching up anchors in steps).
            public var maxAnchorBlocks = 1000
            /// Follow the main chain's downlink (parameters addressed to this district).
            public var downlink = true

            public init(id: String = "main", endpoints: [String] = []) {
                self.id = id
                self.endpoints = endpoints
            }

            enum CodingKeys: String, CodingKey {
                case id, endpoints, anchorEveryBlocks = "anchor_every_blocks", anchorEveryMs = "anchor_every_ms"
                case maxAnchorBlocks = "max_anchor_blocks", downlink
            }

            public init(from decoder: Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                let d = Self()
                id = try c.decodeIfPresent(String.self, forKey: .id) ?? d.id
                endpoints = try c.decodeIfPresent([String].self, forKey: .endpoints) ?? d.endpoints
                anchorEveryBlocks = try c.decodeIfPresent(Int.self, forKey: .anchorEveryBlocks) ?? d.anchorEveryBlocks
                anchorEveryMs = try c.decodeIfPresent(Int.self, forKey: .anchorEveryMs) ?? d.anchorEveryMs
                maxAnchorBlocks = try c.decodeIfPresent(Int.self, forKey: .maxAnchorBlocks) ?? d.maxAnchorBlocks
                downlink = try c.decodeIfPresent(Bool.self, forKey: .downlink) ?? d.downlink
                try rejectUnknownKeys(decoder, known: ["id", "endpoints", "anchor_every_blocks", "anchor_every_ms", "max_anchor_blocks", "downlink"], section: "chain.main_chain.")
            }
        }

        public struct Member: Codable, Sendable, Equatable {
            public var id: UInt64
            /// CN of the member's node certificate.
            public var name: String
            /// host:port the member listens on.
            public var address: String
            /// The member's key pin: SHA-256 of its node certificate's SubjectPublicKeyInfo, 64
            /// lower-case hex digits (`gridnode ca issue` prints it); "" = not pinned (then only
            /// role, district and CN bind it: Docs/security.md, "Raft membership").
            public var publicKeySHA256: String

            public init(id: UInt64, name: String, address: String, publicKeySHA256: String = "") {
                self.id = id
                self.name = name
                self.address = address
                self.publicKeySHA256 = publicKeySHA256
            }

            /// Parses `ID=NAME@HOST:PORT`, optionally followed by the key pin:
            /// `#sha256:HEX`, or `#cert:PATH` (the pin of the node certificate at PATH, whose
            /// CN must be NAME).
            public init(parsing text: String) throws {
                let usage = "member '\(text.prefix(200))' is not ID=NAME@HOST:PORT[#sha256:HEX|#cert:PATH]"
                var body = Substring(text)
                var pin = ""
                var certificate: (path: String, identity: PeerIdentity)?
                if let hash = text.firstIndex(of: "#") {
                    body = text[..<hash]
                    let suffix = String(text[text.index(after: hash)...])
                    if suffix.hasPrefix("cert:") {
                        let path = String(suffix.dropFirst(5))
                        let identity = try Self.identity(ofCertificate: path)
                        certificate = (path, identity)
                        pin = identity.publicKeySHA256
                    } else {
                        pin = try Self.normalizedPin(suffix)
                    }
                }
                let parts = body.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let id = UInt64(parts[0]), id > 0 else { throw ConfigurationError(usage) }
                let rest = parts[1].split(separator: "@", maxSplits: 1)
                guard rest.count == 2 else { throw ConfigurationError(usage) }
                _ = try NodeConfiguration.address(String(rest[1]))
                self.init(id: id, name: String(rest[0]), address: String(rest[1]), publicKeySHA256: pin)
                if let certificate, certificate.identity.name != name {
                    throw ConfigurationError("member \(id): certificate \(certificate.path) is for \(certificate.identity.name), not \(name)")
                }
            }

            /// A pin as written by an operator (`sha256:HEX` or bare `HEX`, any case) in its
            /// stored form, 64 lower-case hex digits; "" stays "" (not pinned).
            package static func normalizedPin(_ text: String) throws -> String {
                if text.isEmpty { return "" }
                let hex = (text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text).lowercased()
                guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                    throw ConfigurationError("key pin '\(text.prefix(100))' is not sha256: and 64 hex digits (`gridnode ca issue` prints it)")
                }
                return hex
            }

            /// The key pin of the node certificate at `path`.
            package static func pin(ofCertificate path: String) throws -> String {
                try identity(ofCertificate: path).publicKeySHA256
            }

            private static func identity(ofCertificate path: String) throws -> PeerIdentity {
                guard let pem = FileManager.default.contents(atPath: path) else {
                    throw ConfigurationError("cannot read certificate \(path)")
                }
                let identity: PeerIdentity
                do { identity = try PeerIdentity(certificatePEM: Array(pem)) } catch {
                    throw ConfigurationError("\(path): \(error)")
                }
                guard identity.role == .node else { throw ConfigurationError("\(path) is a \(identity.role.rawValue) certificate, not node") }
                return identity
            }

            enum CodingKeys: String, CodingKey {
                case id, name, address, publicKeySHA256 = "public_key_sha256"
            }

            public init(from decoder: Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                id = try c.decode(UInt64.self, forKey: .id)
                name = try c.decode(String.self, forKey: .name)
                address = try c.decode(String.self, forKey: .address)
                publicKeySHA256 = try Self.normalizedPin(c.decodeIfPresent(String.self, forKey: .publicKeySHA256) ?? "")
                try rejectUnknownKeys(decoder, known: ["id", "name", "address", "public_key_sha256"], section: "chain.members.")
            }
        }

        public init() {}

        var limits: LedgerLimits {
            var l = LedgerLimits()
            l.maxBlockTransactions = maxBlockTransactions
            l.maxBlockBytes = maxBlockBytes
            l.maxBlockDelay = .milliseconds(maxBlockDelayMs)
            l.maxPendingTransactions = maxPendingTransactions
            l.maxBatchReadings = maxBatchReadings
            return l
        }
    }

    public init() {}

    /// A node on loopback (any free port) with an issued node certificate and its data in
    /// `dataDir`: the benchmarks' and embedders' starting point.
    package static func loopback(_ certificate: IssuedCertificate, dataDir: String) -> NodeConfiguration {
        var c = NodeConfiguration()
        c.listen = "127.0.0.1:0"
        c.dataDir = dataDir
        c.tls.cert = certificate.certificatePath
        c.tls.key = certificate.privateKeyPath
        c.tls.ca = certificate.caCertificatePath
        return c
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", listen, dataDir = "data_dir", tls, rpc, chain, chains, logLevel = "log_level"
        case logFormat = "log_format", metricsListen = "metrics_listen"
    }

    /// Reads a YAML (or JSON, which is YAML) file. Unknown keys are errors, so a typo does
    /// not silently fall back to a default.
    public static func load(path: String) throws -> NodeConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try YAMLDecoder().decode(NodeConfiguration.self, from: text)
        } catch let error as ConfigurationError {
            throw ConfigurationError("\(path): \(error.message)")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }

    /// Checks values that have no meaningful default; returns the resolved listen address.
    package func validate() throws -> (host: String, port: Int) {
        for (name, value) in [("tls.cert", tls.cert), ("tls.key", tls.key), ("tls.ca", tls.ca)] where value.isEmpty {
            throw ConfigurationError("\(name) is required (a node always runs mutual TLS)")
        }
        guard rpc.maxMessageBytes >= 1024, rpc.maxMessageBytes <= 64 << 20 else {
            throw ConfigurationError("rpc.max_message_bytes must be between 1 KiB and 64 MiB")
        }
        if !chains.isEmpty {
            let ids = chains.map(\.id)
            guard !ids.contains(""), Set(ids).count == ids.count else {
                throw ConfigurationError("every entry of chains needs its own id")
            }
        }
        for chain in allChains {
            for (name, value) in [
                ("chain.max_block_transactions", chain.maxBlockTransactions), ("chain.max_block_bytes", chain.maxBlockBytes),
                ("chain.max_block_delay_ms", chain.maxBlockDelayMs), ("chain.max_pending_transactions", chain.maxPendingTransactions),
                ("chain.max_batch_readings", chain.maxBatchReadings),
            ] where value <= 0 {
                throw ConfigurationError("\(name) must be positive")
            }
            guard ["sha256", "sm3"].contains(chain.hashSuite) else {
                throw ConfigurationError("chain.hash_suite must be sha256 or sm3, not '\(chain.hashSuite)'")
            }
            if !chain.members.isEmpty {
                guard chain.members.contains(where: { $0.id == chain.raftID }) else {
                    throw ConfigurationError("chain.raft_id \(chain.raftID) is not one of chain.members")
                }
                guard Set(chain.members.map(\.id)).count == chain.members.count else {
                    throw ConfigurationError("chain.members has a duplicate id")
                }
                guard chain.tickMs > 0, chain.electionTicks >= 2, chain.compactEvery >= 1 else {
                    throw ConfigurationError("chain.tick_ms must be positive and chain.election_ticks at least 2")
                }
            }
            guard ["district", "main"].contains(chain.kind) else {
                throw ConfigurationError("chain.kind must be district or main, not '\(chain.kind)'")
            }
            if let link = chain.mainChain {
                guard chain.kind == "district" else { throw ConfigurationError("chain.main_chain is for district chains") }
                guard !link.endpoints.isEmpty else { throw ConfigurationError("chain.main_chain.endpoints needs at least one host:port") }
                for e in link.endpoints { _ = try Self.address(e) }
                guard link.anchorEveryBlocks >= 1, link.anchorEveryMs >= 1, link.maxAnchorBlocks >= 1,
                      UInt64(link.maxAnchorBlocks) <= TransactionValidator.maxAnchorRange else {
                    throw ConfigurationError("chain.main_chain anchor_every_blocks and anchor_every_ms must be positive, max_anchor_blocks 1 to \(TransactionValidator.maxAnchorRange)")
                }
            }
            if !chain.id.isEmpty, !TransactionValidator.isValidMeterID(chain.id) {
                throw ConfigurationError("chain.id '\(chain.id)' must be [A-Za-z0-9._-]{1,64}")
            }
        }
        guard rpc.maxConcurrentStreams >= 1 else { throw ConfigurationError("rpc.max_concurrent_streams must be at least 1") }
        guard rpc.maxConnections >= 1, rpc.maxHandshakes >= 1, rpc.maxConnectionsPerIdentity >= 1 else {
            throw ConfigurationError("rpc.max_connections, rpc.max_handshakes and rpc.max_connections_per_identity must be at least 1")
        }
        guard rpc.reservedConnections >= 0, rpc.reservedConnections < rpc.maxConnections else {
            throw ConfigurationError("rpc.reserved_connections must be at least 0 and below rpc.max_connections")
        }
        guard rpc.memoryBudgetBytes >= 2 * rpc.maxMessageBytes else {
            throw ConfigurationError("rpc.memory_budget_bytes must be at least twice rpc.max_message_bytes")
        }
        for (name, value) in [
            ("tls.handshake_timeout_ms", tls.handshakeTimeoutMs), ("rpc.keepalive_interval_ms", rpc.keepaliveIntervalMs),
            ("rpc.keepalive_timeout_ms", rpc.keepaliveTimeoutMs), ("rpc.idle_timeout_ms", rpc.idleTimeoutMs),
            ("rpc.shutdown_grace_ms", rpc.shutdownGraceMs),
        ] where value <= 0 {
            throw ConfigurationError("\(name) must be positive")
        }
        guard ["text", "json"].contains(logFormat) else {
            throw ConfigurationError("log_format must be text or json, not '\(logFormat.prefix(40))'")
        }
        if !metricsListen.isEmpty {
            do { _ = try Self.address(metricsListen) } catch { throw ConfigurationError("metrics_listen: \(error.message)") }
        }
        return try Self.address(listen)
    }

    /// `text` as host and port; a malformed address is a `ConfigurationError` with
    /// `HostPort`'s sentence.
    static func address(_ text: String) throws(ConfigurationError) -> (host: String, port: Int) {
        do { return try HostPort.parse(text) } catch { throw ConfigurationError(error.description) }
    }

    /// The annotated default configuration file.
    package static let annotatedDefault = """
        # GridLedger node configuration (YAML). Every key is optional; these are the defaults.
        # Any key can be overridden on the command line: `gridnode start --help`.

        # Node id reported by Ops.GetStatus; empty = the CN of the node certificate.
        node_id: ""
        # host:port to listen on for peers and clients (port 0 = any free port).
        listen: 127.0.0.1:7443
        # This node's data directory (created if missing; locked while the node runs).
        data_dir: ./var/node
        # trace | debug | info | notice | warning | error | critical
        log_level: info
        # text (one line per event) or json (one JSON object per line: Docs/operations.md).
        log_format: text
        # host:port of the plain-HTTP metrics and health listener (/metrics, /livez, /readyz);
        # empty = none. No TLS, no authentication: keep it on loopback or a management network.
        metrics_listen: ""

        tls:
          # Certificate and key from `gridnode ca issue --role node` (required).
          cert: ""
          key: ""
          # The deployment CA certificate: the only trust root for peers and clients (required).
          ca: ""
          # A TLS handshake not finished within this time is closed.
          handshake_timeout_ms: 10000

        rpc:
          # Largest message accepted; larger ones get RESOURCE_EXHAUSTED unread.
          max_message_bytes: 4194304
          # Open calls per connection; more get RESOURCE_EXHAUSTED.
          max_concurrent_streams: 256
          # Ping a connection silent this long; close it if still silent after the timeout.
          keepalive_interval_ms: 30000
          keepalive_timeout_ms: 10000
          # Close connections without calls for this long (GOAWAY "idle").
          idle_timeout_ms: 300000
          # On shutdown, calls in flight may finish within this time.
          shutdown_grace_ms: 10000
          # Event loop threads; 0 = one per core.
          threads: 0
          # Authenticated connections at once (lowered at start to fit the descriptor
          # limit, RLIMIT_NOFILE; the effective limits are logged). More are refused with
          # GOAWAY RESOURCE_EXHAUSTED.
          max_connections: 1024
          # Of max_connections, kept for roles node, ops and admin.
          reserved_connections: 64
          # Authenticated connections of one certificate.
          max_connections_per_identity: 32
          # Connections still in their TLS handshake; more are closed at once.
          max_handshakes: 128
          # Ceiling of buffered request and response bytes, all connections together;
          # a message that does not fit gets RESOURCE_EXHAUSTED.
          memory_budget_bytes: 268435456

        # One chain (below), or several: `chains:` with a list of entries shaped like `chain:`,
        # each with its own id (a node can be a member of the main chain and of districts).
        chain:
          # Chain id (a district id for a district chain); empty = the node certificate's
          # district, or "main" when it names none.
          id: ""
          # A block closes at this many transactions, bytes, or milliseconds after its first
          # transaction, whichever comes first.
          max_block_transactions: 1000
          max_block_bytes: 2097152
          max_block_delay_ms: 100
          # Transactions accepted but not yet durable; beyond this, RESOURCE_EXHAUSTED.
          max_pending_transactions: 20000
          # Readings in one batch; larger batches get RESOURCE_EXHAUSTED.
          max_batch_readings: 10000
          # Hash suite of a new chain (block hashes, Merkle and state roots): sha256 or sm3.
          # Recorded in every header; an existing chain keeps the suite it was created with.
          hash_suite: sha256
          # Raft ordering among the district's edge nodes. Empty members = solo ordering.
          # raft_id: 1
          # members:
          # Each member is bound to its node certificate: role node, the chain's district
          # (none on the main chain), its CN, and its key pin (`gridnode ca issue` prints it;
          # a member without a pin is accepted on the rest, with a warning at start).
          #   - {id: 1, name: node1, address: "127.0.0.1:7443", public_key_sha256: "sha256:…"}
          #   - {id: 2, name: node2, address: "127.0.0.1:7444", public_key_sha256: "sha256:…"}
          #   - {id: 3, name: node3, address: "127.0.0.1:7445", public_key_sha256: "sha256:…"}
          raft_id: 0
          members: []
          # One Raft tick, and the election timeout in ticks (randomized up to twice that).
          tick_ms: 50
          election_ticks: 10
          # Compact the Raft log after this many applied entries (blocks); members further
          # behind catch up by block transfer.
          compact_every: 256
          # true on a node joining an existing group (added by Admin.AddMember on the leader).
          join: false
          # district (a district side chain) or main (the cloud main chain).
          kind: district
          # A district chain's main chain: anchors go up, parameters come down
          # (Docs/anchoring.md). Absent = no anchoring.
          # main_chain:
          #   id: main
          #   endpoints: ["127.0.0.1:7450", "127.0.0.1:7451", "127.0.0.1:7452"]
          #   anchor_every_blocks: 20
          #   anchor_every_ms: 5000
          #   max_anchor_blocks: 1000
          #   downlink: true

        """
}

extension NodeConfiguration {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeConfiguration()
        nodeID = try c.decodeIfPresent(String.self, forKey: .nodeID) ?? d.nodeID
        listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? d.listen
        dataDir = try c.decodeIfPresent(String.self, forKey: .dataDir) ?? d.dataDir
        tls = try c.decodeIfPresent(TLS.self, forKey: .tls) ?? d.tls
        rpc = try c.decodeIfPresent(RPC.self, forKey: .rpc) ?? d.rpc
        chain = try c.decodeIfPresent(Chain.self, forKey: .chain) ?? d.chain
        chains = try c.decodeIfPresent([Chain].self, forKey: .chains) ?? d.chains
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? d.logLevel
        logFormat = try c.decodeIfPresent(String.self, forKey: .logFormat) ?? d.logFormat
        metricsListen = try c.decodeIfPresent(String.self, forKey: .metricsListen) ?? d.metricsListen
        try rejectUnknownKeys(
            decoder, known: ["node_id", "listen", "data_dir", "tls", "rpc", "chain", "chains", "log_level", "log_format", "metrics_listen"], section: "")
    }
}

extension NodeConfiguration.TLS {
    enum CodingKeys: String, CodingKey {
        case cert, key, ca, handshakeTimeoutMs = "handshake_timeout_ms"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        cert = try c.decodeIfPresent(String.self, forKey: .cert) ?? d.cert
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? d.key
        ca = try c.decodeIfPresent(String.self, forKey: .ca) ?? d.ca
        handshakeTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .handshakeTimeoutMs) ?? d.handshakeTimeoutMs
        try rejectUnknownKeys(decoder, known: ["cert", "key", "ca", "handshake_timeout_ms"], section: "tls.")
    }
}

extension NodeConfiguration.RPC {
    enum CodingKeys: String, CodingKey {
        case maxMessageBytes = "max_message_bytes", maxConcurrentStreams = "max_concurrent_streams"
        case keepaliveIntervalMs = "keepalive_interval_ms", keepaliveTimeoutMs = "keepalive_timeout_ms"
        case idleTimeoutMs = "idle_timeout_ms", shutdownGraceMs = "shutdown_grace_ms", threads
        case maxConnections = "max_connections", reservedConnections = "reserved_connections"
        case maxConnectionsPerIdentity = "max_connections_per_identity", maxHandshakes = "max_handshakes"
        case memoryBudgetBytes = "memory_budget_bytes"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        maxMessageBytes = try c.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? d.maxMessageBytes
        maxConcurrentStreams = try c.decodeIfPresent(Int.self, forKey: .maxConcurrentStreams) ?? d.maxConcurrentStreams
        keepaliveIntervalMs = try c.decodeIfPresent(Int.self, forKey: .keepaliveIntervalMs) ?? d.keepaliveIntervalMs
        keepaliveTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .keepaliveTimeoutMs) ?? d.keepaliveTimeoutMs
        idleTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMs) ?? d.idleTimeoutMs
        shutdownGraceMs = try c.decodeIfPresent(Int.self, forKey: .shutdownGraceMs) ?? d.shutdownGraceMs
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? d.threads
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        reservedConnections = try c.decodeIfPresent(Int.self, forKey: .reservedConnections) ?? d.reservedConnections
        maxConnectionsPerIdentity = try c.decodeIfPresent(Int.self, forKey: .maxConnectionsPerIdentity) ?? d.maxConnectionsPerIdentity
        maxHandshakes = try c.decodeIfPresent(Int.self, forKey: .maxHandshakes) ?? d.maxHandshakes
        memoryBudgetBytes = try c.decodeIfPresent(Int.self, forKey: .memoryBudgetBytes) ?? d.memoryBudgetBytes
        try rejectUnknownKeys(decoder, known: [
            "max_message_bytes", "max_concurrent_streams", "keepalive_interval_ms", "keepalive_timeout_ms",
            "idle_timeout_ms", "shutdown_grace_ms", "threads",
            "max_connections", "reserved_connections", "max_connections_per_identity", "max_handshakes", "memory_budget_bytes",
        ], section: "rpc.")
    }
}

extension NodeConfiguration.Chain {
    enum CodingKeys: String, CodingKey {
        case id, maxBlockTransactions = "max_block_transactions", maxBlockBytes = "max_block_bytes"
        case maxBlockDelayMs = "max_block_delay_ms", maxPendingTransactions = "max_pending_transactions"
        case maxBatchReadings = "max_batch_readings", hashSuite = "hash_suite"
        case raftID = "raft_id", members, tickMs = "tick_ms", electionTicks = "election_ticks", compactEvery = "compact_every", join
        case kind, mainChain = "main_chain"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? d.id
        maxBlockTransactions = try c.decodeIfPresent(Int.self, forKey: .maxBlockTransactions) ?? d.maxBlockTransactions
        maxBlockBytes = try c.decodeIfPresent(Int.self, forKey: .maxBlockBytes) ?? d.maxBlockBytes
        maxBlockDelayMs = try c.decodeIfPresent(Int.self, forKey: .maxBlockDelayMs) ?? d.maxBlockDelayMs
        maxPendingTransactions = try c.decodeIfPresent(Int.self, forKey: .maxPendingTransactions) ?? d.maxPendingTransactions
        maxBatchReadings = try c.decodeIfPresent(Int.self, forKey: .maxBatchReadings) ?? d.maxBatchReadings
        hashSuite = try c.decodeIfPresent(String.self, forKey: .hashSuite) ?? d.hashSuite
        raftID = try c.decodeIfPresent(UInt64.self, forKey: .raftID) ?? d.raftID
        members = try c.decodeIfPresent([Member].self, forKey: .members) ?? d.members
        tickMs = try c.decodeIfPresent(Int.self, forKey: .tickMs) ?? d.tickMs
        electionTicks = try c.decodeIfPresent(Int.self, forKey: .electionTicks) ?? d.electionTicks
        compactEvery = try c.decodeIfPresent(Int.self, forKey: .compactEvery) ?? d.compactEvery
        join = try c.decodeIfPresent(Bool.self, forKey: .join) ?? d.join
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? d.kind
        mainChain = try c.decodeIfPresent(MainChainLink.self, forKey: .mainChain)
        try rejectUnknownKeys(decoder, known: ["kind", "main_chain",
            "id", "max_block_transactions", "max_block_bytes", "max_block_delay_ms", "max_pending_transactions", "max_batch_readings", "hash_suite",
            "raft_id", "members", "tick_ms", "election_ticks", "compact_every", "join",
        ], section: "chain.")
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private func rejectUnknownKeys(_ decoder: Decoder, known: Set<String>, section: String) throws {
    let all = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = all.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
        throw ConfigurationError("unknown setting '\(section)\(unknown)'")
    }
}
