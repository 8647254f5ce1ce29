#!/bin/sh
# private-state.sh DIR COMMAND [ARG...]
# Run COMMAND in a mount namespace of its own where /run, /var/lib and
# /var/log are empty tmpfs and DIR/{run,lib,log}/NAME are bound over
# /run/NAME, /var/lib/NAME and /var/log/NAME for each NAME in $PRIVATE_NAMES
# (default: softether). Daemons that keep fixed-path state (SoftEther under
# /var/lib/softether and /run/softether, charon's /run/charon.pid) can then
# run twice on one machine, one per network namespace, and the host's own
# directories are never written. The directory holding DIR (the tool's work
# directory) stays visible at its own path. $PRIVATE_ETC names directories
# under /etc (pppd's /etc/ppp, for its secrets) that get DIR/etc/NAME over
# them the same way. "unshare -m" makes the mounts
# private: they vanish with the process and never propagate to the host.
set -eu
if [ -z "${TW_PRIVATE_STATE_INNER:-}" ]; then
  TW_PRIVATE_STATE_INNER=1 exec unshare -m --propagation private sh "$0" "$@"
fi
unset TW_PRIVATE_STATE_INNER
dir=$1; shift
names=${PRIVATE_NAMES:-softether}
work=$(dirname "$dir")
etc=${PRIVATE_ETC:-}
for n in $names; do mkdir -p "$dir/run/$n" "$dir/lib/$n" "$dir/log/$n"; done
for n in $etc; do mkdir -p "$dir/etc/$n"; done
# DIR may live under /var/log (the run logs do): keep it reachable on a
# private /mnt before the tmpfs mounts hide it.
mount -t tmpfs tunnelwall /mnt
mkdir /mnt/work
mount --bind "$work" /mnt/work
state=/mnt/work/$(basename "$dir")
for top in /run /var/lib /var/log; do mount -t tmpfs tunnelwall "$top"; done
for n in $names; do
  mkdir -p "/run/$n" "/var/lib/$n" "/var/log/$n"
  mount --bind "$state/run/$n" "/run/$n"
  mount --bind "$state/lib/$n" "/var/lib/$n"
  mount --bind "$state/log/$n" "/var/log/$n"
done
for n in $etc; do
  mkdir -p "/etc/$n" 2>/dev/null || true
  mount --bind "$state/etc/$n" "/etc/$n"
done
mkdir -p "$work"
mount --bind /mnt/work "$work"
exec "$@"
