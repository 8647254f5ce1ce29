"""AF_PACKET sockets on one interface: how the middlebox, the link relay and
captures see every frame of a port."""

from __future__ import annotations

import socket

ETH_P_ALL = 0x0003
SOL_PACKET = 263                 # not exported by Python's socket module
PACKET_IGNORE_OUTGOING = 23


def packet_socket(iface: str, ignore_outgoing: bool = True, blocking: bool = True,
                  rcvbuf: int = 8 << 20) -> socket.socket:
    """A raw socket bound to *iface*. *ignore_outgoing*: never read back
    what we send ourselves (re-injected or relayed frames); a capture wants
    both directions and leaves it off."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    if ignore_outgoing:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass                 # kernels before 4.20: our own frames come back and are skipped by content
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(blocking)
    return sock
