#!/usr/bin/env python3
"""What the TLS-in-TLS detector sees of each TCP flow in a capture.

    .venv/bin/python benchmarks/tlsintls_bursts.py CAPTURE [--port 8443] [--bursts 20] [--json]

For every TCP flow (optionally only those to ``--port``) that starts with a
TLS handshake: its bursts after the outer handshake (direction, bytes,
packets, first packet's size), as the classifier counts them
(middlebox/classifiers/tlsintls.py), and every window of four bursts
among the first ``max_starts`` client bursts with its distance to each
model, whether it was judged (``min_answer``, the fourth burst's cap) and
what decided. The first part goes past the censor's budget (``--bursts``)
so that an inner handshake that comes later can be seen. The reassembly
here is simple (in-order segments only, each direction up to 16 kB, as
the engine's); ``tunnelwall classify`` gives the engine's own verdicts.
Used for docs/tls-in-tls.md ("Tools built from Go modules").
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from middlebox.classifiers.base import C2S, DONE  # noqa: E402
from middlebox.classifiers.tlsintls import TLSinTLS, window_distance, window_features  # noqa: E402
from middlebox.pcap import frames  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from corpus import in_order_segments  # noqa: E402


class _View:
    __slots__ = ("payload", "full")

    def __init__(self, payload: bytes, full: bool):
        self.payload, self.full = payload, full


def _ipv4_tcp(path: str):
    """(ts, src, sport, dst, dport, flags, seq, payload) of each IPv4 TCP
    packet of an Ethernet capture (pcap or pcapng: middlebox.pcap)."""
    for ts, frame in frames(path):
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:struct.unpack_from(">H", ip, 2)[0]]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        yield ts, ip[12:16], sport, ip[16:20], dport, tcp[13], seq, bytes(tcp[(tcp[12] >> 4) * 4:])


def tcp_flows(path: str, port: int | None):
    """Each TCP flow's in-order payloads: [(direction, payload)], in order of
    the SYNs; direction 0 is the SYN's sender."""
    order = []
    for f, _ts, d, payload in in_order_segments(_ipv4_tcp(path), port):
        if payload is None:
            f["packets"] = []
            order.append(f)
        else:
            f["packets"].append((d, payload))
    return order


def walk(packets, params: dict, limit: int = 16384):
    """Run the classifier over a flow; every window it would judge is
    recorded (with its distances) instead of stopping at the first match.
    Returns (the classifier's state, windows, its own first result)."""
    clf = TLSinTLS(params)
    windows: list[dict] = []
    first: list = []

    def match(window, pkts):
        feats = window_features(window, pkts, clf.params["caps"])
        dist = {m["name"]: round(window_distance(feats, m), 2) for m in clf._models}
        windows.append({"bursts": list(window), "packets": list(pkts), "distances": dist})
        hit = min(dist.values()) < clf.params["threshold"]
        if hit and not first:
            first.append(("tls-in-tls", min(dist, key=dist.get), min(dist.values())))
        return None
    clf._match = match
    st, streams, result = clf.start(None), [b"", b""], None
    for d, chunk in packets:
        room = limit - len(streams[d])
        if room <= 0:
            continue
        streams[d] += chunk[:room]
        result = clf.update(st, None, _View(streams[d], len(streams[d]) >= limit), d)
        if result is DONE:
            break
    return st, windows, first[0] if first else result


def report(flow: dict, nbursts: int) -> dict:
    # the bursts, past the censor's budget
    st, _w, _r = walk(flow["packets"], {"max_starts": 100}, limit=1 << 30)
    bursts = [{"dir": "c2s" if d == C2S else "s2c", "bytes": b, "packets": p, "first": f}
              for d, b, p, f in zip(st.dirs, st.bursts, st.packets, st.firsts)][:nbursts]
    # the windows, as the censor's defaults judge them
    st2, windows, verdict = walk(flow["packets"], {})
    judged = []
    for w in windows:
        best = min(w["distances"], key=w["distances"].get)
        judged.append({**w, "nearest": best, "distance": w["distances"][best]})
    return {"client": flow["client"], "server": flow["server"],
            "c2s_bytes": sum(len(p) for d, p in flow["packets"] if d == 0),
            "s2c_bytes": sum(len(p) for d, p in flow["packets"] if d == 1),
            "outer_start": st.start, "ticket": st.ticket, "bursts": bursts,
            "bursts_in_budget": len(st2.bursts), "windows_judged": judged,
            "verdict": "DONE" if verdict is DONE else verdict if verdict else "undecided"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--port", type=int, help="only flows to this server port")
    ap.add_argument("--bursts", type=int, default=20, help="bursts listed per flow (default 20)")
    ap.add_argument("--json", action="store_true", help="one JSON line per flow")
    args = ap.parse_args()
    try:
        flows = tcp_flows(args.capture, args.port)
    except Exception as exc:          # bad input: one line
        sys.exit(f"tlsintls_bursts: {args.capture}: {exc}")
    for flow in flows:
        if not flow["packets"] or flow["packets"][0][1][:1] != b"\x16":
            continue
        r = report(flow, args.bursts)
        if args.json:
            print(json.dumps(r))
            continue
        print(f"{r['client']} -> {r['server']}: {r['c2s_bytes']:,} up, {r['s2c_bytes']:,} down; "
              f"verdict {r['verdict']}")
        print("  bursts: " + " ".join(f"{'>' if b['dir'] == 'c2s' else '<'}{b['bytes']}/{b['packets']}"
                                      f"({b['first']})" for b in r["bursts"]))
        print(f"  bursts within the budget: {r['bursts_in_budget']}; windows judged: {len(r['windows_judged'])}")
        for w in r["windows_judged"]:
            print(f"    {w['bursts']} pk {w['packets']}: nearest {w['nearest']} {w['distance']}  "
                  + " ".join(f"{k}={v}" for k, v in w["distances"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
