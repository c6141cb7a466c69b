#!/bin/bash
# tests/check.sh -- the full test suite, from a fresh clone on Debian 12:
# installs what is missing, builds, runs `make check` (unit, CLI, SQL and integration
# tests, each integration test on its own throwaway PostgreSQL server) and ends with
# one line "N passed, N failed, N skipped".  Exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tests/build.sh || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
make -s -j"$(nproc)" check >tests/check.log 2>&1
rc=$?
# per-assertion results from the TAP driver's .trs files
pass=0 fail=0 skip=0
while IFS= read -r trs; do
	p=$(grep -c '^:test-result: PASS' "$trs"); f=$(grep -c -E '^:test-result: (FAIL|ERROR|XPASS)' "$trs")
	s=$(grep -c '^:test-result: SKIP' "$trs")
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$f" -gt 0 ]; then
		log=${trs%.trs}.log
		echo "---- $log"
		grep -E '^not ok|^#|^Bail' "$log" | head -40
	fi
done < <(find tests -name '*.trs' | sort)
grep -E '^(FAIL|ERROR|SKIP|XPASS): ' tests/check.log | sed 's/^/  /' | head -50 || true
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
	tail -30 tests/check.log
	fail=1
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
