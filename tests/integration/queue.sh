#!/bin/bash
# tests/integration/queue.sh -- the pull queue against a throwaway server: next_lead hands a
# rep its held leads in order, then the best unheld one, and never one lead twice, also to
# 32 sessions pulling at once (pgbench); a take expires after take_hours; record_outcome
# keeps an outcome once and ends the take; only members of refinery_dialer may call them;
# and a run that read a lead before a dialer took it leaves the take alone; a person a rep
# holds stays with that rep when a newer record of it becomes the survivor.  Concurrency
# with the run is synchronised on a stalled engine's file (REFINERY_FAULT), never on time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
PG_MAX_CONNECTIONS=50 pg_test_start
bindir=$(pg_bindir)

N=3000
"$GENLEADS" --rows $N --seed 5 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat >"$tmp/q.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = q
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
take_hours = 6
EOF
# few places at the reps, so that some kept leads wait unheld
pq -c "UPDATE crm.reps SET capacity = 5" >/dev/null
"$REFINERY" init-db -q
ok $? "init-db"
"$REFINERY" run -q -c "$tmp/q.ini"
ok $? "a first run of job q"
is "$(pq -c "SELECT take_hours FROM refinery.jobs WHERE name = 'q'")" 6 "the run records [match] take_hours for its job"
is "$(pq -c "SELECT count(*) FROM pg_roles WHERE rolname = 'refinery_dialer' AND NOT rolcanlogin")" 1 \
	"init-db made the role refinery_dialer"
pq -c "CREATE ROLE dialer LOGIN IN ROLE refinery_dialer; CREATE ROLE stranger LOGIN;
       CREATE TABLE public.pulls (rep bigint, lead_id text, at timestamptz DEFAULT clock_timestamp());
       GRANT INSERT, SELECT ON public.pulls TO dialer" >/dev/null
dq() { psql -X -q -v ON_ERROR_STOP=1 -At -U dialer "$@"; }

# ---- privileges
err=$(psql -X -q -At -U stranger -c "SELECT * FROM refinery.next_lead('q', 1)" 2>&1); rc=$?
is "$rc" 1 "a role outside refinery_dialer may not call next_lead"
like "$err" 'permission denied for (function next_lead|schema refinery)' "it is told so"
err=$(dq -c "SELECT count(*) FROM refinery.lead_state" 2>&1); rc=$?
like "$rc/$err" '^1/.*permission denied for table lead_state' "a dialer reads no table of the schema directly"

# ---- a rep's queue: held leads in order, then the best unheld one
rep=$(pq -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'q' AND rep_id IS NOT NULL GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")
held=$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'q' AND rep_id = $rep AND verdict = 'kept'")
want=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'q' AND rep_id = $rep AND verdict = 'kept'
	ORDER BY p_close DESC NULLS LAST, sla_due_at NULLS LAST, call_order, lead_id LIMIT 1")
got=$(dq -c "SELECT lead_id || ' ' || (phone_norm ~ '^\+[0-9]{8,15}$')::text FROM refinery.next_lead('q', $rep)")
is "$got" "$want true" "next_lead gives rep $rep its best held lead first, with its E.164 phone"
is "$(pq -c "SELECT taken_by || ':' || (taken_at IS NOT NULL) FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$want'")" \
	"$rep:true" "and marks it taken by the rep"
for _ in $(seq 2 "$held"); do dq -c "SELECT lead_id FROM refinery.next_lead('q', $rep)" >/dev/null; done
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'q' AND rep_id = $rep AND taken_at IS NULL AND verdict = 'kept'")" 0 \
	"$held calls took every lead the rep holds"
best=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND verdict = 'kept' AND rep_id IS NULL
	ORDER BY p_close DESC NULLS LAST, sla_due_at NULLS LAST, call_order NULLS LAST, lead_id LIMIT 1")
ok "$([ -n "$best" ]; echo $?)" "some kept leads wait unheld (over capacity)"
is "$(dq -c "SELECT lead_id FROM refinery.next_lead('q', $rep)")" "$best" "then it gives the best lead nobody holds"
is "$(pq -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$best'")" "$rep" "which the rep now holds"

# ---- a take expires after take_hours; an outcome is kept once and ends the take
pq -c "UPDATE refinery.lead_state SET taken_at = now() - interval '7 hours' WHERE job = 'q' AND lead_id = '$want'" >/dev/null
is "$(dq -c "SELECT lead_id FROM refinery.next_lead('q', $rep)")" "$want" "a lead taken 7 hours ago with no outcome comes back (take_hours = 6)"
is "$(dq -c "SELECT refinery.record_outcome('q', '$want', $rep, ' no_answer ', '2025-07-01 10:00:00.7')")" "t" "record_outcome keeps a new outcome"
is "$(dq -c "SELECT refinery.record_outcome('q', '$want', $rep, 'no_answer', '2025-07-01 10:00:00.2')")" "f" \
	"the same outcome at the same second again is not kept twice"
is "$(pq -c "SELECT count(*) || ':' || min(outcome) || ':' || min(at)::text FROM refinery.outcomes WHERE lead_id = '$want'")" \
	"1:no_answer:2025-07-01 10:00:00+00" "one row, trimmed, to the second"
is "$(pq -c "SELECT taken_at IS NULL FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$want'")" "t" "and the take ended"
# the details a dialer may give, by name, kept with the outcome
is "$(dq -c "SELECT refinery.record_outcome('q', '$want', $rep, 'callback', '2025-07-01 11:00:00',
	duration_s => 95, amount => 12.50, region => ' Haifa ', callback_at => '2025-07-03 09:30:00+00')")" "t" \
	"record_outcome takes a duration, an amount, a region and a callback time"
is "$(pq -c "SELECT duration_s || ':' || amount || ':' || region || ':' || callback_at::text FROM refinery.outcomes
	WHERE lead_id = '$want' AND outcome = 'callback'")" "95:12.50:Haifa:2025-07-03 09:30:00+00" "and keeps them (region trimmed)"
err=$(dq -c "SELECT refinery.record_outcome('q', '$want', $rep, 'busy', now(), duration_s => -1)" 2>&1); rc=$?
like "$rc/$err" '^1/.*duration_s must not be negative' "a negative duration is refused"
err=$(dq -c "SELECT refinery.record_outcome('q', 'nosuch', $rep, 'won', now())" 2>&1); rc=$?
like "$rc/$err" '^1/.*job "q" has no lead "nosuch"' "an outcome of an unknown lead is refused, naming it"

# ---- 32 sessions pulling at once: no lead twice, none lost
reps=$(pq -c "SELECT string_agg(rep_id::text, ' ') FROM (SELECT DISTINCT rep_id FROM refinery.lead_state WHERE job = 'q' AND rep_id IS NOT NULL) r")
nreps=$(wc -w <<<"$reps")
avail=$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND verdict = 'kept' AND taken_at IS NULL")
cat >"$tmp/pull.sql" <<EOF
\\set r random(1, $nreps)
INSERT INTO public.pulls (rep, lead_id) SELECT r.rep, n.lead_id
  FROM (SELECT (string_to_array('$reps', ' '))[:r]::bigint AS rep) r, refinery.next_lead('q', r.rep) n;
EOF
"$bindir/pgbench" -n -U dialer -c 32 -j 2 -t 40 -f "$tmp/pull.sql" >"$tmp/pgbench.out" 2>&1; rc=$?
is "$rc" 0 "pgbench: 32 sessions call next_lead 40 times each"
[ "$rc" = 0 ] || sed 's/^/# /' "$tmp/pgbench.out" | tail -5
grep -E '^(tps|latency average)' "$tmp/pgbench.out" | sed 's/^/# /'
pulled=$(pq -c "SELECT count(*) FROM public.pulls")
is "$(pq -c "SELECT count(*) - count(DISTINCT lead_id) FROM public.pulls")" 0 "no lead was handed out twice ($pulled handed out)"
expect=$((avail < 1280 ? avail : 1280))
is "$pulled" "$expect" "every call got a lead while any was free (min of 1280 calls and $avail free leads)"
is "$(pq -c "SELECT count(*) FROM public.pulls p JOIN refinery.lead_state s ON s.job = 'q' AND s.lead_id = p.lead_id
	WHERE s.taken_by = p.rep AND s.rep_id = p.rep AND s.taken_at IS NOT NULL")" "$pulled" \
	"each is taken by, and held by, the rep it went to"

# ---- a run that read a lead before a dialer took it leaves the take alone
if fault_hooks; then
	lead=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND verdict = 'kept'
		AND taken_at IS NULL ORDER BY lead_id LIMIT 1")
	lrep=$rep
	# its source fields change, so the run will want to rewrite it
	pq -c "UPDATE crm.leads SET handler_notes = coalesce(handler_notes, '') || ' (called back)' WHERE lead_id = $lead" >/dev/null
	pg_run_stalled compute "$tmp/gate1" -c "$tmp/q.ini"
	ok $? "a run stops after reading the job's state"
	pq -c "UPDATE refinery.lead_state SET taken_at = now(), taken_by = $lrep, rep_id = $lrep, version = version + 1
		WHERE job = 'q' AND lead_id = '$lead'" >/dev/null
	touch "$tmp/gate1"
	wait $pid; rc=$?
	is "$rc" 0 "meanwhile the lead is taken; the run then commits"
	[ "$rc" = 0 ] || sed "s/^/# /" "$tmp/gate1.err"
	like "$(cat "$tmp/gate1.out")" 'refinery: 1 of them left as the queue changed them after the run read them' \
		"and says it left one lead as the queue changed it"
	is "$(pq -c "SELECT (taken_at IS NOT NULL) || ':' || taken_by FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$lead'")" \
		"true:$lrep" "the take stands"
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE lead_id = '$lead'")" 0 "and the run logged no change of it"
	"$REFINERY" run -q -c "$tmp/q.ini"
	is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE lead_id = '$lead'")" 1 "the next run writes the lead's change"

	# a dialer records an outcome of the job while a run of it holds the lease
	pg_run_stalled compute "$tmp/gate2" -c "$tmp/q.ini" -d "keepalives_idle=45 keepalives_count=4"
	ok $? "a run stops with the job's lease held"
	out=$(dq -c "SET lock_timeout = '5s'" -c "SELECT refinery.record_outcome('q', '$lead', $lrep, 'busy', now())" 2>&1)
	is "$?/$out" "0/t" "meanwhile a dialer's outcome of the job is recorded, not held until the run ends"
	touch "$tmp/gate2"
	wait $pid
	is "$?" 0 "the run then commits"
	is "$(pg_log | grep -o "SET LOCAL tcp_keepalives_[a-z]* = [0-9]*" | sort -u | tr '\n' ' ')" \
		"SET LOCAL tcp_keepalives_count = 3 SET LOCAL tcp_keepalives_count = 4 SET LOCAL tcp_keepalives_idle = 30 SET LOCAL tcp_keepalives_idle = 45 SET LOCAL tcp_keepalives_interval = 10 " \
		"runs set the server's keepalives as the conninfo sets the client's (idle 30, interval 10, count 3 unless it says otherwise)"

	# a full write that met a take left that row as the queue had it: the next run rewrites it
	lead2=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND verdict = 'kept'
		AND taken_at IS NULL AND rep_id = $lrep ORDER BY lead_id LIMIT 1")
	pg_run_stalled compute "$tmp/gate3" --full -c "$tmp/q.ini"
	ok $? "a full write stops after reading the job's state"
	pq -c "UPDATE refinery.lead_state SET taken_at = now(), taken_by = $lrep, version = version + 1
		WHERE job = 'q' AND lead_id = '$lead2'" >/dev/null
	touch "$tmp/gate3"
	wait $pid; rc=$?
	rf=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'q' AND status = 'committed'")
	is "$rc/$(pq -c "SELECT changed_run < $rf FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$lead2'")" "0/t" \
		"it commits, leaving the lead its rep took meanwhile ($lead2) as the queue left it"
	"$REFINERY" run -q -c "$tmp/q.ini"; rc=$?
	rn=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'q' AND status = 'committed'")
	is "$rc/$(pq -c "SELECT changed_run || ':' || rep_id FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$lead2'")" \
		"0/$rn:$lrep" "the next run rewrites that lead, though nothing about it changed, and leaves it with the rep who took it"
	is "$(pq -c "SELECT count(*) FROM public.pulls p JOIN refinery.lead_state s ON s.job = 'q' AND s.lead_id = p.lead_id
		WHERE s.verdict = 'kept' AND s.rep_id IS DISTINCT FROM p.rep")" 0 \
		"every lead a rep took and is working stays with that rep, though reps now hold more than their capacity"
else
	skip 14 "refinery was built without --enable-fault-injection"
fi

# ---- keepalives a service file sets win over the engine's defaults (libpq lets parameters
# given to it override a service file's, so the engine must not give its defaults)
printf '127.0.0.1:%s:*:postgres:%s\n' "$PGPORT" "$PG_TEST_PASSWORD" >"$tmp/pgpass"
chmod 600 "$tmp/pgpass"
printf '[ka]\nhost=127.0.0.1\nport=%s\nkeepalives_idle=50\nkeepalives_count=5\n' "$PGPORT" >"$tmp/pg_service.conf"
# the server's keepalives that the runs set, in the server log from line $1 on
keepalives_from() { pg_log | tail -n "+$1" | grep -o "SET LOCAL tcp_keepalives_[a-z]* = [0-9]*" | sort -u | tr '\n' ' '; }
from=$(($(pg_log | wc -l) + 1))
PGSERVICEFILE="$tmp/pg_service.conf" PGPASSFILE="$tmp/pgpass" "$REFINERY" run -q -c "$tmp/q.ini" -d "service=ka"
is "$?/$(keepalives_from $from)" \
	"0/SET LOCAL tcp_keepalives_count = 5 SET LOCAL tcp_keepalives_idle = 50 SET LOCAL tcp_keepalives_interval = 10 " \
	"a run over TCP with service=: the service file's idle and count, the engine's interval"
from=$(($(pg_log | wc -l) + 1))
PGSERVICE=ka PGSERVICEFILE="$tmp/pg_service.conf" PGPASSFILE="$tmp/pgpass" "$REFINERY" run -q -c "$tmp/q.ini" \
	-d "keepalives_idle=45"
is "$?/$(keepalives_from $from)" \
	"0/SET LOCAL tcp_keepalives_count = 5 SET LOCAL tcp_keepalives_idle = 45 SET LOCAL tcp_keepalives_interval = 10 " \
	"with PGSERVICE: the conninfo's idle over the service's, the service's count"
unlike "$(pg_log)" "$PG_TEST_PASSWORD" "the password reaches no log"

# ---- revert puts back a vanished lead's take; a reverted full write makes the next run one
T=$(pq -c "SELECT s.lead_id FROM public.pulls p JOIN refinery.lead_state s ON s.job = 'q' AND s.lead_id = p.lead_id
	WHERE s.taken_at IS NOT NULL AND s.state = 'current' ORDER BY s.lead_id LIMIT 1")
take=$(pq -c "SELECT taken_at || ' ' || taken_by || ' ' || rep_id FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$T'")
pq -c "CREATE TABLE public.gone AS SELECT * FROM crm.leads WHERE lead_id = $T; DELETE FROM crm.leads WHERE lead_id = $T" >/dev/null
"$REFINERY" run -q -c "$tmp/q.ini"; rc=$?
rv=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'q' AND status = 'committed'")
is "$rc/$(pq -c "SELECT state || ':' || (taken_at IS NULL) FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$T'")" \
	"0/vanished:true" "a taken lead gone from the source vanishes and its take ends ($T)"
"$REFINERY" revert -q --job q --run "$rv"; rc=$?
is "$rc/$(pq -c "SELECT state || ' ' || taken_at || ' ' || taken_by || ' ' || rep_id FROM refinery.lead_state WHERE job = 'q' AND lead_id = '$T'")" \
	"0/current $take" "reverting that run brings it back taken by the same rep since the same time"
pq -c "INSERT INTO crm.leads SELECT * FROM public.gone" >/dev/null
"$REFINERY" run -q --full -c "$tmp/q.ini"; rc=$?
rf=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'q' AND status = 'committed'")
"$REFINERY" revert -q --job q --run "$rf"
is "$rc/$?/$(pq -c "SELECT status || ':' || full_write FROM refinery.runs WHERE run_id = $rf")" "0/0/reverted:true" \
	"a full write (--full) is reverted"
out=$("$REFINERY" run -c "$tmp/q.ini" 2>&1); rc=$?
rn=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'q' AND status = 'committed'")
like "$rc/$out" "^0/.*run $rf of job \"q\", a full write, was reverted: this run rewrites every lead" \
	"the next run says it rewrites every lead, since the full write was undone"
is "$(pq -c "SELECT full_write FROM refinery.runs WHERE run_id = $rn")/$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND changed_run <> $rn")" \
	"t/0" "and does: every current lead's row is its own"
out=$("$REFINERY" run -c "$tmp/q.ini" 2>&1)
unlike "$out" "reverted|every lead rewritten" "the run after it is incremental again"

# ---- a person stays with its rep when a new record of it becomes the survivor
# Job "person": rep 1 (one place) holds one lead; rep 2, far better and without a limit,
# is inactive until the next run, which brings a newer record of that lead's person.
pq -c "CREATE TABLE public.preps (rep_id int, name text, active boolean, capacity int);
       INSERT INTO public.preps VALUES (1, 'Ann', true, 1), (2, 'Bob', false, NULL);
       CREATE TABLE public.pstats AS SELECT rep_id, source, 1000 AS attempts, CASE rep_id WHEN 1 THEN 10 ELSE 300 END AS wins
         FROM public.preps, (SELECT DISTINCT source FROM crm.leads WHERE source IS NOT NULL) s" >/dev/null
sed -e 's/^name = q$/name = person/' -e 's/FROM crm\.reps$/FROM public.preps/' -e 's/FROM crm\.rep_source_stats$/FROM public.pstats/' \
	"$tmp/q.ini" >"$tmp/person.ini"
"$REFINERY" run -q -c "$tmp/person.ini"; rc=$?
P1=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'person' AND rep_id = 1 AND verdict = 'kept'")
is "$rc/$(wc -w <<<"$P1")" "0/1" "job person: rep 1 holds one lead ($P1)"
# the hold began three days before the next run
pq -c "UPDATE refinery.lead_state SET assigned_at = assigned_at - interval '3 days' WHERE job = 'person' AND lead_id = '$P1'" >/dev/null
since=$(pq -c "SELECT assigned_at FROM refinery.lead_state WHERE job = 'person' AND lead_id = '$P1'")
P2=$(pq -c "SELECT max(lead_id) + 1 FROM crm.leads")
pq -c "INSERT INTO crm.leads SELECT $P2, created_at, source, campaign, full_name, phone, email, city, status,
         (SELECT max(last_touch_at) FROM crm.leads) + interval '1 minute', touch_count, last_touch_type, handler_notes,
         automation_after_last_touch, NULL FROM crm.leads WHERE lead_id = $P1;
       UPDATE public.preps SET active = true WHERE rep_id = 2" >/dev/null
"$REFINERY" run -q -c "$tmp/person.ini"; rc=$?
is "$rc/$(pq -c "SELECT verdict || ':' || survivor_id FROM refinery.lead_state WHERE job = 'person' AND lead_id = '$P1'")/$(pq -c "SELECT verdict FROM refinery.lead_state WHERE job = 'person' AND lead_id = '$P2'")" \
	"0/duplicate:$P2/kept" "the next run makes the newer record ($P2) the survivor and the held one a duplicate of it"
is "$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'person' AND lead_id = '$P2'")" "1 $since" \
	"the survivor stays with rep 1, held since the hold began, though rep 2 has room and closes better"
is "$(pq -c "SELECT counters ->> 'held: passed on by a duplicate' FROM refinery.stage_times WHERE stage = 'match'
	AND run_id = (SELECT max(run_id) FROM refinery.runs WHERE job = 'person')")" 1 "the match stage counts the hold passed on"
out=$("$REFINERY" run -c "$tmp/person.ini" 2>&1); rc=$?
is "$rc/$(grep -c '^refinery: nothing changed since run' <<<"$out")" "0/1" "the run after it changes nothing"
is "$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'person' AND lead_id = '$P2'")" "1 $since" \
	"and the person is still with rep 1, since the same time"

done_testing
