#!/usr/bin/env python3
"""Record the TLS-in-TLS corpus: real tunnels carrying real inner HTTPS, and
plain HTTPS from several client stacks, between two network namespaces this
script creates (never any other address).

    .venv/bin/python benchmarks/record_tlsintls.py [--out /var/tmp/tlsintls-corpus] [--runs 12] [--benign 1.0]

Needs root, Go (it builds benchmarks/tlsintls_go), and Debian's trojan,
v2ray, shadowsocks-libev, ss-v2ray-plugin, simple-obfs, stunnel4, curl, wget,
chromium. Layout: namespaces ``tlsi-c`` (10.99.0.1) and ``tlsi-s``
(10.99.0.2) joined by a veth pair with segmentation offloads off (the
capture then shows the packets a censor on the wire would see, at most
1,500 bytes). On ``tlsi-s``: the web server (Go's net/http: HTTP/1.1 and
h2, TLS 1.2 and 1.3, an ECDSA P-256 self-signed certificate) on 443, and
the tunnels' servers, each on its own port (the label of an outer flow is
its server port). On ``tlsi-c``: the tunnels' clients and the inner
clients. The tunnel servers reach the web server inside ``tlsi-s``, so the
capture on the veth holds only the outer connections.

Tunnel configurations (server port): trojan (8443), vmess-ws-tls (8444),
vless-tls (8445), ss-v2ray-plugin-tls with its default mux (8446,
``mux=1``) and without (8450, ``mux=0`` on both sides), simple-obfs-tls (8447), stunnel behind an HTTP CONNECT
proxy (8448: the inner client sends CONNECT through stunnel, a preamble
round trip inside the outer TLS), an HTTPS forward proxy (8449).
Inner client stacks: curl (OpenSSL 3), Python's ssl (OpenSSL 3, its own
ClientHello), Go's crypto/tls, headless Chromium (BoringSSL) loading a
page with eight images. Sizes log-uniform from 1 kB to 2 MB. Outer
handshakes are full or resumed as each tunnel client does it (trojan and
stunnel resume their sessions).

Benign (port 443, direct): curl single fetches (TLS 1.2 and 1.3), curl
keep-alive (HTTP/1.1, 2-5 requests) and h2 (5-20 requests on one
connection), curl uploads, long downloads (5-20 MB), wget, Python
(keep-alive, uploads, TLS 1.2/1.3), Go (h2, sequential and parallel
streams, TLS 1.2), Chromium page loads.

Output: one pcap per (configuration, stack) and per benign stack under
``--out``, and ``flows.jsonl.gz`` (corpus.py) derived from them. The
random choices use ``--seed``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

CLIENT_NS, SERVER_NS = "tlsi-c", "tlsi-s"
CLIENT_IP, SERVER_IP = "10.99.0.1", "10.99.0.2"
GO_BIN = Path("/var/tmp/tlsintls-go")
PASSWORD = "tunnelwall-corpus"
UUID = "5a1d3c52-6f2e-4a8e-9b1f-2c0d7e4f9a11"

# configuration -> (server port, the inner client's proxy URL)
TUNNELS = {
    "trojan": (8443, "socks5://127.0.0.1:1081"),
    "vmess-ws-tls": (8444, "socks5://127.0.0.1:1082"),
    "vless-tls": (8445, "socks5://127.0.0.1:1083"),
    "ss-v2ray-tls-mux": (8446, "socks5://127.0.0.1:1084"),
    "ss-v2ray-tls": (8450, "socks5://127.0.0.1:1085"),
    "simple-obfs-tls": (8447, "socks5://127.0.0.1:1086"),
    "stunnel-connect": (8448, "http://127.0.0.1:3129"),
    "https-proxy": (8449, f"https://{SERVER_IP}:8449"),
}
STACKS = ("curl", "python", "go", "chromium")
TESTBED_WEB_PORT = 4443          # tunnelwall.services.webserver: the testbed's outside web server


class Procs:
    """The processes this script started (ended by PID, in reverse)."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen:
        fh = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=fh, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.started.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.started):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.started):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.started.clear()


def sh(*argv: str, ns: str | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    return subprocess.run(full, check=check, capture_output=True, **kw)


def wait_port(ns: str, port: int, deadline: float = 15.0):
    """Wait until something listens on TCP *port* in *ns*."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        out = sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise SystemExit(f"record_tlsintls: nothing listens on {ns}:{port} after {deadline:.0f}s")


def make_netns():
    for ns in (CLIENT_NS, SERVER_NS):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", "tlsi-c0", "netns", CLIENT_NS, "type", "veth", "peer", "tlsi-s0", "netns", SERVER_NS)
    for ns, dev, ip in ((CLIENT_NS, "tlsi-c0", CLIENT_IP), (SERVER_NS, "tlsi-s0", SERVER_IP)):
        sh("ip", "addr", "add", f"{ip}/24", "dev", dev, ns=ns)
        sh("ip", "link", "set", dev, "up", ns=ns)
        # what a wire carries: no TSO/GSO super-packets, no GRO merging, real checksums
        sh("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", ns=ns, check=False)


def del_netns():
    for ns in (CLIENT_NS, SERVER_NS):
        sh("ip", "netns", "del", ns, check=False)


def write_configs(work: Path):
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
       "2", "-subj", "/CN=www.example.org", "-addext", "subjectAltName=DNS:www.example.org,IP:10.99.0.2",
       "-keyout", str(work / "server.key"), "-out", str(work / "server.crt"))
    cert, key = work / "server.crt", work / "server.key"
    (work / "trojan-server.json").write_text(
        f'{{"run_type": "server", "local_addr": "0.0.0.0", "local_port": 8443, "remote_addr": "127.0.0.1",'
        f' "remote_port": 443, "password": ["{PASSWORD}"], "log_level": 2,'
        f' "ssl": {{"cert": "{cert}", "key": "{key}", "sni": "www.example.org"}}}}')
    (work / "trojan-client.json").write_text(
        f'{{"run_type": "client", "local_addr": "127.0.0.1", "local_port": 1081, "remote_addr": "{SERVER_IP}",'
        f' "remote_port": 8443, "password": ["{PASSWORD}"], "log_level": 2,'
        f' "ssl": {{"verify": false, "verify_hostname": false, "sni": "www.example.org"}}}}')
    tls = f'{{"certificates": [{{"certificateFile": "{cert}", "keyFile": "{key}"}}]}}'
    (work / "v2ray-server.json").write_text(f"""{{"log": {{"loglevel": "warning"}},
 "inbounds": [
  {{"listen": "0.0.0.0", "port": 8444, "protocol": "vmess", "settings": {{"clients": [{{"id": "{UUID}", "alterId": 0}}]}},
   "streamSettings": {{"network": "ws", "security": "tls", "wsSettings": {{"path": "/vmess"}}, "tlsSettings": {tls}}}}},
  {{"listen": "0.0.0.0", "port": 8445, "protocol": "vless", "settings": {{"clients": [{{"id": "{UUID}"}}],
   "decryption": "none"}}, "streamSettings": {{"network": "tcp", "security": "tls", "tlsSettings": {tls}}}}}],
 "outbounds": [{{"protocol": "freedom"}}]}}""")
    client_tls = '{"serverName": "www.example.org", "allowInsecure": true}'
    (work / "v2ray-client.json").write_text(f"""{{"log": {{"loglevel": "warning"}},
 "inbounds": [{{"tag": "vmess-in", "listen": "127.0.0.1", "port": 1082, "protocol": "socks"}},
              {{"tag": "vless-in", "listen": "127.0.0.1", "port": 1083, "protocol": "socks"}}],
 "outbounds": [
  {{"tag": "vmess", "protocol": "vmess", "settings": {{"vnext": [{{"address": "{SERVER_IP}", "port": 8444,
    "users": [{{"id": "{UUID}", "alterId": 0, "security": "aes-128-gcm"}}]}}]}},
   "streamSettings": {{"network": "ws", "security": "tls", "wsSettings": {{"path": "/vmess",
    "headers": {{"Host": "www.example.org"}}}}, "tlsSettings": {client_tls}}}}},
  {{"tag": "vless", "protocol": "vless", "settings": {{"vnext": [{{"address": "{SERVER_IP}", "port": 8445,
    "users": [{{"id": "{UUID}", "encryption": "none"}}]}}]}},
   "streamSettings": {{"network": "tcp", "security": "tls", "tlsSettings": {client_tls}}}}}],
 "routing": {{"rules": [{{"type": "field", "inboundTag": ["vmess-in"], "outboundTag": "vmess"}},
                       {{"type": "field", "inboundTag": ["vless-in"], "outboundTag": "vless"}}]}}}}""")
    (work / "stunnel-server.conf").write_text(
        f"foreground = yes\npid =\n[tunnel]\naccept = 0.0.0.0:8448\nconnect = 127.0.0.1:3128\n"
        f"cert = {cert}\nkey = {key}\n")
    (work / "stunnel-client.conf").write_text(
        f"foreground = yes\npid =\n[tunnel]\nclient = yes\naccept = 127.0.0.1:3129\n"
        f"connect = {SERVER_IP}:8448\nverifyChain = no\n")


def start_servers(procs: Procs, work: Path):
    py = sys.executable
    me = str(Path(__file__).resolve())
    cert, key = str(work / "server.crt"), str(work / "server.key")
    log = work / "server.log"
    procs.start(SERVER_NS, [str(GO_BIN), "serve", "-addr", ":443", "-cert", cert, "-key", key], log)
    # the testbed's own outside web server (Python's ssl, OpenSSL 3), a second inner server
    procs.start(SERVER_NS, [py, "-m", "tunnelwall.services.webserver", "--https", str(TESTBED_WEB_PORT),
                            "--cert", cert, "--key", key], log)
    procs.start(SERVER_NS, [py, me, "proxy", "--listen", "127.0.0.1:3128"], log)
    procs.start(SERVER_NS, [py, me, "proxy", "--listen", "0.0.0.0:8449", "--cert", cert, "--key", key], log)
    procs.start(SERVER_NS, ["trojan", "-c", str(work / "trojan-server.json")], log)
    procs.start(SERVER_NS, ["v2ray", "-config", str(work / "v2ray-server.json")], log)
    method = "chacha20-ietf-poly1305"
    for port, mux in ((8446, 1), (8450, 0)):
        procs.start(SERVER_NS, ["ss-server", "-s", "0.0.0.0", "-p", str(port), "-k", PASSWORD, "-m", method,
                                "--plugin", "ss-v2ray-plugin", "--plugin-opts",
                                f"server;tls;host=www.example.org;path=/ws;cert={cert};key={key};mux={mux}"], log)
    procs.start(SERVER_NS, ["ss-server", "-s", "0.0.0.0", "-p", "8447", "-k", PASSWORD, "-m", method,
                            "--plugin", "obfs-server", "--plugin-opts", "obfs=tls"], log)
    procs.start(SERVER_NS, ["stunnel4", str(work / "stunnel-server.conf")], log)
    for port in (443, TESTBED_WEB_PORT, 3128, 8443, 8444, 8445, 8446, 8447, 8448, 8449, 8450):
        wait_port(SERVER_NS, port)
    log = work / "client.log"
    procs.start(CLIENT_NS, ["trojan", "-c", str(work / "trojan-client.json")], log)
    procs.start(CLIENT_NS, ["v2ray", "-config", str(work / "v2ray-client.json")], log)
    mux_client = None
    for port, server_port, mux in ((1084, 8446, 1), (1085, 8450, 0)):
        p = procs.start(CLIENT_NS, mux_client_argv(port, server_port, mux, cert), log)
        mux_client = mux_client or p
    procs.start(CLIENT_NS, ["ss-local", "-s", SERVER_IP, "-p", "8447", "-l", "1086", "-b", "127.0.0.1", "-k",
                            PASSWORD, "-m", method, "--plugin", "obfs-local", "--plugin-opts",
                            "obfs=tls;obfs-host=www.example.org"], log)
    procs.start(CLIENT_NS, ["stunnel4", str(work / "stunnel-client.conf")], log)
    for port in (1081, 1082, 1083, 1084, 1085, 1086, 3129):
        wait_port(CLIENT_NS, port)
    return mux_client


def mux_client_argv(port: int, server_port: int, mux: int, cert: str) -> list[str]:
    return ["ss-local", "-s", SERVER_IP, "-p", str(server_port), "-l", str(port), "-b", "127.0.0.1",
            "-k", PASSWORD, "-m", "chacha20-ietf-poly1305", "--plugin", "ss-v2ray-plugin", "--plugin-opts",
            f"tls;host=www.example.org;path=/ws;cert={cert};mux={mux}"]


def restart_mux_client(procs: Procs, old: subprocess.Popen, work: Path) -> subprocess.Popen:
    """A new mux client (so a new outer connection): with mux, every later
    session of the same client would share one outer connection, and the
    capture would hold one flow per stack."""
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=10)
    wait_port_closed(CLIENT_NS, 1084)
    new = procs.start(CLIENT_NS, mux_client_argv(1084, 8446, 1, str(work / "server.crt")), work / "client.log")
    wait_port(CLIENT_NS, 1084)
    return new


def wait_port_closed(ns: str, port: int, deadline: float = 10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip():
            return
        time.sleep(0.05)
    raise SystemExit(f"record_tlsintls: {ns}:{port} still listening after {deadline:.0f}s")


class Capture:
    """tcpdump on the client's veth into one file, started and stopped by PID."""

    def __init__(self, path: Path):
        self.p = subprocess.Popen(["ip", "netns", "exec", CLIENT_NS, "tcpdump", "-i", "tlsi-c0", "-U", "--immediate-mode", "-n",
                                   "-w", str(path), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        line = self.p.stderr.readline()          # "listening on tlsi-c0 ...": the capture is on
        if b"listening" not in line:
            raise SystemExit(f"record_tlsintls: tcpdump did not start: {line.decode(errors='replace').strip()}")

    def stop(self):
        os.killpg(self.p.pid, signal.SIGINT)
        self.p.wait(timeout=10)


def log_size(rng: random.Random, lo: int = 1000, hi: int = 2_000_000) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def chromium(proxy: str | None, url: str) -> list[str]:
    argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-features=OptimizationHints,MediaRouter,Translate",
            f"--user-data-dir={tempfile.mkdtemp(prefix='tlsi-chromium-', dir='/var/tmp')}",
            "--virtual-time-budget=8000", "--dump-dom"]
    if proxy:
        argv.append(f"--proxy-server={proxy}")
    return argv + [url]


def inner_command(stack: str, proxy: str | None, size: int, rng: random.Random, web: str = "go") -> list[str]:
    """One inner HTTPS session of *stack* (through *proxy*, or direct) to
    the corpus's Go web server or (*web* "tunnelwall") the testbed's own."""
    port = 443 if web == "go" else TESTBED_WEB_PORT
    base = f"https://{SERVER_IP}" + ("" if port == 443 else f":{port}")
    if stack == "curl":
        argv = ["curl", "-sk", "-o", "/dev/null", "--max-time", "30"]
        if proxy:
            argv += ["--proxy", proxy, "--proxy-insecure"]
        return argv + [f"{base}/bytes/{size}"]
    if stack == "python":
        argv = [sys.executable, str(Path(__file__).resolve()), "pyfetch", "--size", str(size), "--port", str(port)]
        return argv + (["--proxy", proxy] if proxy else []) + [SERVER_IP]
    if stack == "go":
        return [str(GO_BIN), "fetch", "-size", str(size)] + (["-proxy", proxy] if proxy else []) + [base]
    if stack == "chromium":     # the testbed's server has no /page: its short page at /
        return chromium(proxy, f"{base}/page?n=8&size={max(1000, size // 8)}" if web == "go" else f"{base}/")
    raise ValueError(stack)


def run_in_client(argv: list[str], timeout: float = 60) -> bool:
    try:
        r = subprocess.run(["ip", "netns", "exec", CLIENT_NS, *argv], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def benign_sessions(rng: random.Random, scale: float) -> list[tuple[str, list[str]]]:
    """(stack, argv) of every benign session, in a fixed order."""
    base = f"https://{SERVER_IP}"
    out: list[tuple[str, list[str]]] = []
    up = "/var/tmp/tlsi-upload.bin"

    def n(k):
        return max(1, int(k * scale))

    for i in range(n(700)):
        v = ["--tlsv1.2", "--tls-max", "1.2"] if i % 3 == 0 else ["--tlsv1.3"]
        out.append(("curl", ["curl", "-sk", "-o", "/dev/null", "--http1.1" if i % 2 else "--http2", *v,
                             f"{base}/bytes/{log_size(rng)}"]))
    for i in range(n(250)):
        urls = [f"{base}/bytes/{log_size(rng, 200, 300_000)}" for _ in range(rng.randint(2, 5))]
        out.append(("curl", ["curl", "-sk", "--http1.1", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                             "-o", "/dev/null", "-o", "/dev/null", *urls]))
    for i in range(n(200)):
        urls = [f"{base}/bytes/{log_size(rng, 200, 100_000)}" for _ in range(rng.randint(5, 20))]
        out.append(("curl", ["curl", "-sk", "--http2", *(["-o", "/dev/null"] * len(urls)), *urls]))
    for i in range(n(200)):
        out.append(("curl", ["sh", "-c", f"head -c {log_size(rng, 1000, 1_000_000)} {up} | curl -sk -o /dev/null "
                             f"{'--tls-max 1.2' if i % 2 else ''} --data-binary @- {base}/upload"]))
    for i in range(n(20)):
        out.append(("curl", ["curl", "-sk", "-o", "/dev/null", f"{base}/bytes/{rng.randint(5, 20) * 1_000_000}"]))
    for i in range(n(200)):
        out.append(("wget", ["wget", "-q", "--no-check-certificate", "-O", "/dev/null",
                             f"{base}/bytes/{log_size(rng)}"]))
    me = str(Path(__file__).resolve())
    for i in range(n(650)):
        extra = ["--tls12"] if i % 3 == 0 else []
        if i % 5 == 4:
            extra += ["--upload", str(log_size(rng, 1000, 500_000))]
        out.append(("python", [sys.executable, me, "pyfetch", "--size", str(log_size(rng)),
                               "--requests", str(rng.choice((1, 1, 2, 3, 5))), *extra, SERVER_IP]))
    for i in range(n(600)):
        extra = ["-tls12"] if i % 4 == 0 else []
        if i % 3 == 0:
            extra += ["-n", str(rng.randint(5, 30)), "-parallel"]
        elif i % 3 == 1:
            extra += ["-n", str(rng.randint(1, 10))]
        if i % 10 == 9:
            extra += ["-upload", str(log_size(rng, 1000, 1_000_000))]
        out.append(("go", [str(GO_BIN), "fetch", "-size", str(log_size(rng, 500, 500_000)), *extra, base]))
    for i in range(n(90)):
        out.append(("chromium", chromium(None, f"{base}/page?n={rng.randint(2, 16)}&size={log_size(rng, 500, 200_000)}")))
    return out


def record(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not GO_BIN.exists():
        subprocess.run(["go", "build", "-o", str(GO_BIN), "."], cwd=ROOT / "benchmarks/tlsintls_go", check=True)
    work = Path(tempfile.mkdtemp(prefix="tlsi-work-", dir="/var/tmp"))
    procs = Procs()
    rng = random.Random(args.seed)
    try:
        make_netns()
        write_configs(work)
        mux_client = start_servers(procs, work)
        with open("/var/tmp/tlsi-upload.bin", "wb") as fh:
            fh.write(os.urandom(1_000_000))
        failures = 0
        if args.tunnels:
            chosen = args.only.split(",") if args.only else list(TUNNELS)
            for config in chosen:
                _port, proxy = TUNNELS[config]
                for stack in STACKS:
                    suffix = "" if args.inner_web == "go" else f"--{args.inner_web}"
                    cap = Capture(out / f"tunnel--{config}--{stack}{suffix}.pcap")
                    try:
                        runs = max(1, args.runs // 3) if stack == "chromium" else args.runs
                        for _ in range(runs):
                            if config == "ss-v2ray-tls-mux":
                                mux_client = restart_mux_client(procs, mux_client, work)
                            ok = run_in_client(inner_command(stack, proxy, log_size(rng), rng, args.inner_web))
                            failures += not ok
                    finally:
                        cap.stop()
                    print(f"recorded {config} x {stack}", flush=True)
        if args.benign > 0:
            sessions = benign_sessions(rng, args.benign)
            by_stack: dict[str, list[list[str]]] = {}
            for stack, argv in sessions:
                by_stack.setdefault(stack, []).append(argv)
            for stack, argvs in by_stack.items():
                cap = Capture(out / f"benign--{stack}{'--' + args.tag if args.tag else ''}.pcap")
                try:
                    for argv in argvs:
                        failures += not run_in_client(argv)
                finally:
                    cap.stop()
                print(f"recorded benign {stack}: {len(argvs)} sessions", flush=True)
        print(f"failed sessions: {failures}")
    finally:
        procs.stop_all()
        del_netns()
        shutil.rmtree(work, ignore_errors=True)
        for d in Path("/var/tmp").glob("tlsi-chromium-*"):
            shutil.rmtree(d, ignore_errors=True)
    import corpus
    n = corpus.derive(out, ROOT / "benchmarks/data/tlsintls-flows.jsonl.gz")
    print(f"derived {n} flows into benchmarks/data/tlsintls-flows.jsonl.gz")
    return 0


# -- helpers run inside the namespaces --------------------------------------------------

def proxy_main(args) -> int:
    """An HTTP CONNECT proxy (plain, or over TLS: an HTTPS forward proxy)."""
    import asyncio
    import ssl

    async def pipe(r, w):
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def handle(r, w):
        try:
            head = await r.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            host, port = target.rsplit(":", 1)
            ur, uw = await asyncio.open_connection(host, int(port))
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            w.close()
            return
        w.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await w.drain()
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    async def main():
        ctx = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
        host, port = args.listen.rsplit(":", 1)
        srv = await asyncio.start_server(handle, host, int(port), ssl=ctx)
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())
    return 0


class _TLSOver:
    """A TLS session over another (an SSLSocket): the inner TLS of an HTTPS proxy."""

    def __init__(self, outer, ctx):
        import ssl
        self.ssl = ssl
        self.outer, self.inc, self.out = outer, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out)
        self._io(self.obj.do_handshake)

    def _flush(self):
        if data := self.out.read():
            self.outer.sendall(data)

    def _io(self, fn, *a):
        while True:
            try:
                result = fn(*a)
                self._flush()
                return result
            except self.ssl.SSLWantReadError:
                self._flush()
                data = self.outer.recv(65536)
                if not data:
                    raise ConnectionError("proxy closed")
                self.inc.write(data)

    def sendall(self, data):
        self._io(self.obj.write, data)

    def recv(self, n):
        try:
            return self._io(self.obj.read, n)
        except self.ssl.SSLZeroReturnError:
            return b""


def _read_head(sock, chunk_size: int) -> bytes | None:
    """Bytes read until an HTTP head's end (what follows it included);
    None if the peer closes first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(chunk_size)
        if not chunk:
            return None
        buf += chunk
    return buf


def pyfetch_main(args) -> int:
    """Python's ssl as an inner (or plain) HTTPS client: HTTP/1.1 keep-alive."""
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = args.host, args.port
    if args.proxy:
        scheme, rest = args.proxy.split("://", 1)
        ph, pp = rest.rsplit(":", 1)
        sock = socket.create_connection((ph, int(pp)), timeout=30)
        if scheme == "socks5":
            sock.sendall(b"\x05\x01\x00")
            sock.recv(2)
            sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + port.to_bytes(2, "big"))
            sock.recv(10)
            conn = ctx.wrap_socket(sock)
        else:
            carrier = sock
            if scheme == "https":
                carrier = ctx.wrap_socket(sock)
            carrier.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            if _read_head(carrier, 4096) is None:
                return 1
            conn = _TLSOver(carrier, ctx) if scheme == "https" else ctx.wrap_socket(carrier)
    else:
        conn = ctx.wrap_socket(socket.create_connection((host, port), timeout=30))
    for i in range(args.requests):
        if args.upload:
            body = os.urandom(args.upload)
            conn.sendall(f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                         + body)
        else:
            conn.sendall(f"GET /bytes/{args.size}?r={i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        buf = _read_head(conn, 65536)
        if buf is None:
            return 1
        head, body = buf.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return 1
            body += chunk
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    rec = sub.add_parser("record")
    rec.add_argument("--out", default="/var/tmp/tlsintls-corpus")
    rec.add_argument("--runs", type=int, default=12, help="sessions per (configuration, stack); Chromium a third")
    rec.add_argument("--benign", type=float, default=1.0, help="scale of the benign sessions (1.0: about 2,900)")
    rec.add_argument("--no-tunnels", dest="tunnels", action="store_false")
    rec.add_argument("--only", help="configurations to record (comma-separated; default all)")
    rec.add_argument("--seed", type=int, default=27)
    rec.add_argument("--tag", help="added to the benign captures' names (a further batch beside the first)")
    rec.add_argument("--inner-web", choices=("go", "tunnelwall"), default="go",
                     help="the inner server of the tunnel sessions: the corpus's Go server (443) or the testbed's "
                          "own web server (4443; captures named ...--tunnelwall.pcap)")
    px = sub.add_parser("proxy")
    px.add_argument("--listen", required=True)
    px.add_argument("--cert")
    px.add_argument("--key")
    pf = sub.add_parser("pyfetch")
    pf.add_argument("--proxy")
    pf.add_argument("--size", type=int, default=1000)
    pf.add_argument("--requests", type=int, default=1)
    pf.add_argument("--upload", type=int, default=0)
    pf.add_argument("--tls12", action="store_true")
    pf.add_argument("--port", type=int, default=443)
    pf.add_argument("host")
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("record", "proxy", "pyfetch", "-h", "--help"):
        argv = ["record", *argv]
    args = ap.parse_args(argv)
    if args.cmd == "proxy":
        return proxy_main(args)
    if args.cmd == "pyfetch":
        try:
            return pyfetch_main(args)
        except OSError as exc:
            print(f"pyfetch: {exc}", file=sys.stderr)
            return 1
    return record(args)


if __name__ == "__main__":
    sys.exit(main())
