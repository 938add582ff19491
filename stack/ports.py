"""Free TCP ports on the loopback interface, for processes started side by side (tests, benchmarks)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
