"""Packet-level clients and servers the integrity tests run inside nodes.

    wire.py udp-listen PORT OUT            count datagrams (v4 and v6) into OUT, one line each
    wire.py udp-send IP PORT SPORT HEX [--fragment N]
    wire.py tls-split IP SNI CUT[,CUT...]  a ClientHello in several TCP segments: reset/data/eof/timeout
    wire.py strategy NAME IP HOST GWMAC    a packet-manipulation strategy against HTTP (scapy, own TCP)
    wire.py pairs IP GWMAC N               N back-to-back insertion + request pairs, each on a new 5-tuple
                                           (IP ID 1 then 2), in one send call
    wire.py reuse IP ALLOWED BLOCKED GWMAC N   N pairs: an allowed connection, its RST, then at once a
                                           new connection on the same 5-tuple asking for BLOCKED

Strategies are written here from the published descriptions (Wang et al.,
IMC 2017; Bock et al., Geneva, CCS 2019): the censor must see the insertion
packets and the server must not (bad checksum, TTL that dies at the next
router, an MD5 option the server rejects), or the request is cut so that
only a censor without reassembly misses it. Each prints one word: ``evaded``
(the server's answer arrived), ``reset`` (a RST from the server's address)
or ``nothing``.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time

from tunnelwall.base.tlshello import client_hello
from tunnelwall.harness.geneva import first_packet


def udp_listen(port: int, out: str) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    with open(out, "a", buffering=1) as fh:
        fh.write("ready\n")
        deadline = time.monotonic() + 120          # bounded: the test ends it long before
        sock.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                continue
            fh.write(f"{len(data)} {data[:1].hex()}\n")


def udp_send(ip: str, port: int, sport: int, payload: bytes, fragment: int = 0) -> None:
    if fragment:
        from scapy.all import IP, UDP, IPv6, fragment as frag4, send
        from scapy.layers.inet6 import IPv6ExtHdrFragment, fragment6
        if ":" in ip:
            pkt = IPv6(dst=ip) / IPv6ExtHdrFragment() / UDP(sport=sport, dport=port) / payload
            pieces = fragment6(pkt, fragment + 48 + 8)
        else:
            pieces = frag4(IP(dst=ip) / UDP(sport=sport, dport=port) / payload, fragsize=fragment)
        send(pieces, verbose=False)
        return
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("::" if ":" in ip else "0.0.0.0", sport))
    sock.sendto(payload, (ip, port))


def tls_split(ip: str, sni: str, cuts: list[int]) -> str:
    hello = client_hello(sni)
    sock = socket.create_connection((ip, 443), timeout=3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bounds = [0, *cuts, len(hello)]
    for a, b in zip(bounds, bounds[1:]):
        sock.sendall(hello[a:b])
        time.sleep(0.05)        # one segment per piece (Nagle is off; this keeps the kernel from merging them)
    # Read until the connection ends or goes quiet: an on-path censor (tap)
    # races the server, so its RST may come after the server's first answer.
    got = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return "data" if got else "eof"
            got += data
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "data" if got else "timeout"
    finally:
        sock.close()


# -- strategies ----------------------------------------------------------------

def strategy(name: str, ip: str, host: str, gw_mac: str) -> str:
    from scapy.all import IP, TCP, AsyncSniffer, Ether, Raw, conf, fragment, get_if_hwaddr, sendp
    conf.verb = 0
    iface = "eth0"
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tw\r\n\r\n".encode()
    sport, isn = random.randint(20000, 60000), random.randint(1, 2**31)
    l2 = Ether(src=get_if_hwaddr(iface), dst=gw_mac)
    ip_layer = IP(dst=ip)
    # Our TCP lives here, not in the kernel: keep the kernel from answering the SYN/ACK with a RST.
    table = f"tw_strategy_{os.getpid()}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    subprocess.run(["nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"],
                   check=True)
    subprocess.run(["nft", "add", "rule", "inet", table, "out", "tcp", "flags", "rst", "drop"], check=True)
    listening = threading.Event()
    received: list = []
    sniffer = AsyncSniffer(iface=iface, filter=f"tcp and src host {ip} and port {sport}", store=False,
                           prn=received.append, started_callback=listening.set)
    sniffer.start()
    if not listening.wait(5):
        return "nothing"

    def tcp(flags, seq, ack=0, payload=b"", ttl=64, **kw):
        pkt = l2 / IP(dst=ip, ttl=ttl) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, **kw)
        return pkt / Raw(payload) if payload else pkt

    try:
        if name == "synack-first":
            sendp(tcp("SA", isn - 1000), iface=iface)
        syn = tcp("S", isn)
        if name == "syn-payload":
            syn = syn / Raw(b"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n")
        sendp(syn, iface=iface)
        synack = first_packet(received, lambda p: p[TCP].flags & 0x12 == 0x12, 3)
        if synack is None:
            return "nothing"
        sack = synack[TCP].seq + 1
        sendp(tcp("A", isn + 1, sack), iface=iface)
        seq = isn + 1
        if name == "syn-payload":
            sendp(tcp("S", isn, payload=b"xx"), iface=iface)
        elif name == "rst-badsum":
            sendp(tcp("R", seq, chksum=0xDEAD), iface=iface)
        elif name == "rstack-badsum":
            sendp(tcp("RA", seq, sack, chksum=0xDEAD), iface=iface)
        elif name == "fin-badsum":
            sendp(tcp("FA", seq, sack, chksum=0xDEAD), iface=iface)
        elif name == "rst-ttl":
            # TTL 8 (Geneva's s06): past the two routers before the border
            # (isp, isp_h1), dead at the fifth of the ten past it (ix_h4).
            sendp(tcp("R", seq, ttl=8), iface=iface)
        elif name == "rstack-md5":
            sendp(tcp("RA", seq, sack, options=[(19, b"\x00" * 16)]), iface=iface)
        if name == "segment-in-order":
            cut = request.index(b"twitter") + 3
            sendp(tcp("PA", seq, sack, request[:cut]), iface=iface)
            sendp(tcp("PA", seq + cut, sack, request[cut:]), iface=iface)
        elif name == "segment-out-of-order":
            cut = request.index(b"twitter") + 3
            sendp(tcp("PA", seq + cut, sack, request[cut:]), iface=iface)
            sendp(tcp("PA", seq, sack, request[:cut]), iface=iface)
        elif name == "ip-fragments":
            whole = ip_layer / TCP(sport=sport, dport=80, flags="PA", seq=seq, ack=sack) / Raw(request)
            for piece in fragment(whole, fragsize=16):
                sendp(l2 / piece, iface=iface)
        else:
            sendp(tcp("PA", seq, sack, request), iface=iface)
        answer = first_packet(received, lambda p: bool(p[TCP].flags & 0x04) or b"HTTP/1." in bytes(p[TCP].payload), 3)
        if answer is None:
            return "nothing"
        return "reset" if answer[TCP].flags & 0x04 else "evaded"
    finally:
        sniffer.stop()
        subprocess.run(["nft", "delete", "table", "inet", table])


PAIR_KINDS = ("rst-badsum", "synack-first", "dataofs-badsum")


def pairs(ip: str, gw_mac: str, n: int) -> None:
    """Issue 33, item 3: pairs the way Geneva's strategies send them, an
    insertion packet and then the real one, microseconds apart: a RST with a
    bad checksum then the request; a SYN/ACK then the SYN (strategy 23); a
    request with data offset 10 and a bad checksum then the request
    (strategy 1). The first of each pair has IP ID 1, the second 2; each pair
    its own source port. Prints the ports used, one line."""
    from scapy.all import IP, TCP, Ether, Raw, conf, get_if_hwaddr
    conf.verb = 0
    iface = "eth0"
    l2 = Ether(src=get_if_hwaddr(iface), dst=gw_mac)
    request = b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"
    sock = conf.L2socket(iface=iface)
    ports = []
    try:
        for i in range(n):
            sport, isn = 20000 + i, random.randint(1, 2**31)
            kind = PAIR_KINDS[i % len(PAIR_KINDS)]
            base = l2 / IP(dst=ip, id=1)
            if kind == "rst-badsum":
                first = base / TCP(sport=sport, dport=80, flags="R", seq=isn, chksum=0xDEAD)
                second = l2 / IP(dst=ip, id=2) / TCP(sport=sport, dport=80, flags="PA", seq=isn, ack=1) / Raw(request)
            elif kind == "synack-first":
                first = base / TCP(sport=sport, dport=80, flags="SA", seq=isn)
                second = l2 / IP(dst=ip, id=2) / TCP(sport=sport, dport=80, flags="S", seq=isn)
            else:
                first = base / TCP(sport=sport, dport=80, flags="PA", seq=isn, ack=1, dataofs=10, chksum=0xBEEF) / \
                    Raw(request)
                second = l2 / IP(dst=ip, id=2) / TCP(sport=sport, dport=80, flags="PA", seq=isn, ack=1) / Raw(request)
            a, b = bytes(first), bytes(second)
            sock.send(a)
            sock.send(b)
            ports.append(sport)
            time.sleep(0.002)      # pace the pairs (not synchronisation): 1,000 pairs in a few seconds
    finally:
        sock.close()
    print(" ".join(map(str, ports)))


def reuse(ip: str, allowed: str, blocked: str, gw_mac: str, n: int) -> None:
    """Issue 33: a connection the censor allowed (its request answered), torn
    down by the client's RST, then at once a new connection on the same
    5-tuple (new ISN) asking for a blocked Host. Prints one line per pair:
    ``SPORT OUTCOME`` with the second connection's outcome (evaded, reset,
    nothing) or ``SPORT control-failed``."""
    from scapy.all import IP, TCP, AsyncSniffer, Ether, Raw, conf, get_if_hwaddr, sendp
    conf.verb = 0
    iface = "eth0"
    l2 = Ether(src=get_if_hwaddr(iface), dst=gw_mac)
    table = f"tw_reuse_{os.getpid()}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    subprocess.run(["nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"],
                   check=True)
    subprocess.run(["nft", "add", "rule", "inet", table, "out", "tcp", "flags", "rst", "drop"], check=True)
    try:
        for _ in range(n):
            sport = random.randint(20000, 60000)
            received: list = []
            listening = threading.Event()
            sniffer = AsyncSniffer(iface=iface, filter=f"tcp and src host {ip} and port {sport}", store=False,
                                   prn=received.append, started_callback=listening.set)
            sniffer.start()
            listening.wait(5)

            def tcp(flags, seq, ack=0, payload=b""):
                pkt = l2 / IP(dst=ip) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack)
                return pkt / Raw(payload) if payload else pkt

            def connect(host: str, isn: int) -> str:
                mark = len(received)
                sendp(tcp("S", isn), iface=iface)
                synack = first_packet(received, lambda p: p[TCP].flags & 0x12 == 0x12 and p[TCP].ack == isn + 1, 3, mark)
                if synack is None:
                    return "nothing"
                sack = synack[TCP].seq + 1
                sendp(tcp("A", isn + 1, sack), iface=iface)
                request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tw\r\n\r\n".encode()
                sendp(tcp("PA", isn + 1, sack, request), iface=iface)
                answer = first_packet(received, lambda p: bool(p[TCP].flags & 0x04) or b"HTTP/1." in bytes(p[TCP].payload),
                                      3, mark)
                if answer is None:
                    return "nothing"
                if answer[TCP].flags & 0x04:
                    return "reset"
                # The client ends it with a RST, as a browser closing abruptly does.
                sendp(tcp("R", isn + 1 + len(request)), iface=iface)
                return "evaded"
            try:
                first = connect(allowed, random.randint(1, 2**31))
                if first != "evaded":
                    print(sport, "control-failed", flush=True)
                    continue
                print(sport, connect(blocked, random.randint(1, 2**31)), flush=True)
            finally:
                sniffer.stop()
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table])


def main(argv: list[str]) -> None:
    verb = argv[0]
    if verb == "udp-listen":
        udp_listen(int(argv[1]), argv[2])
    elif verb == "udp-send":
        frag = int(argv[argv.index("--fragment") + 1]) if "--fragment" in argv else 0
        udp_send(argv[1], int(argv[2]), int(argv[3]), bytes.fromhex(argv[4]), frag)
    elif verb == "tls-split":
        print(tls_split(argv[1], argv[2], [int(c) for c in argv[3].split(",") if c]))
    elif verb == "pairs":
        pairs(argv[1], argv[2], int(argv[3]))
    elif verb == "reuse":
        reuse(argv[1], argv[2], argv[3], argv[4], int(argv[5]))
    elif verb == "strategy":
        print(strategy(argv[1], argv[2], argv[3], argv[4]))
    else:
        raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    main(sys.argv[1:])
