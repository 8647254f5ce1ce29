"""A real TLS ClientHello from Python's ssl module (OpenSSL), without a
connection: what the prober sends as its TLS probe and what tests feed the
classifiers, so both see the bytes a real client would send."""

from __future__ import annotations

import ssl
from functools import lru_cache


@lru_cache(maxsize=8)
def _context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    # One context per ALPN list: making one loads the system's CA store,
    # which costs far more than the handshake's first flight itself.
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _context(tuple(alpn or ())).wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()
