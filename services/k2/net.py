"""Loopback networking helpers shared by K2's tools and tests."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick).

    Free when returned, not reserved: a caller binds it soon, or uses it as a port where
    nothing answers (a stopped service in a test).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
