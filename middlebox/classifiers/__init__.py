"""One classifier per protocol, all behind :class:`base.Classifier`.

``CLASSIFIERS`` maps a classifier's name (as used under a profile's
``params``) to its class; ``PROTOCOLS`` is the protocol names they can
report (what a rule's ``match.protocol`` may say), each classifier's
``reports`` together.
"""

from __future__ import annotations

from .allowlist import Allowlist
from .base import Classifier, Detection
from .dtls import DTLS
from .fet import FET
from .openvpn import OpenVPN
from .plaintext import DNS, HTTP, SSH
from .quic import QUIC
from .tls import TLS, Tor
from .tlsintls import TLSinTLS
from .vpn import L2TP, PPTP, IPsec
from .wireguard import WireGuard

# Order matters: specific protocol signatures come before the generic FET
# test, so a flow that is both reports the specific one first. TLS's
# identification ends the other classifiers of a flow, except those that look
# inside it (Tor's fingerprint, TLS-in-TLS): a Tor link is TLS too.
CLASSIFIERS: dict[str, type[Classifier]] = {c.name: c for c in (
    OpenVPN, WireGuard, IPsec, L2TP, PPTP, SSH, TLS, Tor, QUIC, DTLS, DNS, HTTP, Allowlist, TLSinTLS, FET)}

# Every protocol a classifier can name: derived from the classifiers themselves.
PROTOCOLS = frozenset().union(*(cls.reports for cls in CLASSIFIERS.values()))


def make_classifiers(params: dict[str, dict], protocols: set[str] | None = None) -> list[Classifier]:
    """Instances for a profile. Policy classifiers (a censor's rule rather
    than a protocol, e.g. Iran's allowlist) run only when a rule asks for
    their protocol; protocol classifiers always run, so every flow gets a
    protocol guess even when no rule acts on it."""
    return [cls(params.get(name)) for name, cls in CLASSIFIERS.items()
            if not cls.policy or (protocols is not None and cls.reports & protocols)]


__all__ = ["CLASSIFIERS", "PROTOCOLS", "Classifier", "Detection", "make_classifiers"]
