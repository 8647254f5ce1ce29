"""Capture the real tor client's ClientHellos on loopback, for the Tor
classifier's fixtures (tests/fixtures/tor/) and its list of tor builds
(``TOR_HELLOS`` in middlebox/classifiers/tls.py).

tor is started as a client whose only bridge is a plain TCP listener on
127.0.0.1: it connects there and sends its TLS ClientHello, which is kept;
nothing else is contacted (UseBridges: no directory authority, no relay).
Each connection draws a new random name. Usage:

    python3 scripts/capture_tor_hello.py OUTDIR [COUNT]

writes OUTDIR/tor-<version>-client-hello-N.bin and prints the cipher
suites and groups to put into TOR_HELLOS when a new tor build differs.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def tor_version() -> str:
    out = subprocess.run(["tor", "--version"], capture_output=True, text=True, check=True).stdout
    return re.search(r"Tor version ([0-9.]+)", out).group(1).rstrip(".")


def read_record(conn: socket.socket) -> bytes:
    """The first TLS record the client sends (its ClientHello)."""
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def main(outdir: str, count: int = 3) -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    version = tor_version()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    port = listener.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="tor-hello-")
    tor = subprocess.Popen(["tor", "--DataDirectory", data_dir, "--SocksPort", "0", "--UseBridges", "1",
                            "--Bridge", f"127.0.0.1:{port}", "--Log", "err stderr"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hellos = []
    try:
        while len(hellos) < count:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                hellos.append(read_record(conn))
    finally:
        tor.terminate()
        tor.wait(timeout=10)
        listener.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tunnelwall.middlebox.classifiers.tls import parse_client_hello
    for i, raw in enumerate(hellos, start=1):
        path = out / f"tor-{version}-client-hello-{i}.bin"
        path.write_bytes(raw)
        hello = parse_client_hello(raw)
        print(f"{path}: sni {hello['sni']}, alpn {hello['alpn']}")
        print(f"  ciphers ({', '.join(f'0x{c:04X}' for c in hello['ciphers'])})  groups {tuple(hello['groups'])}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3))
