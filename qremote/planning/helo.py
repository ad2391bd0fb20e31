"""The name said in EHLO/HELO: PTR of the local IP, else ``helohost``, else ``me``."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from qremote.control.config import Config
from qremote.planning.mx import Lookup


def helo_name(config: Config, local_ip: str | None, lookup: Lookup | None) -> str:
    """PTR name of ``local_ip`` when it resolves, else helohost (which defaults to me).

    No lookup for a kernel-chosen source or a loopback address (its PTR is localhost);
    a fresh compiled cache gives the name without DNS."""
    if not local_ip or _loopback(local_ip):
        return config.helohost
    if config.helo_names is not None and local_ip in config.helo_names:
        return config.helo_names[local_ip] or config.helohost
    if lookup is not None:
        name = lookup.ptr(local_ip)
        if name:
            return name
    return config.helohost


@lru_cache(maxsize=256)
def _loopback(ip: str) -> bool:
    """Whether ``ip`` is a loopback address (asked once a delivery: kept)."""
    return ipaddress.ip_address(ip).is_loopback
