#!/usr/bin/env bash
# Install what lsmtp's build, tests and demo need on Debian 12 (as root, or
# with sudo). Safe to re-run; does nothing when everything is present.
set -euo pipefail

packages=(
  cmake ninja-build gcc g++ clang libclang-rt-14-dev pkg-config
  libmbedtls-dev libcmocka-dev
  python3 python3-aiosmtpd swaks libnet-ssleay-perl libio-socket-inet6-perl
  curl openssl ca-certificates procps
  postfix  # only for smtp-sink / smtp-source; no mail system is configured
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -q
# Postfix without a mail system: no main.cf, no daemon.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
