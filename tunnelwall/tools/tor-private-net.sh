#!/bin/sh
# tor-private-net.sh make DIR IP [BRIDGE]   write a private Tor network into DIR
# tor-private-net.sh run DIR                 run its relays (foreground; they end with this process group)
# tor-private-net.sh client DIR [obfs4 IP]   a client of it (through the bridge at IP with obfs4)
# tor-private-net.sh client DIR snowflake IP BROKER_URL STUN_URL
#                                            a client through the Snowflake bridge at IP
# tor-private-net.sh client DIR webtunnel IP  a client through the WebTunnel bridge at IP
#
# A Tor test network in Tor's TestingTorNetwork mode, all on one address of
# the outside server: three directory authorities (a1-a3, also relays), two
# middle relays (r1, r2) and two exits (x1, x2: an exit builds its own test
# circuits through another exit), with the voting intervals cut to
# seconds and the download retry delays to 0 (as Tor's own test networks,
# chutney, do) so a consensus exists and every relay has it within seconds. With BRIDGE=obfs4, a
# bridge (b1: BridgeRelay, obfs4 through obfs4proxy) as well; its bridge line
# appears in DIR/b1/pt_state/obfs4_bridgeline.txt once it runs. With
# BRIDGE=snowflake, the bridge's transport is snowflake-server (WebSocket on
# TCP 8080, without TLS: only Snowflake proxies reach it, outside the
# censor; the public bridges use wss://), and its fingerprint is in
# DIR/b1/fingerprint for the broker's bridge list.
# With BRIDGE=webtunnel, the bridge's transport is webtunnel-server (HTTP
# Upgrade to a WebSocket-like stream at a secret path, plain HTTP on
# 127.0.0.1:15000) behind stunnel, which terminates TLS on TCP 8443 with a
# certificate for bridge.example made here (DIR/webtunnel.crt; the client
# trusts it through SSL_CERT_FILE). A public WebTunnel bridge sits behind
# nginx on 443 beside a real website; the vpn server's 443 is its HTTPS
# service here, and stunnel forwards every path to the bridge.
# DIR/client.torrc is a client for this network (SOCKS on 127.0.0.1:9050);
# DIR/dirauths holds the DirAuthority lines. Keys are made here with
# tor-gencert and tor --list-fingerprint: nothing leaves DIR.
#
# Voting: the first consensus follows TestingV3AuthInitial*, every later
# one V3Auth*; both are 10 s here. With only the initial schedule set, the
# authority that made the first consensus moved to the default 5-minute
# schedule and rejected the others' next votes ("Bad valid-after time"),
# so no second consensus came and relays that missed the first never got
# a usable one. An initial interval of 5 s is unstable too (chutney's
# templates say so and use 10 or 20).
set -eu
cmd=$1; D=$2
RELAYS="a1 a2 a3 r1 r2 x1 x2"

common() {   # common NAME ORPORT DIRPORT
cat <<CONF
TestingTorNetwork 1
DataDirectory $D/$1
RunAsDaemon 0
Nickname $1
ShutdownWaitLength 0
Log notice file $D/$1/notice.log
SafeLogging 0
AssumeReachable 1
Address $IP
OrPort $2
SocksPort 0
ContactInfo $1@tunnelwall.test
TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
V3AuthNIntervalsValid 2
TestingDirAuthVoteGuard *
TestingDirAuthVoteExit x1,x2
TestingDirAuthVoteHSDir *
TestingServerDownloadInitialDelay 0
TestingClientDownloadInitialDelay 0
TestingServerConsensusDownloadInitialDelay 0
TestingClientConsensusDownloadInitialDelay 0
TestingBridgeDownloadInitialDelay 0
TestingBridgeBootstrapDownloadInitialDelay 0
TestingDirConnectionMaxStall 5
CONF
[ "$3" = 0 ] || echo "DirPort $3"
}

if [ "$cmd" = client ]; then    # client DIR [obfs4|snowflake|webtunnel BRIDGE_IP [BROKER_URL ICE]]: a client, in the foreground
  torrc="$D/client.torrc"
  fp=$(cut -d' ' -f2 "$D/b1/fingerprint" 2>/dev/null || true)
  through_bridge() {    # through_bridge TRANSPORT PLUGIN-COMMAND BRIDGE-ADDRESS-AND-ARGS
    torrc="$D/client-$1.torrc"
    { cat "$D/client.torrc"; echo "UseBridges 1"
      echo "ClientTransportPlugin $1 exec $2"
      echo "Bridge $1 $3"; } > "$torrc"
  }
  case "${3:-}" in
    obfs4)
      # Through the private network's obfs4 bridge: its line, with the cert obfs4proxy made.
      cert=$(sed -n 's/.*cert=\([^ ]*\).*/\1/p' "$D/b1/pt_state/obfs4_bridgeline.txt" | tail -1)
      through_bridge obfs4 "$(command -v obfs4proxy)" "$4:9444 $fp cert=$cert iat-mode=0" ;;
    snowflake)
      # Through the Snowflake bridge: the address in the Bridge line is never
      # dialled (snowflake-client reaches a proxy the broker assigns); every
      # URL is given, so no default (public) broker or STUN server is tried.
      # -keep-local-addresses: the client's address is in 10/8 (no NAT at the
      # ISP here), which the client would otherwise leave out of its ICE offer.
      through_bridge snowflake \
        "$(command -v snowflake-client) -keep-local-addresses -unsafe-logging -log $D/snowflake-client.log" \
        "$4:8080 $fp fingerprint=$fp url=$5 ice=$6" ;;
    webtunnel)
      # The URL names the server by address (the testbed's DNS does not know
      # bridge.example); servername= puts the name in the SNI and the check.
      through_bridge webtunnel "$(command -v webtunnel-client)" \
        "$4:8443 $fp url=https://$4:8443/$(cat "$D/webtunnel.path") servername=bridge.example" ;;
  esac
  exec tor -f "$torrc"
fi

if [ "$cmd" = run ]; then
  relays=$(cat "$D/relays")
  for r in $relays; do tor -f "$D/$r/torrc" > "$D/$r/stdout.log" 2>&1 & done
  [ -f "$D/stunnel.conf" ] && stunnel "$D/stunnel.conf" > "$D/stunnel.log" 2>&1 &
  trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
  wait
  exit 0
fi

IP=$3; BRIDGE=${4:-}
mkdir -p "$D"; cd "$D"
: > dirauths
n=0
for a in a1 a2 a3; do
  n=$((n+1)); mkdir -p $a/keys; chmod 700 $a
  echo "" | tor-gencert --create-identity-key -m 12 -a "$IP:$((7000+n))" -i $a/keys/authority_identity_key \
    -s $a/keys/authority_signing_key -c $a/keys/authority_certificate --passphrase-fd 0 >/dev/null 2>&1
  common $a $((5000+n)) $((7000+n)) > $a/torrc
  # The relay identity exists once tor has run with the torrc; --list-fingerprint makes it and prints it.
  fp=$(tor --quiet --list-fingerprint -f $a/torrc \
       --DirAuthority "x orport=1 no-v2 v3ident=$(printf '0%.0s' $(seq 40)) 127.0.0.1:1 $(printf '0%.0s' $(seq 40))" \
       | tail -1 | cut -d' ' -f2- | tr -d ' ')
  v3=$(awk '/^fingerprint/ {print $2}' $a/keys/authority_certificate)
  echo "DirAuthority $a orport=$((5000+n)) no-v2 v3ident=$v3 $IP:$((7000+n)) $fp" >> dirauths
done
n=0
for a in a1 a2 a3; do
  n=$((n+1))
  { common $a $((5000+n)) $((7000+n)); cat dirauths
    printf 'AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\nExitPolicy reject *:*\n'; } > $a/torrc
done
n=10
for r in r1 r2 x1 x2; do
  n=$((n+1)); mkdir -p $r; chmod 700 $r
  { common $r $((5000+n)) $((7000+n)); cat dirauths
    if [ $r = x1 ] || [ $r = x2 ]; then printf 'ExitRelay 1\nExitPolicy accept *:*\nExitPolicyRejectPrivate 0\n'
    else echo "ExitPolicy reject *:*"; fi; } > $r/torrc
done
relays=$RELAYS
bridge() {    # bridge TRANSPORT PLUGIN-COMMAND LISTEN-ADDRESS [OPTIONS]: b1, a bridge behind that transport
  mkdir -p b1; chmod 700 b1
  { common b1 5021 0; cat dirauths
    printf 'BridgeRelay 1\nPublishServerDescriptor 0\nExitPolicy reject *:*\nExtORPort auto\n'
    echo "ServerTransportPlugin $1 exec $2"
    echo "ServerTransportListenAddr $1 $3"
    [ -z "${4:-}" ] || echo "ServerTransportOptions $1 $4"; } > b1/torrc
  relays="$relays b1"
}
fingerprint() { tor --quiet --list-fingerprint -f b1/torrc | tail -1 | tr -d ' ' | sed 's/^b1/b1 /' > b1/fingerprint; }
case "$BRIDGE" in
  obfs4) bridge obfs4 "$(command -v obfs4proxy)" 0.0.0.0:9444 ;;
  snowflake)
    bridge snowflake "$(command -v snowflake-server) -disable-tls -unsafe-logging -log $D/b1/snowflake-server.log" 0.0.0.0:8080
    fingerprint ;;
  webtunnel)
    path=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n'); echo "$path" > webtunnel.path
    bridge webtunnel "$(command -v webtunnel-server)" 127.0.0.1:15000 "url=https://bridge.example/$path"
    fingerprint
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=bridge.example" \
      -addext "subjectAltName=DNS:bridge.example" -keyout webtunnel.key -out webtunnel.crt 2>/dev/null
    printf 'foreground = yes\npid =\n[webtunnel]\naccept = 8443\nconnect = 127.0.0.1:15000\ncert = %s/webtunnel.crt\nkey = %s/webtunnel.key\n' \
      "$D" "$D" > stunnel.conf ;;
esac
echo "$relays" > relays
mkdir -p client; chmod 700 client
{ printf 'TestingTorNetwork 1\nDataDirectory %s/client\nSocksPort 127.0.0.1:9050\nLog notice stdout\nSafeLogging 0\n' "$D"
  printf 'TestingClientDownloadInitialDelay 0\nTestingClientConsensusDownloadInitialDelay 0\n'
  printf 'TestingBridgeDownloadInitialDelay 0\nTestingBridgeBootstrapDownloadInitialDelay 0\n'
  cat dirauths; } > client.torrc
