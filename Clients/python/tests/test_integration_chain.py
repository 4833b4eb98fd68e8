"""Chain services against a real node (Docs/wire-protocol.md, "Chain services").

Set GRIDNODE to the gridnode executable; the module is skipped when it is unset or when
its `start` has no `--chain-id` (a node without the chain).  One node (chain d1) runs for
the whole module; tests that need a fresh chain say so.
"""

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time

import pytest

from gridledger import Client, RpcError, Signer, StatusCode, ack_error, chain_pb2, tx_id
from gridledger.readings_csv import COLUMNS
from gridledger.signing import readings_payload
from nodeharness import GRIDNODE, SKIP_REASON, Node, cli, gridnode, identity, start_help

if not GRIDNODE:
    pytest.skip(SKIP_REASON, allow_module_level=True)
if "--chain-id" not in start_help():
    pytest.skip(f"{GRIDNODE} predates the chain: `gridnode start --help` has no --chain-id",
                allow_module_level=True)

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "Docs")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain-pki")
    ca, certs = str(root / "ca"), str(root / "certs")
    gridnode("ca", "init", "--out", ca)
    for args in (["--role", "node", "--name", "node1"],
                 ["--role", "collector", "--name", "col1", "--district", "d1"],
                 ["--role", "collector", "--name", "col2", "--district", "d2"],
                 ["--role", "ops", "--name", "ops1"],
                 ["--role", "marketing", "--name", "mkt1"]):
        gridnode("ca", "issue", "--ca", ca, *args, "--out", certs)
    other_ca, other_certs = str(root / "other-ca"), str(root / "other-certs")
    gridnode("ca", "init", "--out", other_ca)
    gridnode("ca", "issue", "--ca", other_ca, "--role", "collector", "--name", "colx",
             "--district", "d1", "--out", other_certs)
    return {
        "node": identity(certs, "node1"),
        "col1": identity(certs, "col1"),
        "col2": identity(certs, "col2"),
        "ops": identity(certs, "ops1"),
        # Reads blocks, transactions and state: a collector reads only its own submissions'
        # outcomes, ops status and aggregates (Docs/permissions.md).
        "mkt": identity(certs, "mkt1"),
        "foreign": identity(other_certs, "colx"),
    }


@pytest.fixture(scope="module")
def node(pki, tmp_path_factory):
    n = Node(pki["node"], tmp_path_factory.mktemp("chain-node"), ["--chain-id", "d1"])
    try:
        yield n
    finally:
        n.terminate()


def connect(node, ident, **kw):
    kw.setdefault("timeout", 30)
    return Client(node.address, cert=ident["cert"], key=ident["key"], ca=ident["ca"], **kw)


@pytest.fixture()
def client(node, pki):
    with connect(node, pki["col1"]) as c:
        yield c


@pytest.fixture()
def reader(node, pki):
    with connect(node, pki["mkt"]) as c:
        yield c


def signer(pki, name):
    return Signer(pki[name]["cert"], pki[name]["key"])


_meters = iter(range(1_000_000))


def readings(n, per_meter=5):
    """n readings of fresh meters (unique across the module)."""
    base = next(_meters)
    return [chain_pb2.Reading(meter_id=f"it-{base}-{i // per_meter}",
                              timestamp_ms=1_700_000_000_000 + i % per_meter * 900_000,
                              energy_total=1000 + i, energy_peak=i, voltage_dv=[2200, 2210, 2190],
                              current_ma=[1500, -20, 7], active_power_w=3300, events=0x11)
            for i in range(n)]


def expect(code, fn, *args, **kw):
    with pytest.raises(RpcError) as ei:
        fn(*args, **kw)
    assert ei.value.code == code, ei.value
    return ei.value


def test_chain_info(node, pki):
    with connect(node, pki["ops"]) as c:
        info = c.chain_info()
    assert info.chain_id == "d1" and info.hash_suite == "sha256"
    assert len(info.head_hash) == 32


def test_submit_resubmit_and_duplicates(client, pki):
    col1 = signer(pki, "col1")
    batch = readings(12)
    signed = client.sign_readings(col1, batch, batch_id="it-dup")
    first = client.submit_signed_readings(signed)
    assert first.location.height >= 1
    assert first.location.tx_id == tx_id(signed) and len(first.location.block_hash) == 32
    assert (first.outcome.code, first.outcome.readings_accepted,
            first.outcome.readings_duplicate) == (0, 12, 0)
    assert not first.already_existed
    # The identical SignedTransaction again: ALREADY_EXISTS with the original location.
    err = expect(StatusCode.ALREADY_EXISTS, client.submit_signed_readings, signed)
    assert err.location == first.location
    assert f"height={first.location.height} index={first.location.index}" in err.message
    err = expect(StatusCode.ALREADY_EXISTS, client.submit, signed)  # Ingest/Submit too
    assert err.location == first.location
    # A new transaction (new nonce) with the same readings: committed, all duplicates.
    again = client.submit_readings(col1, batch)
    assert again.location.height >= first.location.height
    assert again.location.tx_id != first.location.tx_id
    assert (again.outcome.code, again.outcome.readings_accepted,
            again.outcome.readings_duplicate) == (0, 0, 12)
    # Half old, half new.
    mixed = client.submit_readings(col1, batch[:6] + readings(4))
    assert (mixed.outcome.readings_accepted, mixed.outcome.readings_duplicate) == (4, 6)


def test_forged_signature_unauthenticated(client, pki):
    signed = client.sign_readings(signer(pki, "col1"), readings(2))
    sig = bytearray(signed.signature)
    sig[len(sig) // 2] ^= 0x01
    forged = chain_pb2.SignedTransaction(payload=signed.payload, signature=bytes(sig),
                                         signer_certificate=signed.signer_certificate)
    expect(StatusCode.UNAUTHENTICATED, client.submit_signed_readings, forged)
    # A valid signature over other bytes does not pass either.
    other = chain_pb2.SignedTransaction(payload=signed.payload + b"\x18\x01",
                                        signature=signed.signature,
                                        signer_certificate=signed.signer_certificate)
    expect(StatusCode.UNAUTHENTICATED, client.submit_signed_readings, other)
    # The untouched transaction is still fine.
    assert client.submit_signed_readings(signed).outcome.readings_accepted == 2


def test_signer_from_another_ca_unauthenticated(client, pki):
    foreign = signer(pki, "foreign")
    assert foreign.district == "d1" and foreign.role == "collector"
    err = expect(StatusCode.UNAUTHENTICATED, client.submit_readings, foreign, readings(1))
    assert err.location is None


def test_collector_of_another_district_denied(node, pki):
    col2 = signer(pki, "col2")
    with connect(node, pki["col2"]) as c:  # its own district in its batch, chain d1
        expect(StatusCode.PERMISSION_DENIED, c.submit_readings, col2, readings(1))
    with connect(node, pki["col1"]) as c:  # claiming d1 with a d2 certificate
        signed = c.sign_readings(col2, readings(1), district="d1")
        expect(StatusCode.PERMISSION_DENIED, c.submit_signed_readings, signed)
        # A d1 collector naming district d2 in its batch.
        signed = c.sign_readings(signer(pki, "col1"), readings(1), district="d2")
        expect(StatusCode.PERMISSION_DENIED, c.submit_signed_readings, signed)


def test_ops_signer_denied(client, pki):
    ops = signer(pki, "ops")
    assert ops.role == "ops" and ops.district is None
    signed = client.sign_readings(ops, readings(1), district="d1")
    expect(StatusCode.PERMISSION_DENIED, client.submit_signed_readings, signed)
    expect(StatusCode.PERMISSION_DENIED, client.submit, signed)


def test_ops_caller_denied(node, pki):
    with connect(node, pki["ops"]) as c:
        signed = c.sign_readings(signer(pki, "col1"), readings(1))
        expect(StatusCode.PERMISSION_DENIED, c.submit_signed_readings, signed)


def test_invalid_arguments(client, pki):
    col1 = signer(pki, "col1")
    # Garbage payload bytes, validly signed.
    garbage = col1.sign(b"\xff\xff\xff\xff not a TxPayload")
    expect(StatusCode.INVALID_ARGUMENT, client.submit_signed_readings, garbage)
    expect(StatusCode.INVALID_ARGUMENT, client.submit, garbage)
    # Another chain.
    # (payload for d9, request without chain_id: the node's chain; submit_readings(
    # chain_id="d9") would ask for chain d9 itself, NOT_FOUND)
    expect(StatusCode.INVALID_ARGUMENT, client.submit_signed_readings,
           client.sign_readings(col1, readings(1), chain_id="d9"))
    expect(StatusCode.NOT_FOUND, client.submit_readings, col1, readings(1), chain_id="d9")
    # No body.
    no_body = col1.sign(chain_pb2.TxPayload(chain_id="d1", created_ms=1, nonce="x"))
    expect(StatusCode.INVALID_ARGUMENT, client.submit_signed_readings, no_body)
    # Invalid readings: empty meter id, more than 3 phases.
    expect(StatusCode.INVALID_ARGUMENT, client.submit_readings, col1,
           [chain_pb2.Reading(meter_id="", timestamp_ms=1_700_000_000_000)])
    expect(StatusCode.INVALID_ARGUMENT, client.submit_readings, col1,
           [chain_pb2.Reading(meter_id="m4", timestamp_ms=1_700_000_000_000,
                              voltage_dv=[1, 2, 3, 4], current_ma=[1, 2, 3, 4])])
    # A transaction without signature / certificate.
    unsigned = chain_pb2.SignedTransaction(payload=readings_payload(
        "d1", "d1", readings(1)).SerializeToString())
    expect(StatusCode.INVALID_ARGUMENT, client.submit_signed_readings, unsigned)


def test_batch_over_limit_resource_exhausted(client, pki):
    col1 = signer(pki, "col1")
    err = expect(StatusCode.RESOURCE_EXHAUSTED, client.submit_readings, col1,
                 readings(10_001, per_meter=100))
    assert "10000" in err.message.replace(",", "") or "limit" in err.message
    # Exactly the limit is fine.
    ok = client.submit_readings(col1, readings(10_000, per_meter=100))
    assert ok.outcome.readings_accepted == 10_000


def test_queries(client, reader, pki, node):
    col1 = signer(pki, "col1")
    batch = readings(3)
    resp = client.submit_readings(col1, batch)
    loc = resp.location
    by_height = reader.get_block(height=loc.height)
    assert by_height.hash == loc.block_hash
    header = by_height.block.header
    assert (header.chain_id, header.height, header.hash_suite) == ("d1", loc.height, "sha256")
    assert header.tx_count == len(by_height.block.transactions) == len(by_height.block.outcomes)
    tx = by_height.block.transactions[loc.index]
    assert tx_id(tx) == loc.tx_id
    assert by_height.block.outcomes[loc.index] == resp.outcome
    assert reader.get_block(hash=loc.block_hash) == by_height
    genesis = reader.get_block(height=0)
    assert genesis.block.header.height == 0 and not genesis.block.header.previous_hash
    if loc.height > 0:
        assert header.previous_hash == reader.get_block(height=loc.height - 1).hash
    expect(StatusCode.NOT_FOUND, reader.get_block, height=10**9)
    expect(StatusCode.NOT_FOUND, reader.get_block, hash=b"\x00" * 32)
    # The collector reads its own submission's outcome.
    assert client.get_transaction(loc.tx_id).outcome == resp.outcome
    got = reader.get_transaction(loc.tx_id)
    assert got.location == loc and got.outcome == resp.outcome
    assert got.transaction == tx
    assert chain_pb2.TxPayload.FromString(got.transaction.payload).readings.readings[0] == \
        batch[0]
    expect(StatusCode.NOT_FOUND, reader.get_transaction, b"\x01" * 32)
    # list_blocks: every height from 0 to the head, in order, following next_height.
    head = reader.chain_info().height
    summaries = list(reader.list_blocks(0, page_size=2))
    assert [s.header.height for s in summaries] == list(range(head + 1))
    assert summaries[loc.height].hash == loc.block_hash
    assert [s.header.height for s in reader.list_blocks(1, 3)] == [1, 2]
    assert [s.header.height for s in reader.list_blocks(head)] == [head]
    assert list(reader.list_blocks(head + 1)) == []


def test_state_of_a_reading(client, reader, pki):
    # Docs/storage-format.md, "World state written by the chain".
    def key_of(meter, ts):
        return f"reading/{meter}/{ts:015d}"
    batch = readings(2)
    resp = client.submit_readings(signer(pki, "col1"), batch)
    state = reader.get_state(key_of(batch[1].meter_id, batch[1].timestamp_ms))
    assert state.found
    assert (state.version.height, state.version.tx_index) == (resp.location.height,
                                                              resp.location.index)
    history = reader.get_history(key_of(batch[1].meter_id, batch[1].timestamp_ms))
    assert [(e.version.height, e.deleted) for e in history.entries] == \
        [(resp.location.height, False)]
    assert not reader.get_state(key_of("never-seen", 1)).found
    expect(StatusCode.INVALID_ARGUMENT, reader.get_state, "")


def test_subscribe_blocks_existing_then_new(client, pki, node):
    col1 = signer(pki, "col1")
    client.submit_readings(col1, readings(1))
    head = client.chain_info().height
    with connect(node, pki["mkt"]) as watcher:
        blocks = watcher.subscribe_blocks(0)
        seen = [next(blocks) for _ in range(head + 1)]
        assert [b.block.header.height for b in seen] == list(range(head + 1))
        for prev, cur in zip(seen, seen[1:]):
            assert cur.block.header.previous_hash == prev.hash
        box = []
        reader = threading.Thread(target=lambda: box.append(next(blocks)), daemon=True)
        reader.start()
        time.sleep(0.2)
        assert reader.is_alive()  # nothing new yet
        resp = client.submit_readings(col1, readings(2))
        reader.join(30)
        assert box, "no block arrived after the submission"
        new = box[0]
        assert new.block.header.height == head + 1
        assert (new.hash, new.block.header.height) == (resp.location.block_hash,
                                                       resp.location.height)
        assert new.block.header.previous_hash == seen[-1].hash
        blocks.close()
        assert watcher.chain_info().chain_id == "d1"  # cancelling left the connection usable


def test_stream_readings_acks_in_order(client, pki):
    col1 = signer(pki, "col1")
    existing = client.sign_readings(col1, readings(2))
    first = client.submit_signed_readings(existing)
    dup = readings(3)
    batches = [dup, readings(4), chain_pb2.ReadingBatch(district="d2", readings=readings(1)),
               existing, dup] + [readings(2) for _ in range(20)]
    acks = list(client.stream_readings(col1, batches, window=8))
    assert [a.sequence for a in acks] == list(range(len(batches)))
    codes = [a.code for a in acks]
    assert codes[:5] == [0, 0, StatusCode.PERMISSION_DENIED, StatusCode.ALREADY_EXISTS, 0]
    assert set(codes[5:]) == {0}
    assert acks[0].response.outcome.readings_accepted == 3
    assert acks[1].response.outcome.readings_accepted == 4
    assert ack_error(acks[2]).code == StatusCode.PERMISSION_DENIED
    exists = ack_error(acks[3])
    assert (exists.location.height, exists.location.index) == (first.location.height,
                                                               first.location.index)
    assert (acks[4].response.outcome.readings_accepted,
            acks[4].response.outcome.readings_duplicate) == (0, 3)
    heights = [a.response.location.height for a in acks if a.code == 0]
    assert heights == sorted(heights)


def test_watch_reconnect_goes_on_after_a_node_restart(pki, tmp_path):
    """`watch --reconnect` outlives a node restart: it prints every block once, in order,
    across the restart, and stops at --count."""
    node = Node(pki["node"], tmp_path, ["--chain-id", "d1"])
    col1 = signer(pki, "col1")
    mkt = pki["mkt"]
    watcher = None
    try:
        with connect(node, pki["col1"]) as c:
            c.submit_readings(col1, readings(1))
        watcher = subprocess.Popen(
            [sys.executable, "-m", "gridledger", "--addr", node.address, "--cert", mkt["cert"],
             "--key", mkt["key"], "--ca", mkt["ca"], "watch", "--reconnect", "--count", "4"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..")})
        lines = [json.loads(watcher.stdout.readline()) for _ in range(2)]  # blocks 0 and 1
        node.terminate()
        node = Node(pki["node"], tmp_path, ["--chain-id", "d1"], port=node.port)
        with connect(node, pki["col1"]) as c:
            c.submit_readings(col1, readings(1))
            c.submit_readings(col1, readings(1))
        out, err = watcher.communicate(timeout=60)
        lines += [json.loads(line) for line in out.splitlines()]
        assert watcher.returncode == 0, err
        assert [line["height"] for line in lines] == [0, 1, 2, 3]
        assert "reconnecting" in err
    finally:
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        node.terminate()


def test_stream_readings_many_in_flight(client, pki):
    col1 = signer(pki, "col1")
    t0 = time.monotonic()
    acks = list(client.stream_readings(col1, (readings(50) for _ in range(200)), window=64))
    elapsed = time.monotonic() - t0
    assert [a.sequence for a in acks] == list(range(200))
    assert all(a.code == 0 and a.response.outcome.readings_accepted == 50 for a in acks)
    # Pipelined: far fewer blocks than batches (one block per batch would take 200 block
    # delays).
    heights = {a.response.location.height for a in acks}
    assert len(heights) < 200, (len(heights), elapsed)


# --------------------------------------------------------------------------- CLI


def write_csv(path, n, meter):
    rows = [f"{meter}-{i % 4},{1_700_000_000_000 + i * 60_000},{i},0,{i},0,0,0,"
            f"{'2200,,,1500,,,' if i % 2 else '2200,2210,2190,1500,1400,1300,'}100,-5,{i % 3}"
            for i in range(n)]
    path.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return str(path)


def test_cli_ingest_and_queries(node, pki, tmp_path):
    path = write_csv(tmp_path / "r.csv", 25, f"cli{next(_meters)}")
    r = cli(node, pki["col1"], "ingest", "--csv", path, "--batch", "10")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [(l["batch"], l["accepted"], l["duplicate"]) for l in lines] == \
        [(0, 10, 0), (1, 10, 0), (2, 5, 0)]
    assert all(l["height"] >= 1 and len(l["tx_id"]) == 64 for l in lines)
    # Again: new transactions, all duplicates.
    r = cli(node, pki["col1"], "ingest", "--csv", path)
    assert r.returncode == 0, r.stderr
    [line] = [json.loads(l) for l in r.stdout.splitlines()]
    assert (line["accepted"], line["duplicate"]) == (0, 25)
    # Queries on what was ingested.
    r = cli(node, pki["mkt"], "tx", lines[0]["tx_id"])
    assert r.returncode == 0, r.stderr
    tx = json.loads(r.stdout)
    assert tx["location"]["height"] == lines[0]["height"]
    assert tx["transaction"]["payload"]["readings"]["district"] == "d1"
    assert tx["transaction"]["signer"].endswith("CN=col1")
    r = cli(node, pki["mkt"], "block", str(lines[0]["height"]))
    assert r.returncode == 0, r.stderr
    assert lines[0]["tx_id"] in [t["tx_id"] for t in json.loads(r.stdout)["block"]["transactions"]]
    r = cli(node, pki["ops"], "chain-info")
    assert r.returncode == 0 and json.loads(r.stdout)["chain_id"] == "d1"
    r = cli(node, pki["mkt"], "watch", "--from", "0", "--count", "3")
    assert r.returncode == 0, r.stderr
    assert [json.loads(l)["height"] for l in r.stdout.splitlines()] == [0, 1, 2]


def test_cli_ingest_bad_input_and_refusals(node, pki, tmp_path):
    good = write_csv(tmp_path / "good.csv", 3, f"cli{next(_meters)}")
    bad = tmp_path / "bad.csv"
    text = open(good).read().splitlines()
    text[2] = "bad meter!" + text[2][text[2].index(","):]
    bad.write_text("\n".join(text) + "\n")
    with connect(node, pki["ops"]) as c:
        before = c.chain_info().height
    r = cli(node, pki["col1"], "ingest", "--csv", str(bad))
    assert r.returncode == 65
    assert r.stdout == ""
    assert r.stderr.startswith(f"{bad}:3: meter_id 'bad meter!'"), r.stderr
    r = cli(node, pki["col2"], "ingest", "--csv", good)
    assert r.returncode == 2 and "PERMISSION_DENIED" in r.stderr
    with connect(node, pki["ops"]) as c:
        assert c.chain_info().height == before  # nothing was committed
