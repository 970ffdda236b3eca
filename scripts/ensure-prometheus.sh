#!/usr/bin/env bash
# Installs Prometheus from Debian's packages when it is not on the PATH.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then exit 0; fi
echo "installing prometheus from Debian's packages..."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package starts a system service on installation where systemd runs; we start our own.
command -v prometheus >/dev/null
