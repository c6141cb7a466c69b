#!/bin/bash
# tests/bench/underload.sh [BUSY] -- the CI on a machine kept busy (not part of make check).
# Clones HEAD into a temporary folder (with ../shared beside it when present), starts BUSY
# (default 6) busy loops and a loop of fsync'd 256 MiB writes, all on CPUs 0-1, runs
# `bash .ci/run` there on the same CPUs, stops the load, and prints .ci/run's last lines,
# its exit status and how long it took.  Exits with .ci/run's status.
set -uo pipefail
cd "$(dirname "$0")/../.."
busy=${1:-6}
top=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/refinery-underload.XXXXXX")
pids=()
stop_load() {
	[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap stop_load EXIT
git clone -q "$top" "$work/src" || exit 1
[ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$work/shared"
for _ in $(seq "$busy"); do
	taskset -c 0,1 sh -c 'while :; do :; done' &
	pids+=($!)
done
(while :; do dd if=/dev/zero of="$work/dd.bin" bs=1M count=256 conv=fsync 2>/dev/null; done) &
pids+=($!)
start=$SECONDS
(cd "$work/src" && CI=true taskset -c 0,1 bash .ci/run < /dev/null > "$work/ci.out" 2>&1)
rc=$?
tail -n 5 "$work/ci.out"
echo "under load ($busy busy loops, fsync'd writes, CPUs 0-1): .ci/run exited $rc after $((SECONDS - start)) s"
exit $rc
