"""Is an IP address one of this host's? Asked by binding a socket to it (no traffic)."""

from __future__ import annotations

import errno
import socket


def is_local_address(ip: str) -> bool:
    """True when a socket can bind ``ip`` here (EADDRNOTAVAIL means it is not ours)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
    except OSError as exc:
        return exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL)
    return True
