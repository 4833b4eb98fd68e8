"""Client behaviour against an in-process fake node (tests/fakenode.py)."""

import gc
import ssl
import subprocess
import sys
import threading
import time

import pytest

from fakenode import FakeNode
from gridledger import Client, RpcError, StatusCode, health_pb2, ops_pb2
from gridledger.client import _parse_address
from pki import CA

Req, Resp = health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA(str(d / "ca"))
    other = CA(str(d / "other"), "Other CA")
    return {
        "ca": ca.ca_path,
        "node": ca.issue("node1", "node"),
        "notnode": ca.issue("imposter", "ops"),
        "ops": ca.issue("ops1", "ops"),
        "other_ca": other.ca_path,
        "other_ops": other.issue("ops2", "ops"),
    }


@pytest.fixture()
def node(pki):
    n = FakeNode(pki["ca"], *pki["node"])
    yield n
    n.close()


def connect(pki, node, **kw):
    cert, key = pki["ops"]
    return Client(node.address, cert=cert, key=key, ca=pki["ca"], **kw)


def test_parse_address():
    assert _parse_address("127.0.0.1:80") == ("127.0.0.1", 80)
    assert _parse_address("[::1]:7") == ("::1", 7)
    for bad in ("nohost", ":80", "h:", "h:x"):
        with pytest.raises(ValueError):
            _parse_address(bad)


def test_status_code_and_error():
    assert len(StatusCode) == 17 and StatusCode.UNAUTHENTICATED == 16
    e = RpcError(7, "denied")
    assert e.code is StatusCode.PERMISSION_DENIED
    assert str(e) == "PERMISSION_DENIED: denied"
    assert str(RpcError(99, "x")) == "CODE_99: x"


def test_unary_and_trailing_metadata(pki, node):
    with connect(pki, node) as c:
        assert c.health() == "SERVING"
        assert c.unary("/gridledger.Health/Check", Req(), Resp).status == 1
        h = node.headers[1]
        assert h.method == "/gridledger.Health/Check" and h.timeout_ms == 10_000
        assert c.ping() >= 0


def test_stream_ids_odd_increasing_and_metadata_sent(pki, node):
    with connect(pki, node) as c:
        for _ in range(3):
            c.health(metadata={"x-trace": "abc", "bin": b"\x00\x01"}, timeout=None)
    assert sorted(node.headers) == [1, 3, 5]
    h = node.headers[5]
    assert h.timeout_ms == 0
    assert [(m.key, m.value) for m in h.metadata] == [("x-trace", b"abc"), ("bin", b"\x00\x01")]


def test_bad_metadata_key(pki, node):
    with connect(pki, node) as c:
        with pytest.raises(ValueError):
            c.health(metadata={"Upper": "x"})


def test_error_status(pki, node):
    with connect(pki, node) as c:
        with pytest.raises(RpcError) as ei:
            c.health("nope")
        assert ei.value.code == StatusCode.NOT_FOUND
        with pytest.raises(RpcError) as ei:
            c.unary("/test/Error", Req(), Resp)
        assert ei.value.code == StatusCode.PERMISSION_DENIED
        assert ei.value.metadata == (("why", b"role"),)
        with pytest.raises(RpcError) as ei:
            c.unary("/test/NoResponse", Req(), Resp)
        assert ei.value.code == StatusCode.INTERNAL
        with pytest.raises(RpcError) as ei:
            c.unary("/test/Garbage", Req(), Resp)
        assert ei.value.code == StatusCode.INTERNAL
        assert c.health() == "SERVING"  # the connection is still fine


def test_server_stream_finite_and_failing(pki, node):
    with connect(pki, node) as c:
        it = c.server_stream("/test/Finite", Req(), Resp)
        assert [r.status for r in it] == [0, 1, 2]
        it = c.server_stream("/test/StreamThenFail", Req(), Resp)
        assert next(it).status == 1
        with pytest.raises(RpcError) as ei:
            next(it)
        assert ei.value.code == StatusCode.ABORTED
        with pytest.raises(StopIteration):
            next(it)


def test_watch_and_cancel(pki, node):
    with connect(pki, node) as c:
        updates = c.watch_health()
        assert next(updates) == "SERVING"
        assert next(updates) == "NOT_SERVING"
        updates.close()
        assert node.wait_for("cancel", stream_id=1)
        with pytest.raises(StopIteration):
            next(updates)
        assert c.health() == "SERVING"


def test_dropped_iterator_cancels(pki, node):
    with connect(pki, node) as c:
        updates = c.watch_health()
        assert next(updates) == "SERVING"
        del updates
        gc.collect()
        assert node.wait_for("cancel", stream_id=1)


def test_deadline(pki, node):
    with connect(pki, node) as c:
        t0 = time.monotonic()
        with pytest.raises(RpcError) as ei:
            c.unary("/test/Slow", Req(), Resp, timeout=0.2)
        assert ei.value.code == StatusCode.DEADLINE_EXCEEDED
        assert 0.15 < time.monotonic() - t0 < 10  # generous: a loaded CI machine
        assert node.headers[1].timeout_ms == 200
        assert node.wait_for("cancel", stream_id=1)
        # A server stream's deadline also ends the iteration.
        it = c.server_stream("/gridledger.Health/Watch", Req(), Resp, timeout=0.3)
        assert [next(it).status, next(it).status] == [1, 2]
        with pytest.raises(RpcError) as ei:
            next(it)
        assert ei.value.code == StatusCode.DEADLINE_EXCEEDED
        assert c.health() == "SERVING"


def test_oversized_response(pki, node):
    with connect(pki, node, max_message_bytes=1000) as c:
        with pytest.raises(RpcError) as ei:
            c.unary("/test/Big", Req(), Resp)
        assert ei.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert node.wait_for("cancel", stream_id=1)
        assert c.health() == "SERVING"


def test_client_stream(pki, node):
    with connect(pki, node) as c:
        reqs = (Req(service="ab") for _ in range(1001))
        assert c.client_stream("/test/Sum", reqs, Resp).status == 2002 % 4
        assert c.client_stream("/test/Sum", [], Resp).status == 0
        # Each request goes out as soon as it is produced, before the next one exists.
        def paced():
            yield Req(service="a")
            assert node.wait_for("first_message", stream_id=5)
            yield Req(service="abc")
        assert c.client_stream("/test/Sum", paced(), Resp).status == 0
        assert node.wait_for("end", stream_id=5)
        with pytest.raises(RpcError) as ei:
            c.client_stream("/test/Error", iter([Req(), Req()]), Resp)
        assert ei.value.code == StatusCode.PERMISSION_DENIED


def test_server_ping_is_acked(pki, node):
    with connect(pki, node) as c:
        assert c.unary("/test/PingFirst", Req(), Resp).status == 1
        assert node.wait_for("ping_ack")[2] == b"abcdefgh"


def test_goaway(pki, node):
    with connect(pki, node) as c:
        assert c.unary("/test/GoAway", Req(), Resp).status == 1  # in flight: finishes
        assert c.goaway is not None and c.goaway.last_stream_id == 1
        with pytest.raises(RpcError) as ei:
            c.health()
        assert ei.value.code == StatusCode.UNAVAILABLE
        assert "GOAWAY" in str(ei.value)


def test_protocol_error_and_hangup(pki, node):
    with connect(pki, node) as c:
        with pytest.raises(RpcError) as ei:
            c.unary("/test/BadFrame", Req(), Resp)
        assert ei.value.code == StatusCode.INTERNAL
        with pytest.raises(RpcError):
            c.health()
    with connect(pki, node) as c:
        with pytest.raises(RpcError) as ei:
            c.unary("/test/Hangup", Req(), Resp)
        assert ei.value.code == StatusCode.UNAVAILABLE


def test_close_fails_running_calls(pki, node):
    c = connect(pki, node)
    it = c.watch_health()
    next(it)
    c.close()
    with pytest.raises((RpcError, StopIteration)):
        next(it)
        next(it)
        next(it)
    with pytest.raises(RpcError) as ei:
        c.health()
    assert ei.value.code == StatusCode.CANCELLED


def test_threads_share_a_client(pki, node):
    errors = []
    with connect(pki, node) as c:
        watch = c.watch_health()
        assert next(watch) == "SERVING"

        def worker():
            try:
                for _ in range(50):
                    assert c.health() == "SERVING"
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert next(watch) == "NOT_SERVING"
        watch.close()
    assert not errors


def test_foreign_ca_server_rejected(pki, node):
    cert, key = pki["other_ops"]
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(node.address, cert=cert, key=key, ca=pki["other_ca"])


def test_client_cert_rejected_by_server(pki, node):
    cert, key = pki["other_ops"]  # chains to another CA, but we trust the right one
    with pytest.raises(ssl.SSLError):
        Client(node.address, cert=cert, key=key, ca=pki["ca"], timeout=5)


def test_server_must_be_role_node(pki):
    n = FakeNode(pki["ca"], *pki["notnode"])
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="OU"):
            connect(pki, n, server_name="imposter")
    finally:
        n.close()


def test_server_name_checked(pki, node):
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(pki, node, server_name="elsewhere")
    with connect(pki, node, server_name="node1") as c:
        assert c.health() == "SERVING"


def test_alpn_required(pki):
    n = FakeNode(pki["ca"], *pki["node"], alpn=None)
    try:
        with pytest.raises(ssl.SSLError, match="ALPN"):
            connect(pki, n)
    finally:
        n.close()


def test_cli_against_fake(pki, node):
    cert, key = pki["ops"]
    base = [sys.executable, "-m", "gridledger", "--addr", node.address, "--cert", cert,
            "--key", key, "--ca", pki["ca"]]
    r = subprocess.run(base + ["health"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "SERVING\n"), r.stderr
    r = subprocess.run(base + ["health", "nope"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith("error: NOT_FOUND: ")
    r = subprocess.run(base + ["--timeout", "0.5", "watch-health"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "DEADLINE_EXCEEDED" in r.stderr
    assert r.stdout.splitlines() == ['{"service": "", "status": "SERVING"}',
                                     '{"service": "", "status": "NOT_SERVING"}']
