#!/bin/bash
# tests/integration/calibrate.sh -- calibrate end to end: the cohort bounds it writes keep each
# cohort's share (checked against real runs with and without the fitted file, and with
# --keep-cohorts the shares it predicts are the ones a run gets); --no-shipped and the learned
# categories from the command line; and --job: the fit from the job's own outcomes
# (refinery.outcomes through [outcomes] map), the drift line, no outcomes, an unknown job,
# an unknown outcome value.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

"$GENLEADS" --rows 2000 --seed 7 --out-dir "$tmp" >/dev/null
mkdir -p "$tmp/out"
cat >"$tmp/csv.ini" <<EOF
[source]
csv = $tmp/leads.csv
now = 2025-07-01
[output]
target = csv
csv_dir = $tmp/out
EOF

# cohort counts of a run's result file, read back through the server (the file is CSV with
# JSON cells): "a:306 b:656 ..." in cohort order, then the leads below nurture_below
counts() { # RULES...
	local args=() f
	for f in "$@"; do args+=(-c "$f"); done
	"$REFINERY" run -q "${args[@]}" || return 1
	pq <<SQL
DROP TABLE IF EXISTS res;
CREATE TABLE res ($(head -1 "$tmp/out/lead_results.csv" | sed 's/,/ text, /g') text);
\copy res FROM '$tmp/out/lead_results.csv' WITH (FORMAT csv, HEADER true)
SELECT string_agg(g || ':' || n, ' ' ORDER BY g) FROM (
	SELECT coalesce(nullif(cohort, ''), 'x') AS g, count(*) AS n FROM res
	WHERE verdict = 'kept' GROUP BY 1
	UNION ALL SELECT 'nurture_below', count(*) FROM res WHERE rule_id = 'nurture') t;
SQL
}
# the same from calibrate's table: field 4 (before) or 6 (after)
table() { # OUTPUT FIELD
	awk -v f="$2" '/^(a|b|c|d|nurture_below) / { printf "%s%s:%d", sep, $1, $f; sep = " " } END { print "" }' <<<"$1"
}

# ---- the bounds move so each cohort keeps its share
out=$("$REFINERY" calibrate -c "$tmp/csv.ini" -o "$tmp/fitted.ini" 2>&1); rc=$?
is "$rc" 0 "calibrate on a CSV source"
before=$(counts "$tmp/csv.ini")
after=$(counts "$tmp/csv.ini" "$tmp/fitted.ini")
diag "a run before: $before; with the fitted file: $after"
is "$(table "$out" 4)" "$before" "calibrate counts each cohort as a run with the current rules places it"
is "$(table "$out" 6)" "$after" "and as a run with the fitted file does"
# every bound moved to the fitted score of the lead at the same rank: a tie at a bound is the
# only way a count can move, by the few leads sharing that score
awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, "[ :]"); split(a, y, "[ :]"); bad = 0
	for (i = 2; i <= 10; i += 2) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 3) bad = 1 } exit bad }'
ok $? "each cohort keeps its share within a tie"
like "$(grep -A1 '^\[cohort.a\]' "$tmp/fitted.ini")" 'min_score = [0-9]+\.[0-9][0-9]' "the file sets cohort a's min_score"
old_a=$(awk '/^a / { print $2 }' <<<"$out"); new_a=$(awk '/^a / { print $3 }' <<<"$out")
is "$old_a" "60.00" "the table shows a's old bound"
is "$(sed -n '/^\[cohort.a\]/{n;s/min_score = //p}' "$tmp/fitted.ini")" "$new_a" "and the new one, as written"

out=$("$REFINERY" calibrate -c "$tmp/csv.ini" --keep-cohorts -o "$tmp/kept.ini" 2>&1); rc=$?
is "$rc" 0 "calibrate --keep-cohorts"
unlike "$(cat "$tmp/kept.ini")" 'min_score' "keeps every bound"
like "$out" 'cohort bounds kept \(--keep-cohorts\); their shares move' "and says the shares move"
is "$(table "$out" 6)" "$(counts "$tmp/csv.ini" "$tmp/kept.ini")" "to what a run with the fitted points gives"

# ---- the shipped parameters left out, categories learned
cat >"$tmp/own.ini" <<EOF
[score.channel]
kind = map
field = source
categories = auto
[score.touches]
kind = buckets
field = touch_count
buckets = auto
EOF
out=$("$REFINERY" calibrate -c "$tmp/csv.ini" -c "$tmp/own.ini" --no-shipped -o "$tmp/own_fit.ini" 2>&1); rc=$?
is "$rc" 0 "calibrate --no-shipped with learned categories"
is "$(grep -c '^weight = 0$' "$tmp/own_fit.ini")" 8 "the eight shipped parameters are switched off"
like "$(sed -n '/^\[score.channel\]/,/^\[/p' "$tmp/own_fit.ini")" $'\nreferral = [0-9.]+\n' "the sources are learned as keys"
is "$(counts "$tmp/csv.ini" "$tmp/own.ini" "$tmp/own_fit.ini" >/dev/null; echo $?)" 0 "a run takes the result"
is "$(counts "$tmp/csv.ini" "$tmp/own.ini" >/dev/null; echo $?)" 0 "and runs before calibration (other and default points)"
err=$("$REFINERY" run --no-shipped -c "$tmp/csv.ini" 2>&1); is "$?" 2 "--no-shipped is calibrate's alone"

# ---- [calibrate] checked in one pass, each mistake where it is written
printf '[calibrate]\nholdout_percent = 500\nexclude_params = ---\noutcome_column = nosuch\nl2 = -1\n' >"$tmp/bad.ini"
err=$("$REFINERY" check-rules "$tmp/csv.ini" "$tmp/bad.ini" 2>&1); rc=$?
is "$rc" 3 "check-rules refuses a bad [calibrate]"
is "$(grep -c "^refinery: error: $tmp/bad.ini:[2-5]: \[calibrate\]" <<<"$err")" 4 "naming all four mistakes in one pass"

# won_values name statuses when the outcome is the status, any value of another column
printf '[calibrate]\nwon_values = closd_won\n' >"$tmp/won.ini"
err=$("$REFINERY" check-rules "$tmp/csv.ini" "$tmp/won.ini" 2>&1); rc=$?
is "$rc" 3 "won_values of the status column must be statuses"
like "$err" 'won.ini:2: \[calibrate\] won_values: unknown status "closd_won"' "naming the value"
like "$err" 'Did you mean "closed_won"' "and the nearest status"
printf '[columns]\nextra = converted\n[calibrate]\noutcome_column = converted\nwon_values = Yes\n' >"$tmp/won.ini"
"$REFINERY" check-rules "$tmp/csv.ini" "$tmp/won.ini" >/dev/null 2>&1
is "$?" 0 "while those of another column are its own values"

# ---- --job: the job's own outcomes
pg_load_leads "$tmp"
cat >"$tmp/o.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = cal
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
EOF
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/o.ini"
ok $? "a first run of job cal"
sed 's/^name = cal$/name = quiet/' "$tmp/o.ini" >"$tmp/q.ini"
"$REFINERY" run -q -c "$tmp/q.ini"
ok $? "and of job quiet"

err=$("$REFINERY" calibrate -c "$tmp/o.ini" --job quiet 2>&1); rc=$?
is "$rc" 5 "a job without outcomes: nothing to fit from (status 5)"
like "$err" 'job "quiet" has no outcomes yet: nothing to fit from' "said plainly"
err=$("$REFINERY" calibrate -c "$tmp/o.ini" --job nosuch 2>&1); rc=$?
is "$rc" 2 "an unknown job is a usage error"
like "$err" 'there is no job "nosuch"' "naming it"

# 900 leads of the job with outcomes: referrals won (reported as " Closed_Won ", which
# [outcomes] map maps), every 13th other lead won, the rest lost or no answer; and outcomes of
# a lead the job does not have, which the join leaves out
pq <<'SQL'
INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
SELECT 'cal', s.lead_id, coalesce(s.rep_id, 1),
       CASE WHEN s.source = 'referral' OR s.lead_id::bigint % 13 = 0 THEN ' Closed_Won '
            WHEN s.lead_id::bigint % 2 = 0 THEN 'lost' ELSE 'no answer' END,
       '2025-07-02 10:00:00+00'
FROM (SELECT * FROM refinery.lead_state WHERE job = 'cal' ORDER BY lead_id LIMIT 900) s;
INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
SELECT 'cal', s.lead_id, coalesce(s.rep_id, 1), 'no_answer', '2025-07-01 10:00:00+00'
FROM (SELECT * FROM refinery.lead_state WHERE job = 'cal' ORDER BY lead_id LIMIT 100) s;
INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at) VALUES ('cal', 'not-a-lead', 1, 'won', '2025-07-02 10:00:00+00');
SQL
wins=$(pq -c "SELECT count(DISTINCT lead_id) FROM refinery.outcomes o WHERE job = 'cal' AND outcome = ' Closed_Won '")
out=$("$REFINERY" calibrate -c "$tmp/o.ini" --job cal -o "$tmp/job.ini" 2>&1); rc=$?
is "$rc" 0 "calibrate --job cal"
like "$out" 'calibrated on 900 leads' "on the 900 leads of the job with outcomes (not the stranger)"
is "$(($(sed -n 's/.*(\([0-9]*\) training, \([0-9]*\) wins; \([0-9]*\) holdout, \([0-9]*\) wins).*/\2 + \4/p' <<<"$out")))" \
	"$wins" "the wins are the leads with a won outcome ($wins), a later win after a no answer too"
like "$out" 'of 2000 leads, 1100 have none of the outcomes reported to job cal; 900 remain' \
	"the leads left out are counted, and why"
like "$out" 'holdout AUC [0-9.]+ with the fitted points, [0-9.]+ with the current points \(drift [-+][0-9.]+\)' \
	"the drift: the current points' AUC beside the refitted"
like "$out" 'job cal: outcomes of 900 leads of the pull \(0 of the job.s leads with outcomes are no longer in it\)' \
	"the leads with outcomes are counted"
like "$(head -8 "$tmp/job.ini")" '# outcome: the outcomes reported to job cal' "the file says where the outcome came from"
top=$(sed -n '/^\[score.source\]/,/^\[/{/^[a-z_]* = [0-9]/p}' "$tmp/job.ini" | sort -t= -k2 -g | tail -1 | cut -d' ' -f1)
is "$top" "referral" "the fit gives referrals, which were won, the most source points"

pq -c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at) VALUES ('cal', (SELECT min(lead_id) FROM refinery.lead_state WHERE job = 'cal'), 1, 'xyzzy', '2025-07-03 10:00:00+00')"
err=$("$REFINERY" calibrate -c "$tmp/o.ini" --job cal -o "$tmp/job2.ini" 2>&1); rc=$?
is "$rc" 5 "an outcome the map does not know stops calibrate"
like "$err" 'outcome "xyzzy" of lead "[0-9]+" \(2025-07-03 [0-9:]+\) is not in \[outcomes\] map' "naming value, lead and time"
ok "$([ ! -e "$tmp/job2.ini" ]; echo $?)" "and writes nothing"

done_testing
