#!/bin/bash
# tests/deps.sh -- install the Debian 12 packages refinery needs to build and test.
# Runs apt-get only for what is missing; uses sudo when not root.  Chromium (and a font
# for it) is for the screenshots of the HTML dashboard (tests/integration/dashboard.sh):
# installed apart and allowed to fail, since that test skips its screenshots without it;
# so are slurm-wlm and munge (a localhost Slurm cluster for tests/integration/tenants.sh).
set -euo pipefail
pkgs=(gcc make autoconf automake pkg-config libpq-dev libcsv-dev libpcre2-dev libinih-dev
      libutf8proc-dev libssl-dev openssl postgresql-15 postgresql-15-pgtap postgresql-client-15
      clang libclang-rt-14-dev python3 jq)
optional=(chromium fonts-dejavu-core)
# a localhost Slurm cluster for tests/integration/tenants.sh, which skips its Slurm part
# (saying why) where they cannot be installed or started
slurm=(slurm-wlm munge)
missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}
need=($(missing "${pkgs[@]}"))
want=($(missing "${optional[@]}"))
want_slurm=($(missing "${slurm[@]}"))
[ ${#need[@]} -eq 0 ] && [ ${#want[@]} -eq 0 ] && [ ${#want_slurm[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}" >&2
	$sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ${#want[@]} -gt 0 ]; then
	echo "installing: ${want[*]}" >&2
	$sudo apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null ||
		echo "tests/deps.sh: could not install ${want[*]}: the dashboard's screenshots will be skipped" >&2
fi
if [ ${#want_slurm[@]} -gt 0 ]; then
	echo "installing: ${want_slurm[*]}" >&2
	$sudo apt-get install -y -q --no-install-recommends "${want_slurm[@]}" >/dev/null ||
		echo "tests/deps.sh: could not install ${want_slurm[*]}: tenants.sh will skip its Slurm part" >&2
fi
