"""This machine's own network addresses, for the join link students type: read from the network
interfaces (an ioctl per interface; nothing is sent anywhere). Linux; elsewhere none are found
and NEURONLAB_PUBLIC_URL says it."""
from __future__ import annotations

import socket
import struct

SIOCGIFADDR = 0x8915
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}


def lan_addresses() -> list[str]:
    """IPv4 addresses of the interfaces that are up, loopback left out."""
    try:
        import fcntl
        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError):
        return []
    found = []
    for name in names:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on it, or down
                continue
        ip = socket.inet_ntoa(packed[20:24])
        if not ip.startswith("127.") and ip not in found:
            found.append(ip)
    return found


def is_local(host: str) -> bool:
    """A host name only this machine can reach."""
    return host.lower() in LOCAL_HOSTS or host.startswith("127.")


def answers(ip: str, port: int, timeout: float = 0.3) -> bool:
    """Whether this server accepts connections on one of this machine's own addresses: a server
    started on 127.0.0.1 alone does not, and then no student can reach it there either."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False
