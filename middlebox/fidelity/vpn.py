"""VPN fingerprints: OpenVPN's handshake opcodes, WireGuard's initiation."""

from __future__ import annotations

import random

from . import BLOCKED, Vector
from .capture import udp

_rng = random.Random(2022)
# P_CONTROL_HARD_RESET_CLIENT_V2 (opcode 7) and the server's V2 (opcode 8),
# each with a session id and the rest of a control packet's header.
OVPN_CLIENT = bytes([7 << 3]) + _rng.randbytes(13)
OVPN_SERVER = bytes([8 << 3]) + _rng.randbytes(25)
# WireGuard handshake initiation: type 1, three zero bytes, 144 bytes (sender index, ephemeral, ...).
WG_INIT = b"\x01\x00\x00\x00" + _rng.randbytes(144)

XUE = "Xue et al., OpenVPN is Open to VPN Fingerprinting, USENIX Security 2022, sections 6-7"
TSPU = "net4people/bbs reports of broad OpenVPN and WireGuard blocking in Russia (2023-08)"

VECTORS = [
    Vector("vpn", "OpenVPN over UDP: client and server hard resets",
           lambda: udp([OVPN_CLIENT], dport=1194, replies={0: OVPN_SERVER}), BLOCKED, XUE, ("gfw-2025", "gfw-2022")),
    Vector("vpn", "OpenVPN over UDP: client and server hard resets",
           lambda: udp([OVPN_CLIENT], dport=1194, replies={0: OVPN_SERVER}), BLOCKED, TSPU, ("tspu", "tspu-2025")),
    Vector("vpn", "WireGuard handshake initiation", lambda: udp([WG_INIT], dport=51820), BLOCKED, TSPU,
           ("tspu", "tspu-2025")),
]
