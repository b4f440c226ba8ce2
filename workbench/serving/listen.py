"""The server's listening socket, bound before uvicorn starts (`serve`, `serve --workers`, and
`workbench serve`'s early check that the port is free)."""

from __future__ import annotations

import socket

from workbench.errors import UsageError


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before uvicorn starts so a busy port is one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(pick another with --port, or [serving].port)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
