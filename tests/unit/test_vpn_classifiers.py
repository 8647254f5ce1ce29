"""OpenVPN, WireGuard, IPsec, L2TP and PPTP from bytes."""

import os
import random
import struct

import pytest
from builders import C2S, DONE, TCP, run

from tunnelwall.middlebox.classifiers.openvpn import OpenVPN, header_bytes
from tunnelwall.middlebox.classifiers.vpn import IPsec, L2TP, PPTP, parse_ike
from tunnelwall.middlebox.classifiers.wireguard import WireGuard, message_type

S2C = 1


def ovpn_udp(opcode: int, key_id: int = 0, body: int = 40) -> bytes:
    return bytes([opcode << 3 | key_id]) + os.urandom(body)


def ovpn_tcp(opcode: int, key_id: int = 0, body: int = 40) -> bytes:
    record = bytes([opcode << 3 | key_id]) + os.urandom(body)
    return struct.pack(">H", len(record)) + record


@pytest.mark.parametrize("client_op,server_op", [(7, 8), (1, 2), (10, 8)])
def test_openvpn_udp_hard_reset_handshake(client_op, server_op):
    result, index = run(OpenVPN(), [(C2S, ovpn_udp(client_op)), (S2C, ovpn_udp(server_op))])
    assert result.protocol == "openvpn" and result.signal == "hard-reset-handshake"
    assert index == 2   # decided on the second packet: the censor can act before the third


def test_openvpn_tcp_uses_byte_two():
    result, index = run(OpenVPN(), [(C2S, ovpn_tcp(7)), (S2C, ovpn_tcp(8))], proto=TCP, sport=1194)
    assert result.signal == "hard-reset-handshake" and index == 2
    assert header_bytes(ovpn_tcp(7) + ovpn_tcp(4), tcp=True) == [7 << 3, 4 << 3]


def test_openvpn_nonzero_key_id_is_not_a_handshake():
    result, _ = run(OpenVPN({"opcode_sequence": False}), [(C2S, ovpn_udp(7, key_id=1)), (S2C, ovpn_udp(8))])
    assert result is DONE


def test_openvpn_xor_patched_caught_by_opcode_sequence():
    key = 0x5A   # XOR scrambling maps each header byte one-to-one
    seq = [(C2S, bytes([(7 << 3) ^ key]) + os.urandom(40)), (S2C, bytes([(8 << 3) ^ key]) + os.urandom(40))]
    rng = random.Random(3)
    for i in range(40):
        op = rng.choice([4, 5, 9, 9, 9])
        seq.append((C2S if i % 2 else S2C, bytes([(op << 3) ^ key]) + os.urandom(60)))
    result, index = run(OpenVPN(), seq)
    assert result.protocol == "openvpn" and result.signal == "opcode-sequence"
    assert index == 20


def test_random_udp_is_not_openvpn():
    rng = random.Random(5)
    seq = [(C2S if i % 2 == 0 else S2C, rng.randbytes(rng.randint(40, 1200))) for i in range(120)]
    result, _ = run(OpenVPN(), seq)
    assert result is DONE


def test_openvpn_ack_filter():
    rng = random.Random(9)
    ack = 54
    sizes = [300, 200, ack, ack, 400, 500, 600, 700, 800, 900]          # bin1: 2 ACK-sized
    sizes += [ack, ack, ack, 1000, 1100, 1200, 1300, 1400, 1500, 900]   # bin2: 3
    sizes += [ack, 1000] * 15                                            # bins 3-5: 5 each
    sizes += [1000] * 9 + [ack] + [1001] * 40                            # later bins: <= 1
    seq = [(C2S, rng.randbytes(n)) for n in sizes[:100]]
    clf = OpenVPN({"handshake": False, "opcode_sequence": False, "ack_filter": True})
    result, index = run(clf, seq, proto=TCP)
    assert result.signal == "ack-pattern" and index == 100


def wg_init() -> bytes:
    return b"\x01\x00\x00\x00" + b"\x11\x22\x33\x44" + os.urandom(140)


def test_wireguard_initiation_exact_size():
    result, index = run(WireGuard(), [(C2S, wg_init())], sport=51820)
    assert result.protocol == "wireguard" and result.signal == "handshake-initiation" and index == 1
    assert message_type(wg_init()[:147]) is None
    assert message_type(b"\x01\x00\x01\x00" + os.urandom(144)) is None     # reserved bytes must be zero


def test_wireguard_response_must_echo_sender_index():
    good = b"\x02\x00\x00\x00" + os.urandom(4) + b"\x11\x22\x33\x44" + os.urandom(80)
    bad = b"\x02\x00\x00\x00" + os.urandom(4) + b"\x99\x99\x99\x99" + os.urandom(80)
    clf = WireGuard({"require_response": True})
    assert run(clf, [(C2S, wg_init()), (S2C, good)])[0].signal == "handshake"
    assert run(clf, [(C2S, wg_init()), (S2C, bad)])[0] is DONE


def test_wireguard_transport_mid_session():
    packets = [(C2S, b"\x04\x00\x00\x00" + os.urandom(4) + struct.pack("<Q", n) + os.urandom(32)) for n in range(5, 10)]
    result, index = run(WireGuard(), packets)
    assert result.signal == "transport" and index == 4
    assert message_type(b"\x04\x00\x00\x00" + os.urandom(36)) is None     # 40 bytes: not a multiple of 16


def ike_v2_sa_init() -> bytes:
    body = os.urandom(60)
    header = os.urandom(8) + b"\x00" * 8 + bytes([33, 0x20, 34, 0x08]) + b"\x00" * 4
    return header + struct.pack(">I", 28 + len(body)) + body


def test_ike_header():
    msg = ike_v2_sa_init()
    assert parse_ike(msg) == {"version": 2, "exchange": 34}
    assert parse_ike(b"\x00\x00\x00\x00" + msg) == {"version": 2, "exchange": 34}    # NAT-T marker
    assert parse_ike(msg[:-1]) is None                                            # length mismatch
    result, _ = run(IPsec(), [(C2S, msg)], sport=500)
    assert result.protocol == "ipsec"


def test_ike_v1_from_scapy():
    from scapy.layers.isakmp import ISAKMP, ISAKMP_payload_SA
    msg = bytes(ISAKMP(init_cookie=os.urandom(8), exch_type=2) / ISAKMP_payload_SA())
    assert parse_ike(msg)["version"] == 1


def test_l2tp_sccrq():
    avp = struct.pack(">HHHH", 0x8008, 0, 0, 1)
    msg = b"\xc8\x02" + struct.pack(">H", 12 + len(avp)) + b"\x00" * 8 + avp
    result, _ = run(L2TP(), [(C2S, msg)], sport=1701)
    assert result.protocol == "l2tp" and result.detail == {"message_type": 1}
    assert run(L2TP(), [(C2S, msg[:-1])], sport=1701)[0] is DONE


def test_pptp_start_control_connection():
    body = struct.pack(">HH", 1, 0) + b"\x01\x00\x00\x00" + b"\x00" * 140
    msg = struct.pack(">HH", 156, 1) + b"\x1a\x2b\x3c\x4d" + body
    assert len(msg) == 156
    result, _ = run(PPTP(), [(C2S, msg)], proto=TCP, sport=1723)
    assert result.protocol == "pptp" and result.signal == "control"
    wrong_magic = msg[:4] + b"\x1a\x2b\x3c\x4e" + msg[8:]
    assert run(PPTP(), [(C2S, wrong_magic)], proto=TCP, sport=1723)[0] is DONE
