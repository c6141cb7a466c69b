#!/bin/bash
# tests/integration/nightly.sh -- the nightly loop against a throwaway server: a job's
# lasting state and change log; nightly increments of the generator (fixtures/genleads
# --night K) applied one by one, each run re-resolving only what changed (the dedupe
# compares only the pairs a change can affect), end with the same verdicts and the same
# partition into clusters as one run over the final data (each lead that differs is printed
# with both decisions; at most 0.1% may); cluster ids stay put for unchanged people; a new
# opt-out, and a new do-not-call entry on one record, empty the person's queues; sticky assignments (no churn on unchanged
# data, none after new leads, only an inactive rep's leads move); a rerun with nothing
# changed writes nothing; revert puts the state back exactly; a failure or a SIGTERM while
# the rest of the state is read behind the stages fails the run whole; snapshot = no serves the
# views from the state.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=10000
NIGHTS=4
for k in $(seq 0 $NIGHTS); do
	"$GENLEADS" --rows $N --seed 7 --night "$k" --out-dir "$tmp/n$k" >/dev/null || exit 1
done
pg_load_leads "$tmp/n0"
# load K: make crm.leads (and crm.truth) the data after night K
load() {
	psql -X -q -v ON_ERROR_STOP=1 <<SQL
TRUNCATE crm.leads, crm.truth;
\copy crm.leads FROM '$tmp/n$1/leads.csv' WITH (FORMAT csv, HEADER true)
\copy crm.truth FROM '$tmp/n$1/truth.csv' WITH (FORMAT csv, HEADER true)
ANALYZE crm.leads;
SQL
}
# rules JOB SNAPSHOT: a job over crm.leads with the reps of crm.reps and a person-level
# do-not-call file (empty until the last night)
printf 'phone\n' >"$tmp/dnc.csv"
rules() {
	cat >"$tmp/$1.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = $1
max_change_percent = 0
[output]
snapshot = $2
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[blacklist.dnc_list]
level = person
phone_list = $tmp/dnc.csv
reason = on the do-not-call list
EOF
}
rules inc yes
rules full yes
rules lean no
last() { pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = '$1' AND status = 'committed'"; }
"$REFINERY" init-db -q
ok $? "init-db"

# ---- a job's first run: the state, no change log
"$REFINERY" run -q -c "$tmp/inc.ini"; rc=$?
r1=$(last inc)
is "$rc/$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc'")/$(pq -c "SELECT count(*) FROM refinery.lead_changes")" \
	"0/$N/0" "the first run writes every lead into the state and logs nothing"
# dd COUNTER RUN: a counter of the run's dedupe stage, "-" when it has none
dd() { pq -c "SELECT coalesce(counters ->> '$1', '-') FROM refinery.stage_times WHERE run_id = $2 AND stage = 'dedupe'"; }
like "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" "^dedupe-model-1 [0-9a-f]{64} [0-9]+ " \
	"the job keeps the dedupe model its first run learnt, tied to the rules"
is "$(dd re-resolved "$r1")" "-" "a first run resolves every lead"
pairs_full=$(dd candidate_pairs "$r1")
is "$(pq -c "SELECT leads_new || ':' || leads_changed || ':' || leads_vanished || ':' || full_write FROM refinery.runs WHERE run_id = $r1")" \
	"$N:0:0:true" "the runs row counts every lead as new"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_results l ON l.run_id = $r1 AND l.lead_id = s.lead_id
	WHERE s.job = 'inc' AND (l.verdict, l.cluster_id, l.rep_id, l.call_order) IS NOT DISTINCT FROM (s.verdict, s.cluster_id, s.rep_id, s.call_order) AND s.score IS NULL")" \
	"$N" "the state holds the decision of the run's snapshot (and not its scores: the snapshot has them)"
held1=$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND rep_id IS NOT NULL")
ok "$([ "$held1" -gt 100 ]; echo $?)" "reps hold leads ($held1)"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND rep_id IS NOT NULL AND assigned_at IS NULL")" 0 \
	"every held lead says when its rep got it"

# ---- nothing changed: nothing written
out=$("$REFINERY" run -c "$tmp/inc.ini" 2>&1); rc=$?
r2=$(last inc)
is "$rc" 0 "a rerun on the same data succeeds"
like "$out" "^refinery: nothing changed since run $r1\$" "and says nothing changed since run $r1"
is "$(pq -c "SELECT leads_new + leads_changed + leads_vanished FROM refinery.runs WHERE run_id = $r2")/$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $r2")" \
	"0/0" "its runs row records 0 changes and it logged none: no lead moved between reps"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND changed_run = $r2")" 0 \
	"no state row was rewritten"

# ---- keys that decide nothing leave the rules unchanged; any other key does not
printf '[job]\nmax_change_percent = 50\nmin_rows = 2\n[output]\nkeep_runs = 9\nlock_timeout_ms = 4000\n[source]\npull_streams = 1\nlock_timeout_ms = 5000\n' >"$tmp/ops.ini"
model=$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")
out=$("$REFINERY" run -c "$tmp/inc.ini" -c "$tmp/ops.ini" 2>&1); rc=$?
r3=$(last inc)
is "$rc" 0 "a run with other guards, retention, lock timeouts and streams succeeds"
like "$out" "^refinery: nothing changed since run $r2\$" "and finds nothing changed: no lead rewritten"
is "$(pq -c "SELECT full_write || ':' || (rules_sha256 <> (SELECT rules_sha256 FROM refinery.runs WHERE run_id = $r2)) FROM refinery.runs WHERE run_id = $r3")" \
	"false:true" "its runs row records its own rules, and no full write"
is "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" "$model" "the job's dedupe model stays"
printf '[regex]\nmatch_limit = 10000001\n' >"$tmp/decide.ini"
out=$("$REFINERY" run -c "$tmp/inc.ini" -c "$tmp/decide.ini" 2>&1); rc=$?
r4=$(last inc)
is "$rc" 0 "a run with another regex limit succeeds"
like "$out" "^refinery: nothing changed since run $r3 \(every lead rewritten\)\$" \
	"a key that decides (the limit), though no lead changes: every lead rewritten"
is "$(pq -c "SELECT full_write FROM refinery.runs WHERE run_id = $r4")" "t" "its runs row records the full write"
ok "$([ "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" != "$model" ]; echo $?)" "and the model it learnt is tied to its rules"
out=$("$REFINERY" run -c "$tmp/inc.ini" 2>&1); rc=$?
like "$rc/$out" "nothing changed since run $r4 \(every lead rewritten\)\$" "back to the job's own rules: every lead rewritten again"
is "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" "$model" "and the model learnt again is the first one"

# ---- the nights, one by one
ids_same=0
for k in $(seq 1 $NIGHTS); do
	load "$k"
	prev=$(last inc)
	if [ "$k" = "$NIGHTS" ]; then
		# a do-not-call entry (no lead changed) for one record of a person whose other record a rep holds
		dnc=$(pq -c "SELECT o.lead_id || ' ' || o.phone_norm || ' ' || s.cluster_id FROM refinery.lead_state s
			JOIN refinery.lead_state o ON o.job = s.job AND o.cluster_id = s.cluster_id AND o.lead_id <> s.lead_id
			WHERE s.job = 'inc' AND s.state = 'current' AND o.state = 'current' AND s.rep_id IS NOT NULL
			  AND o.phone_norm IS NOT NULL AND o.verdict = 'duplicate'
			  AND NOT EXISTS (SELECT 1 FROM refinery.lead_state x WHERE x.job = s.job AND x.cluster_id = s.cluster_id
			                  AND x.lead_id <> o.lead_id AND x.phone_norm = o.phone_norm)
			ORDER BY s.lead_id LIMIT 1")
		read -r dnc_lead dnc_phone dnc_cluster <<<"$dnc"
		printf 'phone\n%s\n' "$dnc_phone" >"$tmp/dnc.csv"
	fi
	"$REFINERY" run -q -c "$tmp/inc.ini"; rc=$?
	cur=$(last inc)
	is "$rc" 0 "night $k: the run succeeds"
	is "$(pq -c "SELECT leads_new || ':' || leads_vanished FROM refinery.runs WHERE run_id = $cur")" \
		"$(pq -c "SELECT (SELECT count(*) FROM crm.leads l WHERE NOT EXISTS (SELECT 1 FROM refinery.lead_results p
		                  WHERE p.run_id = $prev AND p.lead_id = l.lead_id::text)) || ':' ||
		                 (SELECT count(*) FROM refinery.lead_results p WHERE p.run_id = $prev
		                  AND NOT EXISTS (SELECT 1 FROM crm.leads l WHERE l.lead_id::text = p.lead_id))")" \
		"night $k: new leads are those the last run did not pull, vanished ones those it pulled and the source lost"
	is "$(pq -c "SELECT count(*) FROM refinery.lead_state s LEFT JOIN crm.leads l ON l.lead_id::text = s.lead_id
		WHERE s.job = 'inc' AND (l.lead_id IS NULL) <> (s.state = 'vanished')")" 0 \
		"night $k: a lead is vanished exactly when the source no longer has it"
	is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND state = 'vanished' AND rep_id IS NOT NULL")" 0 \
		"night $k: a vanished lead is in no rep's queue"
	changed=$(pq -c "SELECT leads_new + leads_changed + leads_vanished FROM refinery.runs WHERE run_id = $cur")
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $cur")" "$changed" \
		"night $k: one change row per lead written ($changed)"
	ok "$([ "$changed" -lt $((N / 5)) ]; echo $?)" "night $k: a small share of the leads is written ($changed of about $N)"
	resolved=$(dd re-resolved "$cur")
	pairs=$(dd candidate_pairs "$cur")
	ok "$([ "$resolved" != - ] && [ "$resolved" -gt 0 ] && [ "$resolved" -lt $((N / 5)) ] && [ "$pairs" -lt $((pairs_full / 3)) ]; echo $?)" \
		"night $k: the dedupe re-resolved only what the night can affect ($resolved leads, $pairs pairs compared against $pairs_full in the first run)"
	# sticky: a lead still kept stays with its rep
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $cur AND old_rep_id IS NOT NULL
		AND change <> 'vanished' AND new_verdict = 'kept' AND new_rep_id IS DISTINCT FROM old_rep_id")" 0 \
		"night $k: no held lead that is still kept moved to another rep"
	# cluster ids: a cluster whose members did not change keeps its id
	same=$(pq -c "WITH a AS (SELECT cluster_id, string_agg(lead_id, ',' ORDER BY lead_id) m FROM refinery.lead_results
		                WHERE run_id = $prev AND cluster_id IS NOT NULL GROUP BY 1),
		         b AS (SELECT cluster_id, string_agg(lead_id, ',' ORDER BY lead_id) m FROM refinery.lead_results
		                WHERE run_id = $cur AND cluster_id IS NOT NULL GROUP BY 1)
		    SELECT count(*) FILTER (WHERE a.cluster_id <> b.cluster_id) || ':' || count(*) FROM a JOIN b USING (m)")
	is "${same%%:*}" 0 "night $k: every cluster whose members are unchanged keeps its id (${same#*:} such clusters)"
	ids_same=$((ids_same + ${same#*:}))
	is "$(pq -c "WITH b AS (SELECT DISTINCT cluster_id FROM refinery.lead_results WHERE run_id = $cur AND cluster_id IS NOT NULL),
		          a AS (SELECT l.cluster_id AS new_id, p.cluster_id AS old_id FROM refinery.lead_results l
		                JOIN refinery.lead_results p ON p.run_id = $prev AND p.lead_id = l.lead_id
		                WHERE l.run_id = $cur AND l.cluster_id IS NOT NULL AND p.cluster_id IS NOT NULL)
		     SELECT count(*) FROM b WHERE b.cluster_id IN (SELECT old_id FROM a)
		       AND b.cluster_id NOT IN (SELECT old_id FROM a WHERE a.new_id = b.cluster_id)")" 0 \
		"night $k: an old cluster id lives on only in a cluster holding some of its old members"
done
ok "$([ "$ids_same" -gt 100 ]; echo $?)" "the cluster-id checks compared many clusters ($ids_same)"

# ---- the same data in one run
"$REFINERY" run -q -c "$tmp/full.ini"; rc=$?
is "$rc" 0 "a new job's one run over the final data"
rf=$(last full)
ri=$(last inc)
# where the order of arrival changed a decision: each lead, both decisions and their reasons
diff=$(pq -c "SELECT string_agg(format('lead %s: nightly %s (%s: %s), one run %s (%s: %s)', i.lead_id, i.verdict,
	coalesce(i.rule_id, '-'), coalesce(i.reason, '-'), f.verdict, coalesce(f.rule_id, '-'), coalesce(f.reason, '-')), E'\n' ORDER BY i.lead_id)
	FROM refinery.lead_results i JOIN refinery.lead_results f ON f.run_id = $rf AND f.lead_id = i.lead_id
	WHERE i.run_id = $ri AND i.verdict <> f.verdict")
[ -n "$diff" ] && printf '%s\n' "verdicts that differ from one full run (the nights weigh pairs with the model the job's first run learnt, one run learns its own; a pair near the threshold can fall either way):" "$diff" | sed 's/^/# /'
ndiff=$(pq -c "SELECT count(*) FROM refinery.lead_results i JOIN refinery.lead_results f ON f.run_id = $rf AND f.lead_id = i.lead_id
	WHERE i.run_id = $ri AND i.verdict <> f.verdict")
total=$(pq -c "SELECT count(*) FROM crm.leads")
ok "$([ $((ndiff * 1000)) -le "$total" ]; echo $?)" "at most 0.1% of the verdicts differ from one full run ($ndiff of $total)"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results i JOIN refinery.lead_results f ON f.run_id = $rf AND f.lead_id = i.lead_id
	WHERE i.run_id = $ri AND (i.verdict, i.rule_id) IS DISTINCT FROM (f.verdict, f.rule_id) AND i.verdict <> 'kept' AND f.verdict <> 'kept'")" 0 \
	"and no removed lead was removed by another rule"
pairs() { # RUN: same-cluster pairs of the run as "a b" lines
	pq -c "SELECT count(*) FROM refinery.lead_results a JOIN refinery.lead_results b
	       ON a.run_id = b.run_id AND a.cluster_id = b.cluster_id AND a.lead_id < b.lead_id WHERE a.run_id = $1"
}
both=$(pq -c "SELECT count(*) FROM refinery.lead_results a JOIN refinery.lead_results b
	ON a.run_id = b.run_id AND a.cluster_id = b.cluster_id AND a.lead_id < b.lead_id
	JOIN refinery.lead_results fa ON fa.run_id = $rf AND fa.lead_id = a.lead_id
	JOIN refinery.lead_results fb ON fb.run_id = $rf AND fb.lead_id = b.lead_id AND fb.cluster_id = fa.cluster_id
	WHERE a.run_id = $ri")
pi=$(pairs "$ri"); pf=$(pairs "$rf")
# mates RUN: the query of each clustered lead with the sorted list of the others in its cluster
mates() {
	echo "SELECT a.lead_id, string_agg(b.lead_id, ',' ORDER BY b.lead_id) m FROM refinery.lead_results a
		JOIN refinery.lead_results b ON b.run_id = a.run_id AND b.cluster_id = a.cluster_id AND b.lead_id <> a.lead_id
		WHERE a.run_id = $1 GROUP BY 1"
}
pdiff=$(pq -c "SELECT string_agg(format('lead %s: nightly with {%s}, one run with {%s}', lead_id, coalesce(i.m, ''), coalesce(f.m, '')), E'\n' ORDER BY lead_id)
	FROM ($(mates "$ri")) i FULL JOIN ($(mates "$rf")) f USING (lead_id) WHERE i.m IS DISTINCT FROM f.m")
[ -n "$pdiff" ] && printf '%s\n' "leads whose cluster differs from one full run:" "$pdiff" | sed 's/^/# /'
npdiff=$(pq -c "SELECT count(*) FROM ($(mates "$ri")) i FULL JOIN ($(mates "$rf")) f USING (lead_id) WHERE i.m IS DISTINCT FROM f.m")
ok "$([ $((npdiff * 1000)) -le "$total" ] && [ "$both" -gt 100 ]; echo $?)" \
	"the same partition into clusters as the full run but for at most 0.1% of the leads ($npdiff differ; $pi same-person pairs nightly, $pf in one run, $both in both)"
# the do-not-call entry of the last night: the person's every record left the queues
person=$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND state = 'current' AND cluster_id = $dnc_cluster")
is "$(pq -c "SELECT count(*) FILTER (WHERE rep_id IS NOT NULL) || '/' || count(*) FILTER (WHERE verdict = 'blacklisted')
	FROM refinery.lead_state WHERE job = 'inc' AND state = 'current' AND cluster_id = $dnc_cluster")" "0/$person" \
	"a do-not-call entry for lead $dnc_lead ($dnc_phone), whose record did not change, black-listed every record of its person (cluster $dnc_cluster, $person records) and left none in a queue"
# a new opt-out of a person: none of the person's records is in a queue
optouts=$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE job = 'inc' AND change = 'changed'
	AND new_rule_id = 'blacklist.dnc_status' AND old_rule_id IS DISTINCT FROM 'blacklist.dnc_status'")
ok "$([ "$optouts" -gt 0 ]; echo $?)" "the nights brought opt-outs (do-not-call statuses) on leads that had none ($optouts)"
kept_optouts() { # JOB: kept records of people who opted out on some record (the truth's people)
	pq -c "SELECT string_agg(s.lead_id, ',' ORDER BY s.lead_id) FROM refinery.lead_state s JOIN crm.truth t ON t.lead_id::text = s.lead_id
		WHERE s.job = '$1' AND s.state = 'current' AND s.verdict = 'kept'
		  AND t.entity_id IN (SELECT entity_id FROM crm.truth WHERE is_optout = 1)"
}
is "$(kept_optouts inc)" "$(kept_optouts full)" \
	"the records of opted-out people still kept are those one full run keeps ($(kept_optouts full): records dedupe did not link)"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_state o ON o.job = s.job AND o.cluster_id = s.cluster_id
	WHERE s.job = 'inc' AND s.state = 'current' AND o.state = 'current' AND s.rep_id IS NOT NULL
	  AND o.verdict = 'blacklisted' AND o.rule_id IN ('blacklist.dnc_status', 'blacklist.optout_notes')")" 0 \
	"no record of a person who opted out (a person-level rule, same cluster), however old, is in a rep's queue"

# ---- revert puts the state back exactly
snap() { pq -c "SELECT md5(string_agg(row(lead_id, state, fingerprint, first_run, changed_run, assigned_at, source, verdict,
	rule_id, reason, cluster_id, survivor_id, score, points, temperature, cohort, rep_id, call_order, p_close, sla_due_at,
	golden)::text, ',' ORDER BY lead_id)) FROM refinery.lead_state WHERE job = '$1'"; }
before=$(snap inc)
load 0
"$REFINERY" run -q --force -c "$tmp/inc.ini"; rc=$?
rb=$(last inc)
is "$rc" 0 "a run over the base data again (a mistake)"
isnt "$(snap inc)" "$before" "changes the state"
out=$("$REFINERY" revert --job inc --run "$ri" 2>&1); rc=$?
is "$rc" 5 "revert of a run that is not the latest is refused"
like "$out" "is not the latest committed run of job \"inc\" \\(run $rb is\\)" "naming the latest"
out=$("$REFINERY" revert --job inc --run "$rb"); rc=$?
is "$rc" 0 "revert --run $rb"
like "$out" "^refinery: run $rb of job \"inc\" reverted: [0-9]+ leads of the job's state put back\$" "says what it put back"
is "$(snap inc)" "$before" "the state is exactly as before the run"
is "$(pq -c "SELECT status FROM refinery.runs WHERE run_id = $rb")/$(last inc)" "reverted/$ri" \
	"the run is reverted and latest_run names the run before it"
out=$("$REFINERY" revert --job inc --run "$rb" 2>&1); rc=$?
is "$rc" 5 "a reverted run cannot be reverted again"
# a mistaken run with rules of its own rewrites every lead and learns a dedupe model of its
# own: revert puts back the decisions and the job's model (a full write logs only the leads
# whose decision changed, so the others keep the call order and changed_run it gave them)
decisions() { pq -c "SELECT md5(string_agg(row(lead_id, state, verdict, rule_id, cluster_id, survivor_id,
	temperature, cohort, rep_id, assigned_at)::text, ',' ORDER BY lead_id)) FROM refinery.lead_state WHERE job = '$1'"; }
dbefore=$(decisions inc)
model=$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")
"$REFINERY" run -q --force -c "$tmp/inc.ini" -c "$tmp/decide.ini"; rc=$?
rm=$(last inc)
is "$rc/$(pq -c "SELECT full_write FROM refinery.runs WHERE run_id = $rm")" "0/t" "a run with a rules file of its own: a full write"
ok "$([ "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" != "$model" ]; echo $?)" \
	"that replaced the job's dedupe model"
is "$(pq -c "SELECT dedupe_model_changed || ':' || (dedupe_model_before = '$model') FROM refinery.runs WHERE run_id = $rm")" \
	"true:true" "its runs row keeps the model it replaced"
"$REFINERY" revert -q --job inc --run "$rm"; rc=$?
is "$rc" 0 "revert --run $rm"
is "$(pq -c "SELECT dedupe_model FROM refinery.jobs WHERE name = 'inc'")" "$model" "the job's dedupe model is back"
is "$(decisions inc)" "$dbefore" "and so is every lead's decision"

# ---- the rest of the state is read behind the stages: its failures fail the run, whole
if fault_hooks; then
	load "$NIGHTS"
	before=$(snap inc)
	pg_run_stalled state_rest "$tmp/gate_rest" -c "$tmp/inc.ini"
	ok $? "a run stops in the reader of the rest of its state (the stages go on)"
	pq -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'refinery'" >/dev/null
	pg_wait_no_engine
	touch "$tmp/gate_rest"
	wait $pid; rc=$?
	is "$rc" 4 "its session ended meanwhile: the connection code"
	like "$(cat "$tmp/gate_rest.err")" "reading the job's state failed" "naming the phase"
	is "$(snap inc)/$(last inc)" "$before/$ri" "nothing was written"
	pg_run_stalled state_rest "$tmp/gate_term" -c "$tmp/inc.ini"
	ok $? "again, stopped in the reader"
	kill -TERM $pid
	wait $pid; rc=$?
	is "$rc" 7 "SIGTERM: the interrupted code (the reader's COPY is cancelled)"
	is "$(snap inc)/$(last inc)" "$before/$ri" "nothing was written"
	pg_wait_no_engine
	pq -c "SELECT name FROM refinery.jobs WHERE name = 'inc' FOR UPDATE NOWAIT" >/dev/null
	ok $? "and the job's lease is free"
else
	skip 8 "refinery was built without --enable-fault-injection"
fi

# ---- churn: one rep goes inactive; only that rep's leads move
load "$NIGHTS"
rep=$(pq -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'inc' AND rep_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
had=$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND rep_id = $rep")
pq -c "UPDATE crm.reps SET active = false WHERE rep_id = $rep" >/dev/null
"$REFINERY" run -q -c "$tmp/inc.ini"; rc=$?
rc2=$(last inc)
is "$rc" 0 "a run after rep $rep (holding $had leads) went inactive"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'inc' AND rep_id = $rep")" 0 "the rep holds nothing now"
is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $rc2 AND old_rep_id IS DISTINCT FROM new_rep_id AND old_rep_id IS DISTINCT FROM $rep")" 0 \
	"no other rep's lead moved"
is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $rc2 AND old_rep_id = $rep")" "$had" \
	"every one of the rep's $had leads is in the change log"
pq -c "UPDATE crm.reps SET active = true WHERE rep_id = $rep" >/dev/null

# ---- snapshot = no: the state answers for the latest run
"$REFINERY" run -q -c "$tmp/lean.ini"; rc=$?
rl=$(last lean)
is "$rc/$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $rl")/$(pq -c "SELECT snapshot FROM refinery.runs WHERE run_id = $rl")" \
	"0/0/f" "a run with snapshot = no writes no lead_results rows"
is "$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $rl")" "$total" "refinery.results has every lead of it"
is "$(pq -c "SELECT string_agg(verdict || ':' || leads, ' ' ORDER BY verdict) FROM refinery.run_funnel WHERE run_id = $rl AND step > 0 AND rule_id IS NULL")" \
	"$(pq -c "SELECT string_agg(verdict || ':' || n, ' ' ORDER BY verdict) FROM (SELECT verdict, count(*) n FROM refinery.lead_state WHERE job = 'lean' AND state = 'current' AND verdict = 'kept' AND rule_id IS NULL GROUP BY 1) s")" \
	"run_funnel reads it"
is "$(pq -c "SELECT count(*) FROM (SELECT rep_id, call_order FROM refinery.results WHERE run_id = $rl AND rep_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d")" 0 \
	"each rep's queue is numbered without a gap or a tie"
is "$(pq -c "SELECT count(*) FROM refinery.results r JOIN (SELECT lead_id, row_number() OVER (PARTITION BY rep_id
	ORDER BY p_close DESC, sla_due_at NULLS LAST, call_order, lead_id) AS n FROM refinery.lead_state
	WHERE job = 'lean' AND state = 'current' AND rep_id IS NOT NULL) w USING (lead_id)
	WHERE r.run_id = $rl AND r.call_order IS DISTINCT FROM w.n")" 0 \
	"in the order p_close, due time, the assigning run's order, lead id"
lead=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'lean' AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
out=$("$REFINERY" explain --verbose --job lean "$lead"); rc=$?
is "$rc" 0 "explain reads a lead of a run without a snapshot"
like "$out" "^rep_id +\\| [0-9]+\$" "with its rep"
"$REFINERY" export --job lean --csv "$tmp/lean.csv"; rc=$?
is "$rc/$(($(wc -l <"$tmp/lean.csv") - 1 - $(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'lean' AND (reason LIKE '%'||chr(10)||'%' OR golden::text LIKE '%'||chr(10)||'%')")))" \
	"0/$total" "export writes every lead of it"
out=$("$REFINERY" run -c "$tmp/lean.ini" 2>&1); rc=$?
like "$out" "nothing changed since run $rl" "a rerun of it: nothing changed"
is "$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $(last lean)")/$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $rl")" \
	"$total/0" "the views now answer for the newer run; the older one has its summaries only"
out=$("$REFINERY" export --job lean --run "$rl" --csv "$tmp/old.csv" 2>&1); rc=$?
like "$rc/$out" "^5/.*run $rl kept no snapshot of its leads .* only its summaries remain" \
	"export of that older run fails saying why, not with an empty file"
out=$("$REFINERY" explain --job lean --run "$rl" "$lead" 2>&1); rc=$?
like "$rc/$out" "^5/.*run $rl kept no snapshot" "so does explain, instead of 'not in run'"
out=$("$REFINERY" report --job lean --run "$rl" 2>&1 >/dev/null); rc=$?
like "$rc/$out" "^0/refinery: warning: run $rl kept no snapshot .*: the tables of its leads below are empty" \
	"report prints the run's summaries with a warning"
hist=$(pq -c "SELECT string_agg(change, ',' ORDER BY run_id) FROM refinery.lead_history('inc',
	(SELECT lead_id FROM refinery.lead_changes WHERE job = 'inc' AND change = 'changed' ORDER BY run_id, lead_id LIMIT 1))")
like "$hist" '^new(,[a-z]+)*,changed' "lead_history lists a lead's changes, oldest first ($hist)"

# ---- run --full re-resolves every lead, and learns the model again
"$REFINERY" run -q --full -c "$tmp/inc.ini"; rc=$?
is "$rc/$(dd re-resolved "$(last inc)")" "0/-" "run --full: the dedupe resolves every lead"

done_testing
