#!/bin/bash
# tests/check.sh -- the full test suite, from a fresh clone on Debian 12:
# installs what is missing, builds, runs `make check` (unit, CLI, SQL and integration
# tests, each integration test on its own throwaway PostgreSQL server, short fuzzing
# runs), then the same suite once more built with AddressSanitizer and UBSan in a copy
# of the sources (SANITIZE=no skips that pass), and ends with one line
# "N passed, N failed, N skipped" over both.  Exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tests/build.sh || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
make -s -j"$(nproc)" check >tests/check.log 2>&1
rc=$?
trees=(.)
if [ "${SANITIZE:-yes}" != no ]; then
	# the distributed sources (what `make dist` ships, edits included) in a private folder
	san=$(mktemp -d "${TMPDIR:-/tmp}/refinery-sanitize.XXXXXX")
	trap 'rm -rf "$san"' EXIT
	# tests that read ../shared find it beside the copy too
	[ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$san/shared"
	if make -s distdir distdir="$san/src" >"$san/distdir.log" 2>&1 &&
		(cd "$san/src" && ./configure -q --enable-sanitizers --enable-fault-injection >../configure.log 2>&1 &&
			make -s -j"$(nproc)" all >../build.log 2>&1); then
		(cd "$san/src" && make -s -j"$(nproc)" check FUZZ_SECONDS=0 >../check.log 2>&1)
		src=$?
		echo "sanitizer pass (ASan + UBSan): make check exited $src"
		[ "$src" -ne 0 ] && { rc=$src; tail -30 "$san/check.log"; }
		trees+=("$san/src")
	else
		echo "sanitizer pass: the sanitized build failed"
		tail -30 "$san"/*.log
		rc=1
	fi
fi
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
done < <(for t in "${trees[@]}"; do find "$t/tests" -name '*.trs'; done | sort)
grep -E '^(FAIL|ERROR|SKIP|XPASS): ' tests/check.log | sed 's/^/  /' | head -50 || true
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
	tail -30 tests/check.log
	fail=1
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
