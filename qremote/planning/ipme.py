"""This host's addresses, as qmail's ``ipme`` knows them: for "an MX that is me".

qmail lists the IPv4 address of every interface that is up (``SIOCGIFCONF``), plus
``0.0.0.0``. The same here, plus the IPv6 addresses of ``/proc/net/if_inet6`` and
``::``, since routes may reach IPv6 mail exchangers. Exact addresses only: 127.0.0.5
is not "me" unless an interface carries it (on Linux every 127/8 address answers on
``lo``, but qmail, and so qremote, count only the configured ones).
"""

from __future__ import annotations

import ipaddress
import struct

SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
_IFREQ = 40  # sizeof(struct ifreq) on 64-bit Linux
_NAME = 16


def _ipv4() -> set[str]:
    import array
    import fcntl
    import socket

    found: set[str] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        size = _IFREQ * 64
        while True:
            buf = array.array("B", bytes(size))
            addr, _ = buf.buffer_info()
            ifc = struct.pack("iL", size, addr)
            length = struct.unpack("iL", fcntl.ioctl(s.fileno(), SIOCGIFCONF, ifc))[0]
            if length + _IFREQ < size:
                break
            size *= 2
        data = buf.tobytes()[:length]
        for off in range(0, length, _IFREQ):
            name = data[off:off + _NAME]
            family = struct.unpack_from("H", data, off + _NAME)[0]
            if family != socket.AF_INET:
                continue
            ip = socket.inet_ntoa(data[off + _NAME + 4:off + _NAME + 8])
            req = name + bytes(_IFREQ - _NAME)
            try:
                flags = struct.unpack_from("H", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req),
                                           _NAME)[0]
            except OSError:
                continue
            if flags & IFF_UP:
                found.add(ip)
    return found


def _ipv6() -> set[str]:
    found: set[str] = set()
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                raw = line.split()[0]
                found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except (OSError, ValueError, IndexError):
        pass
    return found


def addresses() -> frozenset[str]:
    """This host's addresses (canonical text), ``0.0.0.0`` and ``::`` included."""
    found = {"0.0.0.0", "::"}
    try:
        found |= _ipv4()
    except OSError:
        pass
    found |= _ipv6()
    return frozenset(found)
