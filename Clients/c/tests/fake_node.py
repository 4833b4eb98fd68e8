#!/usr/bin/env python3
"""A scripted stand-in for gridnode, speaking wire protocol v1 (Docs/wire-protocol.md),
used to drive the C client through paths a healthy node rarely takes: server PING, GOAWAY,
an oversized MESSAGE, a missed deadline; and a small in-memory chain for the chain services.
Protobuf is hand-encoded (no dependencies); signatures are checked with the openssl CLI
(an implementation independent of the client's).

usage: fake_node.py CERT KEY CA PORTFILE [PORT]
Listens on 127.0.0.1:PORT (default ephemeral), writes the port to PORTFILE, logs events to
stdout; exits 0 on SIGTERM.

Behaviour by method / HealthCheckRequest.service:
  /gridledger.Ops/GetStatus      caller with OU ops/admin gets a status, others PERMISSION_DENIED
  /gridledger.Health/Check ""    SERVING
                      "ping"     PINGs the client, waits for the ACK, then SERVING
                      "big"      sends a 5 MiB MESSAGE (client must skip it and CANCEL)
                      "slow"     never answers; logs the CANCEL that the client's deadline sends
                      "goaway"   GOAWAY(last_stream_id=0) then closes the connection
                      "idle-goaway" SERVING, then PING, GOAWAY(OK, "idle") and close
                      "twice"    two responses to a unary call
                      "garbage"  a MESSAGE that does not decode
                      other      NOT_FOUND
  /gridledger.Health/Watch       SERVING, NOT_SERVING, SERVING, TRAILERS OK
  /gridledger.Ingest/StreamReadings  bidirectional: a StreamAck{sequence} per MESSAGE;
                                 TRAILERS OK "acked N" at END_STREAM or an END frame
  Chain "d1" (genesis block 0, then one block per accepted transaction):
  /gridledger.Query/GetChainInfo, GetBlock, GetTransaction, SubscribeBlocks (any role);
      logs "CONSISTENCY <Method> <n>" for GetBlock, GetTransaction, GetState
  /gridledger.Query/GetState     "reading/m1/000000000000005" found (value 00000002, version
                                 3/1); "uplink/d1/account/acc2" an AccountResult and
                                 "uplink/d1/totals" an UplinkSummary (version 9/0); any
                                 other key not found
  /gridledger.Admin/*            role admin: logs "ADMIN <Method> chain= node= address= name=";
                                 chain d1 answers a MemberResponse (TransferLeader: leader = node;
                                 AddMember: learner 4; PromoteMember: voters 1-4), else NOT_FOUND
  /gridledger.Ingest/SubmitReadings (collector, node): checks the signature (openssl CLI),
      chain id, district = signer L = chain; ALREADY_EXISTS with the tx-location trailer
      for a known tx id; readings deduplicated by (meter, timestamp). batch_id "busy..."
      answers RESOURCE_EXHAUSTED twice per transaction first; "exists..." answers
      ALREADY_EXISTS (location of block 0).
  Every Query / Ingest request logs "CHAIN <Method> <chain_id>" (chain_id "" logged as "-");
      a chain_id other than "" or "d1" is NOT_FOUND (Ingest/Submit also serves "main").
  Anchoring and fee control (Docs/anchoring.md; FeeControl, Control, Notices log CHAIN too):
  /gridledger.Query/ProveBlock   block 1 .. head of d1: a BlockProof built here (anchor over
                                 1 .. head signed by dn1 and dn2 of the certificate directory,
                                 main block "main" 42 of 5 transactions, the anchor at index 3,
                                 its outcome code 0 with its path to the outcomes root);
                                 height 0 or beyond the head: NOT_FOUND
  /gridledger.Ingest/Submit      checks the signature (openssl CLI); logs "SUBMIT chain=
                                 signer= kind= ..." with the body's fields; answers height 7
                                 index 0; a payload chain other than the request's:
                                 INVALID_ARGUMENT; command id "rejected..." is committed with
                                 outcome code 9
  /gridledger.FeeControl/GetAccount  "acc1" found, else NOT_FOUND
  /gridledger.FeeControl/ListAccounts, ListCommands  log their filters, answer two entries
  /gridledger.FeeControl/GetDistrictResults  (chain "main" or ""; logs "DISTRICT_RESULTS
                                 chain= district= after= limit="): district d1 has accounts
                                 acc1 (WARNING1), acc2 (DISCONNECTED), acc3 (NORMAL), 用户4
                                 (WARNING2), pages of 2 (or limit); another district NOT_FOUND
  /gridledger.Control/SubscribeCommands  two commands, then open until CANCEL
  /gridledger.Notices/Subscribe  notices at heights 3 and 5 from from_height, then open
  anything else                  UNIMPLEMENTED
Every unary / server-streaming call checks the client's framing: HEADERS without
END_STREAM, then exactly one MESSAGE with END_STREAM (INTERNAL "framing: ..." otherwise).
"""
import hashlib
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

HEADERS, MESSAGE, TRAILERS, CANCEL, PING, GOAWAY, ENDF = 1, 2, 3, 4, 5, 6, 7
END = 1
BIDI = {"/gridledger.Ingest/StreamReadings"}


def log(*a):
    print(*a, flush=True)


# ---- minimal protobuf -------------------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    return varint(num << 3) + varint(v) if v else b""


def f_bytes(num, v):
    if isinstance(v, str):
        v = v.encode()
    return varint((num << 3) | 2) + varint(len(v)) + v if v else b""


def f_int(num, v):
    """A signed (int64 / enum) field: two's complement varint."""
    return varint(num << 3) + varint(v & 0xFFFFFFFFFFFFFFFF) if v else b""


def f_msg(num, body):
    """An embedded message, present even when empty."""
    return varint((num << 3) | 2) + varint(len(body)) + body


def parse(buf):
    """{field: [values]} with varints as int and length-delimited as bytes."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = bytes(buf[i:i + n]), i + n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def call_status(code, msg="", metadata=()):
    return f_varint(1, code) + f_bytes(2, msg) + b"".join(
        f_msg(3, f_bytes(1, k) + f_bytes(2, v)) for k, v in metadata)


def first(fields, num, default=b""):
    return fields.get(num, [default])[0]


def sha256(b):
    return hashlib.sha256(b).digest()


# ---- the chain ---------------------------------------------------------------------------
class Chain:
    """One chain, id "d1": block 0 is genesis; every accepted transaction is a block."""

    def __init__(self):
        self.cv = threading.Condition()
        self.blocks = []      # (header bytes, hash, [tx bytes], [outcome bytes])
        self.txs = {}         # tx id -> (height, index)
        self.readings = set() # (meter, timestamp)
        self.busy = {}        # tx id -> RESOURCE_EXHAUSTED answers so far
        with self.cv:
            self.append([], [])

    def append(self, txs, outcomes):
        """Adds a block; the caller holds self.cv."""
        height = len(self.blocks)
        prev = self.blocks[-1][1] if self.blocks else b""
        ids = [sha256(first(parse(t), 1)) for t in txs]
        header = (f_bytes(1, "d1") + f_varint(2, height) + f_bytes(3, prev) +
                  f_varint(4, 1700000000000 + height) + f_bytes(5, merkle(ids)) +
                  f_bytes(6, sha256(b"state%d" % height)) + f_bytes(7, "fake1") +
                  f_varint(8, len(txs)) + f_bytes(9, "sha256"))
        self.blocks.append((header, sha256(header), txs, outcomes))
        for i, tid in enumerate(ids):
            self.txs[tid] = (height, i)
        self.cv.notify_all()
        return height

    def block_response(self, height):
        header, h, txs, outcomes = self.blocks[height]
        block = f_msg(1, header) + b"".join(f_msg(2, t) for t in txs) + b"".join(f_msg(3, o) for o in outcomes)
        return f_msg(1, block) + f_bytes(2, h)

    def location(self, tid):
        height, index = self.txs[tid]
        return f_varint(1, height) + f_varint(2, index) + f_bytes(3, tid) + f_bytes(4, self.blocks[height][1])


def merkle(ids):
    if not ids:
        return sha256(b"")
    level = [sha256(b"\x00" + i) for i in ids]
    while len(level) > 1:
        level = [sha256(b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


CHAIN = Chain()


def check_signature(payload, sig, cert):
    """(ok, subject dict) using the openssl CLI."""
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("cert.der", "pub.pem", "sig", "payload")}
        for n, data in (("cert.der", cert), ("sig", sig), ("payload", payload)):
            with open(paths[n], "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", paths["cert.der"], "-noout",
                            "-subject", "-nameopt", "RFC2253", "-pubkey"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False, {}
        subject = {}
        for line in r.stdout.splitlines():
            if line.startswith("subject="):
                for part in line[len("subject="):].split(","):
                    k, _, v = part.partition("=")
                    subject[k.strip()] = v.strip()
        with open(paths["pub.pem"], "w") as f:
            f.write(r.stdout[r.stdout.index("-----BEGIN PUBLIC KEY-----"):])
        v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", paths["pub.pem"], "-signature",
                            paths["sig"], paths["payload"]], capture_output=True, text=True)
        return v.returncode == 0 and "Verified OK" in v.stdout, subject


def submit_readings(c, sid, role, req):
    if role not in ("collector", "node"):
        c.send(TRAILERS, 0, sid, call_status(7, "role %s may not submit readings" % role))
        return
    tx = first(req, 1)
    t = parse(tx)
    payload, sig, cert = first(t, 1), first(t, 2), first(t, 3)
    ok, subject = check_signature(payload, sig, cert)
    if not ok:
        log("SubmitReadings stream %d: bad signature" % sid)
        c.send(TRAILERS, 0, sid, call_status(16, "signature does not verify"))
        return
    p = parse(payload)
    batch = parse(first(p, 10))
    district, batch_id = first(batch, 1).decode(), first(batch, 2).decode()
    readings = [parse(r) for r in batch.get(3, [])]
    tid = sha256(payload)
    log("SubmitReadings stream %d batch_id=%s district=%s readings=%d nonce=%s signer=%s" % (
        sid, batch_id, district, len(readings), first(p, 3).decode(), subject.get("CN")))
    if first(p, 1).decode() != "d1":
        c.send(TRAILERS, 0, sid, call_status(3, "payload names chain %r, not d1" % first(p, 1)))
        return
    if subject.get("OU") == "collector" and (district != subject.get("L") or district != "d1"):
        c.send(TRAILERS, 0, sid, call_status(7, "collector of district %s may not submit for %s on chain d1"
                                             % (subject.get("L"), district)))
        return
    with CHAIN.cv:
        if batch_id.startswith("busy") and CHAIN.busy.get(tid, 0) < 2:
            CHAIN.busy[tid] = CHAIN.busy.get(tid, 0) + 1
            c.send(TRAILERS, 0, sid, call_status(8, "ingestion queue is full"))
            return
        if batch_id.startswith("exists") or tid in CHAIN.txs:
            loc = CHAIN.location(tid) if tid in CHAIN.txs else (
                f_varint(1, 0) + f_varint(2, 0) + f_bytes(3, tid) + f_bytes(4, CHAIN.blocks[0][1]))
            height, index = CHAIN.txs.get(tid, (0, 0))
            c.send(TRAILERS, 0, sid, call_status(6, "height=%d index=%d" % (height, index),
                                                 [("gridledger-tx-location-bin", loc)]))
            return
        accepted = duplicate = 0
        for r in readings:
            key = (first(r, 1), first(r, 2, 0))
            if key in CHAIN.readings:
                duplicate += 1
            else:
                CHAIN.readings.add(key)
                accepted += 1
        outcome = f_varint(3, accepted) + f_varint(4, duplicate)
        height = CHAIN.append([tx], [outcome])
        resp = f_msg(1, CHAIN.location(tid)) + f_msg(2, outcome)
    c.send(MESSAGE, 0, sid, resp)
    c.send(TRAILERS, 0, sid, call_status(0))


def subscribe(c, sid, from_height, cancelled):
    """Server stream: every block from from_height, then new ones, until CANCEL."""
    h = from_height
    try:
        while True:
            with CHAIN.cv:
                while h >= len(CHAIN.blocks) and not cancelled.is_set():
                    CHAIN.cv.wait(0.2)
                if cancelled.is_set():
                    return
                body = CHAIN.block_response(h)
            c.send(MESSAGE, 0, sid, body)
            h += 1
    except OSError:
        pass


CHAIN_FIELD = {"/gridledger.Query/GetChainInfo": 1, "/gridledger.Ingest/SubmitReadings": 2,
               "/gridledger.Ingest/Submit": 2, "/gridledger.Query/ProveBlock": 1}
SERVICES = ("/gridledger.Query/", "/gridledger.Ingest/", "/gridledger.FeeControl/",
            "/gridledger.Control/", "/gridledger.Notices/")
STREAMS = {"/gridledger.Query/SubscribeBlocks", "/gridledger.Control/SubscribeCommands",
           "/gridledger.Notices/Subscribe"}


def check_chain(c, sid, method, req):
    """Logs the request's chain_id; False (after NOT_FOUND) for a chain not served."""
    if not method.startswith(SERVICES):
        return True
    default = 15 if method.startswith(("/gridledger.Query/", "/gridledger.Ingest/")) else 1
    chain_id = first(req, CHAIN_FIELD.get(method, default)).decode()
    log("CHAIN %s %s" % (method.rsplit("/", 1)[1], chain_id or "-"))
    if chain_id not in ("", "d1") and not (method in ("/gridledger.Ingest/Submit",
                                                      "/gridledger.FeeControl/GetDistrictResults")
                                           and chain_id == "main"):
        c.send(TRAILERS, 0, sid, call_status(5, "this node serves no chain %r" % chain_id))
        return False
    return True


# ---- anchoring and fee control -----------------------------------------------------------------
CERT_DIR = "."
ACCOUNT = (f_bytes(1, "acc1") + f_bytes(2, "m1") + f_int(3, 1234) + f_varint(4, 1) + f_varint(6, 1700000000000) +
           f_varint(7, 5000) + f_varint(9, 300) +
           f_msg(10, f_bytes(1, "peak") + f_varint(2, 100) + f_int(3, 120)) +
           f_msg(10, f_bytes(1, "valley") + f_varint(2, 200) + f_int(3, 80)) +
           f_msg(11, f_varint(1, 1) + f_varint(2, 300) + f_int(3, 0)) +
           f_int(12, 200) + f_int(14, 900) + f_int(15, 2134))


# The uplink of district d1 on the main chain (anchor.proto): (account, balance, state,
# cycle charged, total charged, total paid), in account order (UTF-8 byte order).
UPLINK = [("acc1", 1234, 1, 250, 900, 2134), ("acc2", -250, 3, 100, 2250, 2000),
          ("acc3", 99999, 0, 1, 1, 100000), ("用户4", -5, 2, 0, 95, 100)]
UPLINK_TOTALS = (f_varint(1, 40) + f_varint(2, 96) + f_varint(3, 95) + f_int(4, 12345) +
                 f_varint(5, 3) + f_varint(6, 5) + f_varint(8, 7) + f_bytes(9, b"\x09" * 32))


def account_result(entry):
    name, balance, state, cycle, total, paid = entry
    return (f_bytes(1, name) + f_int(2, balance) + f_varint(3, state) + f_int(4, cycle) +
            f_int(5, 1764518400000) + f_int(6, cycle) + f_int(7, total) + f_int(8, paid))


UPLINK_STATE = {"uplink/d1/account/acc2": account_result(UPLINK[1]), "uplink/d1/totals": UPLINK_TOTALS}


def district_page(after, limit):
    """A GetDistrictResultsResponse of d1 after account `after`: pages of 2 (or limit)."""
    rest = [e for e in UPLINK if e[0].encode() > after.encode()]
    size = min(limit or 2, 2)
    page = rest[:size]
    body = f_bytes(1, "d1") + f_msg(2, UPLINK_TOTALS) + b"".join(f_msg(3, account_result(e)) for e in page)
    if len(rest) > size:
        body += f_bytes(4, page[-1][0])
    body += b"".join(f_bytes(5, e[0]) for e in page if e[2] in (1, 2))
    body += b"".join(f_bytes(6, e[0]) for e in page if e[2] == 3)
    return body


def command(cid, kind):
    return (f_bytes(1, cid) + f_bytes(2, "d1") + f_bytes(3, "acc1") + f_bytes(4, "m1") + f_varint(5, kind) +
            f_varint(6, 1) + f_varint(7, 1700000000000) + f_varint(8, 1700003600000) + f_varint(9, 4))


def openssl_sign(key_path, data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path, f.name],
                              capture_output=True, check=True).stdout


def cert_der(name):
    return subprocess.run(["openssl", "x509", "-in", os.path.join(CERT_DIR, name + ".crt"), "-outform", "DER"],
                          capture_output=True, check=True).stdout


def merkle_path(ids, index, field):
    """MerkleStep messages of leaf `index`, each as repeated field `field` of BlockProof."""
    level = [sha256(b"\x00" + i) for i in ids]
    steps = b""
    while len(level) > 1:
        sib = index ^ 1
        if sib < len(level):
            steps += f_msg(field, f_bytes(1, level[sib]) + f_varint(2, 1 if sib < index else 0))
        else:
            steps += f_msg(field, f_varint(3, 1))
        level = [sha256(b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        index //= 2
    return steps


def prove(height):
    """A BlockProof of d1 block `height` (the caller holds CHAIN.cv)."""
    hashes = [b[1] for b in CHAIN.blocks[1:]]
    last = len(CHAIN.blocks) - 1
    root = merkle(hashes)
    summary = f_varint(1, 3)
    d = b"d1"
    digest = sha256(b"gridledger-anchor/v1" + struct.pack(">H", 2) + d + struct.pack(">QQ", 1, last) +
                    struct.pack(">H", 32) + hashes[-1] + struct.pack(">H", 32) + root + sha256(summary))
    sigs = b"".join(f_msg(8, f_bytes(1, cert_der(n)) + f_bytes(2, openssl_sign(os.path.join(CERT_DIR, n + ".key"), digest)))
                    for n in ("dn1", "dn2"))
    anchor = (f_bytes(1, "d1") + f_varint(2, 1) + f_varint(3, last) + f_bytes(4, hashes[-1]) + f_bytes(5, root) +
              f_bytes(6, "sha256") + f_bytes(7, summary) + sigs)
    payload = f_bytes(1, "main") + f_varint(2, 5) + f_bytes(3, "n") + f_msg(12, anchor)
    tx = f_bytes(1, payload) + f_bytes(2, b"sig") + f_bytes(3, b"cert")
    ids = [sha256(b"main-tx-%d" % i) for i in range(5)]
    ids[3] = sha256(payload)
    # TxOutcomes of the main block (readings_accepted i + 1; the anchor's: code 0, accounts
    # acc1), leaves H(serialized TxOutcome) under the header's outcomes_root.
    outcomes = [f_varint(3, i + 1) for i in range(5)]
    outcomes[3] = f_bytes(10, "acc1")
    leaves = [sha256(o) for o in outcomes]
    main = (f_bytes(1, "main") + f_varint(2, 42) + f_bytes(3, b"\x07" * 32) + f_varint(4, 9) + f_bytes(5, merkle(ids)) +
            f_bytes(6, b"\x01" * 32) + f_bytes(7, "cloud1") + f_varint(8, 5) + f_bytes(9, "sha256") +
            f_bytes(10, merkle(leaves)))
    header_path = merkle_path(hashes, height - 1, 4)
    tx_steps = merkle_path(ids, 3, 6)
    outcome_steps = merkle_path(leaves, 3, 10)
    return (f_bytes(1, "d1") + f_varint(2, height) + f_bytes(3, CHAIN.blocks[height][0]) + header_path +
            f_bytes(5, tx) + tx_steps + f_bytes(7, main) + f_varint(8, 3) + f_bytes(9, outcomes[3]) +
            outcome_steps)


BODY_NAMES = {10: "readings", 11: "district_registration", 12: "anchor", 13: "parameter",
              14: "anchor_receipt", 15: "downlink", 16: "command_ack"}
PARAM_NAMES = {10: "customer", 11: "tariff", 12: "thresholds", 13: "payment", 14: "activation",
               15: "notice_templates"}


def describe(fields):
    """field=value pairs of a decoded message, bytes as text when printable, else length."""
    out = []
    for num in sorted(fields):
        for v in fields[num]:
            if isinstance(v, bytes):
                try:
                    text = v.decode()
                    v = text if text.isprintable() and len(text) < 64 else "<%d bytes>" % len(v)
                except UnicodeDecodeError:
                    v = "<%d bytes>" % len(v)
            out.append("%d=%s" % (num, v))
    return " ".join(out)


def submit_other(c, sid, req):
    t = parse(first(req, 1))
    payload, sig, cert = first(t, 1), first(t, 2), first(t, 3)
    ok, subject = check_signature(payload, sig, cert)
    if not ok:
        log("Submit stream %d: bad signature" % sid)
        c.send(TRAILERS, 0, sid, call_status(16, "signature does not verify"))
        return
    p = parse(payload)
    chain, request_chain = first(p, 1).decode(), first(req, 2).decode()
    if request_chain and chain != request_chain:
        c.send(TRAILERS, 0, sid, call_status(3, "payload names chain %r, not %r" % (chain, request_chain)))
        return
    kinds = [k for k in BODY_NAMES if k in p]
    kind = BODY_NAMES[kinds[0]] if kinds else "none"
    body = parse(p[kinds[0]][0]) if kinds else {}
    detail = describe(body)
    if kind == "parameter":
        sub = [k for k in PARAM_NAMES if k in body]
        detail = "district=%s %s: %s" % (first(body, 1).decode(), PARAM_NAMES[sub[0]] if sub else "none",
                                         describe(parse(body[sub[0]][0])) if sub else "")
        if sub and sub[0] == 11:
            tariff = parse(body[11][0])
            detail += " weekday=%s" % first(tariff, 4).hex()
        if sub and sub[0] == 14:
            detail += " vee: %s" % describe(parse(first(parse(body[14][0]), 4)))
        if sub and sub[0] == 15:
            for t in parse(body[15][0]).get(2, []):
                t = parse(t)
                detail += " | template kind=%d recipient=%s text=%s" % (
                    first(t, 1, 0), first(t, 2).decode(), first(t, 3).decode())
    elif kind == "district_registration":
        detail = "district=%s certs=%s" % (first(body, 1).decode(), ",".join(
            sha256(d).hex()[:16] for d in body.get(2, [])))
    log("SUBMIT chain=%s signer=%s kind=%s nonce_len=%d created=%d %s" % (
        chain, subject.get("CN"), kind, len(first(p, 3)), first(p, 2, 0), detail))
    tid = sha256(payload)
    rejected = kind == "command_ack" and first(body, 1).startswith(b"rejected")
    outcome = f_varint(1, 9) + f_bytes(2, "no such command") if rejected else b""
    loc = f_varint(1, 7) + f_bytes(3, tid) + f_bytes(4, b"\x05" * 32)
    c.send(MESSAGE, 0, sid, f_msg(1, loc) + f_msg(2, outcome))
    c.send(TRAILERS, 0, sid, call_status(0))


def contract_stream(c, sid, method, req, cancelled):
    """Control/SubscribeCommands and Notices/Subscribe: a backlog, then open until CANCEL."""
    try:
        if method == "/gridledger.Control/SubscribeCommands":
            for cid in ("c1", "c2"):
                c.send(MESSAGE, 0, sid, command(cid, 1))
        else:
            for h in (3, 5):
                if h >= first(req, 2, 0):
                    c.send(MESSAGE, 0, sid, f_bytes(1, "n%d" % h) + f_bytes(2, "d1") + f_bytes(3, "acc1") +
                           f_varint(4, 1) + f_bytes(5, "customer") + f_bytes(6, "13800000000") +
                           f_bytes(7, "余额不足 balance low") + f_varint(8, 1700000000000 + h) + f_varint(9, h))
        cancelled.wait()
    except OSError:
        pass


def health(status):
    return f_varint(1, status)


# ---- connection ------------------------------------------------------------------------------
class Conn:
    def __init__(self, sock):
        self.s = sock
        self.wlock = threading.Lock()

    def send(self, ftype, flags, sid, body=b""):
        with self.wlock:
            self.s.sendall(struct.pack(">IBBI", len(body), ftype, flags, sid) + body)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        length, ftype, flags, sid = struct.unpack(">IBBI", self.recv_exact(10))
        return ftype, flags, sid, self.recv_exact(length)


def peer_role(sock):
    cert = sock.getpeercert()
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "organizationalUnitName":
                return v
    return ""


def serve(sock):
    c = Conn(sock)
    role = peer_role(sock)
    log("connected role=%s alpn=%s" % (role, sock.selected_alpn_protocol()))
    calls = {}  # sid -> [method, timeout, headers_flags, messages(list of (flags, body))]
    subs = {}   # sid -> threading.Event set on CANCEL
    try:
        while True:
            ftype, flags, sid, body = c.recv_frame()
            if ftype == PING:
                log("PING from client flags=%d" % flags)
                if flags & 1:
                    log("PING-ACK %s" % body.hex())
                else:
                    c.send(PING, 1, 0, body)
                continue
            if ftype == CANCEL:
                log("CANCEL stream %d" % sid)
                if sid in subs:
                    subs.pop(sid).set()
                    c.send(TRAILERS, 0, sid, call_status(1, "cancelled"))
                    continue
                if sid in calls:
                    del calls[sid]
                    c.send(TRAILERS, 0, sid, call_status(1, "cancelled"))
                continue
            if ftype == HEADERS:
                h = parse(body)
                method = h.get(1, [b""])[0].decode()
                timeout = h.get(2, [0])[0]
                log("HEADERS stream %d method=%s timeout_ms=%d flags=%d" % (sid, method, timeout, flags))
                calls[sid] = [method, timeout, flags, []]
                continue
            if ftype == MESSAGE:
                if sid not in calls:
                    continue
                calls[sid][3].append((flags, body))
                if calls[sid][0] in BIDI:
                    n = len(calls[sid][3])
                    c.send(MESSAGE, 0, sid, f_varint(1, n - 1))  # StreamAck{sequence}
                    if flags & END:
                        log("END_STREAM on MESSAGE stream %d" % sid)
                        c.send(TRAILERS, 0, sid, call_status(0, "acked %d" % n))
                        calls.pop(sid, None)
                    continue
                if flags & END:
                    call = calls[sid]
                    if call[0] in STREAMS and not call[2] & END and len(call[3]) == 1:
                        ev = threading.Event()
                        subs[sid] = ev
                        req = parse(body)
                        if not check_chain(c, sid, call[0], req):
                            subs.pop(sid, None)
                            calls.pop(sid, None)
                            continue
                        if call[0] == "/gridledger.Query/SubscribeBlocks":
                            threading.Thread(target=subscribe, args=(c, sid, first(req, 1, 0), ev),
                                             daemon=True).start()
                        else:
                            threading.Thread(target=contract_stream, args=(c, sid, call[0], req, ev),
                                             daemon=True).start()
                        calls.pop(sid, None)
                        continue
                    if not handle(c, sid, role, *call):
                        return
                    calls.pop(sid, None)
                continue
            if ftype == ENDF:
                log("END stream %d" % sid)
                call = calls.pop(sid, None)
                if call is None:
                    continue
                if call[0] in BIDI:
                    c.send(TRAILERS, 0, sid, call_status(0, "acked %d" % len(call[3])))
                elif not handle(c, sid, role, *call):
                    return
                continue
            log("unexpected frame type %d" % ftype)
    except (EOFError, ConnectionError, ssl.SSLError) as e:
        log("connection closed: %r" % e)
    finally:
        for ev in subs.values():
            ev.set()
        try:
            sock.close()
        except OSError:
            pass


def handle(c, sid, role, method, timeout, hflags, msgs):
    """Returns False when the connection must end."""
    if hflags & END or len(msgs) != 1 or not msgs[0][0] & END:
        log("framing: stream %d hflags=%d msgs=%r" % (sid, hflags, msgs))
        c.send(TRAILERS, 0, sid, call_status(13, "framing: hflags=%d msgs=%r" % (hflags, msgs)))
        return True
    req = parse(msgs[0][1])
    if not check_chain(c, sid, method, req):
        return True
    if method == "/gridledger.Ops/GetStatus":
        if role not in ("ops", "admin"):
            c.send(TRAILERS, 0, sid, call_status(7, "role %s may not call %s" % (role, method)))
            return True
        caller = f_bytes(1, "ops1") + f_bytes(2, role) + f_bytes(4, "0a1b")
        peers = b"".join(f_msg(15, f_varint(1, n) + f_varint(2, 12 - n) + f_varint(3, n - 1)) for n in (1, 2, 3))
        chain = (f_bytes(1, "meter\"chain\n") + f_varint(2, 7) + f_bytes(3, b"\x00\xff\x10") + f_bytes(4, "leader") +
                 f_varint(10, 1) + f_varint(11, 5) + f_varint(12, 1) + f_varint(13, 11) + f_varint(14, 10) + peers +
                 f_bytes(16, "halted \"why\""))
        resp = (f_bytes(1, "fake1") + f_bytes(2, "0.0-fake") + f_varint(3, 1234) +
                f_bytes(4, "127.0.0.1:1") + f_bytes(5, caller) + f_varint(6, 1) +
                f_varint(7, 5) + f_varint(9, 1700000000000) + f_bytes(10, chain))
        c.send(MESSAGE, 0, sid, resp)
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Health/Check":
        service = req.get(1, [b""])[0].decode()
        if service == "":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "ping":
            c.send(PING, 0, 0, b"\x01\x02\x03\x04\x05\x06\x07\x08")
            ftype, flags, _, body = c.recv_frame()
            ok = ftype == PING and flags == 1 and body == b"\x01\x02\x03\x04\x05\x06\x07\x08"
            log("PING-ACK %s" % ("ok" if ok else "WRONG %d %d %r" % (ftype, flags, body)))
            c.send(MESSAGE, 0, sid, health(1 if ok else 2))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "big":
            big = 5 * 1024 * 1024
            with c.wlock:
                c.s.sendall(struct.pack(">IBBI", big, MESSAGE, 0, sid))
                chunk = b"\xaa" * 65536
                for _ in range(big // len(chunk)):
                    c.s.sendall(chunk)
            log("sent big message on stream %d" % sid)
            # The client cancels; our CANCEL handler answers.
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "slow":
            log("slow call on stream %d, waiting for CANCEL" % sid)
        elif service == "goaway":
            c.send(GOAWAY, 0, 0, f_varint(1, 0) + f_varint(2, 14) + f_bytes(3, "shutting down"))
            log("sent GOAWAY")
            return True
        elif service == "idle-goaway":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
            c.send(PING, 0, 0, b"idlepng!")
            c.send(GOAWAY, 0, 0, f_varint(1, sid) + f_varint(2, 0) + f_bytes(3, "idle"))
            log("sent idle GOAWAY")
            c.s.settimeout(2.0)  # the client answers the PING when it next looks
            try:
                ftype, flags, _, body = c.recv_frame()
                if ftype == PING and flags & 1:
                    log("PING-ACK %s" % body.hex())
            except (OSError, EOFError):
                pass
            return False
        elif service == "twice":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "garbage":
            c.send(MESSAGE, 0, sid, b"\xff\xff\xff")
            c.send(TRAILERS, 0, sid, call_status(0))
        else:
            c.send(TRAILERS, 0, sid, call_status(5, "unknown service %s" % service))
        return True
    if method == "/gridledger.Health/Watch":
        for st in (1, 2, 1):
            c.send(MESSAGE, 0, sid, health(st))
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Ingest/SubmitReadings":
        submit_readings(c, sid, role, req)
        return True
    if method == "/gridledger.Ingest/Submit":
        submit_other(c, sid, req)
        return True
    if method == "/gridledger.Query/ProveBlock":
        height = first(req, 2, 0)
        with CHAIN.cv:
            proof = prove(height) if 0 < height < len(CHAIN.blocks) else None
        if proof is None:
            c.send(TRAILERS, 0, sid, call_status(5, "block %d is not anchored" % height))
        else:
            c.send(MESSAGE, 0, sid, proof)
            c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method.startswith("/gridledger.FeeControl/"):
        name = method.rsplit("/", 1)[1]
        if name == "GetAccount":
            account = first(req, 2).decode()
            log("ACCOUNT %s" % account)
            if account != "acc1":
                c.send(TRAILERS, 0, sid, call_status(5, "no account %r" % account))
                return True
            c.send(MESSAGE, 0, sid, f_msg(1, ACCOUNT) + f_msg(2, f_bytes(1, "acc1") + f_bytes(2, "m1") +
                                                               f_bytes(3, "ABC") + f_bytes(4, "T1")))
        elif name == "ListAccounts":
            log("LIST_ACCOUNTS state=%d any_warning=%d limit=%d" % (first(req, 2, 0), first(req, 3, 0),
                                                                     first(req, 4, 0)))
            c.send(MESSAGE, 0, sid, f_msg(1, ACCOUNT) + f_msg(1, f_bytes(1, "acc2") + f_int(3, -250) +
                                                              f_varint(4, 3)))
        elif name == "ListCommands":
            log("LIST_COMMANDS status=%d limit=%d" % (first(req, 2, 0), first(req, 3, 0)))
            c.send(MESSAGE, 0, sid, f_msg(1, command("c1", 1)) + f_msg(1, command("c2", 2)))
        elif name == "GetDistrictResults":
            district, after, limit = first(req, 2).decode(), first(req, 3).decode(), first(req, 4, 0)
            log("DISTRICT_RESULTS chain=%s district=%s after=%s limit=%d" % (
                first(req, 1).decode() or "-", district, after or "-", limit))
            if district != "d1":
                c.send(TRAILERS, 0, sid, call_status(5, "no district %r is registered" % district))
                return True
            c.send(MESSAGE, 0, sid, district_page(after, limit))
        else:
            c.send(TRAILERS, 0, sid, call_status(12, "unknown method %s" % method))
            return True
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Query/GetChainInfo":
        with CHAIN.cv:
            info = (f_bytes(1, "d1") + f_varint(2, len(CHAIN.blocks) - 1) + f_bytes(3, CHAIN.blocks[-1][1]) +
                    f_bytes(4, "sha256"))
        c.send(MESSAGE, 0, sid, info)
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method.startswith("/gridledger.Admin/"):
        if role != "admin":
            c.send(TRAILERS, 0, sid, call_status(7, "role %s may not call %s" % (role, method)))
            return True
        chain_id, node = first(req, 1).decode(), first(req, 2, 0)
        log("ADMIN %s chain=%s node=%d address=%s name=%s" % (
            method.rsplit("/", 1)[1], chain_id, node, first(req, 3).decode(), first(req, 4).decode()))
        if chain_id != "d1":
            c.send(TRAILERS, 0, sid, call_status(5, "this node serves no chain %r" % chain_id))
            return True
        learners = [4] if method.endswith("/AddMember") else []
        voters = [1, 2, 3, 4] if method.endswith("/PromoteMember") else [1, 2, 3]
        leader = node if method.endswith("/TransferLeader") else 1
        conf = f_bytes(1, b"".join(varint(v) for v in voters)) + f_bytes(2, b"".join(varint(v) for v in learners))
        c.send(MESSAGE, 0, sid, f_msg(1, conf) + f_varint(2, leader))
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method in ("/gridledger.Query/GetBlock", "/gridledger.Query/GetTransaction", "/gridledger.Query/GetState"):
        log("CONSISTENCY %s %d" % (method.rsplit("/", 1)[1],
                                    first(req, 4 if method.endswith("/GetBlock") else 2, 0)))
    if method == "/gridledger.Query/GetState":
        key = first(req, 1).decode()
        if key in UPLINK_STATE:
            c.send(MESSAGE, 0, sid, f_varint(1, 1) + f_bytes(2, UPLINK_STATE[key]) +
                   f_msg(3, f_varint(1, 9)))
        elif key == "reading/m1/000000000000005":
            c.send(MESSAGE, 0, sid, f_varint(1, 1) + f_bytes(2, b"\x00\x00\x00\x02") + f_msg(3, f_varint(1, 3) + f_varint(2, 1)))
        else:
            c.send(MESSAGE, 0, sid, b"")
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Query/GetBlock":
        with CHAIN.cv:
            if first(req, 3):
                hs = [i for i, b in enumerate(CHAIN.blocks) if b[1] == first(req, 3)]
                height = hs[0] if hs else None
            elif first(req, 2, 0):
                height = first(req, 1, 0)
                height = height if height < len(CHAIN.blocks) else None
            else:
                c.send(TRAILERS, 0, sid, call_status(3, "neither height nor hash"))
                return True
            body = CHAIN.block_response(height) if height is not None else None
        if body is None:
            c.send(TRAILERS, 0, sid, call_status(5, "no such block"))
        else:
            c.send(MESSAGE, 0, sid, body)
            c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Query/GetTransaction":
        tid = first(req, 1)
        with CHAIN.cv:
            if tid not in CHAIN.txs:
                body = None
            else:
                height, index = CHAIN.txs[tid]
                _, _, txs, outcomes = CHAIN.blocks[height]
                body = f_msg(1, txs[index]) + f_msg(2, CHAIN.location(tid)) + f_msg(3, outcomes[index])
        if body is None:
            c.send(TRAILERS, 0, sid, call_status(5, "no transaction %s" % tid.hex()))
        else:
            c.send(MESSAGE, 0, sid, body)
            c.send(TRAILERS, 0, sid, call_status(0))
        return True
    c.send(TRAILERS, 0, sid, call_status(12, "unknown method %s" % method))
    return True


def main():
    global CERT_DIR
    cert, key, ca, portfile = sys.argv[1:5]
    CERT_DIR = os.path.dirname(os.path.abspath(cert))
    port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["gridledger/1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, portfile)
    while True:
        raw, _ = ls.accept()
        try:
            s = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("handshake failed: %r" % e)
            raw.close()
            continue
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
