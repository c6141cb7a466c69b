#!/bin/bash
# tests/deps.sh -- install the Debian 12 packages refinery needs to build and test.
# Runs apt-get only for what is missing; uses sudo when not root.
set -euo pipefail
pkgs=(gcc make autoconf automake pkg-config libpq-dev libcsv-dev libpcre2-dev libinih-dev
      libutf8proc-dev libssl-dev openssl postgresql-15 postgresql-15-pgtap postgresql-client-15
      clang libclang-rt-14-dev python3 jq)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
