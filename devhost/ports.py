"""Loopback ports, checked the way the local stack's servers bind them.

The function host (aiohttp on a socket bound by `listening_socket`), the emulator (aiohttp's
`TCPSite`, i.e. asyncio's `create_server`) and Azurite (Node, through libuv) all set `SO_REUSEADDR`
on POSIX before binding: a port whose last connections are still in TIME_WAIT (the host was just
stopped) is free for them. A check that binds without it calls such a port busy, and the stack would
move to another port for nothing; so `port_is_free` binds exactly as the servers do. On Windows,
where `SO_REUSEADDR` would let a second socket take a port in use, asyncio does not set it, and
neither does this module.
"""

from __future__ import annotations

import socket
import sys
from typing import Final

LOOPBACK: Final = "127.0.0.1"
REUSE_ADDRESS: Final = sys.platform != "win32" and sys.platform != "cygwin"  # asyncio's own rule


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) as the servers bind theirs; the caller listens (or closes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if REUSE_ADDRESS:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server of the stack could listen on (host, port) now."""
    try:
        listening_socket(host, port).close()
    except OSError:
        return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the system has free now (it may be taken again before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
