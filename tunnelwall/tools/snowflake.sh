#!/bin/sh
# snowflake.sh make DIR SERVER_IP        a private Tor network with a Snowflake bridge, the broker's
#                                        certificate and bridge list (on the host, before anything runs)
# snowflake.sh server DIR SERVER_IP      the outside infrastructure (foreground; ends with its process group):
#                                        the Tor network and its Snowflake bridge, the broker (HTTPS,
#                                        TCP 8443) and the STUN server (coturn, UDP 3478)
# snowflake.sh proxy DIR SERVER_IP       a volunteer's standalone proxy (foreground)
#
# Snowflake as a whole, inside the testbed. The client (tor with
# snowflake-client) asks the broker for a proxy over HTTPS; the broker hands
# its WebRTC offer to a proxy that polls it; client and proxy then meet over
# ICE (each learns its address from the STUN server), DTLS and SCTP; the
# proxy relays the client's stream over WebSocket to snowflake-server, which
# hands it to the Tor bridge b1. The censor, between the client and the
# outside, sees three flows: HTTPS to the broker, STUN, and the DTLS/UDP
# flow to the proxy.
#
# What differs from the public deployment, and why:
#  - the client reaches the broker by plain HTTPS at the broker's address
#    (the public clients use domain fronting through a CDN or an AMP cache;
#    the testbed has no CDN);
#  - the broker's certificate is made here for its IP address, and both the
#    client and the proxy trust it through SSL_CERT_FILE (Go reads it);
#  - the proxy reaches snowflake-server over ws:// (public: wss://); that
#    hop is outside the censor either way;
#  - the proxy reports an unknown NAT type (there is no probetest server),
#    which the broker's matching handles (a client whose own NAT type is
#    unknown is matched with such proxies).
# Every URL (broker, STUN, relay, NAT probe) is passed explicitly, so no
# component falls back to the public defaults (snowflake-broker.torproject.net,
# stun.l.google.com, ...).
set -eu
cmd=$1; D=$2; IP=$3
here=$(cd "$(dirname "$0")" && pwd)
BROKER="https://$IP:8443/"
STUN="stun:$IP:3478"

case "$cmd" in
make)
  sh "$here/tor-private-net.sh" make "$D/net" "$IP" snowflake
  # The broker's TLS certificate, for its IP address (the client dials it by address).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=snowflake-broker.tunnelwall.test" -addext "subjectAltName=IP:$IP" \
    -keyout "$D/broker.key" -out "$D/broker.crt" 2>/dev/null
  fp=$(cut -d' ' -f2 "$D/net/b1/fingerprint")
  # The broker's bridge list: the one bridge, and the WebSocket address proxies relay to.
  printf '{"displayName":"b1", "webSocketAddress":"ws://%s:8080/", "fingerprint":"%s"}\n' "$IP" "$fp" > "$D/bridge-list.txt"
  ;;
server)
  sh "$here/tor-private-net.sh" run "$D/net" &
  snowflake-broker -addr ":8443" -cert "$D/broker.crt" -key "$D/broker.key" -disable-geoip \
    -bridge-list-path "$D/bridge-list.txt" -allowed-relay-pattern "^$IP\$" -default-relay-pattern "^$IP\$" \
    -unsafe-logging > "$D/broker.log" 2>&1 &
  # STUN only (no TURN relaying, no authentication), one address: Snowflake uses STUN for
  # its server-reflexive candidate.
  turnserver -n --stun-only --listening-ip="$IP" --listening-port=3478 --no-tls --no-dtls --no-cli \
    --log-file=stdout --simple-log --pidfile="$D/turnserver.pid" > "$D/stun.log" 2>&1 &
  trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
  wait
  ;;
proxy)
  export SSL_CERT_FILE="$D/broker.crt"
  # The nodes are dual stack and ICE picks the pair itself: here the DTLS
  # flow goes over IPv6 (the harness counts a helper's flows in both families).
  exec snowflake-proxy -broker "$BROKER" -stun "$STUN" -relay "ws://$IP:8080/" \
    -allowed-relay-hostname-pattern "^$IP\$" -allow-non-tls-relay \
    -nat-probe-server "${BROKER}probe" -poll-interval 2s -disable-stats-logger -unsafe-logging -verbose
  ;;
*)
  echo "snowflake.sh: unknown command '$cmd' (make, server, proxy)" >&2; exit 2 ;;
esac
