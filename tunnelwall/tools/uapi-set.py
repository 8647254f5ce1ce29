"""Configure a userspace WireGuard (wireguard-go, amneziawg-go) over its UAPI
socket: ``python uapi-set.py SOCKET CONFIG``. CONFIG holds the UAPI's
``key=value`` lines (cross-platform userspace implementation protocol,
wireguard.com/xplatform); they are sent after ``set=1`` and the answer must
be ``errno=0``. AmneziaWG's own settings (jc, jmin, jmax, s1, s2, h1-h4)
have no netlink form and its ``awg`` tool is C: the socket is the way in.
Waits up to 10 s for the socket: the daemon makes its TUN device first."""

import socket
import sys
import time


def main(path: str, config: str) -> int:
    body = "".join(line.strip() + "\n" for line in open(config) if line.strip() and not line.startswith("#"))
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            break
        except OSError as err:
            sock.close()
            if time.monotonic() > deadline:
                print(f"uapi-set: cannot connect to {path}: {err}", file=sys.stderr)
                return 1
            time.sleep(0.05)
    with sock:
        sock.sendall(f"set=1\n{body}\n".encode())
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace").strip()
    if text != "errno=0":
        print(f"uapi-set: {path} answered {text!r} to {config}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: uapi-set.py SOCKET CONFIG", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
