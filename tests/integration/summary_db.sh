#!/bin/bash
# tests/integration/summary_db.sh -- what a run against a server says and keeps: the JSON
# summary's outcome counts and run id against refinery.results, the warnings kept in
# refinery.runs.warnings and shown by report with the outcome table, progress lines for
# the stages only a database run has (state, write).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
. "$top_srcdir/tests/lib/stages.sh"
pg_test_start

# three reps hold far fewer leads than the run keeps: many wait
"$GENLEADS" --rows 1500 --seed 13 --nreps 3 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat >"$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = 2025-07-01
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[score.source]
refferal = 30
[blacklist.vip_test]
field = full_name
pattern = ^ZZZ nobody$
INI
line() { grep -n "^$1" "$tmp/rules.ini" | head -n 1 | cut -d: -f1; }
"$REFINERY" init-db -q; ok $? "init-db"
json=$("$REFINERY" run -j1 -c "$tmp/rules.ini" --log-format=json 2>&1 >/dev/null | grep '"event": "run"'); rc=$?
ok "$rc" "a run with the JSON log"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE status = 'committed'")
count() { pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND $1"; }
assigned=$(count "verdict = 'kept' AND rep_id IS NOT NULL")
waiting=$(count "verdict = 'kept' AND rep_id IS NULL")
ok "$([ "$assigned" -gt 0 ] && [ "$waiting" -gt 0 ]; echo $?)" \
	"the run assigns some leads and leaves others waiting ($assigned, $waiting)"
like "$json" "\"job\": \"default\", \"run_id\": $run, \"status\": \"committed\", \"dry_run\": false" \
	"the JSON summary names the job and the committed run's id"
like "$json" "\"assigned\": $assigned, \"waiting\": $waiting, \"nurture\": $(count "verdict = 'nurture'"), " \
	"its assigned, waiting and nurture are the results' kept leads with and without a rep, and nurture"
like "$json" "\"removed\": \{\"blacklisted\": $(count "verdict = 'blacklisted'"), \"duplicate\": $(count "verdict = 'duplicate'"), \"partial\": $(count "verdict = 'partial'"), " \
	"and removed per verdict as the results have them"
is "$(pq -c "SELECT array_length(warnings, 1) FROM refinery.runs WHERE run_id = $run")" 2 \
	"the run keeps its two warnings in refinery.runs.warnings"
is "$(pq -c "SELECT warnings[1] FROM refinery.runs WHERE run_id = $run")" \
	"$tmp/rules.ini:$(line refferal): [score.source] refferal: no lead's source is \"refferal\"" \
	"the map key no lead's source has, with file and line"
is "$(pq -c "SELECT warnings[2] FROM refinery.runs WHERE run_id = $run")" \
	"$tmp/rules.ini:$(line field): [blacklist.vip_test]: the rule matched no lead" \
	"the black-list rule that matched no lead"

out=$("$REFINERY" report 2>&1); rc=$?
is "$rc" 0 "report succeeds"
like "$out" '^Where the leads went' "the text report has the outcome table"
like "$out" "^ assigned +\| +$assigned \| " "with the assigned leads"
like "$out" "^ waiting +\| +$waiting \| " "the waiting ones, apart"
like "$out" "^ removed: blacklisted +\| +$(count "verdict = 'blacklisted'") \| " "and the removed ones per verdict"
like "$out" "^ review +\| +$(count "verdict = 'review'") \| " "the leads held for review, apart"
is "$(awk -F'|' '/^Where the leads went/ {f = 1; next} f && /^$/ {f = 0} f {s += $2} END {print s}' <<<"$out")" \
	"$(count "true")" "the outcome rows add up to the leads pulled"
like "$out" '^Warnings$' "and a warnings table"
like "$out" "^ $tmp/rules.ini:$(line refferal): \[score.source\] refferal: " "holding the run's warnings"

# progress on a database run: the job's state and the write are stages too
err=$("$REFINERY" run -j1 -c "$tmp/rules.ini" --progress=0.05 2>&1 >/dev/null); rc=$?
ok "$rc" "a second run with --progress"
for s in pull state $(stage_names ' ') write; do
	like "$err" "^refinery: progress: $s done: [0-9]+ rows in [0-9.]+ s" "a progress line as stage $s ends"
done
done_testing
