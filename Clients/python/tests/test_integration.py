"""Integration tests against a real node.

Set GRIDNODE to the gridnode executable (e.g. /work/main/.build/debug/gridnode) to run
them; the module is skipped otherwise.  One node runs for the whole module and must exit
with status 0 on SIGTERM.
"""

import json
import signal
import ssl
import threading
import time

import pytest

from gridledger import Client, RpcError, StatusCode, health_pb2
from nodeharness import GRIDNODE, SKIP_REASON, Node as _Node, cli, gridnode as _gridnode, \
    identity as _identity

if not GRIDNODE:
    pytest.skip(SKIP_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("gridnode-pki")
    ca, certs = str(root / "ca"), str(root / "certs")
    _gridnode("ca", "init", "--out", ca)
    _gridnode("ca", "issue", "--ca", ca, "--role", "node", "--name", "node1", "--out", certs)
    _gridnode("ca", "issue", "--ca", ca, "--role", "ops", "--name", "ops1", "--out", certs)
    _gridnode("ca", "issue", "--ca", ca, "--role", "collector", "--name", "collector1",
              "--district", "d1", "--out", certs)
    other_ca, other_certs = str(root / "other-ca"), str(root / "other-certs")
    _gridnode("ca", "init", "--out", other_ca)
    _gridnode("ca", "issue", "--ca", other_ca, "--role", "ops", "--name", "ops9", "--out",
              other_certs)
    return {
        "node": _identity(certs, "node1"),
        "ops": _identity(certs, "ops1"),
        "collector": _identity(certs, "collector1"),
        "foreign": _identity(other_certs, "ops9"),
    }


@pytest.fixture(scope="module")
def node(pki, tmp_path_factory):
    n = _Node(pki["node"], tmp_path_factory.mktemp("gridnode-run"))
    try:
        yield n
    finally:
        n.terminate()


def _client(node, ident, **kw):
    return Client(node.address, cert=ident["cert"], key=ident["key"], ca=ident["ca"], **kw)


def test_status_as_ops(pki, node):
    with _client(node, pki["ops"]) as c:
        first = c.status()
        time.sleep(0.05)
        second = c.status()
    assert first.node_id
    assert second.node_id == first.node_id
    assert second.uptime_ms > first.uptime_ms
    assert first.caller.role == "ops"
    assert first.caller.name == "ops1"
    assert first.caller.serial


def test_status_as_collector_denied(pki, node):
    with _client(node, pki["collector"]) as c:
        with pytest.raises(RpcError) as ei:
            c.status()
    assert ei.value.code == StatusCode.PERMISSION_DENIED


def test_health(pki, node):
    for role in ("ops", "collector"):  # Health allows any role
        with _client(node, pki[role]) as c:
            assert c.health() == "SERVING"


def test_health_unknown_service(pki, node):
    with _client(node, pki["ops"]) as c:
        with pytest.raises(RpcError) as ei:
            c.health("no.such.Service")
        assert ei.value.code == StatusCode.NOT_FOUND
        assert c.health() == "SERVING"  # the connection survives a failed call


def test_watch_health(pki, node):
    with _client(node, pki["ops"]) as c:
        with c.watch_health() as updates:
            assert next(updates) == "SERVING"
        # Cancelling the watch leaves the connection usable.
        assert c.health() == "SERVING"
        with c.watch_health("no.such.Service") as updates:
            assert next(updates) == "SERVICE_UNKNOWN"


def test_unknown_method(pki, node):
    with _client(node, pki["ops"]) as c:
        with pytest.raises(RpcError) as ei:
            c.unary("/gridledger.Nope/Nothing", health_pb2.HealthCheckRequest(),
                    health_pb2.HealthCheckResponse)
        assert ei.value.code == StatusCode.UNIMPLEMENTED


def test_ping(pki, node):
    with _client(node, pki["ops"]) as c:
        assert c.ping() < 5


def test_concurrent_calls_on_one_connection(pki, node):
    errors = []
    with _client(node, pki["ops"]) as c:
        def work():
            try:
                for _ in range(20):
                    assert c.health() == "SERVING"
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors


def test_foreign_ca_cannot_connect(pki, node):
    # Trusting another CA: the node's certificate does not verify.
    with pytest.raises(ssl.SSLError):
        _client(node, pki["foreign"], timeout=5)
    # Trusting the right CA with a certificate from another CA: the node refuses it. In
    # TLS 1.3 the client's side of the handshake completes before the node checks the
    # client certificate, so how the refusal reaches the client depends on timing: the
    # node's alert (ssl.SSLError), a reset or broken pipe when the node has already closed
    # (ConnectionResetError / BrokenPipeError), or the connection closing under the PING
    # the client sends to find out (RpcError UNAVAILABLE). Any of them, but it must fail.
    foreign = dict(pki["foreign"], ca=pki["ops"]["ca"])
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, RpcError)) as ei:
        c = _client(node, foreign, timeout=30)
        c.close()  # not reached when the node refuses, as it must
    if isinstance(ei.value, RpcError):
        assert ei.value.code == StatusCode.UNAVAILABLE, ei.value
    # The node is unharmed and still serves clients with the right certificates.
    assert node.proc.poll() is None, node.log()
    with _client(node, pki["ops"]) as c:
        assert c.health() == "SERVING"


_cli = cli


def test_cli_status_json(pki, node):
    r = _cli(node, pki["ops"], "status")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["node_id"]
    assert status["caller"]["role"] == "ops"


def test_cli_health_and_errors(pki, node):
    r = _cli(node, pki["ops"], "health")
    assert (r.returncode, r.stdout.strip()) == (0, "SERVING"), r.stderr
    r = _cli(node, pki["collector"], "status")
    assert r.returncode == 2
    assert r.stderr.startswith("error: PERMISSION_DENIED:"), r.stderr
    r = _cli(node, pki["ops"], "health", "no.such.Service")
    assert r.returncode == 2
    assert r.stderr.startswith("error: NOT_FOUND:"), r.stderr


def test_node_still_running(node):
    assert node.proc.poll() is None, node.log()


def test_graceful_shutdown_sends_goaway(pki, tmp_path):
    n = _Node(pki["node"], tmp_path)
    try:
        with _client(n, pki["ops"]) as c:
            updates = c.watch_health()
            assert next(updates) == "SERVING"
            n.proc.send_signal(signal.SIGTERM)
            # The call in flight ends (at the latest after the 10 s grace period), OK or
            # UNAVAILABLE; updates may report NOT_SERVING first.
            try:
                rest = list(updates)
            except RpcError as exc:
                assert exc.code == StatusCode.UNAVAILABLE, exc
                rest = []
            assert set(rest) <= {"NOT_SERVING", "SERVING"}
            assert c.goaway is not None
            with pytest.raises(RpcError) as ei:
                c.health()
            assert ei.value.code == StatusCode.UNAVAILABLE
    finally:
        n.terminate()
