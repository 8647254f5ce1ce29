"""One listening socket for IPv6 and IPv4 (``::`` with IPV6_V6ONLY off),
for the outside world's servers, which are reached over both."""

from __future__ import annotations

import socket


class DualStack:
    """Mix into a ``socketserver`` server class before it; bind to ``("::", port)``."""

    address_family = socket.AF_INET6
    # socketserver's default accept queue holds 5 connections. Past it the
    # kernel drops the handshake and the client waits a whole retransmission
    # timeout (1 s for a SYN): with eight clients fetching at once, 5 of
    # 3,200 connections took a second longer, which an experiment would put
    # down to the censor. Real servers ask for far more (nginx 511); the
    # kernel caps it at net.core.somaxconn.
    request_queue_size = socket.SOMAXCONN

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
