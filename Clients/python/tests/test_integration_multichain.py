"""The client against a real gridnode serving two chains, d1 and d2 (`gridnode start
--config` with `chains:`): every request names its chain with chain_id / --chain."""
import json
import os

import pytest

from gridledger import Client, RpcError, Signer, StatusCode, chain_pb2

from nodeharness import GRIDNODE, Node, cli, gridnode, identity

if not GRIDNODE or not os.path.exists(GRIDNODE):
    pytest.skip("set GRIDNODE to a gridnode binary", allow_module_level=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi-pki")
    ca, certs = str(root / "ca"), str(root / "certs")
    gridnode("ca", "init", "--out", ca)
    for args in (["--role", "node", "--name", "node1"],
                 ["--role", "collector", "--name", "c1", "--district", "d1"],
                 ["--role", "collector", "--name", "c2", "--district", "d2"],
                 ["--role", "ops", "--name", "ops1"],
                 ["--role", "marketing", "--name", "mkt1"]):
        gridnode("ca", "issue", "--ca", ca, *args, "--out", certs)
    return {name: identity(certs, name) for name in ("node1", "c1", "c2", "ops1", "mkt1")}


@pytest.fixture(scope="module")
def node(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("multi-node")
    config = root / "node.yaml"
    config.write_text("chains:\n"
                      "  - {id: d1, max_block_delay_ms: 5}\n"
                      "  - {id: d2, max_block_delay_ms: 5}\n")
    n = Node(pki["node1"], root, ["--config", str(config)])
    try:
        yield n
    finally:
        n.terminate()


def connect(node, ident):
    return Client(node.address, cert=ident["cert"], key=ident["key"], ca=ident["ca"],
                  timeout=30)


def csv(path, meter, n):
    rows = [f"{meter},{1_768_000_000_000 + i * 900_000},{100 + i},0,0,0,0,0,2200,,,100,,,0,0,0"
            for i in range(n)]
    path.write_text("meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,"
                    "energy_valley,energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,"
                    "current_a_ma,current_b_ma,current_c_ma,active_power_w,"
                    "reactive_power_var,events\n" + "\n".join(rows) + "\n")
    return str(path)


def test_library_two_chains(node, pki):
    with connect(node, pki["c2"]) as c:
        signer = Signer(pki["c2"]["cert"], pki["c2"]["key"])
        reading = chain_pb2.Reading(meter_id="lib2", timestamp_ms=1_768_100_000_000,
                                    energy_total=1)
        r = c.submit_readings(signer, [reading], chain_id="d2")
        assert r.outcome.readings_accepted == 1
        got = c.get_transaction(r.location.tx_id, chain_id="d2")
        assert got.location.height == r.location.height
        assert c.chain_info(chain_id="d2").chain_id == "d2"
        with pytest.raises(RpcError) as e:
            c.get_block(height=0)
        assert e.value.code == StatusCode.INVALID_ARGUMENT
        with pytest.raises(RpcError) as e:
            c.get_block(height=0, chain_id="d9")
        assert e.value.code == StatusCode.NOT_FOUND


def test_cli_two_chains(node, pki, tmp_path):
    r = cli(node, pki["c2"], "ingest", "--csv", csv(tmp_path / "d2.csv", "m2", 3),
            "--chain", "d2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["accepted"] == 3
    r = cli(node, pki["c1"], "ingest", "--csv", csv(tmp_path / "d1.csv", "m1", 2),
            "--chain", "d1")
    assert r.returncode == 0, r.stderr
    # Read as marketing: ops reads no blocks or raw state (Docs/permissions.md).
    blocks = {}
    for chain in ("d1", "d2"):
        r = cli(node, pki["mkt1"], "block", "1", "--chain", chain)
        assert r.returncode == 0, r.stderr
        blocks[chain] = json.loads(r.stdout)
        assert blocks[chain]["block"]["header"]["chain_id"] == chain
    assert blocks["d1"]["hash"] != blocks["d2"]["hash"]
    for args in (["chain-info"], ["block", "1"], ["state", "k"], ["blocks"]):
        r = cli(node, pki["mkt1"], *args)
        assert r.returncode == 2 and "INVALID_ARGUMENT" in r.stderr, (args, r.stderr)
        r = cli(node, pki["mkt1"], *args, "--chain", "d2")
        assert r.returncode == 0, (args, r.stderr)
    r = cli(node, pki["mkt1"], "watch", "--count", "1", "--chain", "d2")
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0]), r.stderr
