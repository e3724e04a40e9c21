"""``stairways tune --backend ray --address`` without a cluster: a prompt message, not minutes.

Ray's own connect retries an unreachable address for minutes in native code, deaf to SIGINT
and SIGTERM. The tuner probes the address first (a few seconds at most); these tests run the
real command against 127.0.0.1 ports where no Ray head listens.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.pg import free_port

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))
# Far below Ray's own retrying (over five minutes), far above the probe's few seconds.
TIMEOUT_S = 240


def _tune_args(tmp_path: Path, address: str) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {"name": "ray_probe", "parameters": {"data.features.clip": {"choices": [1.0]}}}
        )
    )
    out = tmp_path / "out"
    return [
        STAIRWAYS,
        "tune",
        "--space",
        str(space),
        "--backend",
        "ray",
        "--address",
        address,
        "--out",
        str(out),
    ]


def test_tune_with_address_where_nothing_listens_then_exit_1_with_the_fix(tmp_path: Path) -> None:
    port = free_port()

    done = subprocess.run(
        _tune_args(tmp_path, f"127.0.0.1:{port}"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )

    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"error: no Ray cluster at 127.0.0.1:{port}")
    assert "ray start --head" in last
    assert not (tmp_path / "out").exists()  # failed before the study was created


@pytest.fixture
def hanging_peer() -> Iterator[tuple[int, threading.Event]]:
    """A peer that accepts connections and never answers; the event is set on the first one."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted = threading.Event()
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            accepted.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=15)
        for conn in held:
            conn.close()
        server.close()


def test_ctrl_c_while_the_address_is_probed_then_exit_130_without_traceback(
    tmp_path: Path, hanging_peer: tuple[int, threading.Event]
) -> None:
    port, accepted = hanging_peer
    proc = subprocess.Popen(
        _tune_args(tmp_path, f"127.0.0.1:{port}"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if not accepted.wait(timeout=TIMEOUT_S):
            pytest.fail("the command never connected to the address")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
