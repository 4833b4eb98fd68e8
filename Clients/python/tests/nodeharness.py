"""Running a real `gridnode` for the integration tests (GRIDNODE=/path/to/gridnode)."""

from __future__ import annotations

import os
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def identity(directory, name):
    return {"cert": os.path.join(directory, f"{name}.crt"),
            "key": os.path.join(directory, f"{name}.key"),
            "ca": os.path.join(directory, "ca.crt")}


class Node:
    """A `gridnode start` subprocess on a free port, listening once constructed."""

    def __init__(self, ident, root, extra_args=()):
        self.port = free_port()
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
