#!/bin/bash
# tests/integration/pullsplit.sh -- a large source table read by several sessions at once
# ([source] pull_streams, engine/pull_split.c): the same results as one stream, a
# tenant's run filtered in every stream; every stream on one snapshot, whatever commits
# meanwhile, their sessions gone after it; one stream when a stream's session cannot
# lock the table (no hang behind a waiting ACCESS EXCLUSIVE request); a stop signal ends
# every session.  Every wait is for an observed state (the file a stalled engine
# creates, pg_locks), never a fixed time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=5000
"$GENLEADS" --rows $N --seed 11 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
# spread thin, so that 5,000 leads pass the size a split needs (1,024 blocks)
pq -c "ALTER TABLE crm.leads SET (fillfactor = 10)" -c "VACUUM FULL crm.leads" -c "ANALYZE crm.leads"
blocks=$(pq -c "SELECT pg_relation_size('crm.leads') / current_setting('block_size')::int")
[ "$blocks" -ge 1024 ]
ok $? "the source spans $blocks blocks (a split needs 1024)"

rules() { # JOB [EXTRA SOURCE LINE]
	cat >"$tmp/$1.ini" <<INI
[source]
table = crm.leads
now = auto
${2:-}
[job]
name = $1
max_change_percent = 0
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI
}
rules split
rules one "pull_streams = 1"
"$REFINERY" init-db -q
last() { pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = '$1' AND status = 'committed'"; }
streams() { pq -c "SELECT coalesce(counters->>'streams', 'none') FROM refinery.run_stages WHERE run_id = $1 AND stage = 'pull'"; }
# every result column a reader sees, but the run's id
digest() {
	pq -c "SELECT count(*) || ' ' || md5(string_agg(row(lead_id, source, verdict, rule_id, reason, cluster_id,
	           survivor_id, phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm, score,
	           points, temperature, persona, cohort, rep_id, call_order, p_close, channel_plan, sla_due_at,
	           golden)::text, ',' ORDER BY lead_id)) FROM refinery.results WHERE run_id = $1"
}

"$REFINERY" run -q -j 2 -c "$tmp/split.ini"
ok $? "a run of job split on two threads"
r_split=$(last split)
is "$(streams "$r_split")" 2 "its pull read the table in two streams"
"$REFINERY" run -q -j 2 -c "$tmp/one.ini"
ok $? "a run of job one, pull_streams = 1"
r_one=$(last one)
is "$(streams "$r_one")" none "its pull read the table in one stream"
d_split=$(digest "$r_split")
is "$d_split" "$(digest "$r_one")" "both runs decided the same for every lead ($N leads)"
"$REFINERY" run -q -j 1 --full -c "$tmp/split.ini"
ok $? "a run of job split on one thread"
is "$(streams "$(last split)")" none "reads in one stream: a stream per thread at most"
is "$(digest "$(last split)")" "$d_split" "and decides the same"

# a tenant's run: every stream filters on the tenant the run's session chose
pq -c "ALTER TABLE crm.leads ADD COLUMN company text NOT NULL DEFAULT 'acme'" \
	-c "UPDATE crm.leads SET company = 'globex' WHERE lead_id % 3 = 0"
rules tenant "tenant_column = company"
"$REFINERY" run -q -j 2 --tenant globex -c "$tmp/tenant.ini"
ok $? "a run of tenant globex"
r=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'tenant@globex' AND status = 'committed'")
is "$(streams "$r")" 2 "its pull read the table in two streams"
is "$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $r")" \
	"$(pq -c "SELECT count(*) FROM crm.leads WHERE company = 'globex'")" "it pulled the tenant's leads, and only them"
pq -c "ALTER TABLE crm.leads DROP COLUMN company"

if fault_hooks; then
	# the streams read the snapshot the run's session exported, not what commits after it
	gone=$(pq -c "SELECT min(lead_id) FROM crm.leads")
	renamed=$(pq -c "SELECT max(lead_id) FROM crm.leads")
	pg_run_stalled pull_split "$tmp/gate1" -q -j 2 --full -c "$tmp/split.ini"
	ok $? "a run stopped with its streams' sessions set up"
	pq -c "DELETE FROM crm.leads WHERE lead_id = $gone" \
		-c "UPDATE crm.leads SET full_name = 'Zebulon Quixote' WHERE lead_id = $renamed" \
		-c "INSERT INTO crm.leads (lead_id, created_at, full_name, phone) VALUES (999999001, '2025-01-01', 'Late Arrival', '0501234567')"
	touch "$tmp/gate1"
	wait $pid
	is "$?" 0 "it commits after the table changed"
	r=$(last split)
	is "$(streams "$r")" 2 "reading in two streams"
	is "$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $r")" $N \
		"it pulled the $N leads of its snapshot"
	is "$(pq -c "SELECT string_agg(lead_id, ' ' ORDER BY lead_id) FROM refinery.results WHERE run_id = $r AND lead_id IN ('$gone', '999999001')")" "$gone" \
		"the lead deleted after the snapshot is there, the one inserted is not"
	is "$(pq -c "SELECT name_norm IS DISTINCT FROM 'zebulon quixote' FROM refinery.results WHERE run_id = $r AND lead_id = '$renamed'")" t \
		"the renamed lead has its old name"
	"$REFINERY" run -q -j 2 --full -c "$tmp/split.ini"
	is "$(pq -c "SELECT string_agg(lead_id, ' ' ORDER BY lead_id) FROM refinery.results WHERE run_id = $(last split) AND lead_id IN ('$gone', '999999001')")" 999999001 \
		"the next run sees the change"

	# a session queued for ACCESS EXCLUSIVE behind the run's lock: the streams cannot lock
	# the table without waiting behind it, which would wait for the run: one stream instead
	pg_run_stalled pull_streams "$tmp/gate2" -j 2 --full -c "$tmp/split.ini"
	ok $? "a run stopped holding the table's lock, before its streams' sessions"
	psql -X -q -c "BEGIN; LOCK TABLE crm.leads IN ACCESS EXCLUSIVE MODE; COMMIT" >"$tmp/locker.out" 2>&1 &
	locker=$!
	queued="SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	        WHERE c.relname = 'leads' AND l.mode = 'AccessExclusiveLock' AND NOT l.granted"
	waiting_or_gone() { pg_returns "$queued" 1 || ! kill -0 $locker 2>/dev/null; }
	poll_until "${PG_WAIT_SECONDS:-600}" waiting_or_gone
	is "$(pq -c "$queued")" 1 "another session waits for ACCESS EXCLUSIVE on the table"
	touch "$tmp/gate2"
	wait $pid
	is "$?" 0 "the run commits all the same"
	like "$(cat "$tmp/gate2.err")" 'the pull reads the source in one stream: .*lock timeout' \
		"it says why it read in one stream"
	is "$(streams "$(last split)")" none "its pull read the table in one stream"
	is "$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $(last split)")" $N "every lead"
	wait $locker
	is "$?" 0 "the waiting session gets its lock once the run is over"

	# after the pull the streams' sessions are gone
	pg_run_stalled compute "$tmp/gate4" -q -j 2 --full -c "$tmp/split.ini"
	ok $? "a run stopped after its pull"
	is "$(pq -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'refinery'")" 1 \
		"only the run's own session is left"
	touch "$tmp/gate4"
	wait $pid
	is "$?" 0 "it commits"

	# a stop signal while the streams are set up: the run stops, no session stays
	pg_run_stalled pull_split "$tmp/gate3" -q -j 2 --full -c "$tmp/split.ini"
	kill -INT $pid
	wait $pid
	is "$?" 7 "SIGINT stops the run with the interrupted code"
	pg_wait_no_engine
	ok $? "none of its sessions is left"

	# a row the pull cannot take (an out of memory, injected): every stream stops with that
	# reason, and the job is free for its next run
	for job in split one; do
		out=$(REFINERY_FAULT=pull:fail "$REFINERY" run -j 2 --full -c "$tmp/$job.ini" 2>&1); rc=$?
		like "$rc/$out" "^1/.*out of memory \(injected after 1000 rows\)" \
			"job $job: a row the pull cannot take fails the run with that reason"
		pg_wait_no_engine
		"$REFINERY" run -q -j 2 --full -c "$tmp/$job.ini"
		ok $? "job $job: none of its sessions is left, and its next run commits"
	done
else
	for i in $(seq 23); do skip "refinery was built without --enable-fault-injection"; done
fi
done_testing
