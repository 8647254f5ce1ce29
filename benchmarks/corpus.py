"""The TLS-in-TLS corpus's compact form: per flow, its first packets as
(time, direction, payload length, the TLS records that start in it).

``derive(pcap_dir, out)`` writes ``benchmarks/data/tlsintls-flows.jsonl.gz``
from the captures ``record_tlsintls.py`` made; ``load()`` reads it back;
``rebuild(flow)`` turns a flow back into per-packet payloads with the same
TLS framing (record types and lengths, packet boundaries) and zero bytes
inside the records, which is everything the TLS-in-TLS classifier reads.

One JSON object per line::

    {"file": "tunnel--trojan--curl.pcap", "kind": "tunnel" | "benign",
     "config": "trojan" | "benign", "stack": "curl", "server_port": 8443, "client_port": 40122,
     "index": 3, "split": "tune" | "report",
     "c2s_bytes": ..., "s2c_bytes": ..., "data_packets": ...,
     "packets": [[ms since the SYN, 0 (client->server) | 1, payload length,
                  [[record type, record length], ...]], ...],
     "ticket": 624}

``ticket`` (only where it is not 0): the bytes of the session_ticket
extension of the client's ClientHello, which the TLS-in-TLS classifier
reads as data carried in the outer handshake (simple-obfs puts its first
data there). ``rebuild`` then writes a ClientHello with that extension,
padded to the recorded record length. The captures of the kept corpus were
gone when this field was added (issue 27): for its simple-obfs-tls flows
it was set from the record length and simple-obfs's fixed ClientHello
layout (``simple_obfs_ticket``); its other flows have none recorded.

Only packets with payload are kept, at most ``KEEP`` of them (the censor
reads 100 data packets at most). The split is fixed: within each
(file), flows in the order of their SYN alternate tune, report, tune, ...
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

KEEP = 160
DATA = Path(__file__).resolve().parent / "data" / "tlsintls-flows.jsonl.gz"


def _packets(path: Path):
    """(ts, src, sport, dst, dport, flags, seq, payload) of each IPv4 TCP packet in a classic pcap."""
    raw = path.read_bytes()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", raw, 20)[0]
    pos = 24
    while pos + 16 <= len(raw):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", raw, pos)
        frame = raw[pos + 16: pos + 16 + incl]
        pos += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        off = 14 if linktype == 1 else 16 if linktype == 113 else 0
        if linktype == 1 and frame[12:14] != b"\x08\x00":
            continue
        ip = frame[off:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        doff = (tcp[12] >> 4) * 4
        yield ts, ip[12:16], sport, ip[16:20], dport, tcp[13], seq, bytes(tcp[doff:])


def in_order_segments(packets, port: int | None = None):
    """(flow, ts, direction, payload) of each new in-order data segment in
    *packets* ((ts, src, sport, dst, dport, flags, seq, payload) tuples).
    A SYN (to *port*, where given) starts a flow: a dict with its ``t0``,
    ``client``/``server`` (address:port), ``client_port``/``server_port``,
    to which callers add what they keep; it is yielded once with payload
    None when it starts. Direction 0 is the SYN's sender. Retransmissions
    and out-of-order segments are not new bytes."""
    flows: dict[tuple, tuple[dict, list]] = {}        # 5-tuple -> (flow, next sequence number per direction)
    for ts, src, sport, dst, dport, flags, seq, payload in packets:
        key, rkey = (src, sport, dst, dport), (dst, dport, src, sport)
        if key in flows:
            (f, expected), d = flows[key], 0
        elif rkey in flows:
            (f, expected), d = flows[rkey], 1
        elif flags & 0x12 == 0x02 and (port is None or dport == port):
            f = {"t0": ts, "client": f"{'.'.join(map(str, src))}:{sport}", "server": f"{'.'.join(map(str, dst))}:{dport}",
                 "client_port": sport, "server_port": dport}
            flows[key] = (f, [seq + 1, None])
            yield f, ts, 0, None
            continue
        else:
            continue
        if flags & 0x12 == 0x12 and d == 1:
            expected[1] = seq + 1
            continue
        if not payload or expected[d] is None or seq != expected[d]:
            continue
        expected[d] = (seq + len(payload)) & 0xFFFFFFFF
        yield f, ts, d, payload


def _flows_of(path: Path) -> list[dict]:
    order: list[dict] = []
    for f, ts, d, payload in in_order_segments(_packets(path)):
        if payload is None:
            f.update(streams=[bytearray(), bytearray()], packets=[], bytes=[0, 0], data_packets=0)
            order.append(f)
            continue
        f["bytes"][d] += len(payload)
        f["data_packets"] += 1
        if len(f["packets"]) < KEEP:
            stream = f["streams"][d]
            start = len(stream)
            stream.extend(payload)
            f["packets"].append([round((ts - f["t0"]) * 1000, 3), d, len(payload), start])
    out = []
    for f in order:
        records: list[list] = [[], []]         # per direction: (offset, type, length)
        for d in (0, 1):
            s, pos = f["streams"][d], 0
            while pos + 5 <= len(s) and s[pos] in (0x14, 0x15, 0x16, 0x17) and s[pos + 1] == 3:
                length = struct.unpack_from(">H", s, pos + 3)[0]
                records[d].append((pos, s[pos], length))
                pos += 5 + length
        pkts = []
        for t, d, length, start in f["packets"]:
            recs = [[typ, ln] for off, typ, ln in records[d] if start <= off < start + length]
            pkts.append([t, d, length, recs])
        row = {"server_port": f["server_port"], "client_port": f["client_port"], "c2s_bytes": f["bytes"][0],
               "s2c_bytes": f["bytes"][1], "data_packets": f["data_packets"], "packets": pkts}
        ticket = _ticket_of(bytes(f["streams"][0]), records[0])
        if ticket:
            row["ticket"] = ticket
        out.append(row)
    return out


def _ticket_of(stream: bytes, records: list) -> int:
    """The session_ticket extension's bytes in the ClientHello that starts
    the client's stream (0: none)."""
    from tunnelwall.middlebox.classifiers.tlsintls import session_ticket_length
    if not records or records[0][1] != 0x16:
        return 0
    return session_ticket_length(stream[5:5 + records[0][2]])


# simple-obfs 0.0.5's ClientHello (src/obfs_tls.h, obfs_tls.c): the fixed
# header up to the extensions' length (138 bytes with the record header),
# the session_ticket extension's header (4) and the data, server_name (9 +
# the obfs-host, www.example.org in record_tlsintls.py: 15), the other
# extensions (66). The record's body is 227 bytes and the data.
SIMPLE_OBFS_HELLO = 138 + 4 + 9 + 15 + 66 - 5


def simple_obfs_ticket(flow: dict) -> int:
    """The data in a simple-obfs flow's ClientHello, from its record length."""
    for _t, d, _length, recs in flow["packets"]:
        if d == 0 and recs:
            typ, ln = recs[0]
            return ln - SIMPLE_OBFS_HELLO if typ == 0x16 and ln > SIMPLE_OBFS_HELLO else 0
    return 0


def derive(pcap_dir: Path, out: Path = DATA) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(out, "wt", compresslevel=9) as fh:
        for path in sorted(Path(pcap_dir).glob("*.pcap")):
            parts = path.stem.split("--")     # tunnel--CONFIG--STACK[--INNER-WEB] or benign--STACK[--TAG]
            kind, config, stack = parts[:3] if parts[0] == "tunnel" else ("benign", "benign", parts[1])
            for i, flow in enumerate(_flows_of(path)):
                if not flow["packets"]:
                    continue
                inner_web = parts[3] if kind == "tunnel" and len(parts) > 3 else "go"
                row = {"file": path.name, "kind": kind, "config": config, "stack": stack, "inner_web": inner_web,
                       "index": i,
                       "split": "tune" if i % 2 == 0 else "report", **flow}
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
                n += 1
    return n


def load(path: Path = DATA) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def client_hello(length: int, ticket: int) -> bytes:
    """A ClientHello handshake message of *length* bytes whose session_ticket
    extension holds *ticket* bytes (zeros), the rest a padding extension."""
    fixed = 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2          # header .. extensions' length; one cipher, one method
    pad = length - fixed - 4 - ticket - 4
    exts = (35).to_bytes(2, "big") + ticket.to_bytes(2, "big") + bytes(ticket)
    if pad >= 0:
        exts += (21).to_bytes(2, "big") + pad.to_bytes(2, "big") + bytes(pad)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + len(exts).to_bytes(2, "big") + exts
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return msg[:length] + bytes(max(0, length - len(msg)))


def rebuild(flow: dict) -> list[tuple[int, bytes]]:
    """(direction, payload) of each kept packet, with the flow's TLS framing
    and zero bytes inside the records. Bytes past the last record a
    direction's kept packets start are zeros too (not TLS: a classifier stops there)."""
    streams = [bytearray(), bytearray()]
    ticket = flow.get("ticket", 0)
    for _t, d, _length, recs in flow["packets"]:
        for typ, ln in recs:
            body = bytes(ln)
            if ticket and d == 0 and not streams[0] and typ == 0x16:
                body = client_hello(ln, ticket)
            streams[d] += bytes((typ, 3, 3)) + ln.to_bytes(2, "big") + body
    pos = [0, 0]
    out = []
    for _t, d, length, _recs in flow["packets"]:
        chunk = bytes(streams[d][pos[d]: pos[d] + length])
        chunk += bytes(length - len(chunk))
        pos[d] += length
        out.append((d, chunk))
    return out


class _View:
    __slots__ = ("payload", "full")

    def __init__(self, payload: bytes, full: bool):
        self.payload, self.full = payload, full


def feed(clf, flow: dict, limit: int = 16384):
    """Run a stream-reading classifier over a corpus flow as the engine
    would (each direction reassembled up to *limit* bytes, the classifier
    fed once per packet that adds bytes); its result (None: undecided)."""
    state = clf.start(None)
    streams = [b"", b""]
    for d, chunk in rebuild(flow):
        room = limit - len(streams[d])
        if room <= 0:
            continue
        streams[d] += chunk[:room]
        result = clf.update(state, None, _View(streams[d], len(streams[d]) >= limit), d)
        if result is not None:
            return result
    return None


def inner_handshake(flow: dict, min_server: int = 400) -> bool:
    """Ground truth for a tunnel flow: did it carry an inner handshake? The
    server side sent a burst of at least *min_server* bytes after the
    client's first packet that followed its outer ChangeCipherSpec (or its
    first application-data record, where no CCS came: simple-obfs), i.e.
    an inner ServerHello flight or the data after it. Flows a client opened and left unused
    (Chromium's spare connections) carry none."""
    after_ccs, started, burst = False, False, 0
    for _t, d, length, recs in flow["packets"]:
        if d == 0:
            if started and burst >= min_server:
                return True
            burst = 0
            has_ccs = any(typ == 0x14 for typ, _ln in recs)
            if after_ccs or (not has_ccs and any(typ == 0x17 for typ, _ln in recs)):
                started = True             # after the packet with its CCS, or its first application data
            if has_ccs:
                after_ccs = True
        elif started:
            burst += length
    return started and burst >= min_server
