"""A real TLS ClientHello from Python's ssl module (OpenSSL), without a
connection: what the prober sends as its TLS probe and what tests feed the
classifiers, so both see the bytes a real client would send."""

from __future__ import annotations

import ssl


def client_hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()
