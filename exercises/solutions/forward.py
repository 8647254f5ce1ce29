"""A plain TCP forwarder: ``python forward.py LISTEN_HOST:PORT TARGET_HOST:PORT``.

The wrong solution to the forwarding exercises: it ignores the censor and
connects to the (blocked) target directly."""

import socket
import sys
import threading


def pipe(src, dst):
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    lhost, lport = sys.argv[1].rsplit(":", 1)
    thost, tport = sys.argv[2].rsplit(":", 1)
    server = socket.create_server((lhost, int(lport)))
    while True:
        conn, _ = server.accept()
        try:
            upstream = socket.create_connection((thost, int(tport)), timeout=5)
        except OSError:
            conn.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()


if __name__ == "__main__":
    main()
