"""A toy in-memory chain behind the fake node (tests/fakenode.py): the Ingest and Query
services of Docs/wire-protocol.md with one transaction per block.

It follows the documented statuses (signature and CA checks, roles, districts, the batch
limit, ALREADY_EXISTS with the location trailer) closely enough to exercise the client;
state keys follow the node's BlockExecutor: ``reading/<meter>/<timestamp_ms, 15 digits>``
-> u32 big-endian position in the batch, ``meter/<meter>`` -> i64 newest timestamp.  Block
hashing is its own.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from typing import Dict, List, Tuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.message import DecodeError

from gridledger import anchor_pb2, chain_pb2, contracts_pb2, ingest_pb2, ops_pb2, raft_pb2
from gridledger.status import TX_LOCATION_METADATA_KEY

SUBMIT_ROLES = {"collector", "marketing", "bank", "finance", "device", "admin", "node"}
READING_ROLES = {"collector", "node"}  # may call SubmitReadings / StreamReadings
METER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def reading_key(meter: str, timestamp_ms: int) -> str:
    return f"reading/{meter}/{timestamp_ms:015d}"


class Refused(Exception):
    def __init__(self, code: int, message: str, metadata=()) -> None:
        super().__init__(code, message)
        self.code, self.message, self.metadata = code, message, list(metadata)


def _attr(cert: x509.Certificate, oid) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return values[0].value if values else ""


_CHAIN_REQUESTS = {
    "/gridledger.Ingest/Submit": ingest_pb2.SubmitRequest,
    "/gridledger.Ingest/SubmitReadings": ingest_pb2.SubmitRequest,
    "/gridledger.Query/GetChainInfo": ingest_pb2.GetChainInfoRequest,
    "/gridledger.Query/GetBlock": ingest_pb2.GetBlockRequest,
    "/gridledger.Query/GetTransaction": ingest_pb2.GetTransactionRequest,
    "/gridledger.Query/GetState": ingest_pb2.GetStateRequest,
    "/gridledger.Query/GetHistory": ingest_pb2.GetHistoryRequest,
    "/gridledger.Query/ListBlocks": ingest_pb2.ListBlocksRequest,
    "/gridledger.Query/SubscribeBlocks": ingest_pb2.SubscribeBlocksRequest,
    "/gridledger.Query/ProveBlock": anchor_pb2.ProveBlockRequest,
    "/gridledger.FeeControl/GetAccount": contracts_pb2.GetAccountRequest,
    "/gridledger.FeeControl/ListAccounts": contracts_pb2.ListAccountsRequest,
    "/gridledger.FeeControl/ListCommands": contracts_pb2.ListCommandsRequest,
    "/gridledger.FeeControl/GetDistrictResults": anchor_pb2.GetDistrictResultsRequest,
    "/gridledger.Control/SubscribeCommands": contracts_pb2.SubscribeCommandsRequest,
    "/gridledger.Notices/Subscribe": contracts_pb2.SubscribeNoticesRequest,
}
# Who may sign each non-reading payload body (Docs/anchoring.md; contracts.proto).
BODY_ROLES = {"district_registration": {"admin"}, "parameter": {"marketing", "admin"},
              "command_ack": {"device"}}


class FakeChain:
    def __init__(self, ca_path: str, chain_id: str = "d1", district: str = "d1",
                 batch_limit: int = 10_000) -> None:
        with open(ca_path, "rb") as f:
            self.ca = x509.load_pem_x509_certificate(f.read())
        self.chain_id = chain_id
        self.chain_ids = []  # (method name, request chain_id) of each chain-service call
        self.district = district
        self.batch_limit = batch_limit
        self.lock = threading.Lock()
        self.blocks: List[Tuple[chain_pb2.Block, bytes]] = []
        self.txs: Dict[bytes, Tuple[chain_pb2.SignedTransaction, chain_pb2.TxLocation,
                                    chain_pb2.TxOutcome]] = {}
        self.state: Dict[str, List[ingest_pb2.HistoryEntry]] = {}
        self.subscribers: Dict[Tuple[int, int], Tuple[object, int]] = {}
        self.exhaust_next = 0          # answer this many submissions RESOURCE_EXHAUSTED
        self.lose_ack_next = 0         # commit, then answer RESOURCE_EXHAUSTED anyway
        self.submissions: List[str] = []  # method of every submission seen
        self.list_page_cap = 3         # ListBlocks pages hold at most this many
        self.queries: List[Tuple[str, object]] = []  # (method, decoded request) of Query/Admin
        # Raft group for Admin.*: members 1..3, node 1 leads; AddMember is a learner.
        self.voters: List[int] = [1, 2, 3]
        self.learners: List[int] = []
        self.leader = 1
        self.members: Dict[int, Tuple[str, str]] = {}  # node id -> (name, address)
        self.admin_unimplemented = False  # answer AddMember/Promote/Remove UNIMPLEMENTED
        # Anchoring and fee control, filled by the tests.
        self.proofs: Dict[int, anchor_pb2.BlockProof] = {}        # ProveBlock by height
        self.accounts: Dict[str, contracts_pb2.GetAccountResponse] = {}
        self.commands: List[contracts_pb2.ControlCommand] = []
        self.notices: List[contracts_pb2.Notice] = []
        # GetDistrictResults (main chain): district -> (totals, {account: AccountResult});
        # pages of district_page_size accounts unless the request's limit is smaller.
        self.district_results: Dict[str, Tuple[anchor_pb2.UplinkSummary,
                                               Dict[str, anchor_pb2.AccountResult]]] = {}
        self.district_page_size = 100
        self.requests: List[Tuple[str, object]] = []  # (method, request) of those calls
        self.command_subscribers: Dict[Tuple[int, int], Tuple[object, int]] = {}
        self.notice_subscribers: Dict[Tuple[int, int], Tuple[object, int]] = {}
        self._append(chain_pb2.Block(header=chain_pb2.BlockHeader(
            chain_id=chain_id, height=0, timestamp_ms=1, hash_suite="sha256")))

    # ---- chain

    def _append(self, block: chain_pb2.Block) -> Tuple[chain_pb2.Block, bytes]:
        if self.blocks:
            block.header.previous_hash = self.blocks[-1][1]
        block.header.height = len(self.blocks)
        block.header.tx_count = len(block.transactions)
        block_hash = hashlib.sha256(block.header.SerializeToString()).digest()
        self.blocks.append((block, block_hash))
        return block, block_hash

    def _write(self, key: str, version, value: bytes) -> None:
        self.state.setdefault(key, []).insert(0, ingest_pb2.HistoryEntry(version=version,
                                                                        value=value))

    def _verify(self, signed: chain_pb2.SignedTransaction) -> x509.Certificate:
        try:
            cert = x509.load_der_x509_certificate(signed.signer_certificate)
        except ValueError as exc:
            raise Refused(16, f"malformed signer certificate: {exc}")
        try:
            self.ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                        ec.ECDSA(cert.signature_hash_algorithm))
        except InvalidSignature:
            raise Refused(16, "untrusted signer certificate: not issued by the CA")
        try:
            cert.public_key().verify(signed.signature, signed.payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Refused(16, "signature does not verify with the signer certificate")
        return cert

    def submit(self, method: str, request_body: bytes) -> ingest_pb2.SubmitResponse:
        self.submissions.append(method)
        try:
            signed = ingest_pb2.SubmitRequest.FromString(request_body).transaction
        except DecodeError:
            raise Refused(3, "request does not decode")
        with self.lock:
            if self.exhaust_next > 0:
                self.exhaust_next -= 1
                raise Refused(8, "ingestion queue is full")
            txid = hashlib.sha256(signed.payload).digest()
            if txid in self.txs:
                loc = self.txs[txid][1]
                raise Refused(6, f"transaction already on the chain at height={loc.height} "
                                 f"index={loc.index}",
                              [(TX_LOCATION_METADATA_KEY, loc.SerializeToString())])
        try:
            payload = chain_pb2.TxPayload.FromString(signed.payload)
        except DecodeError:
            raise Refused(3, "payload does not decode")
        cert = self._verify(signed)
        role = _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
        if payload.WhichOneof("body") is None:
            raise Refused(3, "payload has no body")
        if payload.chain_id != self.chain_id:
            raise Refused(3, f"payload names chain {payload.chain_id!r}")
        body = payload.WhichOneof("body")
        if body != "readings":
            if role not in BODY_ROLES.get(body, ()):
                raise Refused(7, f"role {role} may not submit {body}")
            if body == "command_ack" and _attr(cert, NameOID.LOCALITY_NAME) != self.district:
                raise Refused(7, "a device acknowledges commands of its own district only")
            return self._commit(signed, txid, chain_pb2.TxOutcome(code=0))
        batch = payload.readings
        if role != "collector":
            raise Refused(7, f"role {role} may not submit readings (collector only)")
        if (batch.district != _attr(cert, NameOID.LOCALITY_NAME) or
                batch.district != self.district):
            raise Refused(7, f"collector of {_attr(cert, NameOID.LOCALITY_NAME)!r} submits "
                             f"for district {batch.district!r}")
        if not batch.readings:
            raise Refused(3, "reading batch is empty")
        if len(batch.readings) > self.batch_limit:
            raise Refused(8, f"batch of {len(batch.readings)} readings exceeds "
                             f"{self.batch_limit}")
        for r in batch.readings:
            if not METER_ID.match(r.meter_id) or not 0 < r.timestamp_ms < 10**14 or \
                    len(r.voltage_dv) > 3 or len(r.current_ma) > 3:
                raise Refused(3, "invalid reading")
        with self.lock:
            if txid in self.txs:  # raced with an identical submission
                loc = self.txs[txid][1]
                raise Refused(6, f"height={loc.height} index={loc.index}",
                              [(TX_LOCATION_METADATA_KEY, loc.SerializeToString())])
            height = len(self.blocks)
            outcome = chain_pb2.TxOutcome(code=0)
            version = ingest_pb2.StateVersion(height=height, tx_index=0)
            newest: Dict[str, int] = {}
            for position, r in enumerate(batch.readings):
                key = reading_key(r.meter_id, r.timestamp_ms)
                if key in self.state:
                    outcome.readings_duplicate += 1
                    continue
                outcome.readings_accepted += 1
                self._write(key, version, struct.pack(">I", position))
                newest[r.meter_id] = max(r.timestamp_ms, newest.get(r.meter_id, 0))
            for meter, ts in newest.items():
                old = self.state.get(f"meter/{meter}")
                if old is None or struct.unpack(">q", old[0].value)[0] < ts:
                    self._write(f"meter/{meter}", version, struct.pack(">q", ts))
            block, block_hash = self._append(chain_pb2.Block(
                header=chain_pb2.BlockHeader(chain_id=self.chain_id, timestamp_ms=height + 1,
                                             hash_suite="sha256", proposer="fake"),
                transactions=[signed], outcomes=[outcome]))
            loc = chain_pb2.TxLocation(height=height, index=0, tx_id=txid,
                                       block_hash=block_hash)
            self.txs[txid] = (signed, loc, outcome)
            subscribers = list(self.subscribers.values())
            lose_ack = self.lose_ack_next > 0
            self.lose_ack_next -= lose_ack
        for conn, sid in subscribers:
            try:
                conn.message(sid, ingest_pb2.GetBlockResponse(block=block, hash=block_hash))
            except OSError:
                pass
        if lose_ack:
            raise Refused(8, "committed, but the acknowledgement is lost")
        return ingest_pb2.SubmitResponse(location=loc, outcome=outcome)

    def _commit(self, signed, txid, outcome) -> ingest_pb2.SubmitResponse:
        """Appends a block holding one (non-reading) transaction."""
        with self.lock:
            if txid in self.txs:
                loc = self.txs[txid][1]
                raise Refused(6, f"height={loc.height} index={loc.index}",
                              [(TX_LOCATION_METADATA_KEY, loc.SerializeToString())])
            height = len(self.blocks)
            _, block_hash = self._append(chain_pb2.Block(
                header=chain_pb2.BlockHeader(chain_id=self.chain_id, timestamp_ms=height + 1,
                                             hash_suite="sha256", proposer="fake"),
                transactions=[signed], outcomes=[outcome]))
            loc = chain_pb2.TxLocation(height=height, index=0, tx_id=txid, block_hash=block_hash)
            self.txs[txid] = (signed, loc, outcome)
        return ingest_pb2.SubmitResponse(location=loc, outcome=outcome)

    def payloads(self, body: str) -> List[Tuple[chain_pb2.TxPayload, chain_pb2.SignedTransaction]]:
        """Committed payloads holding ``body``, in chain order."""
        out = []
        for block, _ in self.blocks:
            for tx in block.transactions:
                p = chain_pb2.TxPayload.FromString(tx.payload)
                if p.WhichOneof("body") == body:
                    out.append((p, tx))
        return out

    def issue_command(self, command: contracts_pb2.ControlCommand) -> None:
        """A new command: kept, and sent to every SubscribeCommands stream."""
        with self.lock:
            self.commands.append(command)
            subscribers = list(self.command_subscribers.values())
        for conn, sid in subscribers:
            conn.message(sid, command)

    def _fee_control(self, conn, sid: int, method: str, req) -> bool:
        """Anchoring / fee-control methods; False when ``method`` is none of them."""
        if method == "/gridledger.Query/ProveBlock":
            if req.height not in self.proofs:
                raise Refused(5, f"block {req.height} is not anchored yet")
            conn.message(sid, self.proofs[req.height])
        elif method == "/gridledger.FeeControl/GetAccount":
            if req.account not in self.accounts:
                raise Refused(5, f"no account {req.account!r}")
            conn.message(sid, self.accounts[req.account])
        elif method == "/gridledger.FeeControl/ListAccounts":
            found = [r.account for r in self.accounts.values()
                     if (req.any_warning and r.account.state in (
                         contracts_pb2.ACCOUNT_STATE_WARNING1, contracts_pb2.ACCOUNT_STATE_WARNING2))
                     or (not req.any_warning and r.account.state == req.state)]
            conn.message(sid, contracts_pb2.ListAccountsResponse(
                accounts=found[:req.limit or None]))
        elif method == "/gridledger.FeeControl/ListCommands":
            found = [c for c in self.commands
                     if req.status in (contracts_pb2.COMMAND_STATUS_UNSPECIFIED, c.status)]
            conn.message(sid, contracts_pb2.ListCommandsResponse(commands=found[:req.limit or None]))
        elif method == "/gridledger.FeeControl/GetDistrictResults":
            # The contract of anchor.proto: newest result per account, account order, paged
            # by after_account / next_after; warning and disconnected of the page.
            if req.chain_id not in ("", self.chain_id):
                raise Refused(5, f"this node serves no chain {req.chain_id!r}")
            if req.district not in self.district_results:
                raise Refused(5, f"no district {req.district!r} is registered")
            totals, accounts = self.district_results[req.district]
            names = sorted(a for a in accounts if a > req.after_account)
            size = min(req.limit or self.district_page_size, self.district_page_size)
            page = [accounts[a] for a in names[:size]]
            conn.message(sid, anchor_pb2.GetDistrictResultsResponse(
                district=req.district, totals=totals, accounts=page,
                next_after=page[-1].account if len(names) > size else "",
                warning=[a.account for a in page if a.state in (
                    contracts_pb2.ACCOUNT_STATE_WARNING1, contracts_pb2.ACCOUNT_STATE_WARNING2)],
                disconnected=[a.account for a in page
                              if a.state == contracts_pb2.ACCOUNT_STATE_DISCONNECTED]))
        else:
            return False
        return True

    # ---- RPC glue (called by fakenode.Conn)

    def handles(self, method: str) -> bool:
        return method.startswith(("/gridledger.Ingest/", "/gridledger.Query/",
                                  "/gridledger.Admin/", "/gridledger.FeeControl/",
                                  "/gridledger.Control/", "/gridledger.Notices/")) or \
            method == "/gridledger.Ops/GetStatus"

    def status(self) -> ops_pb2.GetStatusResponse:
        with self.lock:
            head, head_hash = self.blocks[-1]
            return ops_pb2.GetStatusResponse(node_id="fake1", version="0-fake", chains=[
                ops_pb2.ChainStatus(
                    chain_id=self.chain_id, height=head.header.height, head_hash=head_hash,
                    role="leader" if self.leader == 1 else "follower", raft_node_id=1,
                    raft_term=7, raft_leader=self.leader, raft_commit=9, raft_applied=8,
                    raft_peers=[ops_pb2.RaftPeerStatus(node_id=n, match_index=9 - n + 1,
                                                       lag=n - 1) for n in self.voters],
                    halted="")])

    def admin(self, method: str, req: raft_pb2.MemberRequest) -> raft_pb2.MemberResponse:
        if req.chain_id != self.chain_id:
            raise Refused(5, f"this node serves no chain {req.chain_id!r}")
        name = method.rsplit("/", 1)[1]
        if name != "TransferLeader" and self.admin_unimplemented:
            raise Refused(12, f"unknown method {method}")
        n = req.node_id
        with self.lock:
            if name == "TransferLeader":
                if n not in self.voters:
                    raise Refused(9, f"{n} is not a voter")
                self.leader = n
            elif name == "AddMember":
                if not req.name or not req.address:
                    raise Refused(3, "AddMember needs name and address")
                if n in self.voters or n in self.learners:
                    raise Refused(6, f"{n} is already a member")
                self.learners.append(n)
                self.members[n] = (req.name, req.address)
            elif name == "PromoteMember":
                if n not in self.learners:
                    raise Refused(9, f"{n} is not a learner")
                self.learners.remove(n)
                self.voters.append(n)
            elif name == "RemoveMember":
                if n in self.voters:
                    self.voters.remove(n)
                elif n in self.learners:
                    self.learners.remove(n)
                else:
                    raise Refused(5, f"{n} is not a member")
            else:
                raise Refused(12, f"unknown method {method}")
            return raft_pb2.MemberResponse(
                conf_state=raft_pb2.RaftConfState(voters=self.voters, learners=self.learners),
                leader=self.leader)

    def _caller_role(self, conn) -> str:
        subject = dict(x[0] for x in conn.sock.getpeercert()["subject"])
        return subject.get("organizationalUnitName", "")

    def handle(self, conn, sid: int, method: str, requests: List[bytes]) -> None:
        role = self._caller_role(conn)
        if method.startswith("/gridledger.Ingest/"):
            allowed = SUBMIT_ROLES if method.endswith("/Submit") else READING_ROLES
            if role not in allowed:
                return conn.trailers(sid, 7, f"role {role} may not call {method}")
        if method == "/gridledger.Ops/GetStatus" and role not in ("ops", "admin"):
            return conn.trailers(sid, 7, f"role {role} may not call {method}")
        if method.startswith("/gridledger.Admin/") and role != "admin":
            return conn.trailers(sid, 7, f"role {role} may not call {method}")
        if method == "/gridledger.Ingest/StreamReadings":
            return conn.trailers(sid, 0)  # the messages were answered one by one
        if len(requests) != 1:
            return conn.trailers(sid, 3, "expected exactly one request")
        body = requests[0]
        request_cls = _CHAIN_REQUESTS.get(method)
        decoded = None
        if request_cls is not None:
            # Record the chain each chain-service request names ("" = the only chain).
            decoded = request_cls.FromString(body)
            self.chain_ids.append((method.rsplit("/", 1)[1], decoded.chain_id))
            self.requests.append((method, decoded))
        if method == "/gridledger.Control/SubscribeCommands":
            if role != "device":
                return conn.trailers(sid, 7, f"role {role} may not call {method}")
            with self.lock:
                backlog = list(self.commands)
                self.command_subscribers[(id(conn), sid)] = (conn, sid)
            for command in backlog:
                conn.message(sid, command)
            return  # open until cancelled
        if method == "/gridledger.Notices/Subscribe":
            if role != "marketing":
                return conn.trailers(sid, 7, f"role {role} may not call {method}")
            for notice in self.notices:
                if notice.height >= decoded.from_height:
                    conn.message(sid, notice)
            with self.lock:
                self.notice_subscribers[(id(conn), sid)] = (conn, sid)
            return  # open until cancelled
        try:
            if decoded is not None and self._fee_control(conn, sid, method, decoded):
                pass
            elif method in ("/gridledger.Ingest/Submit", "/gridledger.Ingest/SubmitReadings"):
                conn.message(sid, self.submit(method, body))
            elif method == "/gridledger.Query/GetChainInfo":
                with self.lock:
                    head, head_hash = self.blocks[-1]
                conn.message(sid, ingest_pb2.ChainInfo(chain_id=self.chain_id,
                                                       height=head.header.height,
                                                       head_hash=head_hash,
                                                       hash_suite="sha256"))
            elif method == "/gridledger.Ops/GetStatus":
                conn.message(sid, self.status())
            elif method.startswith("/gridledger.Admin/"):
                req = raft_pb2.MemberRequest.FromString(body)
                self.queries.append((method, req))
                conn.message(sid, self.admin(method, req))
            elif method == "/gridledger.Query/GetBlock":
                req = ingest_pb2.GetBlockRequest.FromString(body)
                self.queries.append((method, req))
                with self.lock:
                    found = [(b, h) for b, h in self.blocks
                             if (req.by_height and b.header.height == req.height) or
                             (not req.by_height and h == req.hash)]
                if not found:
                    raise Refused(5, "no such block")
                conn.message(sid, ingest_pb2.GetBlockResponse(block=found[0][0],
                                                              hash=found[0][1]))
            elif method == "/gridledger.Query/GetTransaction":
                req = ingest_pb2.GetTransactionRequest.FromString(body)
                self.queries.append((method, req))
                entry = self.txs.get(req.tx_id)
                if entry is None:
                    raise Refused(5, "no such transaction")
                conn.message(sid, ingest_pb2.GetTransactionResponse(
                    transaction=entry[0], location=entry[1], outcome=entry[2]))
            elif method == "/gridledger.Query/GetState":
                req = ingest_pb2.GetStateRequest.FromString(body)
                self.queries.append((method, req))
                key = req.key
                versions = self.state.get(key)
                if not versions:
                    conn.message(sid, ingest_pb2.GetStateResponse(found=False))
                else:
                    conn.message(sid, ingest_pb2.GetStateResponse(
                        found=True, value=versions[0].value, version=versions[0].version))
            elif method == "/gridledger.Query/GetHistory":
                req = ingest_pb2.GetHistoryRequest.FromString(body)
                self.queries.append((method, req))
                entries = self.state.get(req.key, [])[:req.limit or 100]
                conn.message(sid, ingest_pb2.GetHistoryResponse(entries=entries))
            elif method == "/gridledger.Query/ListBlocks":
                req = ingest_pb2.ListBlocksRequest.FromString(body)
                with self.lock:
                    end = len(self.blocks) if req.to_height == 0 else \
                        min(req.to_height, len(self.blocks))
                size = min(req.page_size or 100, self.list_page_cap)
                stop = min(end, req.from_height + size)
                page = ingest_pb2.ListBlocksResponse(
                    blocks=[ingest_pb2.BlockSummary(header=b.header, hash=h)
                            for b, h in self.blocks[req.from_height:stop]],
                    next_height=stop if stop < end else 0)
                conn.message(sid, page)
            elif method == "/gridledger.Query/SubscribeBlocks":
                req = ingest_pb2.SubscribeBlocksRequest.FromString(body)
                with self.lock:
                    for block, block_hash in self.blocks[req.from_height:]:
                        conn.message(sid, ingest_pb2.GetBlockResponse(block=block,
                                                                      hash=block_hash))
                    self.subscribers[(id(conn), sid)] = (conn, sid)
                return  # open until cancelled
            else:
                raise Refused(12, f"unknown method {method}")
        except Refused as exc:
            return conn.trailers(sid, exc.code, exc.message, exc.metadata)
        conn.trailers(sid, 0)

    def stream_message(self, conn, sid: int, sequence: int, body: bytes) -> None:
        """One StreamReadings request: answered at once with its StreamAck."""
        try:
            response = self.submit("/gridledger.Ingest/StreamReadings", body)
            ack = ingest_pb2.StreamAck(sequence=sequence, code=0, response=response)
        except Refused as exc:
            # As the node does: no response; ALREADY_EXISTS says height=H index=I.
            ack = ingest_pb2.StreamAck(sequence=sequence, code=exc.code, message=exc.message)
        conn.message(sid, ack)

    def cancel(self, conn, sid: int) -> bool:
        with self.lock:
            found = self.subscribers.pop((id(conn), sid), None) or \
                self.command_subscribers.pop((id(conn), sid), None) or \
                self.notice_subscribers.pop((id(conn), sid), None)
        if found:
            conn.trailers(sid, 1, "cancelled")
        return found is not None
