"""Chain services of the client and the CLI against the fake node's toy chain
(tests/fakechain.py)."""

import json
import threading
import time

import pytest

from fakechain import FakeChain
from fakenode import FakeNode
import struct

from gridledger import Client, RpcError, Signer, StatusCode, ack_error, chain_pb2, tx_id
from gridledger.__main__ import main as cli_main
from gridledger.readings_csv import COLUMNS
from pki import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain-pki")
    ca = CA(str(d / "ca"))
    other = CA(str(d / "other"), "Other CA")
    return {
        "ca": ca.ca_path,
        "node": ca.issue("node1", "node"),
        "col1": ca.issue("col1", "collector", "d1"),
        "col2": ca.issue("col2", "collector", "d2"),
        "ops": ca.issue("ops1", "ops"),
        "foreign": other.issue("colx", "collector", "d1"),
    }


@pytest.fixture()
def chain(pki):
    return FakeChain(pki["ca"])


@pytest.fixture()
def node(pki, chain):
    n = FakeNode(pki["ca"], *pki["node"], chain=chain)
    yield n
    n.close()


@pytest.fixture()
def client(pki, node):
    cert, key = pki["col1"]
    with Client(node.address, cert=cert, key=key, ca=pki["ca"], timeout=5) as c:
        yield c


@pytest.fixture()
def signer(pki):
    return Signer(*pki["col1"])


def readings(n, meter="m", start=1_700_000_000_000):
    return [chain_pb2.Reading(meter_id=f"{meter}{i % 7}", timestamp_ms=start + i,
                              energy_total=100 + i, voltage_dv=[2200], current_ma=[i])
            for i in range(n)]


def test_chain_info_and_chain_id_cache(client, chain):
    info = client.chain_info()
    assert (info.chain_id, info.height, info.hash_suite) == ("d1", 0, "sha256")
    assert info.head_hash == chain.blocks[0][1]
    assert client.chain_id() == "d1"


def test_submit_readings_and_duplicates(client, signer, chain):
    batch = readings(5)
    first = client.submit_readings(signer, batch, batch_id="b-1")
    assert first.location.height == 1 and first.location.index == 0
    assert (first.outcome.code, first.outcome.readings_accepted,
            first.outcome.readings_duplicate) == (0, 5, 0)
    assert chain.submissions == ["/gridledger.Ingest/SubmitReadings"]
    signed = chain.blocks[1][0].transactions[0]
    payload = chain_pb2.TxPayload.FromString(signed.payload)
    assert payload.chain_id == "d1" and payload.readings.district == "d1"
    assert payload.readings.batch_id == "b-1" and len(payload.nonce) == 16
    assert first.location.tx_id == tx_id(signed)
    # Resubmitting the same signed transaction: ALREADY_EXISTS pointing at the original.
    with pytest.raises(RpcError) as ei:
        client.submit_signed_readings(signed)
    assert ei.value.code == StatusCode.ALREADY_EXISTS
    assert ei.value.location == first.location
    with pytest.raises(RpcError) as ei:
        client.submit(signed)
    assert ei.value.location == first.location
    # The same readings in a new transaction: committed, all duplicates.
    again = client.submit_readings(signer, batch)
    assert again.location.height == 2
    assert (again.outcome.readings_accepted, again.outcome.readings_duplicate) == (0, 5)


def test_submit_refusals_are_rpc_errors(client, signer, pki):
    signed = client.sign_readings(signer, readings(1))
    forged = chain_pb2.SignedTransaction()
    forged.CopyFrom(signed)
    forged.signature = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
    with pytest.raises(RpcError) as ei:
        client.submit_signed_readings(forged)
    assert ei.value.code == StatusCode.UNAUTHENTICATED
    d2 = Signer(*pki["col2"])
    with pytest.raises(RpcError) as ei:
        client.submit_readings(d2, readings(1))
    assert ei.value.code == StatusCode.PERMISSION_DENIED
    assert ei.value.location is None
    with pytest.raises(ValueError, match="district"):
        client.sign_readings(Signer(*pki["ops"]), readings(1))


def test_queries(client, signer):
    r = readings(3)
    resp = client.submit_readings(signer, r)
    block = client.get_block(height=1)
    assert block.block.header.height == 1 and block.hash == resp.location.block_hash
    assert client.get_block(hash=block.hash) == block
    assert client.get_block(hash=block.hash.hex()) == block
    assert client.get_block(height=0).block.header.height == 0
    with pytest.raises(RpcError) as ei:
        client.get_block(height=99)
    assert ei.value.code == StatusCode.NOT_FOUND
    for bad in ({}, {"height": 1, "hash": b"x"}, {"height": -1}):
        with pytest.raises(ValueError):
            client.get_block(**bad)
    tx = client.get_transaction(resp.location.tx_id)
    assert tx.location == resp.location and tx.outcome.readings_accepted == 3
    assert client.get_transaction(resp.location.tx_id.hex()) == tx
    key = f"reading/{r[0].meter_id}/{r[0].timestamp_ms:015d}"
    state = client.get_state(key)
    assert state.found and state.value == struct.pack(">I", 0)  # position in the batch
    assert (state.version.height, state.version.tx_index) == (1, 0)
    assert not client.get_state("reading/none/000000000000001").found
    history = client.get_history(key, limit=10)
    assert [e.version.height for e in history.entries] == [1]
    client.submit_readings(signer, [chain_pb2.Reading(meter_id=r[0].meter_id,
                                                      timestamp_ms=r[0].timestamp_ms + 99)])
    meter = client.get_history(f"meter/{r[0].meter_id}")
    assert [(e.version.height, struct.unpack(">q", e.value)[0]) for e in meter.entries] == \
        [(2, r[0].timestamp_ms + 99), (1, r[0].timestamp_ms)]


def test_list_blocks_follows_pages(client, signer, chain):
    for i in range(7):
        client.submit_readings(signer, readings(1, start=10_000 + i))
    heights = [b.header.height for b in client.list_blocks(0, page_size=100)]
    assert heights == list(range(8))  # the fake caps pages at 3: three pages
    assert [b.header.height for b in client.list_blocks(2, 6)] == [2, 3, 4, 5]
    assert [b.hash for b in client.list_blocks(7)] == [chain.blocks[7][1]]
    assert list(client.list_blocks(8)) == []


def test_subscribe_blocks_backlog_then_live(client, signer, node):
    client.submit_readings(signer, readings(1))
    with client.subscribe_blocks(0) as blocks:
        assert [next(blocks).block.header.height for _ in range(2)] == [0, 1]
        got = []
        t = threading.Thread(target=lambda: got.append(next(blocks)))
        t.start()
        time.sleep(0.1)
        resp = client.submit_readings(signer, readings(1, start=5))
        t.join(30)
        assert got and got[0].block.header.height == 2
        assert got[0].hash == resp.location.block_hash
    node.wait_for("cancel")
    assert client.health  # the connection is still usable
    assert client.chain_info().height == 2


def test_stream_readings_acks_in_order(client, signer, chain):
    already = client.sign_readings(signer, readings(2, meter="s"))
    first = client.submit_signed_readings(already)
    batches = [
        readings(3, meter="a"),
        chain_pb2.ReadingBatch(batch_id="mine", readings=readings(2, meter="b")),
        chain_pb2.ReadingBatch(district="d2", readings=readings(1, meter="c")),  # refused
        already,                                                                  # exists
        readings(3, meter="a"),                                                   # duplicates
    ]
    acks = list(client.stream_readings(signer, batches))
    assert [a.sequence for a in acks] == [0, 1, 2, 3, 4]
    assert [a.code for a in acks] == [0, 0, 7, 6, 0]
    assert acks[0].response.outcome.readings_accepted == 3
    assert chain_pb2.TxPayload.FromString(
        chain.blocks[acks[1].response.location.height][0].transactions[0].payload
    ).readings.batch_id == "mine"
    assert ack_error(acks[0]) is None
    assert ack_error(acks[2]).code == StatusCode.PERMISSION_DENIED
    exists = ack_error(acks[3])
    assert exists.code == StatusCode.ALREADY_EXISTS
    assert (exists.location.height, exists.location.index) == (first.location.height, 0)
    assert acks[4].response.outcome.readings_duplicate == 3
    assert chain.submissions.count("/gridledger.Ingest/StreamReadings") == 5


def test_stream_readings_window_and_lazy_batches(client, signer):
    produced = []

    def gen():
        for i in range(20):
            produced.append(i)
            yield readings(1, meter=f"w{i}-")

    stream = client.stream_readings(signer, gen(), window=2)
    time.sleep(0.2)
    assert len(produced) <= 3  # two sent ahead, the third waiting for credit
    acks = list(stream)
    assert [a.sequence for a in acks] == list(range(20))
    assert all(a.code == 0 for a in acks)


def test_stream_readings_iterable_error_cancels(client, signer, node):
    def gen():
        yield readings(1, meter="e")
        raise RuntimeError("source failed")

    stream = client.stream_readings(signer, gen())
    with pytest.raises(RuntimeError, match="source failed"):
        list(stream)
    node.wait_for("cancel")
    assert client.chain_info().chain_id == "d1"


def test_stream_readings_close_stops_sending(client, signer, node):
    def endless():
        i = 0
        while True:
            i += 1
            yield readings(1, meter=f"x{i}-")

    with client.stream_readings(signer, endless(), window=4) as stream:
        assert next(stream).code == 0
    node.wait_for("cancel")
    assert client.chain_info().chain_id == "d1"


def test_stream_readings_deadline(client, signer):
    def slow():
        yield readings(1, meter="slow")
        time.sleep(10)
        yield readings(1, meter="never")

    stream = client.stream_readings(signer, slow(), timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(RpcError) as ei:
        list(stream)
    assert ei.value.code == StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 8  # before the 10 s sleep ends; generous for a loaded CI


# --------------------------------------------------------------------------- CLI


def write_csv(path, rows):
    path.write_text(",".join(COLUMNS) + "\n" + "".join(r + "\n" for r in rows))
    return str(path)


def csv_rows(n, meter="cm"):
    return [f"{meter}{i % 3},{1_700_000_000_000 + i},{i},0,0,0,0,0,2200,,,100,,,0,0,0"
            for i in range(n)]


def cli(node, pki, ident, *args):
    cert, key = pki[ident]
    return cli_main(["--addr", node.address, "--cert", cert, "--key", key, "--ca", pki["ca"],
                     "--timeout", "5", *args])


def out_lines(capsys):
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines() if line], captured.err


def test_cli_ingest(node, pki, chain, tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv", csv_rows(7))
    assert cli(node, pki, "col1", "ingest", "--csv", path, "--batch", "3") == 0
    lines, err = out_lines(capsys)
    assert [(l["batch"], l["height"], l["index"], l["accepted"], l["duplicate"])
            for l in lines] == [(0, 1, 0, 3, 0), (1, 2, 0, 3, 0), (2, 3, 0, 1, 0)]
    assert set(lines[0]) == {"batch", "tx_id", "height", "index", "accepted", "duplicate"}
    for l in lines:
        signed = chain.blocks[l["height"]][0].transactions[0]
        assert l["tx_id"] == tx_id(signed).hex()
    # Again: new transactions, every reading a duplicate.
    assert cli(node, pki, "col1", "ingest", "--csv", path, "--batch", "500") == 0
    lines, _ = out_lines(capsys)
    assert [(l["batch"], l["accepted"], l["duplicate"]) for l in lines] == [(0, 0, 7)]


def test_cli_ingest_bad_csv_submits_nothing(node, pki, chain, tmp_path, capsys):
    rows = csv_rows(4)
    rows[1] = rows[1].replace(",2200,,,100,", ",2200,,,,")
    rows[3] = "," + rows[3].split(",", 1)[1]
    path = write_csv(tmp_path / "bad.csv", rows)
    assert cli(node, pki, "col1", "ingest", "--csv", path) == 65
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}:3: phase A: voltage_a_dv given but current_a_ma is empty",
        f"{path}:5: meter_id is empty",
    ]
    assert chain.submissions == []
    assert cli(node, pki, "col1", "ingest", "--csv", str(tmp_path / "missing.csv")) == 66
    assert chain.submissions == []


def test_cli_ingest_retries_resource_exhausted(node, pki, chain, tmp_path, capsys):
    chain.exhaust_next = 2
    path = write_csv(tmp_path / "r.csv", csv_rows(2))
    assert cli(node, pki, "col1", "ingest", "--csv", path) == 0
    lines, err = out_lines(capsys)
    assert [(l["height"], l["accepted"]) for l in lines] == [(1, 2)]
    assert err.count("RESOURCE_EXHAUSTED") == 2 and "resubmitting" in err
    # Out of retries: exit 2, the batch reported on stderr.
    chain.exhaust_next = 5
    assert cli(node, pki, "col1", "ingest", "--csv", path, "--retries", "1") == 2
    lines, err = out_lines(capsys)
    assert lines == []
    assert "error: batch 0 (CSV readings 1-2) not submitted: RESOURCE_EXHAUSTED" in err


def test_cli_ingest_reports_already_existed(node, pki, chain, tmp_path, capsys):
    chain.lose_ack_next = 1  # committed, but answered RESOURCE_EXHAUSTED: the retry exists
    path = write_csv(tmp_path / "r.csv", csv_rows(4))
    assert cli(node, pki, "col1", "ingest", "--csv", path, "--batch", "2") == 0
    lines, _ = out_lines(capsys)
    assert lines[0] == {"batch": 0, "tx_id": lines[0]["tx_id"], "height": 1, "index": 0,
                        "accepted": 2, "duplicate": 0, "already_existed": True}
    assert "already_existed" not in lines[1] and lines[1]["height"] == 2
    assert len(chain.blocks) == 3  # the first batch is on the chain once


def test_cli_ingest_permission_denied(node, pki, chain, tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv", csv_rows(2))
    assert cli(node, pki, "col2", "ingest", "--csv", path) == 2
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert cli(node, pki, "ops", "ingest", "--csv", path) == 2
    assert "names no district" in capsys.readouterr().err


def test_cli_queries(node, pki, client, signer, capsys):
    r = readings(2)
    resp = client.submit_readings(signer, r)
    assert cli(node, pki, "ops", "chain-info") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chain_id"] == "d1" and info["height"] == 1
    assert cli(node, pki, "ops", "block", "1") == 0
    block = json.loads(capsys.readouterr().out)
    assert block["hash"] == resp.location.block_hash.hex()
    [tx] = block["block"]["transactions"]
    assert tx["tx_id"] == resp.location.tx_id.hex()
    assert tx["payload"]["readings"]["district"] == "d1"
    assert tx["payload"]["readings"]["readings"][0]["voltage_dv"] == [2200]
    assert tx["signer"] == "O=GridLedger,L=d1,OU=collector,CN=col1"
    assert block["block"]["outcomes"][0]["readings_accepted"] == 2
    assert cli(node, pki, "ops", "block", "--hash", resp.location.block_hash.hex()) == 0
    assert json.loads(capsys.readouterr().out) == block
    assert cli(node, pki, "ops", "block", "0") == 0
    assert json.loads(capsys.readouterr().out)["block"]["header"]["height"] == 0
    assert cli(node, pki, "ops", "tx", resp.location.tx_id.hex()) == 0
    tx_out = json.loads(capsys.readouterr().out)
    assert tx_out["location"]["height"] == 1 and tx_out["outcome"]["code"] == 0
    key = f"reading/{r[0].meter_id}/{r[0].timestamp_ms:015d}"
    assert cli(node, pki, "ops", "state", key) == 0
    state = json.loads(capsys.readouterr().out)
    assert state == {"found": True, "value": "00000000",
                     "version": {"height": 1, "tx_index": 0}}
    assert cli(node, pki, "ops", "history", key, "--limit", "5") == 0
    assert len(json.loads(capsys.readouterr().out)["entries"]) == 1
    assert cli(node, pki, "ops", "blocks") == 0
    lines, _ = out_lines(capsys)
    assert [l["height"] for l in lines] == [0, 1]
    assert cli(node, pki, "ops", "tx", "00" * 32) == 2
    assert capsys.readouterr().err.startswith("error: NOT_FOUND:")


def test_cli_watch(node, pki, client, signer, capsys):
    client.submit_readings(signer, readings(1))
    assert cli(node, pki, "ops", "watch", "--count", "2") == 0
    lines, _ = out_lines(capsys)
    assert [l["height"] for l in lines] == [0, 1]
    assert lines[1]["transactions"][0]["accepted"] == 1
    assert lines[1]["tx_count"] == 1 and lines[1]["previous_hash"] == lines[0]["hash"]
    # --from, a live block, --full
    done = []
    t = threading.Thread(target=lambda: done.append(
        cli(node, pki, "ops", "watch", "--from", "2", "--count", "1", "--full")))
    t.start()
    time.sleep(0.2)
    client.submit_readings(signer, readings(1, start=99))
    t.join(30)
    assert done == [0]
    lines, _ = out_lines(capsys)
    assert lines[0]["block"]["header"]["height"] == 2


# ---- chain_id: every chain-service request names the chain it is for -----------------------

def test_chain_id_on_the_wire(client, chain, signer):
    client.chain_info(chain_id="d1")
    response = client.submit_readings(signer, readings(2), chain_id="d1")
    client.get_block(height=1, chain_id="d1")
    client.get_transaction(response.location.tx_id, chain_id="d1")
    client.get_state("k", chain_id="d1")
    client.get_history("k", chain_id="d1")
    list(client.list_blocks(chain_id="d1"))
    with client.subscribe_blocks(0, chain_id="d1") as blocks:
        next(iter(blocks))
    client.get_block(height=0)
    assert chain.chain_ids == [
        ("GetChainInfo", "d1"), ("SubmitReadings", "d1"), ("GetBlock", "d1"),
        ("GetTransaction", "d1"), ("GetState", "d1"), ("GetHistory", "d1"),
        ("ListBlocks", "d1"), ("SubscribeBlocks", "d1"), ("GetBlock", "")]


def test_chain_id_defaults_to_empty(client, chain, signer):
    client.submit_readings(signer, readings(1))
    assert chain.chain_ids == [("GetChainInfo", ""), ("SubmitReadings", "")]


def test_request_builders_carry_chain_id():
    from gridledger.client import _submit_request, get_block_request
    assert get_block_request(height=3, chain_id="d2").chain_id == "d2"
    assert get_block_request(hash="00" * 32).chain_id == ""
    signed = chain_pb2.SignedTransaction(payload=b"p")
    assert _submit_request(signed, "d2").SerializeToString() == b"\x0a\x03\x0a\x01p\x12\x02d2"
    assert _submit_request(signed).chain_id == ""


def test_cli_chain_option_on_every_chain_command(node, pki, chain, tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv", csv_rows(2))
    assert cli(node, pki, "col1", "ingest", "--csv", path, "--chain", "d1") == 0
    lines, _ = out_lines(capsys)
    assert chain.chain_ids == [("SubmitReadings", "d1")]  # signed for d1, no GetChainInfo
    assert chain.blocks[1][0].transactions[0].payload
    txid = lines[0]["tx_id"]
    for args in (["chain-info"], ["block", "1"], ["tx", txid], ["state", "k"],
                 ["history", "k"], ["blocks"], ["watch", "--count", "1"]):
        assert cli(node, pki, "col1", *args, "--chain", "d1") == 0, args
    capsys.readouterr()
    assert [c for _, c in chain.chain_ids] == ["d1"] * 8
    assert [m for m, _ in chain.chain_ids] == [
        "SubmitReadings", "GetChainInfo", "GetBlock", "GetTransaction", "GetState",
        "GetHistory", "ListBlocks", "SubscribeBlocks"]
