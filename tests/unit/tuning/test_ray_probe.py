"""The Ray address probe: refused, silent, not-gRPC and gRPC-like peers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from stairways.errors import ExternalServiceError, InputError
from stairways.tuning.backends import probe_ray_address
from tests.pg import free_port

# What an HTTP/2 (gRPC) server sends first: an empty SETTINGS frame.
SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _peer(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-connection-at-a-time server on 127.0.0.1; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)  # so the loop sees the stop request soon
    stop = threading.Event()

    def serve() -> None:
        for _ in range(300):  # at most a minute
            if stop.is_set():
                return
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=15)
        server.close()


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """Accepts and never answers (a firewall that swallows packets, a hung process)."""
    yield from _peer(lambda conn: stop_after(conn, 3.0))


def stop_after(conn: socket.socket, seconds: float) -> None:
    conn.settimeout(seconds)
    try:
        conn.recv(1024)
        threading.Event().wait(seconds)
    except TimeoutError:
        return


@pytest.fixture
def http1_peer() -> Iterator[int]:
    yield from _peer(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"))


@pytest.fixture
def grpc_like_peer() -> Iterator[int]:
    yield from _peer(lambda conn: conn.sendall(SETTINGS_FRAME))


def test_probe_when_nothing_listens_then_refused_with_the_fix() -> None:
    port = free_port()
    with pytest.raises(ExternalServiceError) as caught:
        probe_ray_address(f"127.0.0.1:{port}", timeout=2.0)
    message = str(caught.value)
    assert f"no Ray cluster at 127.0.0.1:{port}" in message
    assert "connection was refused" in message
    assert "ray start --head" in message and "leave --address out" in message


def test_probe_when_peer_never_answers_then_fails_after_the_timeout(silent_peer: int) -> None:
    with pytest.raises(ExternalServiceError, match=r"no answer .* within 1 s"):
        probe_ray_address(f"127.0.0.1:{silent_peer}", timeout=1.0)


def test_probe_when_peer_is_not_grpc_then_not_a_ray_cluster(http1_peer: int) -> None:
    with pytest.raises(ExternalServiceError, match="not a Ray cluster"):
        probe_ray_address(f"ray://127.0.0.1:{http1_peer}", timeout=2.0)


def test_probe_when_peer_speaks_http2_then_passes(grpc_like_peer: int) -> None:
    probe_ray_address(f"127.0.0.1:{grpc_like_peer}", timeout=2.0)


@pytest.mark.parametrize("address", ["127.0.0.1", "host:port", "127.0.0.1:0", "ray://:6379"])
def test_probe_when_address_is_malformed_then_input_error(address: str) -> None:
    with pytest.raises(InputError, match="is not host:port"):
        probe_ray_address(address, timeout=1.0)
