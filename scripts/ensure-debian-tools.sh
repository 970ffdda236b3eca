#!/usr/bin/env bash
# Installs the tools the tests run from Debian's packages, each only when it is missing:
# Prometheus (analysis), socat and nftables (the network namespaces of the fault tests), and what
# the real node runs (containerd, runc, the CNI plugins, iptables and conntrack for kube-proxy).
#   scripts/ensure-debian-tools.sh [COMMAND:PACKAGE...]   also these (e.g. wrk:wrk)
set -euo pipefail
missing=()
node_tools=(containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins
  iptables:iptables conntrack:conntrack nsenter:util-linux)
for pair in prometheus:prometheus socat:socat nft:nftables "${node_tools[@]}" "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing from Debian's packages: ${missing[*]}..."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The prometheus package starts a system service where systemd runs; the tests start their own.
for pair in prometheus:prometheus socat:socat nft:nftables "${node_tools[@]}" "$@"; do
  command -v "${pair%%:*}" >/dev/null
done
