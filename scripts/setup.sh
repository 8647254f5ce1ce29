#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine for tunnelwall (run as root).
#  - apt packages: Mininet, Open vSwitch, the circumvention tools, capture tools
#  - .venv on Debian's python3 with --system-site-packages (mininet and
#    os-ken come from Debian), tunnelwall installed editable with test extras
#  - the Go programs pinned in tunnelwall/tools/go-tools.txt (scripts/go-tools.sh)
#  - Open vSwitch started without its kernel module (userspace datapath)
# Re-running it checks and skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES=(
  mininet openvswitch-switch python3-os-ken python3-venv python3-pip python3-yaml python3-cryptography
  iproute2 iputils-ping ethtool tcpdump iperf3 curl openssl procps psmisc nftables
  openvpn wireguard-tools wireguard-go shadowsocks-libev obfs4proxy stunnel4 tor trojan simple-obfs kcptun
  shadowsocks-v2ray-plugin iodine strongswan-charon strongswan-swanctl libcharon-extra-plugins
  ocserv openconnect softether-vpnserver softether-vpnclient ppp pptpd pptp-linux xl2tpd
  openssh-client openssh-server v2ray chromium docker.io debootstrap python3-matplotlib
  gcc python3-dev libndpi-bin tmux coturn
)

if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root" >&2; exit 1; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these from their packages on some machines; tunnelwall starts
# its own instances inside namespaces and needs none running on the host.
for svc in openvpn shadowsocks-libev stunnel4 tor ocserv softether-vpnserver softether-vpnclient iodined \
           pptpd xl2tpd strongswan-starter coturn; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

# Python environment: Debian's python3 (Mininet's module lives in its dist-packages).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mininet.net' 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.tunnelwall-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi

# The Go programs of the newer tools (tunnelwall/tools/go-tools.txt), built
# from their modules into /var/cache/tunnelwall/go; without a recent enough Go
# this says so in one line and those tools are reported unsupported.
bash scripts/go-tools.sh

# Open vSwitch, userspace datapath: ovs-ctl skips modprobe when the module is absent.
export PATH=$PATH:/usr/share/openvswitch/scripts
if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
  ovs-ctl start --system-id=random >/dev/null 2>&1 || ovs-ctl start --system-id=random
fi
ovs-vsctl --timeout=5 show >/dev/null
echo "setup: ok ($(.venv/bin/tunnelwall --version); $(ovs-vsctl --version | head -1))"
