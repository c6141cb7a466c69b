#!/bin/bash
# tests/cli/hugepages.sh -- where the kernel gives transparent huge pages on request
# (madvise), the program starts itself once more with glibc.malloc.hugetlb=1 added to
# GLIBC_TUNABLES, keeping what that variable held; a GLIBC_TUNABLES that names hugetlb
# already is left as it is.  Each run reads its leads from a FIFO, so the test reads the
# running program's environment while the program waits for them.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh" # poll_until only: no server is started

mode=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
case "$mode" in
	*"[madvise]"*) ;;
	*) skip_all "transparent huge pages are not given on request here (${mode:-no setting})" ;;
esac
ldd "$REFINERY" 2>/dev/null | grep -q 'libc\.so\.6' || skip_all "the program is not linked with glibc"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/leads.csv"
cat > "$tmp/rules.ini" <<INI
[source]
csv = $tmp/leads.csv
now = 2025-07-01
[output]
target = csv
csv_dir = $tmp
INI

# reading PID: the program has opened the FIFO (it has started for good by then)
reading() { ls -l "/proc/$1/fd" 2>/dev/null | grep -qF "$tmp/leads.csv"; }

# tunables VALUE: run with GLIBC_TUNABLES=VALUE ("-": unset); sets $seen to the
# variable as the running program has it ("-" when it has none) and $rc to its status
tunables() {
	local pid
	exec 3<>"$tmp/leads.csv" # a writer, so the program's open does not wait
	if [ "$1" = - ]; then
		env -u GLIBC_TUNABLES "$REFINERY" run -q -c "$tmp/rules.ini" 3>&- &
	else
		GLIBC_TUNABLES=$1 "$REFINERY" run -q -c "$tmp/rules.ini" 3>&- &
	fi
	pid=$!
	if poll_until 600 reading "$pid"; then
		seen=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n 's/^GLIBC_TUNABLES=//p')
		seen=${seen:--}
	else
		seen="(the program never opened its source)"
	fi
	printf 'lead_id,full_name,phone\n1,Dana Levi,052-4423268\n' >&3
	exec 3>&-
	wait "$pid"
	rc=$?
}

tunables -
is "$seen" "glibc.malloc.hugetlb=1" "with no GLIBC_TUNABLES the program runs with huge pages asked for"
is "$rc" 0 "and the run succeeds"
is "$(sed -n 2p "$tmp/lead_results.csv" | cut -d, -f1)" 1 "and writes its lead"
# glibc cuts the variable it reads after its first tunable, so the environment the second
# start is given is read from the system call
if command -v strace >/dev/null; then
	GLIBC_TUNABLES=glibc.malloc.arena_max=2 strace -f -qq -v -s 4096 -e trace=execve \
		-o "$tmp/trace" "$REFINERY" --version >/dev/null
	is "$(grep -o 'GLIBC_TUNABLES=[^"]*' "$tmp/trace" | paste -sd' ')" \
		"GLIBC_TUNABLES=glibc.malloc.arena_max=2 GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=2" \
		"other tunables are kept, the hugetlb one put first"
else
	skip 1 "no strace here"
fi
tunables "glibc.malloc.hugetlb=0"
is "$seen" "glibc.malloc.hugetlb=0" "a GLIBC_TUNABLES that names hugetlb is left as it is"
is "$rc" 0 "and the run succeeds"
done_testing
