#!/bin/bash
# tests/integration/rebuild.sh -- a full write of a job that has state (run --full, a change
# of rules) builds the job's partition afresh and swaps it in (sql/018_state_rebuild.sql):
# the state it leaves is the one the row-by-row write leaves (forced here by a session that
# holds the job's partition), and the one the fallback copy leaves when another session holds
# the shared parent; the pull queue's changes made while the run computed stand; a run killed
# before its commit leaves the old partition and no new table; the partition keeps every
# index of the parent.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=3000
"$GENLEADS" --rows $N --seed 11 --out-dir "$tmp/gen" >/dev/null || exit 1
pg_load_leads "$tmp/gen"
# rules JOB: a job over crm.leads with only its state written
rules() {
	cat >"$tmp/$1.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = $1
max_change_percent = 0
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
EOF
}
for j in inplace rebuilt copied; do rules $j; done
"$REFINERY" init-db -q
ok $? "init-db"
for j in inplace rebuilt copied; do
	"$REFINERY" run -q -c "$tmp/$j.ini" || echo "first run of $j failed"
done
is "$(pq -c "SELECT count(*) FROM refinery.lead_state")" $((3 * N)) "three jobs have their first state"

# what every job's queue and source do between the first run and the full one: a dialer takes
# a lead (at a fixed time, so that the jobs compare), and five leads leave the source
take=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'rebuilt' AND verdict = 'kept'
	AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
taker=$(pq -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'rebuilt' AND lead_id = '$take'")
pq -c "UPDATE refinery.lead_state SET taken_at = '2025-07-01 09:00+00', taken_by = rep_id,
	version = version + 1 WHERE lead_id = '$take'" >/dev/null
pq -c "DELETE FROM crm.leads WHERE lead_id IN (SELECT lead_id FROM crm.leads ORDER BY lead_id DESC LIMIT 5)" >/dev/null

# a state row's every column but the job and the run ids, in lead order
state() {
	pq -c "SELECT lead_id, state, fingerprint, version, assigned_at, source, verdict, rule_id, reason,
		cluster_id, survivor_id, phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm,
		score, points, temperature, persona, cohort, rep_id, call_order, p_close, channel_plan,
		sla_due_at, golden, taken_at, taken_by, changed_run = (SELECT max(run_id) FROM refinery.runs
		WHERE job = '$1') AS rewritten
		FROM refinery.lead_state WHERE job = '$1' ORDER BY lead_id" >"$tmp/state.$1"
	cat "$tmp/state.$1" | md5sum
}
part_oid() { pq -c "SELECT 'refinery.lead_state_$1'::regclass::oid"; }

# ---- the row-by-row write: a session holds the job's partition (as a long take would)
pg_hold_open queue "BEGIN; LOCK TABLE refinery.lead_state_inplace IN ROW EXCLUSIVE MODE; SELECT 'held';"
pg_wait "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE c.relname = 'lead_state_inplace' AND l.mode = 'RowExclusiveLock' AND l.granted" 1
oid0=$(part_oid inplace)
out=$("$REFINERY" run --full -c "$tmp/inplace.ini" 2>&1); rc=$?
pg_hold_close queue
is "$rc" 0 "a full run while a session holds the job's partition commits"
like "$out" "the job's queue holds its state: rows are rewritten in place" "and says it wrote the rows in place"
is "$(part_oid inplace)" "$oid0" "in the same partition"

# how many times the server was asked to look for rows the queue changed under a full write
moved_joins() { pg_log | grep -c 'CREATE TEMPORARY TABLE refinery_state_moved ON COMMIT DROP AS'; }

# ---- the rebuild
oid0=$(part_oid rebuilt)
joins0=$(moved_joins)
out=$("$REFINERY" run --full -c "$tmp/rebuilt.ini" 2>&1); rc=$?
is "$rc" 0 "a full run of a job with state commits"
unlike "$out" "in place|another session" "with no fallback"
is "$(moved_joins)" "$joins0" "nothing changed the state since the run read it: no join looks for moved rows"
oid1=$(part_oid rebuilt)
ok "$([ "$oid1" != "$oid0" ]; echo $?)" "its partition is a new table ($oid0 before, $oid1 after)"
is "$(state rebuilt)" "$(state inplace)" "whose every row is the one the row-by-row write gives"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'rebuilt' AND state = 'vanished' AND rep_id IS NULL
	AND taken_at IS NULL AND changed_run = (SELECT max(run_id) FROM refinery.runs WHERE job = 'rebuilt')")" 5 \
	"the five leads gone from the source are vanished"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'rebuilt' AND changed_run = (SELECT max(run_id)
	FROM refinery.runs WHERE job = 'rebuilt') AND version = 2")" $((N - 1)) \
	"every other row is rewritten once (version 2), the taken lead's too (version 3)"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'rebuilt' AND first_run = (SELECT min(run_id)
	FROM refinery.runs WHERE job = 'rebuilt')")" "$N" "every row keeps the job's first run as its first run"
is "$(pq -c "SELECT taken_by || ':' || rep_id || ':' || version || ':' || (taken_at = '2025-07-01 09:00:00+00') FROM refinery.lead_state
	WHERE job = 'rebuilt' AND lead_id = '$take'")" \
	"$taker:$taker:3:true" "the take made before the run stands, its time exactly"
is "$(pq -c "SELECT count(*) FROM refinery.lead_changes c JOIN refinery.runs r USING (run_id)
	WHERE r.job = 'rebuilt' AND c.change = 'vanished'")/$(pq -c "SELECT count(*) FROM refinery.lead_changes c
	JOIN refinery.runs r USING (run_id) WHERE r.job = 'inplace'")" \
	"5/$(pq -c "SELECT count(*) FROM refinery.lead_changes c JOIN refinery.runs r USING (run_id) WHERE r.job = 'rebuilt'")" \
	"it logs the five vanished leads, and as many changes as the row-by-row write"
is "$(pq -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_state_next_%'")" 0 \
	"no rebuilt table is left over, and the new partition's indexes are named after it"
is "$(pq -c "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
	WHERE x.indrelid = 'refinery.lead_state_rebuilt'::regclass AND x.indisvalid")" \
	"$(pq -c "SELECT count(*) FROM pg_index WHERE indrelid = 'refinery.lead_state'::regclass")" \
	"the new partition has every index of the parent, attached to it"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'rebuilt'")" "$N" "and every lead of the job"

# ---- the fallback copy: another session holds the shared parent
pg_hold_open reader "BEGIN; SELECT count(*) FROM refinery.lead_state WHERE job = 'inplace';"
pg_wait "SELECT count(*) FROM pg_locks l WHERE l.relation = 'refinery.lead_state'::regclass
	AND l.mode = 'AccessShareLock' AND l.granted AND l.pid <> pg_backend_pid()" 1
oid0=$(part_oid copied)
out=$("$REFINERY" run --full -c "$tmp/copied.ini" 2>&1); rc=$?
pg_hold_close reader
is "$rc" 0 "a full run while another job's reader holds the parent commits"
like "$out" "another session holds refinery.lead_state: the job's rebuilt state is copied" \
	"and says it copied the rebuilt state into the partition"
is "$(part_oid copied)" "$oid0" "which is the same table"
is "$(state copied)" "$(state rebuilt)" "with the rows the swap gives"
is "$(pq -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_state_next_%' AND relkind = 'r'")" 0 \
	"and no rebuilt table left over"

# ---- a view a user made on the job's partition keeps it from being dropped: the copy again
pq -c "CREATE VIEW public.copied_state AS SELECT lead_id, verdict FROM refinery.lead_state_copied" >/dev/null
oid0=$(part_oid copied)
out=$("$REFINERY" run --full -c "$tmp/copied.ini" 2>&1); rc=$?
is "$rc" 0 "a full run of a job whose partition a user's view reads commits"
like "$out" "the job's partition could not be swapped \(.*depend.*\): the rebuilt state is copied into it" \
	"and says why it copied the rebuilt state into the partition"
is "$(part_oid copied)/$(pq -c "SELECT count(*) FROM public.copied_state")" "$oid0/$N" \
	"the partition and the user's view stand, with every lead"
is "$(pq -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_state_next_%'")" 0 "no rebuilt table is left over"
pq -c "DROP VIEW public.copied_state" >/dev/null

# a held lead of job rebuilt that nobody took, other than those named
free_lead() {
	pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'rebuilt' AND state = 'current'
		AND verdict = 'kept' AND taken_at IS NULL AND rep_id IS NOT NULL AND rep_id <> 2
		AND lead_id NOT IN ('', '${1:-}', '${2:-}') ORDER BY lead_id LIMIT 1"
}
# stalled_take GATE LEAD AT: a full run of job rebuilt stops after reading the state, a
# dialer takes LEAD for rep 2 at AT (as the queue does: version + 1), the run goes on;
# its exit status in rc, its output in GATE.out.  PGOPTIONS passes to the run.
stalled_take() {
	pg_run_stalled compute "$1" --full -c "$tmp/rebuilt.ini"
	ok $? "a full run stops after reading the job's state"
	pq -c "UPDATE refinery.lead_state SET taken_at = '$3', taken_by = 2, rep_id = 2,
		version = version + 1 WHERE job = 'rebuilt' AND lead_id = '$2'" >/dev/null
	touch "$1"
	wait $pid; rc=$?
	[ "$rc" = 0 ] || sed "s/^/# /" "$1.err"
}
left_one='refinery: 1 of them left as the queue changed them after the run read them'

# ---- the queue while the run computes: its change stands
if fault_hooks; then
	lead=$(free_lead)
	pq -c "UPDATE crm.leads SET handler_notes = coalesce(handler_notes, '') || ' (called back)' WHERE lead_id = $lead" >/dev/null
	joins0=$(moved_joins)
	stalled_take "$tmp/gate1" "$lead" '2025-07-01 10:00+00'
	is "$rc" 0 "meanwhile a dialer takes a lead whose source changed; the run then commits"
	like "$(cat "$tmp/gate1.out")" "$left_one" "and says it left one lead as the queue changed it"
	is "$(moved_joins)" "$((joins0 + 1))" "found by joining the state with the new table"
	is "$(pq -c "SELECT taken_by || ':' || rep_id FROM refinery.lead_state WHERE job = 'rebuilt' AND lead_id = '$lead'")" \
		"2:2" "the take stands"
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes c JOIN refinery.runs r USING (run_id)
		WHERE r.job = 'rebuilt' AND c.lead_id = '$lead'")" 0 "and the run logged no change of it"

	# ---- the same where sessions default to serializable: the run still sees the take
	lead2=$(free_lead "$lead")
	pq -c "UPDATE crm.leads SET handler_notes = coalesce(handler_notes, '') || ' (called back)' WHERE lead_id = $lead2" >/dev/null
	PGOPTIONS="-c default_transaction_isolation=serializable" stalled_take "$tmp/gate3" "$lead2" '2025-07-01 11:00+00'
	is "$rc" 0 "meanwhile, sessions defaulting to serializable, a dialer takes a lead; the run commits"
	like "$(cat "$tmp/gate3.out")" "$left_one" \
		"and, reading in its own transaction at read committed, says it left that lead as the queue changed it"
	is "$(pq -c "SELECT taken_by || ':' || rep_id FROM refinery.lead_state WHERE job = 'rebuilt' AND lead_id = '$lead2'")" \
		"2:2" "the take stands"

	# ---- a lead leaves the source while a dialer takes it: left as the queue left it
	lead3=$(free_lead "$lead" "$lead2")
	pq -c "DELETE FROM crm.leads WHERE lead_id = $lead3" >/dev/null
	stalled_take "$tmp/gate4" "$lead3" '2025-07-01 12:00+00'
	is "$rc" 0 "meanwhile a dialer takes a lead the source no longer has; the run commits"
	like "$(cat "$tmp/gate4.out")" "$left_one" "and says it left that lead as the queue changed it"
	is "$(pq -c "SELECT state || ':' || taken_by || ':' || rep_id FROM refinery.lead_state
		WHERE job = 'rebuilt' AND lead_id = '$lead3'")" "current:2:2" \
		"the lead keeps its take and is not marked vanished, as the row-by-row write leaves it"
	last=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'rebuilt'")
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $last AND lead_id = '$lead3'")" 0 \
		"the run logged no change of it"
	is "$(pq -c "SELECT leads_vanished FROM refinery.runs WHERE run_id = $last")" 0 "nor counted it vanished"

	# ---- killed before its commit: the old partition stands, no new table is left
	sum0=$(state rebuilt)
	oid0=$(part_oid rebuilt)
	pg_run_stalled state_swap "$tmp/gate2" --full -c "$tmp/rebuilt.ini"
	ok $? "a full run stops with its new table built, before the swap"
	kill -KILL $pid
	wait $pid 2>/dev/null
	pg_wait_no_engine
	is "$(state rebuilt)/$(part_oid rebuilt)" "$sum0/$oid0" "killed there, it leaves the job's state and partition as they were"
	is "$(pq -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_state_next_%'")" 0 "and no table or index of its own"
	"$REFINERY" run -q --full -c "$tmp/rebuilt.ini"
	is "$?/$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'rebuilt'")" "0/$N" "the next full run completes"
else
	skip 21 "refinery was built without --enable-fault-injection"
fi

done_testing
