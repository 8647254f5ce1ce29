"""The censor's active prober: it connects to a suspected proxy server from
an address of its own and watches how the server reacts to probes.

Sources:

* Alice et al., "How China Detects and Blocks Shadowsocks", IMC 2020,
  sections 3-6: after a suspicious first data packet the GFW sends replays
  of it (identical; byte 0 changed; bytes 0-7 and 62-63 changed; byte 16
  changed; bytes 6 and 16 changed) and random probes whose lengths cluster
  around 8, 12, 16, 22, 33, 41, 49 bytes, plus exactly 221 bytes; more than
  20% of first replays arrive within 1 s.
* Frolov, Wampler, Wustrow, "Detecting Probe-resistant Proxies", NDSS 2020,
  Table II: normal servers answer some probe with data (94%); obfs4 answers
  nothing and keeps the connection open until a timeout of 60-180 s (or
  closes with FIN after 8-16 KB); Shadowsocks-libev closes once it has 50
  bytes it cannot authenticate (Outline resets at 51).
* Ensafi et al., IMC 2015: protocol probes (TLS, HTTP, SSH) alongside.

Fingerprints (``fingerprint``):

* ``normal``: some probe was answered with data; never blocked;
* ``shadowsocks``: no data, and a size threshold: every probe shorter than T
  timed out and every probe of T bytes or more was closed (FIN/RST), as
  older Shadowsocks servers do (Frolov et al.; Outline);
* ``probe-resistant``: no data and no close: every probe timed out. Measured
  here: obfs4proxy, and also shadowsocks-libev 3.3.5 (Debian 12), which no
  longer closes at 50 bytes;
* ``silent``: no data, no threshold (reported, not confirmed);
* ``tor``: it answered a Tor VERSIONS cell over TLS with one of its own: a
  Tor relay or bridge (the GFW's Tor probe, Ensafi et al., IMC 2015).

A probe whose TCP connection never came up (refused, or no SYN/ACK before
the timeout: a server that drops the prober's packets) is ``refused`` or
``no-connection`` and says nothing about the server's protocol; only probes
that connected are fingerprinted, so a host that merely filters the prober
is never "confirmed".
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass

from tunnelwall.base.tlshello import client_hello

RANDOM_LENGTHS = (8, 12, 16, 22, 33, 41, 49, 221)


@dataclass
class Reaction:
    probe: str
    sent: int              # bytes sent
    kind: str              # data / fin / rst / timeout (connected, then silent) / refused / no-connection / tor
    received: int = 0      # bytes received before the end
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _changed(data: bytes, positions: list[int], rng: random.Random) -> bytes:
    out = bytearray(data)
    for pos in positions:
        if pos < len(out):
            out[pos] = (out[pos] + rng.randint(1, 255)) % 256
    return bytes(out)


# The GFW's Tor probe (Ensafi et al., IMC 2015, section 5): a TLS connection
# that speaks Tor's link protocol. A VERSIONS cell (circuit id 0, command 7,
# versions 3-5; tor-spec section 4.1) is answered by a Tor relay or bridge
# with its own VERSIONS cell; no other server does that.
TOR_PROBE = "tor-versions"
TOR_VERSIONS_CELL = b"\x00\x00\x07\x00\x06\x00\x03\x00\x04\x00\x05"
MAX_REQUEST = 1 << 20          # bytes of one control-channel request line (a probe request is < 4 KB)


def build_probes(first_payload: bytes | None, count: int, rng: random.Random,
                 tor: bool = False) -> list[tuple[str, bytes]]:
    """The probes to send, most informative first (the profile's ``count``
    cuts the list). A suspected Tor bridge gets the Tor probe first."""
    replay = first_payload or b""
    candidates = [(TOR_PROBE, TOR_VERSIONS_CELL)] if tor else []
    candidates += [
        ("replay", replay),
        ("random-8", rng.randbytes(8)),
        ("random-221", rng.randbytes(221)),
        ("tls-client-hello", client_hello("www.example.org")),
        ("http-get", b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"),
        ("replay-byte0", _changed(replay, [0], rng)),
        ("random-49", rng.randbytes(49)),
        ("random-33", rng.randbytes(33)),
        ("ssh-banner", b"SSH-2.0-OpenSSH_8.9\r\n"),
        ("replay-bytes0-7,62-63", _changed(replay, list(range(8)) + [62, 63], rng)),
        ("replay-byte16", _changed(replay, [16], rng)),
        ("replay-bytes6,16", _changed(replay, [6, 16], rng)),
        ("random-12", rng.randbytes(12)), ("random-16", rng.randbytes(16)),
        ("random-22", rng.randbytes(22)), ("random-41", rng.randbytes(41)),
    ]
    return [(name, data) for name, data in candidates if data][:count]


def run_probe(server: str, port: int, name: str, payload: bytes, timeout: float, source: str | None = None) -> Reaction:
    t0 = time.monotonic()
    sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(min(timeout, 3.0))
    received = 0
    try:
        if source and (":" in source) == (":" in server):
            sock.bind((source, 0))
        try:
            sock.connect((server, port))
        except (socket.timeout, TimeoutError):
            return Reaction(name, 0, "no-connection", 0, round(time.monotonic() - t0, 3))
        if name == TOR_PROBE:
            return _tor_probe(sock, payload, timeout, t0)
        sock.sendall(payload)
        sock.settimeout(timeout)
        # Ends at the first byte, the peer's FIN or the socket's timeout.
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                kind = "data" if received else "fin"
                break
            received += len(chunk)
            if received >= 1:
                kind = "data"
                break
    except ConnectionRefusedError:
        kind = "refused"
    except ConnectionResetError:
        kind = "data" if received else "rst"
    except (socket.timeout, TimeoutError):
        kind = "data" if received else "timeout"
    except OSError:
        kind = "refused"
    finally:
        sock.close()
    return Reaction(name, len(payload), kind, received, round(time.monotonic() - t0, 3))


def _tor_probe(sock: socket.socket, cell: bytes, timeout: float, t0: float) -> Reaction:
    """TLS (any certificate: bridges have self-signed ones), then a VERSIONS cell."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        tls = ctx.wrap_socket(sock, server_hostname="www.example.com")
        tls.settimeout(timeout)
        tls.sendall(cell)
        reply = tls.recv(512)
    except (ssl.SSLError, OSError):
        return Reaction(TOR_PROBE, len(cell), "rst", 0, round(time.monotonic() - t0, 3))
    kind = "tor" if reply[:3] == b"\x00\x00\x07" else ("data" if reply else "fin")
    return Reaction(TOR_PROBE, len(cell), kind, len(reply), round(time.monotonic() - t0, 3))


def probe_server(server: str, port: int, first_payload: bytes | None, count: int, timeout: float,
                 seed: int = 0, source: str | None = None, tor: bool = False) -> list[Reaction]:
    """All probes at once (the GFW probes from many addresses in parallel)."""
    rng = random.Random(seed)
    probes = build_probes(first_payload, count, rng, tor)
    results: list[Reaction | None] = [None] * len(probes)

    def one(i, name, data):
        results[i] = run_probe(server, port, name, data, timeout, source)
    threads = [threading.Thread(target=one, args=(i, n, d)) for i, (n, d) in enumerate(probes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def fingerprint(reactions: list[Reaction]) -> tuple[str, bool]:
    """(fingerprint name, confirmed) from a server's reactions."""
    reached = [r for r in reactions if r.kind not in ("refused", "no-connection")]
    if not reached:
        return "unreachable", False
    if any(r.kind == "tor" for r in reached):
        return "tor", True
    if any(r.kind == "data" for r in reached):
        return "normal", False
    closed = [r.sent for r in reached if r.kind in ("fin", "rst")]
    waited = [r.sent for r in reached if r.kind == "timeout"]
    if not closed:
        return "probe-resistant", True
    if waited and max(waited) < min(closed):
        return "shadowsocks", True
    return "silent", False


# -- the daemon ------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", help="the controller's channel (daemon mode)")
    ap.add_argument("--source", help="address to probe from")
    ap.add_argument("--once", metavar="HOST:PORT", help="probe one server, print JSON, exit")
    ap.add_argument("--replay", default="", help="hex of the client's first packet to replay")
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.once:
        host, _, port = args.once.rpartition(":")
        reactions = probe_server(host, int(port), bytes.fromhex(args.replay), args.count, args.timeout, args.seed,
                                 args.source)
        name, confirmed = fingerprint(reactions)
        print(json.dumps({"server": host, "port": int(port), "fingerprint": name, "confirmed": confirmed,
                          "reactions": [r.as_dict() for r in reactions]}))
        return 0
    if not args.socket:
        ap.error("--socket or --once is required")
    from .daemon import connect_controller
    conn = connect_controller(args.socket)
    lock = threading.Lock()

    def send(msg: dict) -> None:
        with lock:
            conn.sendall((json.dumps(msg) + "\n").encode())

    def handle(req: dict) -> None:
        time.sleep(max(0.0, float(req.get("delay", 0.0))))
        first = bytes.fromhex(req.get("first_payload") or "")
        reactions = probe_server(req["server"], int(req["port"]), first, int(req.get("count", 10)),
                                 float(req.get("timeout", 3.0)), int(req.get("seed", 0)), args.source,
                                 tor=req.get("protocol") == "tor")
        name, confirmed = fingerprint(reactions)
        print(f"prober: {req['server']}:{req['port']} -> {name} (confirmed={confirmed})", flush=True)
        send({"type": "probe-result", "request": {k: v for k, v in req.items() if k != "first_payload"},
              "fingerprint": name, "confirmed": confirmed, "reactions": [r.as_dict() for r in reactions]})

    send({"type": "hello", "role": "prober"})
    print(f"prober: ready (probing from {args.source or 'any address'})", flush=True)
    buffer = b""
    while True:
        data = conn.recv(65536)
        if not data:
            print("prober: controller closed the channel", flush=True)
            return 0
        buffer += data
        # Each pass takes one line off the buffer; a line that never ends is
        # not let grow without bound (the controller's requests are small).
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                continue
            if req.get("type") == "probe":
                threading.Thread(target=handle, args=(req,), daemon=True).start()
        if len(buffer) > MAX_REQUEST:
            print(f"prober: dropped {len(buffer)} bytes of a request with no end of line", flush=True)
            buffer = b""


if __name__ == "__main__":
    sys.exit(main())
