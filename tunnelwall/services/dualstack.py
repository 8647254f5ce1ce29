"""One listening socket for IPv6 and IPv4 (``::`` with IPV6_V6ONLY off),
for the outside world's servers, which are reached over both."""

from __future__ import annotations

import socket


class DualStack:
    """Mix into a ``socketserver`` server class before it; bind to ``("::", port)``."""

    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
