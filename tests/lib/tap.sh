# tests/lib/tap.sh
#    Test Anything Protocol output for the shell tests.
#
# ok COND_EXIT_STATUS "name"   -- `ok $? "name"` or `cmd; ok $? "..."`
# is GOT WANT "name"            -- string equality, shows both on failure
# like GOT REGEX "name"         -- grep -E match
# unlike GOT REGEX "name"
# skip N "why"                  -- N tests reported as skipped
# skip_all "why"                -- the whole script is skipped
# done_testing                  -- prints the plan, exits 1 if anything failed

TAP_N=0
TAP_FAILED=0

ok() {
	TAP_N=$((TAP_N + 1))
	if [ "$1" = 0 ]; then
		echo "ok $TAP_N - $2"
	else
		echo "not ok $TAP_N - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#          got: %s\n#     expected: %s\n' "$1" "$2"
	fi
}

like() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#          got: %s\n#   not matching: %s\n' "$(printf '%s' "$1" | head -c 2000)" "$2"
	fi
}

unlike() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		ok 1 "$3"
		printf '#          got: %s\n#  unexpectedly matching: %s\n' "$(printf '%s' "$1" | head -c 2000)" "$2"
	else
		ok 0 "$3"
	fi
}

diag() {
	printf '# %s\n' "$*"
}

# skip N "why": N tests that cannot run here, reported as skipped
skip() {
	local i
	for i in $(seq 1 "$1"); do
		TAP_N=$((TAP_N + 1))
		echo "ok $TAP_N # SKIP $2"
	done
}

skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

done_testing() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" = 0 ] || exit 1
	exit 0
}

# the programs under test, built in the build tree
: "${REFINERY:=$(pwd)/refinery}"
: "${GENLEADS:=$(pwd)/fixtures/genleads}"
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
