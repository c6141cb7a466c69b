#!/bin/bash
# tests/integration/outcomes_in.sh -- outcomes read from the CRM at the start of each run:
# [outcomes] csv (an unknown value or a bad field stops the run naming file:line, nothing
# is committed; rows are added once, a second read adds nothing; leads not in the job are
# skipped and counted; duration, amount and region are kept) and [outcomes] query (a missing
# column is a rule error naming the key); a callback keeps the lead with its rep and makes
# it due at callback_at, or callback_hours after it; and the reps' per-source rates learnt
# from the job's outcomes: added to the stats query's history (attempts grow by the pairs
# written, a rep who won them rises, one who lost them falls), the whole history without a
# stats query, and left out with learn_rates = no; rule errors name file and line; and a run
# reads the outcomes genleads --outcomes draws for the job's held leads.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=3000
"$GENLEADS" --rows $N --seed 23 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat >"$tmp/i.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = i
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[outcomes]
csv = $tmp/o.csv
callback_hours = 5
EOF
printf 'lead_id,rep_id,outcome,at\n' >"$tmp/o.csv"
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/i.ini"
ok $? "a first run of job i (an outcomes file with a header only)"
run1=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'i'")

# two reps and the web_form leads of the job, none held (so the outcomes end no hold)
X=$(pq -c "SELECT rep_id FROM crm.reps WHERE active ORDER BY rep_id LIMIT 1")
Y=$(pq -c "SELECT rep_id FROM crm.reps WHERE active ORDER BY rep_id LIMIT 1 OFFSET 1")
mapfile -t WEB < <(pq -c "SELECT s.lead_id FROM refinery.lead_state s JOIN crm.leads l ON l.lead_id::text = s.lead_id
	WHERE s.job = 'i' AND l.source = 'web_form' AND s.verdict = 'kept' ORDER BY s.lead_id LIMIT 24")
mapfile -t HELD < <(pq -c "SELECT lead_id || ' ' || rep_id FROM refinery.lead_state WHERE job = 'i' AND verdict = 'kept'
	AND rep_id IS NOT NULL AND lead_id NOT IN ('${WEB[*]// /\',\'}') ORDER BY lead_id LIMIT 2")
ok "$([ ${#WEB[@]} = 24 ] && [ ${#HELD[@]} = 2 ] && [ -n "$X" ] && [ -n "$Y" ]; echo $?)" \
	"24 kept web_form leads, two held leads and reps $X and $Y to report on"
read -r C1 R1 <<<"${HELD[0]}"
read -r C2 R2 <<<"${HELD[1]}"
rate() { # RUN REP: attempts:wins and the smoothed rate of the rep on web_form
	pq -c "SELECT attempts || ':' || wins || ' ' || rate_smoothed FROM refinery.run_rep_sources
	       WHERE run_id = $1 AND rep_id = $2 AND source = 'web_form'"
}
read -r xa1 xr1 <<<"$(rate "$run1" "$X")"
read -r ya1 yr1 <<<"$(rate "$run1" "$Y")"

# ---- the file: X wins 12 web_form leads, Y loses 12 others, two callbacks, a stranger
{
	printf 'Lead_ID,rep_id,outcome,at,duration,amount,region,callback_at\n'
	for k in $(seq 0 11); do printf '%s,%s,closed_won,2025-07-01 10:%02d:00,%d,%d.50,Haifa,\n' "${WEB[$k]}" "$X" "$k" $((60 + k)) $((1000 + k)); done
	for k in $(seq 12 23); do printf '%s,%s, Closed_Lost ,2025-07-01 11:%02d:00.7,30,,,\n' "${WEB[$k]}" "$Y" "$k"; done
	printf '%s,%s,call back,2025-07-01 12:00:00,,,,2025-07-04 09:30\n' "$C1" "$R1"
	printf '%s,%s,callback,2025-07-01 12:30:00,,,04,\n' "$C2" "$R2"
	printf 'no-such-lead,%s,lost,2025-07-01 13:00:00,,,,\n' "$X"
} >"$tmp/good.csv"
# the same with an unknown value on line 5, then with a bad time on line 3
sed '5s/closed_won/xyzzy/' "$tmp/good.csv" >"$tmp/o.csv"
runs() { pq -c "SELECT count(*) FROM refinery.runs WHERE job = 'i'"; }
err=$("$REFINERY" run -c "$tmp/i.ini" 2>&1); rc=$?
is "$rc" 5 "an outcome the map does not know stops the run with the data code"
like "$err" "$tmp/o.csv:5: outcome \"xyzzy\" of lead \"${WEB[3]}\" is not in \\[outcomes\\] map" \
	"naming the file, the line, the value and the lead"
is "$(runs):$(pq -c "SELECT count(*) FROM refinery.outcomes")" "1:0" "and nothing is committed, no outcome kept"
sed '3s/2025-07-01 10:01:00/yesterday/' "$tmp/good.csv" >"$tmp/o.csv"
err=$("$REFINERY" run -c "$tmp/i.ini" 2>&1); rc=$?
like "$rc/$err" "^5/.*$tmp/o.csv:3: at \"yesterday\" is not a time" "a bad time is named with its file and line"

# ---- the good file
cp "$tmp/good.csv" "$tmp/o.csv"
"$REFINERY" run -q -c "$tmp/i.ini"
ok $? "with the file corrected the run commits"
run2=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'i'")
counters=$(pq -c "SELECT counters FROM refinery.run_stages WHERE run_id = $run2 AND stage = 'state'")
is "$(jq -c '[.["outcomes in: rows"], .["outcomes in: new"], .["outcomes in: lead not in the job"], .["outcomes read"]]' <<<"$counters")" \
	"[27,26,1,26]" "27 rows read: 26 new, the unknown lead skipped; the run reads the 26"
is "$(pq -c "SELECT count(*) || ':' || sum(duration_s) || ':' || sum(amount) || ':' || count(region) || ':' || count(callback_at)
	FROM refinery.outcomes WHERE job = 'i'")" "26:1146:12072.00:13:1" \
	"kept with their duration (12 x 60..71 + 12 x 30), amount (12 x 1000..1011 + 6.00), region and callback time"
is "$(pq -c "SELECT count(*) FROM refinery.outcomes WHERE job = 'i' AND outcome = 'Closed_Lost' AND at = date_trunc('second', at)")" 12 \
	"the reported value is kept trimmed, the time to the second"
"$REFINERY" run -q -c "$tmp/i.ini"
run3=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'i'")
is "$(pq -c "SELECT counters->>'outcomes in: new' FROM refinery.run_stages WHERE run_id = $run3 AND stage = 'state'"):$(pq -c "SELECT count(*) FROM refinery.outcomes")" \
	"0:26" "reading the same file again adds nothing"

# ---- callbacks: the lead stays with its rep, due when asked or callback_hours later
due() { pq -c "SELECT rep_id || ' ' || (sla_due_at = '$2'::timestamptz) FROM refinery.lead_state WHERE job = 'i' AND lead_id = '$1'"; }
is "$(due "$C1" '2025-07-04 09:30:00')" "$R1 true" "a callback with callback_at keeps the lead with rep $R1, due then"
is "$(due "$C2" '2025-07-01 17:30:00')" "$R2 true" "one without is due callback_hours (5) after the outcome"

# ---- rates learnt from the job's outcomes, on top of the stats query
read -r xa2 xr2 <<<"$(rate "$run2" "$X")"
read -r ya2 yr2 <<<"$(rate "$run2" "$Y")"
is "$xa2" "$(awk -F: '{ print $1 + 12 ":" $2 + 12 }' <<<"$xa1")" "rep $X's web_form history gains 12 attempts and 12 wins ($xa1 -> $xa2)"
is "$ya2" "$(awk -F: '{ print $1 + 12 ":" $2 }' <<<"$ya1")" "rep $Y's gains 12 attempts, no win ($ya1 -> $ya2)"
ok "$(awk -v a="$xr1" -v b="$xr2" 'BEGIN { exit !(b > a) }'; echo $?)" "rep $X's smoothed web_form rate rises ($xr1 -> $xr2)"
ok "$(awk -v a="$yr1" -v b="$yr2" 'BEGIN { exit !(b < a) }'; echo $?)" "rep $Y's falls ($yr1 -> $yr2)"
is "$(pq -c "SELECT counters->>'learnt: attempts' || ':' || (counters->>'learnt: wins') FROM refinery.run_stages WHERE run_id = $run2 AND stage = 'state'")" \
	"24:12" "the run counts 24 attempts and 12 wins learnt (the callbacks settle nothing)"

# ---- learn_rates = no: the stats alone
printf '[outcomes]\nlearn_rates = no\n' >"$tmp/nolearn.ini"
"$REFINERY" run -q -c "$tmp/i.ini" -c "$tmp/nolearn.ini"
run4=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'i'")
is "$(rate "$run4" "$X" | cut -d' ' -f1)" "$xa1" "with learn_rates = no the history is the stats query's alone"

# ---- without a stats query the outcomes are the whole history
sed -e '/^stats_query/d' -e 's/^name = i$/name = j/' "$tmp/i.ini" >"$tmp/j.ini"
printf 'lead_id,rep_id,outcome,at\n' >"$tmp/o.csv"
"$REFINERY" run -q -c "$tmp/j.ini" && sed -i 's/^Lead_ID/lead_id/' "$tmp/good.csv" && cp "$tmp/good.csv" "$tmp/o.csv" &&
	"$REFINERY" run -q -c "$tmp/j.ini"
ok $? "job j without stats: a first run, then one with the outcomes"
runj=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'j'")
is "$(pq -c "SELECT string_agg(rep_id || ':' || attempts || ':' || wins, ' ' ORDER BY rep_id) FROM refinery.run_rep_sources WHERE run_id = $runj")" \
	"$X:12:12 $Y:12:0" "the history is the 24 settled pairs"
is "$(pq -c "SELECT (x.close_rate > y.close_rate)::text FROM refinery.run_reps x, refinery.run_reps y
	WHERE x.run_id = $runj AND y.run_id = $runj AND x.rep_id = $X AND y.rep_id = $Y")" "true" \
	"and the rep who won them closes better than the one who lost them"

# ---- the query source
pq -c "CREATE TABLE crm.calls (lead_id text, rep_id bigint, outcome text, at timestamptz);
       INSERT INTO crm.calls VALUES ('$C1', $R1, 'busy', '2025-07-02 09:00')" >/dev/null
sed 's|^csv = .*|query = SELECT lead_id, rep_id, outcome, at FROM crm.calls|' "$tmp/i.ini" >"$tmp/q.ini"
"$REFINERY" run -q -c "$tmp/q.ini"
ok $? "[outcomes] query: the run commits"
is "$(pq -c "SELECT count(*) FROM refinery.outcomes WHERE job = 'i' AND lead_id = '$C1' AND outcome = 'busy'")" 1 "and the query's outcome is kept"
sed 's|^csv = .*|query = SELECT lead_id, rep_id, outcome FROM crm.calls|' "$tmp/i.ini" >"$tmp/q2.ini"
err=$("$REFINERY" run -c "$tmp/q2.ini" 2>&1); rc=$?
like "$rc/$err" "^3/.*\\[outcomes\\] query \\($tmp/q2.ini:[0-9]+\\) returns no column \"at\"" \
	"a query without column at is a rule error naming the key's file and line"

# ---- rule errors name file and line
printf '[outcomes]\nquery = SELECT 1\ncsv = /nonexistent.csv\n' >"$tmp/bad.ini"
err=$("$REFINERY" check-rules "$tmp/i.ini" "$tmp/bad.ini" 2>&1); rc=$?
like "$rc/$err" "^3/.*$tmp/bad.ini:3: \\[outcomes\\] query and csv are both set" "query and csv both set is a rule error naming file and line"
printf '[outcomes]\ncallback_hours = 0\n' >"$tmp/bad.ini"
err=$("$REFINERY" check-rules "$tmp/i.ini" "$tmp/bad.ini" 2>&1); rc=$?
like "$rc/$err" "^3/.*$tmp/bad.ini:2: \\[outcomes\\] callback_hours: \"0\" is out of range" "so is a callback_hours out of range"

# ---- genleads --outcomes: the generator's calls of the job's held leads are read as they are
psql -X -q -v ON_ERROR_STOP=1 -c "\\copy (SELECT s.lead_id, s.rep_id, l.source, l.status FROM refinery.lead_state s
	JOIN crm.leads l ON l.lead_id::text = s.lead_id WHERE s.job = 'i' AND s.verdict = 'kept' AND s.rep_id IS NOT NULL
	ORDER BY 1) TO '$tmp/held.csv' WITH (FORMAT csv, HEADER true)"
calls=$("$GENLEADS" --outcomes 1 --seed 23 --assigned "$tmp/held.csv" --out-dir "$tmp/day1" | sed -n 's/.*: \([0-9]*\) calls.*/\1/p')
sed "s|^csv = .*|csv = $tmp/day1/outcomes.csv|" "$tmp/i.ini" >"$tmp/g.ini"
"$REFINERY" run -q -c "$tmp/g.ini"
ok $? "a run reads the generator's outcomes of the job's $(($(wc -l <"$tmp/held.csv") - 1)) held leads"
is "$(pq -c "SELECT counters->>'outcomes in: new' FROM refinery.run_stages WHERE stage = 'state' AND run_id = (SELECT max(run_id) FROM refinery.runs)")" \
	"$calls" "every call the generator drew is a new outcome ($calls)"

done_testing
