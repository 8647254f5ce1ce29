"""Realistic benchmark traffic: whole flows, both directions, interleaved.

What ``classify.py`` feeds the censor and nDPI side by side, so that both
take their real classification path rather than giving up on junk:

- every TCP flow opens with SYN, SYN/ACK, ACK and ends with FIN/ACK from
  both ends; sequence and acknowledgement numbers follow the bytes sent;
  IP and TCP/UDP checksums are correct;
- TLS is a real TLS 1.3 session: OpenSSL (Python's ``ssl`` on memory BIOs)
  plays both ends, so the ClientHello, the server's flight and every
  application-data record are what a browser and a web server exchange;
- QUIC opens with a real client Initial (RFC 9001 keys, a real ClientHello
  in its CRYPTO frame) answered by long-header server packets, then
  short-header 1-RTT packets;
- WireGuard (initiation 148 B, response 92 B, transport data with
  counters), OpenVPN (hard resets, ACKs, control and P_DATA_V2 with session
  and packet IDs), SSH (banners, KEXINIT, then binary packets), HTTP
  (request and response), DNS (query and answer) and Shadowsocks (random
  bytes from the first packet on) follow their wire formats; what those
  protocols encrypt is random here, as it looks random on the wire;
- each flow has its own client address; servers come from a pool, as in a
  real network; many flows are alive at once and their packets interleave.

Nothing here is sent anywhere: frames go into a pcap file.
"""

from __future__ import annotations

import datetime
import ipaddress
import random
import socket
import ssl
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tunnelwall.base.quic import initial_packet  # noqa: E402
from tunnelwall.middlebox.inject import ethernet, ip_header, l4_checksum  # noqa: E402
from tunnelwall.middlebox.pcap import Writer  # noqa: E402

KINDS = ("https", "http", "quic", "dns", "wireguard", "openvpn", "ssh", "shadowsocks")
NAMES = ("www.example.org", "cdn.example.net", "mail.example.com", "news.example.org", "static.example.net",
         "api.example.com", "video.example.org", "shop.example.net")
MSS = 1400
# Every frame carries these two addresses, as on one link (the censor keys flows by IP).
CLIENT_MAC, SERVER_MAC = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def frame(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    """Ethernet + IPv4 + *l4* (a TCP or UDP header and payload whose checksum
    field is zero), both checksums filled in: the censor's own builders of
    the frames it injects (middlebox.inject)."""
    where = 16 if proto == 6 else 6
    csum = l4_checksum(src, dst, proto, l4) or 0xFFFF       # a UDP checksum of 0 would mean "none"
    l4 = l4[:where] + struct.pack("!H", csum) + l4[where + 2:]
    return ethernet(SERVER_MAC, CLIENT_MAC, 4, ip_header(src, dst, proto, l4))


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0) \
        + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


# -- real TLS sessions ------------------------------------------------------

def _server_context() -> ssl.SSLContext:
    """A self-signed certificate made in memory (cryptography), loaded from a temp file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "server.pem"
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
                        + cert.public_bytes(serialization.Encoding.PEM))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


class MemoryTLS:
    """A TLS client and server joined by memory BIOs (OpenSSL plays both
    ends): ``writes`` collects (direction, bytes) as each side wrote them,
    0 = client to server."""

    def __init__(self, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, sni: str):
        self.c_in, self.c_out, self.s_in, self.s_out = (ssl.MemoryBIO() for _ in range(4))
        self.client = client_ctx.wrap_bio(self.c_in, self.c_out, server_hostname=sni)
        self.server = server_ctx.wrap_bio(self.s_in, self.s_out, server_side=True)
        self.writes: list[tuple[int, bytes]] = []

    def pump(self) -> None:
        """What each side wrote, delivered to the other and recorded."""
        for src, dst, direction in ((self.c_out, self.s_in, 0), (self.s_out, self.c_in, 1)):
            data = src.read()
            if data:
                self.writes.append((direction, data))
                dst.write(data)

    def handshake(self) -> None:
        for _ in range(6):          # TLS 1.2 and 1.3 both finish in fewer rounds
            for side in (self.client, self.server):
                try:
                    side.do_handshake()
                except ssl.SSLWantReadError:
                    pass
            self.pump()


def tls_session(server_ctx: ssl.SSLContext, sni: str, request: int, response: int) -> list[tuple[int, bytes]]:
    """(direction, bytes) of a whole TLS 1.3 session, 0 = client to server:
    the handshake, a request of *request* bytes and a response of
    *response* bytes, each side's bytes as OpenSSL wrote them."""
    cctx = ssl.create_default_context()
    cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
    cctx.set_alpn_protocols(["h2", "http/1.1"])
    tls = MemoryTLS(cctx, server_ctx, sni)
    tls.handshake()
    tls.client.write(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n" + b"x" * max(0, request - 40) + b"\r\n\r\n")
    tls.pump()
    tls.server.read(65536)
    for start in range(0, response, 16000):
        tls.server.write(random.randbytes(min(16000, response - start)))
    tls.pump()
    try:
        while tls.client.read(65536):
            pass
    except ssl.SSLWantReadError:
        pass
    return tls.writes


# -- flows --------------------------------------------------------------------

class FlowGen:
    """Packets of one flow, one at a time: ``next()`` gives (from_client,
    frame) until the flow is over."""

    def __init__(self, kind: str, client: bytes, server: bytes, cport: int, packets: int, rng: random.Random,
                 templates: dict):
        self.kind, self.client, self.server, self.cport = kind, client, server, cport
        self.rng, self.t = rng, templates
        self.steps = self._script(packets)
        self.i = 0

    def _script(self, packets: int):
        """[(from_client, payload)], the flow's messages (TCP ones are cut into segments later)."""
        rng, kind = self.rng, self.kind
        data = max(1, packets)
        if kind == "https":
            session = self.t["tls"][rng.randrange(len(self.t["tls"]))]
            msgs = [(d == 0, b) for d, b in session]
            return self._tcp_script(msgs, packets, filler=lambda: (rng.random() < 0.3, b"\x17\x03\x03" + struct.pack(
                ">H", 1200) + rng.randbytes(1200)))
        if kind == "http":
            host = NAMES[rng.randrange(len(NAMES))]
            req = f"GET /img/{rng.randrange(10**6)}.jpg HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\n" \
                  "Accept: */*\r\n\r\n"
            resp = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n"
            return self._tcp_script([(True, req.encode()), (False, resp + rng.randbytes(1300))], packets,
                                    filler=lambda: (False, rng.randbytes(MSS)))
        if kind == "ssh":
            kex = struct.pack(">IBB", 1020, 6, 20) + rng.randbytes(16) + b"\x00\x00\x00\x60curve25519-sha256," \
                b"curve25519-sha256@libssh.org,ecdh-sha2-nistp256" + rng.randbytes(920)
            return self._tcp_script([(False, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
                                     (True, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
                                     (True, kex), (False, kex), (True, rng.randbytes(48)), (False, rng.randbytes(560))],
                                    packets, filler=lambda: (rng.random() < 0.5, rng.randbytes(rng.choice((52, 100, 1200)))))
        if kind == "shadowsocks":
            return self._tcp_script([(True, rng.randbytes(rng.randrange(200, 600))), (False, rng.randbytes(900))],
                                    packets, filler=lambda: (rng.random() < 0.35, rng.randbytes(rng.randrange(100, MSS))))
        if kind == "dns":
            name = NAMES[rng.randrange(len(NAMES))]
            qid = rng.randrange(65536)
            q = struct.pack(">6H", qid, 0x0100, 1, 0, 0, 0) + b"".join(
                bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
            a = struct.pack(">6H", qid, 0x8180, 1, 1, 0, 0) + q[12:] + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" \
                + rng.randbytes(4)
            return [(True, q), (False, a)][:max(2, data)]
        if kind == "quic":
            dcid = rng.randbytes(8)
            hello = self.t["quic_hello"][rng.randrange(len(self.t["quic_hello"]))]
            msgs = [(True, initial_packet(hello, dcid, rng.randbytes(8))),
                    (False, bytes([0xC0]) + b"\x00\x00\x00\x01\x08" + rng.randbytes(8) + b"\x08" + dcid + rng.randbytes(1180)),
                    (False, bytes([0xE0]) + b"\x00\x00\x00\x01\x08" + rng.randbytes(8) + b"\x08" + dcid + rng.randbytes(900)),
                    (True, bytes([0xC0]) + b"\x00\x00\x00\x01\x08" + dcid + b"\x08" + rng.randbytes(8) + rng.randbytes(1180))]
            while len(msgs) < packets:
                down = rng.random() < 0.7
                msgs.append((not down, bytes([0x40 | rng.randrange(4)]) + dcid + rng.randbytes(1200 if down else 40)))
            return msgs
        if kind == "wireguard":
            sender, receiver = rng.randbytes(4), rng.randbytes(4)
            msgs = [(True, b"\x01\x00\x00\x00" + sender + rng.randbytes(140)),
                    (False, b"\x02\x00\x00\x00" + receiver + sender + rng.randbytes(80))]
            counters = [0, 0]
            while len(msgs) < packets:
                up = rng.random() < 0.4
                idx = receiver if up else sender
                n = counters[up]
                counters[up] += 1
                msgs.append((up, b"\x04\x00\x00\x00" + idx + struct.pack("<Q", n) + rng.randbytes(rng.choice((32, 128, 1280)))))
            return msgs
        if kind == "openvpn":
            csid, ssid = rng.randbytes(8), rng.randbytes(8)
            msgs = [(True, bytes([7 << 3]) + csid + b"\x00" + struct.pack(">I", 0)),
                    (False, bytes([8 << 3]) + ssid + b"\x01" + struct.pack(">I", 0) + csid + struct.pack(">I", 0)),
                    (True, bytes([5 << 3]) + csid + b"\x01" + struct.pack(">I", 0) + ssid),
                    (True, bytes([4 << 3]) + csid + b"\x00" + struct.pack(">I", 1) + b"\x16\x03\x01" + rng.randbytes(280)),
                    (False, bytes([4 << 3]) + ssid + b"\x01" + struct.pack(">I", 1) + csid + struct.pack(">I", 1)
                     + b"\x16\x03\x03" + rng.randbytes(1150))]
            peer = rng.randbytes(3)
            pid = [1, 1]
            while len(msgs) < packets:
                up = rng.random() < 0.4
                msgs.append((up, bytes([9 << 3]) + peer + struct.pack(">I", pid[up]) + rng.randbytes(rng.choice((60, 140, 1300)))))
                pid[up] += 1
            return msgs
        raise ValueError(kind)

    def _tcp_script(self, msgs, packets, filler):
        """Messages cut into segments of at most MSS, padded with *filler*
        messages to about *packets* packets in all (handshake and FINs included)."""
        out = []
        budget = max(0, packets - 7)
        segs = sum(-(-len(b) // MSS) for _, b in msgs)
        while segs < budget:
            m = filler()
            msgs.append(m)
            segs += -(-len(m[1]) // MSS)
        for up, b in msgs:
            for at in range(0, len(b), MSS):
                out.append((up, b[at:at + MSS]))
        return out

    def frames(self):
        """Every frame of the flow, in order: (from_client, frame)."""
        c, s, cp = self.client, self.server, self.cport
        sp = {"https": 443, "http": 80, "ssh": 22, "dns": 53, "quic": 443, "wireguard": 51820,
              "openvpn": 1194, "shadowsocks": 8388}[self.kind]
        if self.kind in ("dns", "quic", "wireguard", "openvpn"):
            for up, payload in self.steps:
                yield up, frame(c, s, 17, udp(cp, sp, payload)) if up else frame(s, c, 17, udp(sp, cp, payload))
            return
        cseq, sseq = self.rng.getrandbits(32), self.rng.getrandbits(32)
        yield True, frame(c, s, 6, tcp(cp, sp, cseq, 0, 0x02))
        yield False, frame(s, c, 6, tcp(sp, cp, sseq, cseq + 1, 0x12))
        cseq, sseq = cseq + 1, sseq + 1
        yield True, frame(c, s, 6, tcp(cp, sp, cseq, sseq, 0x10))
        unacked = 0
        for up, payload in self.steps:
            if up:
                yield True, frame(c, s, 6, tcp(cp, sp, cseq, sseq, 0x18, payload))
                cseq += len(payload)
            else:
                yield False, frame(s, c, 6, tcp(sp, cp, sseq, cseq, 0x18, payload))
                sseq += len(payload)
                unacked += 1
                if unacked == 2:                       # delayed ACK: one per two full segments
                    yield True, frame(c, s, 6, tcp(cp, sp, cseq, sseq, 0x10))
                    unacked = 0
        yield True, frame(c, s, 6, tcp(cp, sp, cseq, sseq, 0x11))
        yield False, frame(s, c, 6, tcp(sp, cp, sseq, cseq + 1, 0x11))
        yield True, frame(c, s, 6, tcp(cp, sp, cseq + 1, sseq + 1, 0x10))


def templates(rng: random.Random, sessions: int = 8) -> dict:
    """Real TLS sessions and ClientHellos, made once and shared by the flows
    (making one costs a few milliseconds; on the wire a session's bytes are
    what matter, and the flows still differ in addresses, ports and sizes)."""
    ctx = _server_context()
    random.seed(rng.random())
    tls = [tls_session(ctx, NAMES[i % len(NAMES)], 300 + 100 * i, 20000 + 5000 * i) for i in range(sessions)]
    quic_hellos = []
    for i in range(sessions):
        hello = tls[i][0][1]
        quic_hellos.append(hello[5:])                   # the handshake message without its record header
    return {"tls": tls, "quic_hello": quic_hellos}


def generate(path: Path, packets: int, flows: int, seed: int = 1, concurrent: int = 256,
             kinds: tuple[str, ...] = KINDS) -> int:
    """Write about *packets* packets in *flows* flows to *path*; returns the
    number written. Flow lengths vary around the mean (a few short, some
    long); up to *concurrent* flows are alive at once, their packets
    interleaved."""
    rng = random.Random(seed)
    t = templates(rng)
    mean = max(4, packets // flows)
    servers = [ipaddress.IPv4Address("198.18.0.0") + i * 7 + 1 for i in range(4096)]
    started, written, ts = 0, 0, 1_700_000_000.0
    alive: list = []
    with Writer(path) as w:
        while started < flows or alive:
            while started < flows and len(alive) < concurrent:
                i = started
                started += 1
                client = socket.inet_aton(str(ipaddress.IPv4Address("10.0.0.0") + i + 1))
                server = servers[rng.randrange(len(servers))].packed
                n = max(4, int(rng.uniform(0.5, 1.5) * mean))
                alive.append(FlowGen(kinds[i % len(kinds)], client, server, 1024 + rng.randrange(60000), n, rng,
                                     t).frames())
            at = rng.randrange(len(alive))
            try:
                _up, f = next(alive[at])
            except StopIteration:
                alive[at] = alive[-1]
                alive.pop()
                continue
            w.write(ts, f)
            ts += 0.00002
            written += 1
    return written


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="write realistic benchmark traffic to a pcap")
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--flows", type=int, default=2_000)
    a = ap.parse_args()
    print(generate(Path(a.out), a.packets, a.flows), "packets")
