"""Admin calls, linearizable reads and the Raft status fields against a real 3-node Raft
group (Docs/wire-protocol.md, "Raft and administration").

Set GRIDNODE to the gridnode executable; skipped when it is unset or its `start` has no
`--raft-id`.  Three nodes (node1..node3, chain d1) run for the whole module.
"""

import json
import subprocess
import time

import pytest

from gridledger import Client, RpcError, Signer, StatusCode, chain_pb2, raft_pb2
from nodeharness import GRIDNODE, SKIP_REASON, cli, free_port, gridnode, identity, start_help

if not GRIDNODE:
    pytest.skip(SKIP_REASON, allow_module_level=True)
if "--raft-id" not in start_help():
    pytest.skip(f"{GRIDNODE} has no Raft: `gridnode start --help` has no --raft-id",
                allow_module_level=True)

CHAIN = "d1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("raft-pki")
    ca, certs = str(root / "ca"), str(root / "certs")
    gridnode("ca", "init", "--out", ca)
    for i in (1, 2, 3):
        gridnode("ca", "issue", "--ca", ca, "--role", "node", "--name", f"node{i}",
                 "--district", CHAIN, "--out", certs)
    for args in (["--role", "admin", "--name", "admin1"],
                 ["--role", "ops", "--name", "ops1"],
                 ["--role", "collector", "--name", "col1", "--district", CHAIN]):
        gridnode("ca", "issue", "--ca", ca, *args, "--out", certs)
    ids = {f"node{i}": identity(certs, f"node{i}") for i in (1, 2, 3)}
    ids.update(admin=identity(certs, "admin1"), ops=identity(certs, "ops1"),
               col1=identity(certs, "col1"))
    return ids


class Member:
    """One `gridnode start` of the group (nodeharness.cli needs .address)."""

    def __init__(self, raft_id, port, root):
        self.raft_id = raft_id
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.root = root
        self.log_path = root / f"node{raft_id}.log"
        self.proc = None

    def start(self, ident, members):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [GRIDNODE, "start", "--listen", self.address,
                 "--data-dir", str(self.root / f"data{self.raft_id}"),
                 "--cert", ident["cert"], "--key", ident["key"], "--ca", ident["ca"],
                 "--chain-id", CHAIN, "--raft-id", str(self.raft_id),
                 *[a for m in members for a in ("--member", m)]],
                stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def group(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("raft-group")
    members = [Member(i, free_port(), root) for i in (1, 2, 3)]
    spec = [f"{m.raft_id}=node{m.raft_id}@{m.address}" for m in members]
    try:
        for m in members:
            m.start(pki[f"node{m.raft_id}"], spec)
        yield members
    finally:
        for m in members:
            if m.proc is not None and m.proc.poll() is None:
                m.proc.terminate()
        for m in members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()


def connect(member, ident, timeout=30):
    return Client(member.address, cert=ident["cert"], key=ident["key"], ca=ident["ca"],
                  timeout=timeout)


def chain_status(member, pki):
    with connect(member, pki["ops"], timeout=5) as c:
        return c.status().chains[0]


def agreed_leader(group, views):
    """The raft id of the leader the group agrees on, from each member's (role,
    raft_leader, raft_term) in ``views`` (members that did not answer are missing), or
    None: exactly one member says role "leader", at term T; a majority of the group
    reports raft_leader = it at term T; no member is at a later term. Right after an
    election or a leadership transfer the old leader can still say "leader" for a moment:
    it is never the answer."""
    leaders = [i for i, (role, _, _) in views.items() if role == "leader"]
    if len(leaders) != 1:
        return None
    top = leaders[0]
    term = views[top][2]
    agree = [i for i, (_, lead, t) in views.items() if lead == top and t == term]
    if 2 * len(agree) <= len(group) or any(t > term for _, _, t in views.values()):
        return None
    return top


def wait_for_leader(group, pki, timeout=60, want=None):
    """The member the group agrees is its leader (see agreed_leader; and is `want` when
    given)."""
    deadline = time.monotonic() + timeout
    last = {}
    while True:
        views = {}
        for m in group:
            assert m.proc.poll() is None, f"node{m.raft_id} exited:\n{m.log()}"
            try:
                st = chain_status(m, pki)
            except (RpcError, OSError) as exc:
                last[m.raft_id] = repr(exc)
                continue
            views[m.raft_id] = last[m.raft_id] = (st.role, st.raft_leader, st.raft_term)
        leader = agreed_leader(group, views)
        if leader is not None and (want is None or leader == want):
            return next(m for m in group if m.raft_id == leader)
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    pytest.fail(f"no agreed leader{'' if want is None else f' {want}'} within {timeout} s: "
                f"(role, raft_leader, raft_term) by member: {last}")


def transfer(member, pki, target, timeout=30):
    """TransferLeader to `target`, retrying ABORTED / UNAVAILABLE (an election racing) for
    up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(member, pki["admin"], timeout=30) as c:
                return c.transfer_leader(CHAIN, target)
        except RpcError as exc:
            if exc.code not in (StatusCode.ABORTED, StatusCode.UNAVAILABLE) or \
                    time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_leader_elected_and_status_fields(group, pki):
    leader = wait_for_leader(group, pki)
    st = chain_status(leader, pki)
    assert st.raft_node_id == leader.raft_id and st.raft_leader == leader.raft_id
    assert st.raft_term >= 1 and st.raft_commit >= 1 and not st.halted
    assert sorted(p.node_id for p in st.raft_peers) == [1, 2, 3]
    r = cli(leader, pki["ops"], "status")
    assert r.returncode == 0, r.stderr
    ch = json.loads(r.stdout)["chains"][0]
    assert ch["role"] == "leader" and ch["raft_leader"] == leader.raft_id
    for key in ("raft_node_id", "raft_term", "raft_commit", "raft_applied"):
        assert isinstance(ch[key], int), (key, ch)
    assert ch["halted"] == ""
    assert {p["node_id"] for p in ch["raft_peers"]} == {1, 2, 3}
    assert all(set(p) == {"node_id", "match_index", "lag"} for p in ch["raft_peers"])


def test_transfer_leader(group, pki):
    leader = wait_for_leader(group, pki)
    target = next(m for m in group if m is not leader)
    r = transfer(leader, pki, target.raft_id)
    assert r.leader == target.raft_id
    assert wait_for_leader(group, pki, want=target.raft_id) is target


def _cli_transfer(via, pki, target, timeout=30):
    """admin transfer-leader through the CLI, retrying ABORTED / UNAVAILABLE (an election
    racing) for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = cli(via, pki["admin"], "--timeout", "30", "admin", "transfer-leader",
                "--chain", CHAIN, "--node", str(target.raft_id))
        if r.returncode == 0 or not r.stderr.startswith(("error: ABORTED",
                                                         "error: UNAVAILABLE")) or \
                time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_cli_transfer_leader(group, pki):
    leader = wait_for_leader(group, pki)
    target = next(m for m in group if m is not leader)
    r = _cli_transfer(leader, pki, target)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"leader", "voters", "learners"}
    assert out["leader"] == target.raft_id
    assert all(isinstance(v, int) for v in out["voters"] + out["learners"])
    wait_for_leader(group, pki, want=target.raft_id)


# A follower forwards the transfer to the leader as a Raft message whose `from` is the
# transferee; the leader accepts it from any member.
def test_cli_transfer_leader_through_a_third_node(group, pki):
    leader = wait_for_leader(group, pki)
    target = next(m for m in group if m is not leader)
    via = next(m for m in group if m is not leader and m is not target)
    r = _cli_transfer(via, pki, target)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["leader"] == target.raft_id
    wait_for_leader(group, pki, want=target.raft_id)


def test_transfer_leader_as_ops_denied(group, pki):
    leader = wait_for_leader(group, pki)
    with connect(leader, pki["ops"]) as c:
        with pytest.raises(RpcError) as ei:
            c.transfer_leader(CHAIN, 1)
    assert ei.value.code == StatusCode.PERMISSION_DENIED
    r = cli(leader, pki["ops"], "admin", "transfer-leader", "--chain", CHAIN, "--node", "1")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: PERMISSION_DENIED:"), r.stderr


def test_linearizable_read_on_a_follower(group, pki):
    leader = wait_for_leader(group, pki)
    follower = next(m for m in group if m is not leader)
    signer = Signer(pki["col1"]["cert"], pki["col1"]["key"])
    ts = int(time.time() * 1000)
    meters = [f"lin-{ts}-{i}" for i in range(3)]
    with connect(leader, pki["col1"], timeout=30) as c:
        c.submit_readings(signer, [chain_pb2.Reading(meter_id=m, timestamp_ms=ts, energy_total=1)
                                   for m in meters], chain_id=CHAIN)
    keys = [f"reading/{m}/{ts:015d}" for m in meters]
    # Read as admin: the collector reads only its own submissions' outcomes.
    with connect(follower, pki["admin"], timeout=30) as c:
        for key in keys[:2]:
            st = c.get_state(key, linearizable=True)
            assert st.found, key
            assert st.version.height >= 1
        assert c.get_history(keys[0], linearizable=True).entries
        block = c.get_block(height=st.version.height, linearizable=True)
        assert block.block.header.height == st.version.height
    r = cli(follower, pki["admin"], "--timeout", "30", "state", keys[2], "--linearizable")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["found"] is True


def _membership_implemented(member, pki):
    """False when the node answers UNIMPLEMENTED for /gridledger.Admin/AddMember."""
    with connect(member, pki["admin"]) as c:
        try:
            # Node id 0 is never a member: an implemented node refuses the request itself.
            c.unary("/gridledger.Admin/AddMember",
                    raft_pb2.MemberRequest(chain_id=CHAIN, node_id=0), raft_pb2.MemberResponse)
        except RpcError as exc:
            return exc.code != StatusCode.UNIMPLEMENTED
    return True


def test_add_and_remove_member(group, pki):
    leader = wait_for_leader(group, pki)
    if not _membership_implemented(leader, pki):
        pytest.skip(f"{GRIDNODE} answers UNIMPLEMENTED for /gridledger.Admin/AddMember "
                    "(membership changes are not in this node build yet)")
    new_port = free_port()
    with connect(leader, pki["admin"], timeout=30) as c:
        r = c.add_member(CHAIN, 4, "node4", f"127.0.0.1:{new_port}")
        assert 4 in r.conf_state.learners and 4 not in r.conf_state.voters
        # Nothing listens for node 4, so it never catches up: promotion is refused.
        with pytest.raises(RpcError) as ei:
            c.promote_member(CHAIN, 4)
        assert ei.value.code == StatusCode.FAILED_PRECONDITION, ei.value
        r = c.remove_member(CHAIN, 4)
        assert 4 not in r.conf_state.learners and 4 not in r.conf_state.voters
        assert sorted(r.conf_state.voters) == [1, 2, 3]
    r = cli(leader, pki["ops"], "admin", "add-member", "--chain", CHAIN, "--node", "5",
            "--name", "node5", "--address", f"127.0.0.1:{new_port}")
    assert r.returncode == 2 and r.stderr.startswith("error: PERMISSION_DENIED:"), r.stderr


def test_nodes_still_running(group):
    for m in group:
        assert m.proc.poll() is None, f"node{m.raft_id} exited:\n{m.log()}"
