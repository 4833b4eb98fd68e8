"""Admin calls, read consistency and the Raft fields of status, against the fake node
(tests/fakechain.py): request building, responses, the CLI's JSON."""

import json

import pytest

from fakechain import FakeChain, reading_key
from fakenode import FakeNode

from gridledger import Client, RpcError, Signer, StatusCode, chain_pb2, ingest_pb2, raft_pb2
from gridledger.__main__ import main as cli_main
from gridledger.client import get_block_request, member_request, member_response_json
from pki import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("admin-pki")
    ca = CA(str(d / "ca"))
    return {
        "ca": ca.ca_path,
        "node": ca.issue("node1", "node"),
        "col1": ca.issue("col1", "collector", "d1"),
        "ops": ca.issue("ops1", "ops"),
        "admin": ca.issue("admin1", "admin"),
    }


@pytest.fixture()
def chain(pki):
    return FakeChain(pki["ca"])


@pytest.fixture()
def node(pki, chain):
    n = FakeNode(pki["ca"], *pki["node"], chain=chain)
    yield n
    n.close()


def connect(node, pki, ident):
    cert, key = pki[ident]
    return Client(node.address, cert=cert, key=key, ca=pki["ca"], timeout=5)


def cli(node, pki, ident, *args):
    cert, key = pki[ident]
    return cli_main(["--addr", node.address, "--cert", cert, "--key", key, "--ca", pki["ca"],
                     "--timeout", "5", *args])


# ---- request building (no network)

def test_member_request_fields():
    r = member_request("d1", 4, name="node4", address="127.0.0.1:7404")
    assert (r.chain_id, r.node_id, r.name, r.address) == ("d1", 4, "node4", "127.0.0.1:7404")
    assert raft_pb2.MemberRequest.FromString(r.SerializeToString()) == r
    r = member_request("d1", 2)
    assert (r.name, r.address) == ("", "")
    assert r.SerializeToString() == b"\x0a\x02d1\x10\x02"  # chain_id = 1, node_id = 2


@pytest.mark.parametrize("chain_id, node_id", [("", 1), ("d1", 0), ("d1", -1), ("d1", 2**64),
                                               ("d1", "2"), ("d1", True)])
def test_member_request_rejects_bad_values(chain_id, node_id):
    with pytest.raises(ValueError):
        member_request(chain_id, node_id)


def test_member_response_json():
    resp = raft_pb2.MemberResponse(
        conf_state=raft_pb2.RaftConfState(voters=[1, 2, 3], learners=[4]), leader=2)
    assert member_response_json(resp) == {"leader": 2, "voters": [1, 2, 3], "learners": [4]}
    assert member_response_json(raft_pb2.MemberResponse()) == {"leader": 0, "voters": [],
                                                               "learners": []}
    assert json.dumps(member_response_json(resp)) == \
        '{"leader": 2, "voters": [1, 2, 3], "learners": [4]}'


def test_get_block_request_consistency():
    r = get_block_request(height=3)
    assert (r.height, r.by_height, r.consistency) == (3, True, ingest_pb2.CONSISTENCY_LOCAL)
    r = get_block_request(hash="ab" * 32, linearizable=True)
    assert (r.hash, r.by_height, r.consistency) == \
        (b"\xab" * 32, False, ingest_pb2.CONSISTENCY_LINEARIZABLE)
    # consistency is field 4 (varint 1): 0x20 0x01
    assert get_block_request(height=0, linearizable=True).SerializeToString() == \
        b"\x10\x01\x20\x01"
    with pytest.raises(ValueError):
        get_block_request()


# ---- against the fake node

def test_admin_calls(node, pki, chain):
    with connect(node, pki, "admin") as c:
        r = c.transfer_leader("d1", 2)
        assert (r.leader, list(r.conf_state.voters)) == (2, [1, 2, 3])
        r = c.add_member("d1", 4, "node4", "127.0.0.1:7404")
        assert list(r.conf_state.learners) == [4]
        r = c.promote_member("d1", 4)
        assert (list(r.conf_state.voters), list(r.conf_state.learners)) == ([1, 2, 3, 4], [])
        r = c.remove_member("d1", 3)
        assert list(r.conf_state.voters) == [1, 2, 4]
        with pytest.raises(RpcError) as ei:
            c.transfer_leader("nope", 1)
        assert ei.value.code == StatusCode.NOT_FOUND
        with pytest.raises(ValueError):
            c.add_member("d1", 5, "node5", "no-port")
    sent = [(m.rsplit("/", 1)[1], (q.chain_id, q.node_id, q.name, q.address))
            for m, q in chain.queries]
    assert sent == [("TransferLeader", ("d1", 2, "", "")),
                    ("AddMember", ("d1", 4, "node4", "127.0.0.1:7404")),
                    ("PromoteMember", ("d1", 4, "", "")),
                    ("RemoveMember", ("d1", 3, "", "")),
                    ("TransferLeader", ("nope", 1, "", ""))]


def test_admin_needs_admin_role(node, pki):
    with connect(node, pki, "ops") as c:
        with pytest.raises(RpcError) as ei:
            c.transfer_leader("d1", 2)
        assert ei.value.code == StatusCode.PERMISSION_DENIED


def test_reads_send_consistency(node, pki, chain):
    signer = Signer(*pki["col1"])
    with connect(node, pki, "col1") as c:
        resp = c.submit_readings(signer, [chain_pb2.Reading(meter_id="m1", timestamp_ms=5)])
        txid = resp.location.tx_id
        key = reading_key("m1", 5)
        assert key == "reading/m1/000000000000005"
        for linear in (False, True):
            assert c.get_block(height=1, linearizable=linear).block.header.height == 1
            assert c.get_transaction(txid, linearizable=linear).location.height == 1
            assert c.get_state(key, linearizable=linear).found
            assert len(c.get_history(key, limit=5, linearizable=linear).entries) == 1
    LOCAL, LINEAR = ingest_pb2.CONSISTENCY_LOCAL, ingest_pb2.CONSISTENCY_LINEARIZABLE
    got = [(m.rsplit("/", 1)[1], q.consistency) for m, q in chain.queries]
    assert got == [("GetBlock", LOCAL), ("GetTransaction", LOCAL), ("GetState", LOCAL),
                   ("GetHistory", LOCAL), ("GetBlock", LINEAR), ("GetTransaction", LINEAR),
                   ("GetState", LINEAR), ("GetHistory", LINEAR)]


def test_cli_admin_json(node, pki, chain, capsys):
    assert cli(node, pki, "admin", "admin", "transfer-leader", "--chain", "d1",
               "--node", "3") == 0
    assert capsys.readouterr().out == '{"leader": 3, "voters": [1, 2, 3], "learners": []}\n'
    assert cli(node, pki, "admin", "admin", "add-member", "--chain", "d1", "--node", "4",
               "--name", "node4", "--address", "127.0.0.1:7404") == 0
    assert json.loads(capsys.readouterr().out) == {"leader": 3, "voters": [1, 2, 3],
                                                   "learners": [4]}
    assert chain.members[4] == ("node4", "127.0.0.1:7404")
    assert cli(node, pki, "admin", "admin", "promote", "--chain", "d1", "--node", "4") == 0
    assert json.loads(capsys.readouterr().out)["voters"] == [1, 2, 3, 4]
    assert cli(node, pki, "admin", "admin", "remove", "--chain", "d1", "--node", "4") == 0
    assert json.loads(capsys.readouterr().out) == {"leader": 3, "voters": [1, 2, 3],
                                                   "learners": []}
    # Refusals: exit 2 with the status on stderr.
    assert cli(node, pki, "ops", "admin", "transfer-leader", "--chain", "d1", "--node", "2") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: PERMISSION_DENIED:")
    chain.admin_unimplemented = True
    assert cli(node, pki, "admin", "admin", "promote", "--chain", "d1", "--node", "2") == 2
    assert capsys.readouterr().err.startswith("error: UNIMPLEMENTED:")


@pytest.mark.parametrize("args", [
    ["admin", "transfer-leader", "--chain", "d1"],                      # no --node
    ["admin", "transfer-leader", "--node", "2"],                        # no --chain
    ["admin", "transfer-leader", "--chain", "d1", "--node", "0"],
    ["admin", "add-member", "--chain", "d1", "--node", "4", "--name", "n4"],  # no --address
    ["admin", "add-member", "--chain", "d1", "--node", "4", "--name", "n4",
     "--address", "nohost"],
    ["admin", "promote", "--chain", "d1", "--node", "4", "--name", "n4"],
    ["admin", "frobnicate", "--chain", "d1", "--node", "4"],
    ["watch", "--linearizable"],
])
def test_cli_usage_errors(node, pki, args, capsys):
    with pytest.raises(SystemExit) as ei:
        cli(node, pki, "admin", *args)
    assert ei.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_cli_linearizable_reads(node, pki, chain, capsys):
    signer = Signer(*pki["col1"])
    with connect(node, pki, "col1") as c:
        txid = c.submit_readings(signer, [chain_pb2.Reading(meter_id="m2", timestamp_ms=7)]
                                 ).location.tx_id
    key = reading_key("m2", 7)
    assert cli(node, pki, "col1", "state", key, "--linearizable") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is True and out["value"] == "00000000"
    assert out["version"] == {"height": 1, "tx_index": 0}
    assert cli(node, pki, "col1", "block", "1", "--linearizable") == 0
    assert cli(node, pki, "col1", "tx", txid.hex(), "--linearizable") == 0
    assert cli(node, pki, "col1", "history", key, "--linearizable") == 0
    assert cli(node, pki, "col1", "state", key) == 0
    capsys.readouterr()
    LOCAL, LINEAR = ingest_pb2.CONSISTENCY_LOCAL, ingest_pb2.CONSISTENCY_LINEARIZABLE
    assert [q.consistency for _, q in chain.queries] == [LINEAR] * 4 + [LOCAL]


def test_cli_status_has_raft_fields(node, pki, capsys):
    assert cli(node, pki, "ops", "status") == 0
    status = json.loads(capsys.readouterr().out)
    ch = status["chains"][0]
    assert ch["role"] == "leader"
    assert {k: ch[k] for k in ("raft_node_id", "raft_term", "raft_leader", "raft_commit",
                               "raft_applied", "halted")} == {
        "raft_node_id": 1, "raft_term": 7, "raft_leader": 1, "raft_commit": 9,
        "raft_applied": 8, "halted": ""}
    assert ch["raft_peers"] == [{"node_id": 1, "match_index": 9, "lag": 0},
                                {"node_id": 2, "match_index": 8, "lag": 1},
                                {"node_id": 3, "match_index": 7, "lag": 2}]
    # 64-bit integers are numbers, bytes hex; zero values are present.
    assert isinstance(status["chains"][0]["height"], int)
    assert len(ch["head_hash"]) == 64 and status["chains"][0]["pending_transactions"] == 0
