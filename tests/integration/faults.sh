#!/bin/bash
# tests/integration/faults.sh -- faults from RELIABILITY.md against a throwaway server:
# the engine killed during write-back (F1) and right after COMMIT (F4), the server
# stopped mid-pull (F2/F3), a backend terminated, SIGTERM (F5), a read-only role (F7),
# a lock the commit needs (F8), a duplicate lead id (F9).  "Unchanged" is an md5 of
# every refinery table taken before and after.  Every step waits for a state it
# can observe (the file a stalled engine creates, pg_stat_activity, pg_locks), never
# for a fixed time, so the script passes however loaded the machine is.  The steps
# that need the REFINERY_FAULT hooks report a skip when refinery was built without
# them (configure --enable-fault-injection; tests/build.sh uses it).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=4000
"$GENLEADS" --rows $N --seed 5 --out-dir "$tmp" >/dev/null
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
	           || coalesce((SELECT string_agg(t::text, ',' ORDER BY run_id, lead_id) FROM refinery.lead_results t), '')
	           || coalesce((SELECT string_agg(t::text, ',' ORDER BY run_id, ord) FROM refinery.run_stages t), '')
	           || coalesce((SELECT string_agg(t::text, ',' ORDER BY job, lead_id) FROM refinery.lead_state t), '')
	           || coalesce((SELECT string_agg(t::text, ',' ORDER BY run_id, lead_id) FROM refinery.lead_changes t), '')
	           || (SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_results_%')::text)"
}

# start_stalled POINT NAME: a run stopped at POINT until $tmp/NAME exists (pg_run_stalled)
start_stalled() {
	pg_run_stalled "$1" "$tmp/$2" -c "$tmp/rules.ini"
}
release() {
	touch "$tmp/$1"
}

before=$(state)
runs_before=$(pq -c "SELECT count(*) FROM refinery.runs")

if fault_hooks; then
	# F1: killed half-way through writing the results
	REFINERY_FAULT=write "$REFINERY" run -c "$tmp/rules.ini" >/dev/null 2>&1; rc=$?
	is "$rc" 137 "F1: the engine died by SIGKILL during write-back"
	pg_wait_no_engine
	is "$(state)" "$before" "F1: the database is exactly as before"
	"$REFINERY" run -q -c "$tmp/rules.ini"; ok $? "F1: a rerun succeeds"
	is "$(pq -c "SELECT count(*) FROM refinery.runs")" "$((runs_before + 1))" "F1: the rerun adds exactly one run"
	last=$(pq -c "SELECT max(run_id) FROM refinery.runs")
	is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last")" "$N" "F1: the rerun is complete"

	# F1b: killed half-way through writing the job's state, on a night when leads changed
	pq -c "UPDATE crm.leads SET status = 'no answer' WHERE lead_id % 7 = 0" >/dev/null
	before=$(state)
	REFINERY_FAULT=state "$REFINERY" run -c "$tmp/rules.ini" >/dev/null 2>&1; rc=$?
	is "$rc" 137 "F1b: the engine died by SIGKILL while writing the job's state"
	pg_wait_no_engine
	is "$(state)" "$before" "F1b: the database, state and change log included, is exactly as before"
	"$REFINERY" run -q -c "$tmp/rules.ini"; ok $? "F1b: a rerun succeeds"
	last=$(pq -c "SELECT max(run_id) FROM refinery.runs")
	is "$(pq -c "SELECT leads_changed > 0 AND leads_changed = (SELECT count(*) FROM refinery.lead_changes WHERE run_id = $last) FROM refinery.runs WHERE run_id = $last")" \
		"t" "F1b: the rerun records the changed leads once, in its own run"
	before=$(state)

	# F4: killed right after COMMIT was sent: the run is there once, complete
	REFINERY_FAULT=commit "$REFINERY" run -c "$tmp/rules.ini" >/dev/null 2>&1; rc=$?
	is "$rc" 137 "F4: the engine died right after sending COMMIT"
	pg_wait_no_engine
	last=$(pq -c "SELECT max(run_id) FROM refinery.runs")
	st=$(pq -c "SELECT status FROM refinery.runs WHERE run_id = $last")
	n=$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last")
	is "$st/$n" "committed/$N" "F4: the committed run is whole (status and every row)"
	is "$(pq -c "SELECT count(*) FROM refinery.runs WHERE status <> 'committed'")" "0" "F4: no half-recorded run"
	before=$(state)

	# the application name while a run is in flight, then SIGTERM (F5)
	start_stalled pull term
	ok $? "F5: the engine stops in the middle of the pull"
	is "$(pq -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'refinery'")" "1" \
		"the run shows as application \"refinery\" in pg_stat_activity"
	like "$(pq -c "SELECT name FROM refinery.jobs WHERE name = 'default' FOR UPDATE NOWAIT" 2>&1)" \
		'could not obtain lock on row' "F5: the stalled run holds its job's row (the lease)"
	kill -TERM $pid
	wait $pid; rc=$?
	is "$rc" 7 "F5: SIGTERM exits with the interrupted code"
	like "$(cat "$tmp/term.err")" 'interrupt' "F5: and says it was interrupted"
	pg_wait_no_engine
	pq -c "SELECT name FROM refinery.jobs WHERE name = 'default' FOR UPDATE NOWAIT" >/dev/null
	ok $? "F5: the job's lease is released"
	is "$(state)" "$before" "F5: nothing was written"

	# F3: the backend terminated during the pull
	start_stalled pull f3
	pq -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'refinery'" >/dev/null
	pg_wait_no_engine
	release f3
	wait $pid; rc=$?
	is "$rc" 4 "F3: a terminated backend gives the connection code"
	like "$(cat "$tmp/f3.err")" 'pulling the leads' "F3: the message names the phase"
	is "$(state)" "$before" "F3: nothing was written"

	# F2: the server stopped (immediate) in the middle of the pull
	start_stalled pull f2
	pg_crash
	release f2
	wait $pid; rc=$?
	is "$rc" 4 "F2: the server stopping mid-pull gives the connection code"
	like "$(cat "$tmp/f2.err")" 'pulling the leads' "F2: the message names the phase"
	pg_restart
	is "$(state)" "$before" "F2: after restart the database is as before"

	# F2b: the server stopped in the middle of the write-back COPY
	start_stalled write f2b
	pg_crash
	release f2b
	wait $pid; rc=$?
	is "$rc" 4 "F2: the server stopping mid-write gives the connection code"
	like "$(cat "$tmp/f2b.err")" 'writing the lead results|connection' "F2: the message names the phase"
	pg_restart
	is "$(state)" "$before" "F2: after restart the database is as before"
else
	skip 28 "refinery was built without --enable-fault-injection"
fi

# F8: a session holds a lock the write needs, and keeps it until the engine
# has exited: lock_timeout fires, old data intact
printf '[output]\nlock_timeout_ms = 500\n' > "$tmp/lt.ini"
pg_hold_open runs_lock "BEGIN; LOCK TABLE refinery.runs IN SHARE MODE;"
pg_wait "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE c.relname = 'runs' AND l.mode = 'ShareLock' AND l.granted" 1
err=$("$REFINERY" run -c "$tmp/rules.ini" -c "$tmp/lt.ini" 2>&1); rc=$?
pg_hold_close runs_lock
is "$rc" 5 "F8: a lock timeout fails the run with the data/SQL code"
like "$err" 'lock timeout' "F8: the message says lock timeout"
is "$(state)" "$before" "F8: old data intact"

# F7: a read-only role fails before any work, naming the privilege
pq -c "CREATE ROLE reader LOGIN; GRANT USAGE ON SCHEMA refinery, crm TO reader; GRANT SELECT ON ALL TABLES IN SCHEMA refinery, crm TO reader" >/dev/null
err=$("$REFINERY" run -c "$tmp/rules.ini" -U reader 2>&1); rc=$?
is "$rc" 5 "F7: a read-only role is refused"
like "$err" 'permission denied: the role lacks CREATE on schema refinery' "F7: the missing privilege is named"
err=$(PGOPTIONS='-c default_transaction_read_only=on' "$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 5 "F7: a read-only session is refused"
like "$err" 'read-only' "F7: and says so"
is "$(state)" "$before" "F7: nothing was written"

# F9: a duplicate lead id fails the run before writing, naming the id
pq -c "INSERT INTO crm.leads SELECT * FROM crm.leads ORDER BY lead_id LIMIT 1" >/dev/null
dup=$(pq -c "SELECT min(lead_id) FROM crm.leads")
err=$("$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 5 "F9: a duplicate lead id fails the run"
like "$err" "lead id \"$dup\" occurs more than once" "F9: the offending lead id is named"
is "$(state)" "$before" "F9: nothing was written"
done_testing
