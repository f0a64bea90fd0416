"""Several daphne processes on one port.

One Python process uses one core for the API (the GIL), so the web server runs as
WEB_PROCESSES daphne processes. Each gets its own listening socket on the same address with
SO_REUSEPORT, so the kernel spreads new connections over them (a single shared socket would
let whichever process wakes first take most connections). Where SO_REUSEPORT is missing, one
process serves.
"""

from __future__ import annotations

import socket
import sys

LISTEN_BACKLOG = 1024


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets bound to host:port (fewer if the system cannot share a port).

    Raises OSError when the address is taken.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        count = 1
    sockets: list[socket.socket] = []
    try:
        for _ in range(max(1, count)):
            sockets.append(listening_socket(host, port, share=count > 1))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listening_socket(host: str, port: int, *, share: bool) -> socket.socket:
    """One inheritable listening socket on host:port; with `share`, beside others on the same
    port (SO_REUSEPORT), as a restarted web process needs. Raises OSError when it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def daphne_args(fd: int, python: str | None = None) -> list[str]:
    """The command of one daphne process serving on an inherited listening socket (daphne with
    the request-body cap of config/daphne_server.py)."""
    return [
        python or sys.executable,
        "-m",
        "config.daphne_server",
        "--fd",
        str(fd),
        "config.asgi:application",
    ]
