"""The name said in EHLO/HELO: PTR of the local IP, else ``helohost``, else ``me``."""

from __future__ import annotations

import ipaddress

from qremote.config import Config
from qremote.mx import Lookup


def helo_name(config: Config, local_ip: str | None, lookup: Lookup | None) -> str:
    """PTR name of ``local_ip`` when it resolves, else helohost (which defaults to me).

    No lookup for a kernel-chosen source or a loopback address (its PTR is localhost)."""
    if local_ip and lookup is not None and not ipaddress.ip_address(local_ip).is_loopback:
        name = lookup.ptr(local_ip)
        if name:
            return name
    return config.helohost
