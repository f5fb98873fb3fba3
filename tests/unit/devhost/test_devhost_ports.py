"""Port checks: a port is free when the servers of the local stack could listen on it, as they bind."""

from __future__ import annotations

import errno
import socket
import sys

import pytest

from devhost.ports import free_port, listening_socket, port_is_free

pytestmark = pytest.mark.unit
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="TIME_WAIT reuse is the POSIX semantics")


def _leave_in_time_wait(port: int) -> None:
    """A connection accepted by a server on `port` (bound as the local host binds) and closed by the
    server side first: its socket (local port `port`) stays in TIME_WAIT, as after stopping `make run`
    while a browser or curl was connected."""
    with listening_socket("127.0.0.1", port) as listener:
        listener.listen(1)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server closes first: the TIME_WAIT is on the server's side
        client.recv(1)  # the FIN arrived
        client.close()


@posix_only
def test_port_in_time_wait_after_a_restart_is_free() -> None:
    port = free_port()
    _leave_in_time_wait(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain, pytest.raises(OSError) as refused:
        plain.bind(("127.0.0.1", port))  # the precondition: a bind without SO_REUSEADDR is refused
    assert refused.value.errno == errno.EADDRINUSE

    assert port_is_free(port)
    with listening_socket("127.0.0.1", port) as server:  # and the host's own bind does take it
        server.listen(1)
        assert server.getsockname()[1] == port


def test_port_with_a_listener_is_busy() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port)


def test_free_port_is_free() -> None:
    assert port_is_free(free_port())
