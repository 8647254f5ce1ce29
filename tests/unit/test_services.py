"""The outside world's servers, on loopback: they take connections the way
a real server does, so that a slow handshake is never their doing."""

import socket
import threading

import pytest

from tunnelwall.services.webserver import DualStackServer, Handler

CLIENTS = 40


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_many_clients_connecting_at_once_all_enter_the_accept_queue():
    """With socketserver's default queue of 5, the kernel drops the sixth
    waiting handshake and that client waits a second for its SYN to be
    sent again. Here nothing accepts: every client's connect() must still
    complete, because the kernel queues the connection for the server."""
    server = DualStackServer(("::", 0), Handler)
    port = server.server_address[1]
    clients, done = [], []
    try:
        def connect():
            s = socket.socket(socket.AF_INET)
            s.settimeout(3)
            clients.append(s)
            try:
                s.connect(("127.0.0.1", port))
                done.append(True)
            except OSError:
                done.append(False)
        threads = [threading.Thread(target=connect) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert done.count(True) == CLIENTS
    finally:
        for s in clients:
            s.close()
        server.server_close()


def test_the_accept_queue_asked_for_is_the_kernels_cap():
    assert DualStackServer.request_queue_size == socket.SOMAXCONN >= 128
