#!/bin/bash
# tests/integration/conn.sh -- the connection and the process around a run, against a
# throwaway server: the server lost while the engine computes (F11), what the server
# says outside a result (NOTICE, WARNING) in both log formats, the summary written to a
# closed pipe or a full device, SIGTERM in the middle of a stage, and a lock on the
# source table during the pull.  Every wait is for an observed state (pg_stat_activity,
# pg_locks, a process stopped or gone), never for a length of time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
command -v jq >/dev/null || skip_all "jq is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work; mkdir -p "$tmp"

# enough leads that the stages take a while; nothing below depends on how long
N=20000
"$GENLEADS" --rows $N --seed 23 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat > "$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/rules.ini"
ok $? "a first committed run"

state() {
	pq -c "SELECT md5(coalesce((SELECT string_agg(t::text, ',' ORDER BY run_id) FROM refinery.runs t), '')
	           || coalesce((SELECT string_agg(t::text, ',' ORDER BY run_id, ord) FROM refinery.run_stages t), '')
	           || (SELECT count(*) FROM refinery.lead_results)::text
	           || (SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_results_%')::text)"
}

# every line of FILE is one JSON object
all_json() {
	jq -eR 'fromjson | type == "object"' "$1" >/dev/null 2>&1
}

# start_stalled POINT NAME [ARGS...]: a run stopped at POINT until $tmp/NAME exists
# (pg_run_stalled); its output in $tmp/NAME.out and .err
start_stalled() {
	local point=$1 name=$2
	shift 2
	pg_run_stalled "$point" "$tmp/$name" "$@" -c "$tmp/rules.ini"
}

# F11: the server stopped (immediate) while the engine computes, between statements
if fault_hooks; then
	# commits are asynchronous on the test server: write them out before the crash
	pq -c CHECKPOINT
	before=$(state)
	start_stalled compute f11 --log-format=json
	ok $? "F11: the engine stops after reading its side data, before the stages"
	pg_crash
	touch "$tmp/f11"
	wait $pid; rc=$?
	is "$rc" 4 "F11: the server lost between statements gives the connection code"
	[ "$rc" = 4 ] || diag "$(cat "$tmp/f11.err")"
	like "$(jq -r 'select(.level == "error") | .hint' "$tmp/f11.err" 2>/dev/null)" 'nothing of this run was committed' \
		"F11: and says nothing was committed"
	all_json "$tmp/f11.err"; ok $? "F11: in json mode every line on stderr is JSON (the server's goodbye too)"
	pg_restart
	is "$(state)" "$before" "F11: after restart the database is as before"
else
	skip 6 "refinery was built without --enable-fault-injection"
fi

# NOTICE and WARNING raised by the source query: through the logger, in either format
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE FUNCTION crm.noisy_leads() RETURNS SETOF crm.leads LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'pulling "leads" from a noisy function' USING DETAIL = 'a detail line', HINT = 'a hint line';
    RAISE WARNING 'this source is deprecated';
    RETURN QUERY SELECT * FROM crm.leads ORDER BY lead_id LIMIT 500;
END $$;
SQL
cat > "$tmp/noisy.ini" <<INI
[source]
query = SELECT * FROM crm.noisy_leads()
now = auto
[job]
name = noisy
INI
"$REFINERY" run --dry-run -q --log-format=json -c "$tmp/noisy.ini" >/dev/null 2>"$tmp/json.err"
ok $? "a run on a source that raises notices succeeds (json)"
all_json "$tmp/json.err"; ok $? "json: every line on stderr is JSON"
is "$(jq -r 'select(.level == "notice") | [.message, .detail, .hint, .sqlstate] | join("|")' "$tmp/json.err" 2>/dev/null)" \
	'pulling "leads" from a noisy function|a detail line|a hint line|00000' "json: the NOTICE with its detail and hint"
is "$(jq -r 'select(.level == "warning") | .message' "$tmp/json.err" 2>/dev/null)" 'this source is deprecated' \
	"json: the WARNING"
"$REFINERY" run --dry-run -q -c "$tmp/noisy.ini" >/dev/null 2>"$tmp/text.err"
ok $? "a run on a source that raises notices succeeds (text)"
is "$(grep -v '^refinery: info: new job' "$tmp/text.err")" 'NOTICE:  pulling "leads" from a noisy function
DETAIL:  a detail line
HINT:  a hint line
WARNING:  this source is deprecated' "text: PostgreSQL's wording"

# SIGTERM while the engine computes: the stage in progress sees it and gives up; exit 7,
# nothing written, the run lock released
if fault_hooks; then
	before=$(state)
	start_stalled dedupe term
	ok $? "SIGTERM: the engine stops at the start of the dedupe stage"
	kill -TERM $pid
	wait $pid; rc=$?
	is "$rc" 7 "SIGTERM during the stages exits with the interrupted code"
	like "$(cat "$tmp/term.err")" 'error: interrupted during stage "dedupe"' \
		"and says the stage in progress saw it"
	is "$(state)" "$before" "SIGTERM: nothing was written"
else
	skip 4 "refinery was built without --enable-fault-injection"
fi
pg_wait_no_engine
pq -c "SELECT name FROM refinery.jobs WHERE name = 'default' FOR UPDATE NOWAIT" >/dev/null
ok $? "SIGTERM: the job's lease is released"

# the summary lost: the run committed, so exit 0 with a warning; never a death by
# SIGPIPE after the commit, never a silent success
runs() { pq -c "SELECT count(*) FROM refinery.runs WHERE status = 'committed'"; }
n0=$(runs)
mkfifo "$tmp/gone"
exec {rw}<>"$tmp/gone"
exec {w}>"$tmp/gone"
exec {rw}>&-
"$REFINERY" run -c "$tmp/rules.ini" >&$w 2>"$tmp/pipe.err"; rc=$?
exec {w}>&-
is "$rc" 0 "a run whose reader went away exits 0 (not 141)"
like "$(cat "$tmp/pipe.err")" 'warning: could not write to standard output: Broken pipe' \
	"and warns that the summary was lost"
is "$(runs)" "$((n0 + 1))" "and the run is committed"
if [ -w /dev/full ]; then
	"$REFINERY" run -c "$tmp/rules.ini" >/dev/full 2>"$tmp/full.err"; rc=$?
	is "$rc" 0 "a run onto a full device exits 0"
	like "$(cat "$tmp/full.err")" 'warning: could not write to standard output: No space left on device' \
		"and warns that the summary was lost"
	is "$(runs)" "$((n0 + 2))" "and the run is committed"
else
	skip 3 "no writable /dev/full"
fi

# a session holds the source table in ACCESS EXCLUSIVE mode until the engine has exited:
# the pull gives up after [source] lock_timeout_ms, naming the table
before=$(state)
pg_hold_open locker "BEGIN; LOCK TABLE crm.leads IN ACCESS EXCLUSIVE MODE;"
pg_wait "SELECT count(*) FROM pg_locks WHERE relation = 'crm.leads'::regclass
         AND mode = 'AccessExclusiveLock' AND granted" 1
printf '[source]\nlock_timeout_ms = 200\n' > "$tmp/lt.ini"
"$REFINERY" run --log-format=json -c "$tmp/rules.ini" -c "$tmp/lt.ini" >/dev/null 2>"$tmp/lt.err"; rc=$?
pg_hold_close locker
is "$rc" 5 "a lock on the source table fails the pull with the data code"
is "$(jq -r 'select(.level == "error") | .message' "$tmp/lt.err" 2>/dev/null)" \
	'pulling the leads failed: could not lock the source table "crm.leads" within 200 ms' \
	"the message names the table"
is "$(jq -r 'select(.level == "error") | .sqlstate' "$tmp/lt.err" 2>/dev/null)" 55P03 "with the lock timeout's SQLSTATE"
is "$(state)" "$before" "nothing was written"
pg_wait_no_engine
pq -c "SELECT name FROM refinery.jobs WHERE name = 'default' FOR UPDATE NOWAIT" >/dev/null
ok $? "the job's lease is released"

pg_wait_no_engine
done_testing
