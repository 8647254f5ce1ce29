#!/bin/sh
# A minimal vpnc-script for openconnect: address, MTU and the tunnel's own
# network on the interface, nothing else (no resolv.conf, no default route,
# nothing in /etc changes). openconnect passes the settings in the
# environment (reason, TUNDEV, INTERNAL_IP4_*).
case "$reason" in
  pre-init) ;;
  connect)
    ip link set dev "$TUNDEV" up mtu "${INTERNAL_IP4_MTU:-1300}"
    ip addr replace "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
    ip route replace "$INTERNAL_IP4_NETADDR/${INTERNAL_IP4_NETMASKLEN:-24}" dev "$TUNDEV"
    ;;
  disconnect)
    ip link set dev "$TUNDEV" down 2>/dev/null || true
    ;;
esac
exit 0
