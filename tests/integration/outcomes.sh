#!/bin/bash
# tests/integration/outcomes.sh -- outcomes read back by the next run of the job: the
# [outcomes] map (an unknown value stops the run, naming it); a refusal opts the whole
# person out; a win makes every kept record of the person a customer; a wrong number is
# dead for every record carrying it; won, lost, refused and wrong_number end the rep's
# hold, no_answer ends it only after [match] max_attempts; a lead lost or not relevant
# rests [outcomes] rest_days, counted from the outcome's time in the run's time zone; the
# outcomes are marked read; a rerun decides the same; and in a zone named like an abbreviation
# (CET) outcomes and holds are read with the zone's summer time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=4000
"$GENLEADS" --rows $N --seed 11 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat >"$tmp/o.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = o
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
max_attempts = 3
EOF
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/o.ini"
ok $? "a first run of job o"

# held leads in clusters of two or more kept-or-not records, one per role, all different
pick() { # WHERE: a held kept lead of job o not picked yet
	pq -c "SELECT s.lead_id FROM refinery.lead_state s WHERE s.job = 'o' AND s.verdict = 'kept' AND s.rep_id IS NOT NULL
	       AND s.lead_id NOT IN ('${picked// /\',\'}') AND $1 ORDER BY s.lead_id LIMIT 1"
}
picked=x
in_cluster="s.cluster_id IS NOT NULL AND EXISTS (SELECT 1 FROM refinery.lead_state m WHERE m.job = 'o'
	AND m.cluster_id = s.cluster_id AND m.lead_id <> s.lead_id)"
R=$(pick "$in_cluster"); picked="$picked $R"
W=$(pick "$in_cluster AND s.cluster_id <> (SELECT cluster_id FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$R')"); picked="$picked $W"
P=$(pick "s.phone_norm IS NOT NULL"); picked="$picked $P"
L=$(pick "true"); picked="$picked $L"
A=$(pick "true"); picked="$picked $A"
B=$(pick "true"); picked="$picked $B"
ok "$([ -n "$R" ] && [ -n "$W" ] && [ -n "$P" ] && [ -n "$L" ] && [ -n "$A" ] && [ -n "$B" ]; echo $?)" \
	"six held leads to report on ($R $W $P $L $A $B)"
rep_of() { pq -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$1'"; }
record() { # LEAD OUTCOME SECOND
	pq -c "SELECT refinery.record_outcome('o', '$1', $(rep_of "$1"), '$2', '2025-07-01 12:00:00'::timestamptz + interval '$3 seconds')" >/dev/null
}
record "$R" refused 1
record "$W" " Closed_Won " 2
record "$P" "wrong number" 3
record "$L" lost 4
for k in 1 2 3; do record "$A" no_answer "$((10 + k))"; done
record "$B" busy 20
record "$B" no_answer 21
record "$L" xyzzy 5

# ---- an unknown outcome stops the run
before=$(pq -c "SELECT count(*) FROM refinery.runs")
err=$("$REFINERY" run -c "$tmp/o.ini" 2>&1); rc=$?
is "$rc" 5 "an outcome the map does not know fails the run with the data code"
like "$err" "outcome \"xyzzy\" of lead \"$L\" \\(rep [0-9]+, 2025-07-01 12:00:05\\) is not in \\[outcomes\\] map" \
	"naming the value, the lead, the rep and the time"
is "$(pq -c "SELECT count(*) FROM refinery.runs")" "$before" "and commits nothing"
printf '[outcomes]\nmap = closed_won:won, wrong number:wrong_number, xyzzy:not_relevant\n' >"$tmp/map.ini"

# ---- the effects
out=$("$REFINERY" run -c "$tmp/o.ini" -c "$tmp/map.ini" 2>&1); rc=$?
is "$rc" 0 "with the value mapped the run commits"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'o'")
v() { pq -c "SELECT verdict || ':' || coalesce(rule_id, '') FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$1'"; }
is "$(v "$R")" "blacklisted:outcome.refused" "a refusal black-lists the lead (rule outcome.refused)"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_state r ON r.job = s.job AND r.lead_id = '$R'
	WHERE s.job = 'o' AND s.cluster_id = r.cluster_id AND s.verdict = 'kept'")" 0 "and no other record of the person is kept"
is "$(v "$W")" "customer:outcome.won" "a win (reported as \" Closed_Won \") makes the lead a customer"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_state w ON w.job = s.job AND w.lead_id = '$W'
	WHERE s.job = 'o' AND s.cluster_id = w.cluster_id AND s.verdict = 'kept'")" 0 \
	"no record of the person stays in the call lists"
is "$(v "$P")" "blacklisted:outcome.wrong_number" "a wrong number black-lists the lead"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_state p ON p.job = s.job AND p.lead_id = '$P'
	WHERE s.job = 'o' AND s.phone_norm = p.phone_norm AND s.verdict = 'kept'")" 0 "and every record carrying the number"
counters=$(pq -c "SELECT counters FROM refinery.run_stages WHERE run_id = $run AND stage = 'state'")
is "$(jq -c '[.["outcomes read"], .["read: won"], .["holds ended by an outcome"], .["holds ended: max_attempts"]]' <<<"$counters")" \
	"[10,1,4,1]" "counted: 10 read, 1 won; 4 holds ended (won, refused, wrong number, xyzzy as not_relevant after lost), 1 after 3 no answers"
is "$(pq -c "SELECT count(*) FROM refinery.outcomes WHERE job = 'o' AND read_by_run = $run")" 10 "every outcome is marked read by the run"
is "$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE run_id = $run AND lead_id = '$B'")" 0 \
	"a busy and a no answer (2 of 3 attempts) leave the lead with its rep"
is "$(v "$L")" "nurture:outcome.rest" "a lead lost, then not relevant, rests (nurture, rule outcome.rest)"
is "$(pq -c "SELECT coalesce(rep_id::text, 'none') || ':' || reason FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$L'")" \
	"none:not relevant lately: rests until 2025-09-29" "with no rep, until 90 days after the outcome"
is "$(jq -c '.["lost or not relevant: resting"]' <<<"$counters")" 1 "counted"

# ---- the same outcomes decide the same
out=$("$REFINERY" run -c "$tmp/o.ini" -c "$tmp/map.ini" 2>&1); rc=$?
is "$rc" 0 "a rerun commits"
like "$out" "nothing changed since run $run" "and changes nothing"

# ---- rest_days = 0: a lost lead is offered again at once
printf '[outcomes]\nrest_days = 0\n' >"$tmp/norest.ini"
"$REFINERY" run -q -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/norest.ini"; rc=$?
is "$rc/$(v "$L")" "0/kept:" "with rest_days = 0 the lead is kept again"

# ---- an outcome older than the lead's hold (the last rep's) does not end it
printf '[source]\nnow = 2025-07-02\n' >"$tmp/d2.ini"
"$REFINERY" run -q -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/norest.ini" -c "$tmp/d2.ini"; rc=$?
held=$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$L'")
like "$rc/$held" "^0/[0-9]+ 2025-07-0[12] " "the lead lost on 2025-07-01 is held again, from the next run ($held)"
printf '[source]\nnow = 2025-07-03\n' >"$tmp/d3.ini"
"$REFINERY" run -q -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/norest.ini" -c "$tmp/d3.ini"; rc=$?
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'o'")
is "$rc/$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$L'")/$(pq -c "SELECT coalesce(counters->>'holds ended by an outcome', '0') FROM refinery.run_stages WHERE run_id = $run AND stage = 'state'")" \
	"0/$held/0" "a day later its old outcome ends no hold: same rep, since the same time"

# ---- an outcome's time is read in the run's time zone ([source] timezone)
# lost_in ZONE WHY: a held lead lost at 22:30 UTC on 2025-07-01, read by a run in ZONE, rests
# 90 days from the next day there
lost_in() {
	X=$(pick "true"); picked="$picked $X"
	pq -c "SELECT refinery.record_outcome('o', '$X', $(rep_of "$X"), 'lost', '2025-07-01 22:30:00+00')" >/dev/null
	printf '[source]\ntimezone = %s\n' "$1" >"$tmp/tz.ini"
	"$REFINERY" run -q -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/tz.ini"; rc=$?
	is "$rc/$(pq -c "SELECT reason FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$X'")" \
		"0/lost lately: rests until 2025-09-30" "$2"
}
lost_in Asia/Jerusalem "a loss at 22:30 UTC is 01:30 the next day in Jerusalem: the lead rests 90 days from then"
# a zone whose name is also an abbreviation: CET keeps summer time (+2 in July), the abbreviation does not
lost_in CET "a loss at 22:30 UTC is 00:30 the next day in CET's summer time, not 23:30: it rests from that day"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'o' AND status = 'committed'")
out=$("$REFINERY" run -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/tz.ini" 2>&1)
like "$out" "nothing changed since run $run\$" \
	"a rerun in CET reads the holds' summer times back as written: nothing changed"
H=$(pick "true"); picked="$picked $H"
before=$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$H'")
pq -c "UPDATE crm.leads SET touch_count = coalesce(touch_count, 0) + 1 WHERE lead_id::text = '$H'" >/dev/null
"$REFINERY" run -q -c "$tmp/o.ini" -c "$tmp/map.ini" -c "$tmp/tz.ini"; rc=$?
is "$rc/$(pq -c "SELECT changed_run = (SELECT max(run_id) FROM refinery.runs WHERE job = 'o') FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$H'")/$(pq -c "SELECT rep_id || ' ' || assigned_at FROM refinery.lead_state WHERE job = 'o' AND lead_id = '$H'")" \
	"0/t/$before" "a held lead rewritten in CET's summer keeps its rep and the time the rep got it, to the second"

# ---- read_by_run: a run marks the outcomes it read, exactly those
read_by() { pq -c "SELECT coalesce(string_agg(coalesce(read_by_run::text, 'none'), ' '), 'no outcome') FROM refinery.outcomes WHERE job = 'o' AND lead_id = '$1'"; }
last_run() { pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'o' AND status = 'committed'"; }
if fault_hooks; then
	X=$(pick "true"); picked="$picked $X"
	Y=$(pick "true"); picked="$picked $Y"
	# a dialer's transaction records an outcome of X before the run begins, and commits
	# only once the run has read the outcomes
	pg_hold_open dialer "BEGIN; SELECT refinery.record_outcome('o', '$X', $(rep_of "$X"), 'busy', '2025-07-03 09:00:00+00');"
	poll_until 60 grep -qx t "$PG_TMP/dialer.out"
	ok $? "a dialer's open transaction has recorded an outcome of $X"
	# (the run must not hold the dialer's pipe open: it closes the shell's end)
	pg_run_stalled compute "$tmp/gate_read" -c "$tmp/o.ini" -c "$tmp/map.ini" {PG_HOLD_FD_dialer}>&-
	ok $? "a run stops after reading the job's outcomes"
	pg_hold_close dialer
	touch "$tmp/gate_read"
	wait $pid; rc=$?
	is "$rc/$(read_by "$X")" "0/none" \
		"an outcome committed after the run read the outcomes is not marked read by it, though its transaction began first"
	# Y's outcome is committed after the run's transaction began, before it read the outcomes
	pg_run_stalled pull "$tmp/gate_pull" -c "$tmp/o.ini" -c "$tmp/map.ini"
	ok $? "the next run stops in its pull"
	record "$Y" busy 30
	touch "$tmp/gate_pull"
	wait $pid; rc=$?
	r=$(last_run)
	is "$rc/$(read_by "$X")/$(read_by "$Y")" "0/$r/$r" \
		"that run read both outcomes and marks both, Y's recorded after its transaction began"
else
	skip 5 "refinery was built without --enable-fault-injection"
fi

done_testing
