"""Reading and writing captures: classic pcap (what tcpdump writes) and
pcapng (what dumpcap and Wireshark write by default; ``tunnelwall capture``
writes it too).

Link types: Ethernet (1), raw IP (101, 228 IPv4, 229 IPv6), Linux cooked SLL
(113) and SLL2 (276, what ``tcpdump -i any`` writes). Non-Ethernet records
are given a synthetic Ethernet header so the engine sees one frame format.
A truncated last record ends the file (``on_truncated`` hears of it); a bad
header is an error naming the file. pcapng is read block by block (section header, interface
descriptions with their timestamp resolution, enhanced and simple packet
blocks; other blocks are skipped), written as one section with one
interface (Ethernet, microseconds).
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Callable, Iterator

from tunnelwall.base.errors import TunnelwallError

ETHERNET, RAW, RAW_IPV4, RAW_IPV6, SLL, SLL2 = 1, 101, 228, 229, 113, 276
LINKTYPES = (ETHERNET, RAW, RAW_IPV4, RAW_IPV6, SLL, SLL2)
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
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
    if magic == PCAPNG_MAGIC:
        return data, "pcapng", 0.0, None
    formats = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
    if magic not in formats:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()})")
    endian, tick = formats[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in LINKTYPES:
        raise PcapError(f"{path}: link type {linktype} is not supported (Ethernet, raw IP, Linux SLL/SLL2)")
    return data, endian, tick, linktype


def frames(path: str | Path, on_truncated: Callable[[str], None] | None = None) -> Iterator[tuple[float, bytes]]:
    """Yield (timestamp, Ethernet frame) for every packet of a pcap or pcapng
    file. A last record cut short (a capture killed mid-write) ends the
    file; *on_truncated* is told so in one line."""
    data, endian, tick, linktype = open_pcap(path)
    say = on_truncated or (lambda line: None)
    if endian == "pcapng":
        yield from _pcapng_frames(path, data, say)
        return
    record = struct.Struct(endian + "IIII")
    offset, end, number = 24, len(data), 0
    while offset + 16 <= end:
        sec, frac, caplen, _orig = record.unpack_from(data, offset)
        start = offset + 16
        offset = start + caplen
        if offset > end:
            say(f"frame {number + 1} is cut short ({end - start} of {caplen} bytes; the capture was probably "
                f"stopped while writing it); it was not read")
            return
        number += 1
        yield sec + frac * tick, to_ethernet(linktype, data[start:offset])
    if offset < end:
        say(f"frame {number + 1} is cut short in its record header ({end - offset} of 16 bytes); it was not read")


def to_ethernet(linktype: int, frame: bytes) -> bytes:
    """A record of any supported link type as an Ethernet frame."""
    if linktype == ETHERNET:
        return frame
    if linktype == SLL:
        return _FAKE_ETH + frame[14:16] + frame[16:] if len(frame) >= 16 else b""
    if linktype == SLL2:
        return _FAKE_ETH + frame[0:2] + frame[20:] if len(frame) >= 20 else b""
    # Raw IP: the version nibble says which.
    return _FAKE_ETH + (b"\x86\xdd" if frame[:1] and frame[0] >> 4 == 6 else b"\x08\x00") + frame


def _pcapng_frames(path, data, say: Callable[[str], None]) -> Iterator[tuple[float, bytes]]:
    """pcapng (IETF draft-ietf-opsawg-pcapng): sections of blocks, each
    ``type, total length, body, total length``; byte order per section."""
    offset, end, number = 0, len(data), 0
    endian = "<"
    interfaces: list[tuple[int, float]] = []       # (link type, seconds per timestamp unit)
    while offset < end:
        if offset + 12 > end:
            say(f"the block after frame {number} is cut short ({end - offset} bytes); it was not read")
            return
        if data[offset:offset + 4] == PCAPNG_MAGIC:
            bom = data[offset + 8:offset + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise PcapError(f"{path}: pcapng section at byte {offset} has no byte-order magic")
            interfaces = []
        btype, blen = struct.unpack_from(endian + "II", data, offset)
        if blen < 12 or blen % 4 or offset + blen > end:
            say(f"the block after frame {number} is cut short ({end - offset} of {blen} bytes; the capture "
                f"was probably stopped while writing it); it was not read")
            return
        body = data[offset + 8:offset + blen - 4]
        offset += blen
        if btype == 1 and len(body) >= 8:              # interface description
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            interfaces.append((linktype, _tsresol(body[8:], endian)))
        elif btype == 6 and len(body) >= 20:           # enhanced packet
            iface, high, low, caplen = struct.unpack_from(endian + "IIII", body, 0)
            if iface >= len(interfaces) or 20 + caplen > len(body):
                continue
            linktype, unit = interfaces[iface]
            if linktype not in LINKTYPES:
                raise PcapError(f"{path}: pcapng interface {iface} has link type {linktype}, which is not supported")
            number += 1
            yield ((high << 32) | low) * unit, to_ethernet(linktype, bytes(body[20:20 + caplen]))
        elif btype == 3 and len(body) >= 4 and interfaces:   # simple packet: no timestamp
            linktype, _unit = interfaces[0]
            caplen = min(struct.unpack_from(endian + "I", body, 0)[0], len(body) - 4)
            number += 1
            yield 0.0, to_ethernet(linktype, bytes(body[4:4 + caplen]))


def _tsresol(options: bytes, endian: str) -> float:
    """Seconds per timestamp unit from an interface's if_tsresol option (default microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[pos + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
        pos += 4 + length + (-length % 4)
    return 1e-6


class _FileWriter:
    fh = None

    def close(self) -> None:
        self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Writer(_FileWriter):
    """Minimal pcap writer (Ethernet, microseconds), for tests and benchmarks."""

    def __init__(self, path: str | Path):
        self.fh = open(path, "wb")
        self.fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, ETHERNET))

    def write(self, ts: float, frame: bytes) -> None:
        sec = int(ts)
        self.fh.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
        self.fh.write(frame)


class PcapngWriter(_FileWriter):
    """pcapng with one section and one Ethernet interface, microsecond
    timestamps: what Wireshark opens by default."""

    def __init__(self, path: str | Path, snaplen: int = 262144, name: str = ""):
        self.fh = open(path, "wb")
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        self._block(0x0A0D0D0A, shb)
        options = b""
        if name:
            raw = name.encode()[:200]
            options += struct.pack("<HH", 2, len(raw)) + raw + b"\x00" * (-len(raw) % 4)
        options += struct.pack("<HHB3x", 9, 1, 6) + struct.pack("<HH", 0, 0)     # if_tsresol = 10^-6
        self._block(1, struct.pack("<HHI", ETHERNET, 0, snaplen) + options)

    def _block(self, btype: int, body: bytes) -> None:
        body += b"\x00" * (-len(body) % 4)
        length = 12 + len(body)
        self.fh.write(struct.pack("<II", btype, length) + body + struct.pack("<I", length))

    def write(self, ts: float, frame: bytes) -> None:
        units = int(round(ts * 1e6))
        self._block(6, struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)) + frame)
        self.fh.flush()
