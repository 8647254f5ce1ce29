"""Forged packets (RST, DNS answer) checked field by field with scapy."""

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from tunnelwall.middlebox.inject import dns_answer, tcp_resets
from tunnelwall.middlebox.packet import parse_ethernet

C_MAC, S_MAC = "02:00:00:00:00:0c", "02:00:00:00:00:05"


def test_rst_pair_has_the_right_sequence_numbers_and_valid_checksums():
    trigger = bytes(Ether(src=C_MAC, dst=S_MAC) / IP(src="10.0.0.11", dst="198.18.0.10") /
                    TCP(sport=40000, dport=443, flags="PA", seq=1000, ack=5000) / (b"x" * 100))
    to_client, server_at_start, to_server = (Ether(f) for f in tcp_resets(parse_ethernet(trigger)))
    for pkt in (to_client, server_at_start, to_server):
        assert pkt[TCP].flags == "RA"
        ip_sum, tcp_sum = pkt[IP].chksum, pkt[TCP].chksum
        del pkt[IP].chksum, pkt[TCP].chksum
        rebuilt = Ether(bytes(pkt))
        assert (rebuilt[IP].chksum, rebuilt[TCP].chksum) == (ip_sum, tcp_sum)
    assert (to_client[IP].src, to_client[IP].dst, to_client[TCP].sport, to_client[TCP].dport) == \
        ("198.18.0.10", "10.0.0.11", 443, 40000)
    assert to_client[Ether].dst == C_MAC and to_client[Ether].src == S_MAC
    assert to_client[TCP].seq == 5000 and to_client[TCP].ack == 1100
    assert to_server[TCP].seq == 1100 and to_server[IP].dst == "198.18.0.10"
    # The server may not have the trigger (inline, it was held back): a RST at its first byte too.
    assert server_at_start[TCP].seq == 1000 and server_at_start[IP].dst == "198.18.0.10"


def test_forged_dns_answer():
    query = bytes(Ether(src=C_MAC, dst=S_MAC) / IP(src="10.0.0.11", dst="198.18.0.53") /
                  UDP(sport=5353, dport=53) / DNS(id=0x4242, rd=1, qd=DNSQR(qname="www.twitter.com")))
    answer = Ether(dns_answer(parse_ethernet(query), "198.19.255.254"))
    assert answer[IP].src == "198.18.0.53" and answer[UDP].dport == 5353
    dns = answer[DNS]
    assert dns.id == 0x4242 and dns.qr == 1 and dns.rd == 1 and dns.ancount == 1
    assert dns.an.rrname == b"www.twitter.com." and dns.an.rdata == "198.19.255.254"
    udp_sum = answer[UDP].chksum
    del answer[UDP].chksum, answer[IP].chksum
    assert Ether(bytes(answer))[UDP].chksum == udp_sum


def test_no_forgery_for_non_queries():
    reply = bytes(Ether() / IP(src="198.18.0.53", dst="10.0.0.11") / UDP(sport=53, dport=5353) /
                  DNS(qr=1, qd=DNSQR(qname="a.example")))
    assert dns_answer(parse_ethernet(reply), "198.19.255.254") is None
    assert tcp_resets(parse_ethernet(reply)) == []
