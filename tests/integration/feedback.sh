#!/bin/bash
# tests/integration/feedback.sh -- "refinery feedback" and "refinery export --claims" on a
# small job whose outcomes the test writes itself: without outcomes the expected side alone
# (exit 0); then conversion per cohort, rep and campaign with 95% Wilson intervals and the
# "few outcomes" note, answer rates per hour, weekday and region, cost and revenue per source,
# --since; and the refund claims of a supplier (a duplicate of a lead bought earlier from
# another supplier, a fake phone, a wrong number inside the window, one outside it), an
# unknown supplier refused with the known ones.  Every expected figure is derived here from
# the outcomes written (the intervals with awk from the Wilson formula), not read back.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

# 60 leads alike (one source, one cohort) but for name, phone, e-mail, campaign (1-30
# spring, 31-60 autumn) and supplier (1-40 acme, 41-60 globex).  Lead 5 is lead 41 again,
# bought later from acme; lead 6's phone is fake; lead 7 was bought 2026-11-01, lead 8
# 2026-08-01.
pq -c "CREATE SCHEMA crm;
CREATE TABLE crm.leads (lead_id text, created_at timestamptz, source text, campaign text,
	full_name text, phone text, email text, city text, status text, supplier text, bought_at timestamptz);
INSERT INTO crm.leads
SELECT i::text, '2026-10-01 00:00+00', 'web', CASE WHEN i <= 30 THEN 'spring' ELSE 'autumn' END,
	(ARRAY['Dana','Yossi','Miriam','Avi','Noa','Eitan','Tamar','Oren'])[1 + (i - 1) % 8] || ' ' ||
	(ARRAY['Levi','Mizrahi','Peretz','Biton','Dahan','Friedman','Azoulay','Katz'])[1 + (i - 1) / 8],
	'052' || lpad(((i * 7919 + 3301) % 9000000 + 1000000)::text, 7, '0'),
	'p' || i || '@example.org', 'Tel Aviv', 'new', CASE WHEN i <= 40 THEN 'Acme' ELSE 'globex' END,
	CASE WHEN i IN (5, 6) THEN now() - interval '2 days' WHEN i = 41 THEN now() - interval '10 days'
		 WHEN i = 7 THEN '2026-11-01 00:00+00' WHEN i = 8 THEN '2026-08-01 00:00+00'
		 ELSE '2026-09-01 00:00+00' END
FROM generate_series(1, 60) i;
UPDATE crm.leads SET (full_name, phone, email) =
	(SELECT full_name, phone, email FROM crm.leads WHERE lead_id = '41') WHERE lead_id = '5';
UPDATE crm.leads SET phone = '0501234567' WHERE lead_id = '6';" >/dev/null
cat >"$tmp/f.ini" <<EOF
[source]
table = crm.leads
now = 2026-11-01
[job]
name = f
[match]
reps_query = SELECT 7 AS rep_id, 'Dana' AS name, true AS active, 100 AS capacity
[cost]
lead_price = web:10, fair:25
[supplier.acme]
price = 4.50
[supplier.globex]
claim_days = 14
EOF
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/f.ini"
ok $? "a run of job f"
is "$(pq -c "SELECT string_agg(DISTINCT verdict || ':' || coalesce(cohort, rule_id, '-'), ' ' ORDER BY verdict || ':' || coalesce(cohort, rule_id, '-'))
	FROM refinery.lead_state WHERE job = 'f'")" "blacklisted:blacklist.fake_phone duplicate:dedupe kept:c" \
	"the fixture: every kept lead in cohort c, lead 6 black-listed, one of 5 and 41 a duplicate"

# ---- no outcomes: the expected side, exit 0
out=$("$REFINERY" feedback 2>&1); rc=$?
is "$rc" 0 "feedback without outcomes exits 0"
like "$out" "0 outcomes of 0 leads" "and says there are none"
like "$out" " c +\| +58 \| +0 \| +0 \| +\| +\| +\| +0\.042 \| +0\.030 \| no outcomes" \
	"cohort c: 58 leads, none worked, expected 0.042 (p_close), target 0.030 ([cohort.c])"
is "$(pq -c "SELECT round(avg(p_close)::numeric, 3) FROM refinery.lead_state WHERE job = 'f' AND cohort = 'c'")" \
	"0.042" "(the expected rate is the mean p_close of the cohort's leads)"

# ---- outcomes: rep 7 on Tuesday 2026-11-03 at 10:00 UTC, rep 8 on Wednesday at 18:00
rec() { # LEAD REP OUTCOME AT
	pq -c "SELECT refinery.record_outcome('f', '$1', $2, '$3', '$4+00')" >/dev/null
}
for l in 11 12; do rec $l 7 won "2026-11-03 10:00"; done
rec 13 7 " Closed_Won " "2026-11-03 10:00"
for l in 14 15 16 17 18 19 20 21 22; do rec $l 7 lost "2026-11-03 10:00"; done
for l in 14 15 16; do rec $l 7 busy "2026-11-03 10:30"; done
for l in 31 32 33 34 35; do rec $l 8 no_answer "2026-11-04 18:00"; done
rec 7 8 "wrong number" "2026-11-04 18:00"
rec 8 8 "wrong number" "2026-11-04 18:00"
rec 40 8 xyzzy "2026-11-04 18:00"
pq -c "UPDATE refinery.outcomes SET amount = CASE lead_id WHEN '11' THEN 1000 WHEN '12' THEN 500 ELSE 250 END
	WHERE job = 'f' AND lead_id IN ('11', '12', '13');
	UPDATE refinery.outcomes SET region = 'Haifa' WHERE job = 'f' AND lead_id IN ('31', '32', '33', '34', '35')" >/dev/null

# the 95% Wilson interval of K in N, from its formula
wilson() {
	awk -v k="$1" -v n="$2" 'BEGIN { z = 1.959964; p = k / n; c = p + z * z / (2 * n);
		h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)); d = 1 + z * z / n;
		lo = (c - h) / d; if (lo < 0) lo = 0; printf "%.3f,%.3f", lo, (c + h) / d }'
}
r3() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; } # A / B to 3 places
# the CSV rows: dimension,key,leads,worked,outcomes,won,actual_rate,ci_low,ci_high,expected,target,note
"$REFINERY" feedback -q --csv "$tmp/fb.csv"
ok $? "feedback --csv writes the conversion rows"
row() { # DIMENSION KEY -> worked,won,actual,low,high,note
	awk -F, -v d="$1" -v k="$2" '$1 == d && $2 == k {
		printf "%s,%s,%.3f,%.3f,%.3f,%s", $4, $6, $7, $8, $9, $12 }' "$tmp/fb.csv"
}
# cohort c: 11..22 (3 won), 31..35, 7 and 8 worked: 19, 3 won; 40's xyzzy is unknown
is "$(row cohort c)" "19,3,$(r3 3 19),$(wilson 3 19),few outcomes (19)" \
	"cohort c: 19 worked, 3 won (one reported as \" Closed_Won \"), 3/19 with its interval, few outcomes"
is "$(row rep 7)" "12,3,0.250,$(wilson 3 12),few outcomes (12)" "rep 7: 3 of 12, and a group of 12 says so"
is "$(row rep 8)" "7,0,0.000,$(wilson 0 7),few outcomes (7)" "rep 8: 0 of 7, the interval still reaches $(wilson 0 7 | cut -d, -f2)"
is "$(row campaign spring)" "14,3,$(r3 3 14),$(wilson 3 14),few outcomes (14)" "campaign spring (from the source): 3 of 14"
is "$(row campaign autumn)" "5,0,0.000,$(wilson 0 5),few outcomes (5)" "campaign autumn: 0 of 5"
is "$(awk -F, '$1 == "cohort" && $2 == "c" { printf "%.3f", $11 }' "$tmp/fb.csv")" "0.030" "cohort c's target is [cohort.c] target_rate"

out=$("$REFINERY" feedback 2>&1); rc=$?
is "$rc" 0 "feedback with outcomes exits 0"
like "$out" "22 outcomes of 19 leads, 2026-11-03 to 2026-11-04" "the header counts the 22 known outcomes"
like "$out" "1 outcomes the job's \[outcomes\] map does not know are left out" "and the unknown one"
like "$out" " 10 +\| +15 \| +12 \| +0\.800 \| +$(wilson 12 15 | sed 's/,/ \\| +/')" \
	"hour 10: 15 calls (12 won or lost, 3 busy), 12 answered"
like "$out" " 18 +\| +7 \| +0 \| +0\.000 \| +0\.000 \| +$(wilson 0 7 | cut -d, -f2)" \
	"hour 18: 7 calls (5 no answer, 2 wrong numbers), none answered"
like "$out" " 2 Tue +\| +15 \| +12 " "Tuesday: 15 calls, 12 answered"
like "$out" " 3 Wed +\| +7 \| +0 " "Wednesday: 7 calls, none answered"
like "$out" " Haifa +\| +5 \| +0 " "region Haifa (reported): 5 calls"
like "$out" " 052 +\| +17 \| +12 " "region 052 (the area code of the numbers): 17 calls, 12 answered"
like "$out" " source +\| web +\| +60 \| +60 \| +600 \| +3 \| +1750 \| +1150 \| +200\.00 \| +29\.17" \
	"money: 60 leads at 10 = 600, 3 won for 1000 + 500 + 250 = 1750, profit 1150, 200 per win"

"$REFINERY" feedback -q --since 2026-11-04 --csv "$tmp/since.csv"
is "$(awk -F, '$1 == "cohort" && $2 == "c" { print $4 "," $6 }' "$tmp/since.csv")" "7,0" \
	"--since 2026-11-04: only Wednesday's 7 worked leads, none won"
err=$("$REFINERY" feedback --since yesterday 2>&1); rc=$?
is "$rc" 2 "a malformed --since is a usage error"

# ---- refund claims
"$REFINERY" export -q --claims --supplier acme --csv "$tmp/acme.csv"
ok $? "export --claims --supplier acme"
is "$(awk -F, 'NR > 1 { print $1 ":" $4 ":" $7 ":" $8 }' "$tmp/acme.csv" | tr '\n' ' ')" \
	"5:duplicate:41:4.50 6:invalid::4.50 7:wrong_number::4.50 " \
	"acme: 5 (lead 41 bought 8 days earlier), 6 (fake phone), 7 (wrong number); not 8 (bought 2026-08-01)"
is "$(awk -F, '$1 == 7 { print $6 "," $9 }' "$tmp/acme.csv")" "2026-11-04T18:00:00Z,2026-12-01T00:00:00Z" \
	"lead 7: proven by the wrong number of 2026-11-04, claimable until bought + 30 days"
like "$(grep '^6,' "$tmp/acme.csv")" "blacklist.fake_phone" "lead 6's evidence names the rule"
"$REFINERY" export -q --claims --supplier GLOBEX --csv "$tmp/globex.csv"
is "$(wc -l <"$tmp/globex.csv")" 1 "globex: nothing to claim (lead 41 was bought first), the header alone"
err=$("$REFINERY" export --claims --csv "$tmp/x.csv" 2>&1); rc=$?
like "$rc:$err" "^2:.*export --claims needs --supplier=NAME" "--claims without --supplier is a usage error"
err=$("$REFINERY" export --supplier acme --csv "$tmp/x.csv" 2>&1); rc=$?
like "$rc:$err" "^2:.*--supplier goes with --claims" "and --supplier without --claims"
err=$("$REFINERY" export --claims --supplier acme --rep 7 --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "--claims refuses the filters of a results export"
err=$("$REFINERY" export --claims --supplier initech --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "an unknown supplier is a usage error"
like "$err" "unknown supplier \"initech\"" "naming it"
like "$err" "Known suppliers \(\[supplier.NAME\] of the job's rules\): acme, globex\." "and listing the known ones"
ok "$([ ! -e "$tmp/x.csv" ]; echo $?)" "and writes no file"

# ---- the source is read when the command runs: columns renamed since the run
pq -c "ALTER TABLE crm.leads RENAME COLUMN supplier TO vendor; ALTER TABLE crm.leads RENAME COLUMN campaign TO camp" >/dev/null
err=$("$REFINERY" export --claims --supplier acme --csv "$tmp/y.csv" 2>&1); rc=$?
is "$rc" 5 "claims from a source without the supplier column: a data error"
like "$err" "the run's source has no column \"supplier\" \(\[columns\] supplier\)" "naming the column and the key"
out=$("$REFINERY" feedback 2>&1); rc=$?
like "$rc:$out" "^0:.*Conversion per campaign
 \(left out: the run's source has no campaign column" "feedback leaves the campaigns out, saying why"

# ---- the rules are checked when loaded, errors naming file and line
printf '[source]\ntable = t\n[cost]\nlead_price = web:10, fair:ten\n' >"$tmp/bad1.ini"
err=$("$REFINERY" check-rules "$tmp/bad1.ini" 2>&1); rc=$?
is "$rc" 3 "a malformed lead price is a rules error"
like "$err" "bad1.ini:4: \[cost\] lead_price: \"fair:ten\" is not source:price" "naming file, line and item"
printf '[source]\ntable = t\n[supplier.acme]\nclaim_days = -3\n' >"$tmp/bad2.ini"
err=$("$REFINERY" check-rules "$tmp/bad2.ini" 2>&1); rc=$?
is "$rc" 3 "a negative claim window is a rules error"
like "$err" "bad2.ini:4:.*claim_days" "naming file, line and key"
printf '[source]\ntable = t\n[supplier.acme]\nclaim_rules = fake_phone\n' >"$tmp/bad3.ini"
err=$("$REFINERY" check-rules "$tmp/bad3.ini" 2>&1); rc=$?
like "$rc:$err" "^3:.*bad3.ini:4: \[supplier.acme\] claim_rules: \"fake_phone\" is not a black-list rule" \
	"a claim rule that is no black-list rule is a rules error"

done_testing
