"""Reading and writing classic pcap files (what tcpdump writes by default).

Link types: Ethernet (1), raw IPv4 (101, 228), Linux cooked SLL (113) and
SLL2 (276, what ``tcpdump -i any`` writes). Non-Ethernet records are given
a synthetic Ethernet header so the engine sees one frame format. A truncated
last record ends the file quietly; a bad header is an error naming the file.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Iterator

from tunnelwall.base.errors import TunnelwallError

ETHERNET, RAW, RAW_IPV4, SLL, SLL2 = 1, 101, 228, 113, 276
_FAKE_ETH = b"\x00" * 12


class PcapError(TunnelwallError):
    pass


def open_pcap(path: str | Path):
    """(data, endian, tick, linktype) of a pcap file; data is memory-mapped."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as err:
        raise PcapError(f"{path}: cannot read: {err.strerror}") from None
    if len(data) < 24:
        raise PcapError(f"{path}: not a pcap file (too short)")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        raise PcapError(f"{path}: pcapng is not supported; convert with 'tcpdump -r {path} -w out.pcap'")
    formats = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
    if magic not in formats:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()})")
    endian, tick = formats[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in (ETHERNET, RAW, RAW_IPV4, SLL, SLL2):
        raise PcapError(f"{path}: link type {linktype} is not supported (Ethernet, raw IP, Linux SLL/SLL2)")
    return data, endian, tick, linktype


def frames(path: str | Path) -> Iterator[tuple[float, bytes]]:
    """Yield (timestamp, Ethernet frame) for every record of a pcap file."""
    data, endian, tick, linktype = open_pcap(path)
    record = struct.Struct(endian + "IIII")
    offset, end = 24, len(data)
    while offset + 16 <= end:
        sec, frac, caplen, _orig = record.unpack_from(data, offset)
        start = offset + 16
        offset = start + caplen
        if offset > end:
            return  # truncated last record (capture killed mid-write)
        frame = data[start:offset]
        if linktype == SLL:
            frame = _FAKE_ETH + frame[14:16] + frame[16:] if len(frame) >= 16 else b""
        elif linktype == SLL2:
            frame = _FAKE_ETH + frame[0:2] + frame[20:] if len(frame) >= 20 else b""
        elif linktype != ETHERNET:
            frame = _FAKE_ETH + b"\x08\x00" + frame
        yield sec + frac * tick, frame


class Writer:
    """Minimal pcap writer (Ethernet, microseconds), for tests and benchmarks."""

    def __init__(self, path: str | Path):
        self.fh = open(path, "wb")
        self.fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, ETHERNET))

    def write(self, ts: float, frame: bytes) -> None:
        sec = int(ts)
        self.fh.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
        self.fh.write(frame)

    def close(self) -> None:
        self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
