"""Running a real `gridnode` for the integration tests (GRIDNODE=/path/to/gridnode)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

GRIDNODE = os.environ.get("GRIDNODE")
SKIP_REASON = ("integration tests need a node: set GRIDNODE=/path/to/gridnode "
               "(e.g. .build/debug/gridnode after `swift build`)")


def gridnode(*args, cwd=None):
    """Run a gridnode subcommand; it must exit 0."""
    result = subprocess.run([GRIDNODE, *args], capture_output=True, text=True, timeout=60,
                            cwd=cwd)
    assert result.returncode == 0, (
        f"gridnode {' '.join(args)} exited {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def start_help() -> str:
    result = subprocess.run([GRIDNODE, "start", "--help"], capture_output=True, text=True,
                            timeout=60)
    return result.stdout + result.stderr


# Ports handed out by free_port() in this run (never handed out twice).
_handed_out: set = set()
_random = random.SystemRandom()


def _port_range():
    """Where free_port() draws from: below Linux's ephemeral range
    (/proc/sys/net/ipv4/ip_local_port_range, usually 32768-60999), so that no outgoing
    connection (a node dialling its peers or the main chain, a client) can be given a port
    between the moment it is chosen and the moment the node listens on it."""
    low, high = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
        if ephemeral_low - low >= 1000:
            high = min(high, ephemeral_low)
    except (OSError, ValueError, IndexError):
        pass
    return low, high


def free_port():
    """A port for a node to listen on: random in [20000, 32000) (below the ephemeral
    range), bindable on 127.0.0.1 right now, and not handed out before in this run (the
    ports of a Raft group are all chosen before any member starts)."""
    low, high = _port_range()
    for _ in range(1000):
        port = _random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no bindable port in [{low}, {high})")


def identity(directory, name):
    return {"cert": os.path.join(directory, f"{name}.crt"),
            "key": os.path.join(directory, f"{name}.key"),
            "ca": os.path.join(directory, "ca.crt")}


class Node:
    """A `gridnode start` subprocess on a free port, listening once constructed."""

    def __init__(self, ident, root, extra_args=(), port=None):
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.data_dir = root / "data"
        self.log_path = root / "node.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [GRIDNODE, "start", "--listen", self.address, "--data-dir", str(self.data_dir),
                 "--cert", ident["cert"], "--key", ident["key"], "--ca", ident["ca"],
                 *extra_args],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"gridnode start exited {self.proc.returncode} before listening:\n"
                            f"{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    pytest.fail(f"gridnode did not accept connections on {self.port} within "
                                f"30 s:\n{self.log()}")
                time.sleep(0.05)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def terminate(self):
        """SIGTERM; the node must exit 0 (within its shutdown grace period)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"gridnode did not exit within 30 s of SIGTERM:\n{self.log()}")
        assert self.proc.returncode == 0, f"gridnode exited {self.proc.returncode}:\n{self.log()}"


def cli(node, ident, *args, timeout=120):
    """Run `python -m gridledger` against ``node`` as ``ident``."""
    cmd = [sys.executable, "-m", "gridledger", "--addr", node.address, "--cert",
           ident["cert"], "--key", ident["key"], "--ca", ident["ca"], *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def cli_offline(*args, timeout=60, input=None):
    """Run `python -m gridledger` without a node (verify-proof)."""
    return subprocess.run([sys.executable, "-m", "gridledger", *args], capture_output=True,
                          timeout=timeout, input=input)


def wait_until(what, predicate, timeout=30.0, interval=0.05, nodes=()):
    """Poll ``predicate()`` until it returns a truthy value (returned); fail after
    ``timeout`` seconds with ``what``, the last value or exception, and the tail of each
    node's log."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- {n.log_path} (tail)\n" + "\n".join(n.log().splitlines()[-30:])
                           for n in nodes)
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last: {last!r}{logs}")
        time.sleep(interval)


class StreamCollector:
    """Consumes a server stream (``open_stream()`` -> iterator with close()) on a daemon
    thread, keeping every message; ``wait_for(predicate)`` polls what arrived."""

    def __init__(self, open_stream):
        import threading
        self.items = []
        self.error = None
        self._lock = threading.Lock()
        self._stream = open_stream()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for item in self._stream:
                with self._lock:
                    self.items.append(item)
        except Exception as exc:  # noqa: BLE001 - kept for the report
            self.error = exc

    def all(self):
        with self._lock:
            return list(self.items)

    def wait_for(self, what, predicate, timeout=30.0, nodes=()):
        def found():
            hits = [i for i in self.all() if predicate(i)]
            if not hits and self.error is not None:
                raise AssertionError(f"stream ended: {self.error!r}")
            return hits[0] if hits else None
        return wait_until(what, found, timeout=timeout, nodes=nodes)

    def close(self):
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing a finished stream
            pass
        self._thread.join(timeout=5)
