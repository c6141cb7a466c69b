#!/bin/bash
# tests/integration/contrib.sh -- the nightly-run files of contrib/ against a throwaway
# server: the command lines of the systemd units and of the cron file, taken from the
# files themselves with the program's and the rules file's paths replaced by this
# build's, run job "nightly" from contrib/nightly.ini (pointed at generated leads) and
# its check; the cron file runs the same commands as the units; SuccessExitStatus holds
# the lease's exit status from engine/error.h; and systemd-analyze verify accepts the
# units when it is installed.
set -eu
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
src=$top_srcdir/contrib
gen=$top_builddir/contrib # the files made from .in files at build time
for f in systemd/refinery-nightly.service systemd/refinery-nightly-check.service cron/refinery; do
	[ -f "$gen/$f" ] || { echo "Bail out! $gen/$f is missing: run make first"; exit 1; }
done
service=$gen/systemd/refinery-nightly.service
check=$gen/systemd/refinery-nightly-check.service
cron=$gen/cron/refinery
failure=$src/systemd/refinery-failure@.service
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work
mkdir -p "$tmp"

# key FILE KEY: the values of KEY= in a unit file, one a line
key() {
	sed -n "s/^$2=//p" "$1"
}
# cron_entries FILE: the command of each entry of a cron.d file (after the five
# time fields and the user field); cron_users FILE: the user field of each
cron_entries() {
	sed -n -E 's/^[0-9*@][^[:space:]]*([[:space:]]+[^[:space:]]+){4}[[:space:]]+[^[:space:]]+[[:space:]]+//p' "$1"
}
cron_users() {
	sed -n -E 's/^[0-9*@][^[:space:]]*([[:space:]]+[^[:space:]]+){4}[[:space:]]+([^[:space:]]+).*/\2/p' "$1"
}

# ---- the shipped example rules
out=$("$REFINERY" check-rules "$src/nightly.ini" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "contrib/nightly.ini passes check-rules as shipped"
job=$(sed -n '/^\[job\]/,/^\[/s/^name *= *//p' "$src/nightly.ini")
is "$job" nightly "it names job nightly"

# ---- the units' command lines
is "$(key "$service" ExecStart | wc -l)/$(key "$check" ExecStart | wc -l)" "1/1" \
	"each service has one ExecStart= line"
run_line=$(key "$service" ExecStart)
check_line=$(key "$check" ExecStart)
bin=${run_line%% *}
like "$bin" '^/([^ ]+/)?refinery$' "the run's ExecStart names the program by an absolute path"
is "${check_line%% *}" "$bin" "and the check's the same program"
rules=$(printf '%s\n' "$run_line" | sed -n 's/.* -c \([^ ]*\).*/\1/p')
is "$rules" /etc/refinery/nightly.ini "the run reads /etc/refinery/nightly.ini"
like "$check_line" " --check --max-age 26h --job $job( |\$)" "the check watches job $job with --max-age 26h"
locked=$(sed -n 's/^[[:space:]]*EXIT_LOCKED[[:space:]]*=[[:space:]]*\([0-9][0-9]*\),.*/\1/p' "$top_srcdir/engine/error.h")
like "$locked" '^[0-9]+$' "engine/error.h gives the lease's exit status (EXIT_LOCKED = $locked)"
like " $(key "$service" SuccessExitStatus | tr '\n' ' ') " " $locked " \
	"the run's SuccessExitStatus= holds it: a refused run is no failure"
is "$(key "$service" OnFailure)/$(key "$check" OnFailure)" \
	"refinery-failure@%n.service/refinery-failure@%n.service" "both services report a failure"
is "$(key "$failure" Type)" oneshot "through contrib/systemd/refinery-failure@.service"
is "$(key "$service" User)/$(key "$check" User)" "refinery/refinery" "both run as user refinery"
is "$(key "$service" EnvironmentFile)" "-/etc/refinery/refinery.env" \
	"the run reads the connection from /etc/refinery/refinery.env when it exists"
unlike "$(cat "$service" "$check" "$failure" "$src"/systemd/*.timer "$cron" "$src/nightly.ini")" \
	'PGPASSWORD|password=' "no unit, cron or rules file holds a password"

# ---- run them on generated leads
"$GENLEADS" --rows 500 --seed 5 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp" nightly_src >/dev/null
# the shipped file with its example table and [match] pointed at the generated tables
sed -e 's/^table = crm\.leads$/table = nightly_src.leads/' \
	-e 's/^#\(\[match\]\)$/\1/' -e 's/^#\(reps_query\|stats_query\) = \(.*\)crm\./\1 = \2nightly_src./' \
	"$src/nightly.ini" >"$tmp/nightly.ini"
is "$(diff "$src/nightly.ini" "$tmp/nightly.ini" | grep -c '^>')" 4 \
	"the test's copy changes only the example table and the [match] example"
"$REFINERY" init-db -q && rc=0 || rc=$?
is "$rc" 0 "init-db"
# split_cmd LINE: LINE split into the array cmd, with this build's program and the
# test's rules file in place of the installed ones
split_cmd() {
	local i
	read -r -a cmd <<<"$1"
	cmd[0]=$REFINERY
	for i in "${!cmd[@]}"; do
		if [ "${cmd[$i]}" = "$rules" ]; then cmd[$i]=$tmp/nightly.ini; fi
	done
}
split_cmd "$run_line"
out=$("${cmd[@]}" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "the run's ExecStart exits 0"
like "$out" "^refinery: run [0-9]+ committed: 500 pulled" "and prints its summary line"
is "$(pq -c "SELECT string_agg(job || ':' || status, ' ') FROM refinery.runs")" "$job:committed" \
	"refinery.runs has one committed run, of job $job"
is "$(pq -c "SELECT coalesce(sum(assigned), 0) > 0 FROM refinery.run_reps")" t \
	"the [match] example assigns leads to reps"
split_cmd "$check_line"
out=$("${cmd[@]}" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "the check's ExecStart exits 0 after the run"
like "$out" "^$job +[0-9]+ " "and lists job $job"

# ---- the cron file: the same commands
is "$(cron_entries "$cron" | wc -l)" 2 "the cron file has two entries"
is "$(cron_users "$cron" | sort -u)" "$(key "$service" User)" "both run as the units' user"
cron_run=$(cron_entries "$cron" | grep ' run ' || true)
cron_check=$(cron_entries "$cron" | grep ' jobs ' || true)
inv=${cron_run##*exec }
is "${inv/ -q / }" "$run_line" "its run is the unit's (with -q): same program, rules and so job"
inv=${cron_check##*exec }
is "${inv/ -q / }" "$check_line" "its check is the unit's (with -q)"
# run both through sh, as cron does, with the connection only in the env file
printf 'PGHOST=%s\nPGPORT=%s\nPGUSER=%s\n# a comment\nPGDATABASE=%s\n' \
	"$PGHOST" "$PGPORT" "$PGUSER" "$PGDATABASE" >"$tmp/refinery.env"
cron_sh() {
	local line=$1
	line=${line//"$bin"/"$REFINERY"}
	line=${line//"$rules"/"$tmp/nightly.ini"}
	line=${line//\/etc\/refinery\/refinery.env/"$tmp/refinery.env"}
	env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE /bin/sh -c "$line"
}
out=$(cron_sh "$cron_run" 2>&1) && rc=0 || rc=$?
is "$rc/$out" "0/" "the cron run exits 0 and prints nothing (cron mails nothing)"
is "$(pq -c "SELECT count(*) FROM refinery.runs WHERE job = '$job' AND status = 'committed'")" 2 \
	"it committed the job's second run, connected through the env file"
out=$(cron_sh "$cron_check" 2>&1) && rc=0 || rc=$?
is "$rc/$out" "0/" "the cron check exits 0 and prints nothing"
pq -c "UPDATE refinery.runs SET finished_at = finished_at - interval '27 hours'" >/dev/null
out=$(cron_sh "$cron_check" 2>&1) && rc=0 || rc=$?
is "$rc" 5 "with the last run 27 hours old the check exits 5"
like "$out" "without a committed run in the last 26h: $job\$" "and names the job, for the mail"

# ---- systemd-analyze verify
if ! command -v systemd-analyze >/dev/null; then
	skip 1 "systemd-analyze is not installed"
else
	mkdir -p "$tmp/units" "$tmp/probe" "$tmp/man/man1"
	cp "$top_srcdir/engine/refinery.1" "$tmp/man/man1/"
	cp "$service" "$check" "$failure" "$src"/systemd/*.timer "$tmp/units/"
	sed -i "s|^ExecStart=$bin |ExecStart=$REFINERY |" "$tmp/units"/*.service
	printf '[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=%s --help\n' \
		"$REFINERY" >"$tmp/probe/probe.service"
	if ! systemd-analyze verify --man=no "$tmp/probe/probe.service" >/dev/null 2>&1; then
		skip 1 "systemd-analyze verify does not work here"
	else
		out=$(MANPATH=$tmp/man systemd-analyze verify "$tmp/units"/* 2>&1) && rc=0 || rc=$?
		is "$rc/$out" "0/" "systemd-analyze verify accepts the units and timers"
	fi
fi

done_testing
