#!/bin/bash
# tests/integration/dashboard.sh -- report --html as a manager's dashboard, on a job
# whose figures the test knows: 1,200 leads, then 50 and 30 deleted from the source,
# three reps with capacities 40, 25 and 10 (30 from the third run), outcomes recorded
# after the third run and read by a fourth; a job without snapshots, whose older run's
# page takes its figures from the run's summary; and a job whose run has leads held for
# review and customers, each a state of its own that the tiles, the change table and
# every source's row and bar count apart, adding up to the leads pulled.  The tiles,
# sources, cohorts, change, trend and outcome figures are checked against the fixture's
# arithmetic or against queries of the stored results written here, formatted with this
# script's own thousands grouping; outcomes of runs 3 and 4 per cohort and run, counted
# by hand (a lead won and a customer since still in the cohort it was called in); every
# value from the database is escaped, and a long Hebrew cohort name is written whole (the
# page is valid UTF-8); the page has no script and fetches nothing; the
# same database gives the same bytes.  Then headless Chromium renders it: each chart is
# laid out with a non-empty box holding drawn bars (DOM dump), and the screenshot has
# bar-coloured pixels inside each chart's box.  Only where Chromium is not installed or
# cannot start are those checks skipped, saying why.
# DASHBOARD_PNG=FILE keeps a full-size copy of the screenshot.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

"$GENLEADS" --rows 1200 --seed 13 --nreps 3 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
# a rep's name and a source that need escaping; capacities that fix how many are assigned
pq -c "UPDATE crm.reps SET active = true,
           capacity = CASE rep_id WHEN 1 THEN 40 WHEN 2 THEN 25 ELSE 10 END;
       UPDATE crm.reps SET name = 'O''Brien <b>&amp;' WHERE rep_id = 2;
       UPDATE crm.leads SET source = 'fair&<expo>'
       WHERE lead_id IN (SELECT lead_id FROM crm.leads ORDER BY lead_id LIMIT 3)"
cat >"$tmp/d.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = nightly
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[outcomes]
map = sale:won, no answer:no_answer
[score.source]
refferal = 30
EOF
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/d.ini"
ok $? "run 1: 1,200 leads"
pq -c "DELETE FROM crm.leads WHERE lead_id IN (SELECT lead_id FROM crm.leads ORDER BY lead_id DESC LIMIT 50)"
"$REFINERY" run -q -c "$tmp/d.ini"
ok $? "run 2: 50 leads fewer"
pq -c "CREATE TABLE crm.gone AS SELECT lead_id FROM crm.leads ORDER BY lead_id DESC LIMIT 30;
       DELETE FROM crm.leads WHERE lead_id IN (SELECT lead_id FROM crm.gone);
       UPDATE crm.reps SET capacity = 30 WHERE rep_id = 3"
"$REFINERY" run -q -c "$tmp/d.ini"
ok $? "run 3: 30 leads fewer, rep 3 takes 30"

# outcomes after the last run, on held leads of the first cohort (a) and one of the second:
# a: 4 leads worked, 2 won ("sale" is won through the map), 5 calls, 3 answered
a=($(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 3 AND cohort = 'a'
            AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 4"))
b=$(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 3 AND cohort = 'b'
           AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
pq -c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at) VALUES
       ('nightly', '${a[0]}', 1, 'sale', '2025-07-02 10:00'),
       ('nightly', '${a[1]}', 1, 'no answer', '2025-07-02 10:05'),
       ('nightly', '${a[1]}', 1, 'won', '2025-07-03 09:00'),
       ('nightly', '${a[2]}', 2, 'busy', '2025-07-02 11:00'),
       ('nightly', '${a[3]}', 3, 'lost', '2025-07-02 12:00'),
       ('nightly', '$b', 3, 'callback', '2025-07-02 12:30')"
is "${#a[@]}/${b:+1}" "4/1" "five held leads got outcomes"

html=$tmp/dashboard.html
"$REFINERY" report --html "$html" >/dev/null
ok $? "report --html"
page=$(cat "$html")

# ---- figures, formatted here: digits grouped by three, shares to one place
commas() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[,.]\)/\1,\2\3/' -e 'ta' <<<"$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
nb=$'\u00a0'
is "$(commas 1234567)/$(commas 950)/$(commas 1120.5)" "1,234,567/950/1,120.5" "the test's own grouping"
tile() { grep -o "<b>[^<]*</b><span>$1" "$html" | sed 's/^<b>\([^<]*\)<.*/\1/'; }
q3() { pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 3 AND $1"; }
assigned=$(q3 "verdict = 'kept' AND rep_id IS NOT NULL")
waiting=$(q3 "verdict = 'kept' AND rep_id IS NULL")
nurture=$(q3 "verdict = 'nurture'")
removed=$(q3 "verdict IN ('blacklisted', 'duplicate', 'partial', 'outlier')")
is "$(tile pulled)" "1,120" "pulled: 1,200 - 50 - 30, grouped"
is "$(tile assigned)/$assigned" "95/95" "assigned: the capacities 40 + 25 + 30, as the stored results say"
is "$(tile waiting)" "$(commas "$waiting")" "waiting: kept without a rep ($waiting)"
is "$(tile nurture)" "$(commas "$nurture")" "nurture ($nurture)"
is "$(tile removed)" "$(commas "$removed")" "removed: black-listed, duplicate, partial, outlier ($removed)"
is "$((assigned + waiting + nurture + removed))" 1120 "the four add up to the leads pulled"
like "$page" "<span>assigned &middot; $(pct 95 1120)${nb}%</span>" "assigned's share of pulled, rounded to 0.1 %"
like "$page" "<span>removed &middot; $(pct "$removed" 1120)${nb}%</span>" "removed's share"

# ---- the run's warnings: the map key no lead's source matches
like "$page" "<li>$tmp/d.ini:$(grep -n '^refferal' "$tmp/d.ini" | cut -d: -f1): \[score.source\] refferal: " \
	"the page lists the run's warning, naming file, line and key"
is "$(grep -c '<li>' "$html")" "$(pq -c "SELECT array_length(warnings, 1) FROM refinery.runs WHERE run_id = 3")" \
	"as many as refinery.runs.warnings holds"

# ---- removals per rule
IFS='|' read -r tv tr tn < <(pq -c "SELECT verdict, rule_id, count(*) FROM refinery.lead_results
	WHERE run_id = 3 AND verdict NOT IN ('kept', 'customer')
	GROUP BY verdict, rule_id ORDER BY count(*) DESC, verdict, rule_id LIMIT 1")
like "$page" "class=\"l\">$tv: $tr</text>" "the removal chart's first bar is the largest rule ($tv: $tr)"
like "$page" "<td>$tv</td><td>$tr</td><td class=\"n\">$tn</td><td class=\"n\">$(pct "$tn" 1120)${nb}%</td>" \
	"its row: $tn leads, $(pct "$tn" 1120) % of pulled"

# ---- per source: pulled straight from the source table
bad=0
while IFS='|' read -r src n; do
	grep -qF "<td>$src</td><td class=\"n\">$(commas "$n")</td>" "$html" || { bad=1; diag "source $src: $n"; }
done < <(pq -c "SELECT source, count(*) FROM crm.leads WHERE source NOT LIKE '%<%' GROUP BY source")
is "$bad" 0 "every source's row shows the leads the source table holds"
like "$page" "<td>fair&amp;&lt;expo&gt;</td><td class=\"n\">3</td>" "a source name is escaped (3 leads)"
unlike "$page" "fair&<expo>" "and never written raw"
like "$page" "O&#39;Brien &lt;b&gt;&amp;amp;" "a rep's name is escaped"
unlike "$page" "<b>&amp;" "and never written raw"

# ---- cohorts: target = kept leads x target rate, to one place
IFS='|' read -r cl ct < <(pq -c "SELECT c.leads, round((c.leads * c.target_rate)::numeric, 1)
	FROM refinery.run_cohorts c WHERE c.run_id = 3 AND c.cohort = 'a'")
is "$cl" "$(q3 "verdict = 'kept' AND cohort = 'a'")" "cohort a's size is its kept leads"
like "$page" "<tr><td>a</td><td class=\"n\">$(commas "$cl")</td><td class=\"n\">$(q3 "cohort = 'a' AND rep_id IS NOT NULL")</td>.*<td class=\"n\">$(commas "$ct")</td>" \
	"cohort a's row: leads, assigned and the target ($ct conversions)"

# ---- change since run 2
like "$page" "<tr><td>pulled</td><td class=\"n\">1,150</td><td class=\"n\">1,120</td><td class=\"n\">-30</td><td class=\"n\">-2.6${nb}%</td></tr>" \
	"pulled: 1,150 -> 1,120, -30, -2.6 %"
like "$page" "<tr><td>assigned</td><td class=\"n\">75</td><td class=\"n\">95</td><td class=\"n\">\+20</td><td class=\"n\">\+26.7${nb}%</td></tr>" \
	"assigned: 75 -> 95 (rep 3 takes 20 more), +26.7 %"
like "$page" "vanished from the source: 30\." "30 leads vanished"
held=$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 2 AND verdict = 'kept'
              AND rep_id IS NOT NULL AND lead_id::bigint IN (SELECT lead_id FROM crm.gone)")
like "$page" "<tr><td>assigned</td><td>vanished</td><td class=\"n\">$held</td></tr>" \
	"held leads deleted from the source: assigned -> vanished ($held)"

# ---- trend: one column per run, oldest first
is "$(grep -o 'text-anchor="middle" class="l">run [0-9]*<' "$html" | grep -o 'run [0-9]*' | tr '\n' ' ')" \
	"run 1 run 2 run 3 " "the trend has the job's three runs, oldest first"
like "$page" "<tr><td>1</td><td>[-0-9: ]+</td><td class=\"n\">1,200</td><td class=\"n\">75</td>" "run 1's row: 1,200 pulled, 75 assigned"

# ---- outcomes against target
# the Wilson score interval of 2 won in 4 at z = 1.96
read -r lo hi < <(awk 'BEGIN { k = 2; n = 4; z = 1.959964; p = k / n; c = p + z * z / (2 * n);
	h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)); d = 1 + z * z / n
	printf "%.1f %.1f\n", 100 * (c - h) / d, 100 * (c + h) / d }')
trate=$(pq -c "SELECT round(100 * target_rate::numeric, 1) FROM refinery.run_cohorts WHERE run_id = 3 AND cohort = 'a'")
like "$page" "<tr><td>a</td><td class=\"n\">4</td><td class=\"n\">2</td><td class=\"n\">50.0${nb}%</td><td class=\"n\">$trate${nb}%</td><td class=\"n\">[0-9.]+${nb}%</td><td class=\"n\">5</td><td class=\"n\">3</td><td class=\"n\">60.0${nb}%</td><td class=\"n\">$lo${nb}%</td><td class=\"n\">$hi${nb}%</td><td>few leads worked \(4\)</td></tr>" \
	"cohort a: 4 worked, 2 won (50.0 %, 95% interval $lo-$hi %, few) beside its target ($trate %), 3 of 5 calls answered (60.0 %)"
like "$page" "<tr><td>b</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0.0${nb}%</td>" "cohort b: 1 worked, none won"
# per run: all six were recorded after run 3 began, so they are run 3's: 6 calls, 5 leads,
# 2 won (40.0 %), 4 answered (66.7 %); its target is its cohorts' rates weighted by leads
trun=$(pq -c "SELECT round(100 * sum(leads * target_rate::numeric) / sum(leads), 1) FROM refinery.run_cohorts WHERE run_id = 3")
like "$page" "<tr><td>3</td><td>[-0-9: ]+</td><td class=\"n\">6</td><td class=\"n\">5</td><td class=\"n\">2</td><td class=\"n\">40.0${nb}%</td><td class=\"n\">$trun${nb}%</td><td class=\"n\">66.7${nb}%</td></tr>" \
	"per run: run 3's lists got 6 calls on 5 leads, 2 won (40.0 %) against $trun %, 66.7 % answered"
like "$page" "<tr><td>2</td><td>[-0-9: ]+</td><td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">&ndash;</td>" \
	"run 2's lists got none: no rate"
is "$(grep -c 'class="v">no data</text>' "$html")" 2 "and its chart says no data for runs 1 and 2 rather than 0 %"

# the next run reads the outcomes: two customers, out of the cohorts, still counted in a
"$REFINERY" run -q -c "$tmp/d.ini"
ok $? "run 4 reads the outcomes"
"$REFINERY" report --html "$tmp/run4.html" >/dev/null
customers=$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 4 AND verdict = 'customer'
                   AND lead_id IN ('${a[0]}', '${a[1]}')")
is "$customers/$(grep -o '<b>[^<]*</b><span>customer' "$tmp/run4.html" | sed 's/^<b>\([^<]*\)<.*/\1/')" \
	"2/$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 4 AND verdict = 'customer'")" \
	"run 4: the two leads won are customers, and the customer tile counts every customer"
like "$(cat "$tmp/run4.html")" "<tr><td>a</td><td class=\"n\">4</td><td class=\"n\">2</td><td class=\"n\">50.0${nb}%</td>" \
	"the won leads still count in cohort a, the cohort they had"

# ---- self-contained and deterministic
charts="outcome removed cohorts sources changes trend reps wins answers outcome-runs cohort-runs"
n=0
for c in $charts; do grep -q "<figure class=\"chart\" id=\"chart-$c\">" "$html" && n=$((n + 1)); done
is "$n" 11 "the eleven charts are on the page"
is "$(grep -c '<figcaption>' "$tmp/run4.html")" 11 "each with a caption"
unlike "$page" "<script|<link|<img| src=| href=|@import|url\(" "no script, nothing fetched"
PGTZ=Asia/Jerusalem "$REFINERY" report --html "$tmp/again.html" >/dev/null
cmp -s "$tmp/run4.html" "$tmp/again.html"
ok $? "the same database gives the same bytes, whatever the session's time zone"

# ---- --html -: standard output carries the page alone
"$REFINERY" report --html - >"$tmp/stdout.html"
ok $? "report --html -"
cmp -s "$tmp/run4.html" "$tmp/stdout.html"
ok $? "standard output holds the page alone, the bytes --html FILE writes (no text table)"
"$REFINERY" report --html /dev/stdout | cat >"$tmp/devstdout.html"
is "${PIPESTATUS[0]}/$(cmp -s "$tmp/run4.html" "$tmp/devstdout.html" && echo same)" "0/same" \
	"--html /dev/stdout onto a pipe: the page alone too"
out=$("$REFINERY" report --html "$tmp/file.html")
like "$out" '^Where the leads went' "with --html FILE the text tables still go to standard output"
unlike "$out" '<html' "and the page does not"

# ---- per cohort and run: the outcomes above were recorded after run 3 began and read by
# run 4, so they were called from run 3's lists: a 4 worked, 2 won (the two won are
# customers since, out of the cohorts, and still count in a); b 1 worked, 0 won.  Then,
# after run 4, outcomes on run 4's held leads of a (not the customers): c0 won, c1 lost,
# c2 busy then lost: 3 worked, 1 won (33.3 %), 4 calls; and b's first held lead "sale"
# (won through the map): 1 worked, 1 won.  Runs 1 and 2 have none.
c=($(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 4 AND cohort = 'a'
            AND rep_id IS NOT NULL AND lead_id NOT IN ('${a[0]}', '${a[1]}') ORDER BY lead_id LIMIT 3"))
b4=$(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 4 AND cohort = 'b'
            AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
pq -c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at) VALUES
       ('nightly', '${c[0]}', 1, 'won', '2025-07-05 10:00'),
       ('nightly', '${c[1]}', 1, 'lost', '2025-07-05 10:10'),
       ('nightly', '${c[2]}', 2, 'busy', '2025-07-05 10:20'),
       ('nightly', '${c[2]}', 2, 'lost', '2025-07-05 15:00'),
       ('nightly', '$b4', 3, 'sale', '2025-07-05 11:00')"
"$REFINERY" report --job nightly --html "$tmp/cr.html" >/dev/null
ok $? "report --html of run 4 with outcomes of runs 3 and 4"
cr=$(sed -n '/<summary>The figures per cohort and run/,/<\/details>/p' "$tmp/cr.html")
trate_of() { pq -c "SELECT round(100 * target_rate::numeric, 1) FROM refinery.run_cohorts WHERE run_id = $1 AND cohort = '$2'"; }
row() { # cohort run worked won rate target calls
	printf '<tr><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td></tr>' \
		"$1" "$2" "$3" "$4" "$5" "$(trate_of "$2" "$1")${nb}%" "$6"
}
like "$cr" "$(row a 3 4 2 "50.0${nb}%" 5)" "cohort a, run 3: 4 worked, 2 won (50.0 %), 5 calls, beside run 3's target for a"
like "$cr" "$(row b 3 1 0 "0.0${nb}%" 1)" "cohort b, run 3: 1 worked, none won (0.0 %)"
like "$cr" "$(row a 4 3 1 "33.3${nb}%" 4)" "cohort a, run 4: 3 worked, 1 won (33.3 %), 4 calls"
like "$cr" "$(row b 4 1 1 "100.0${nb}%" 1)" "cohort b, run 4: 1 worked, 1 won (100.0 %)"
like "$cr" "$(row a 1 0 0 "&ndash;" 0)" "cohort a, run 1: no outcome, no rate"
ncoh=$(pq -c "SELECT count(DISTINCT cohort) FROM refinery.run_cohorts WHERE run_id BETWEEN 1 AND 4")
is "$(grep -c '<tr><td>' <<<"$cr")/$(grep -c '<g class="panel">' "$tmp/cr.html")" "$((4 * ncoh))/$ncoh" \
	"a row per cohort and run ($ncoh cohorts x 4 runs) and a panel per cohort"
is "$(grep -o '>[a-z()]*: [0-9,]* won of [0-9,]* worked[^<]*<' "$tmp/cr.html" | head -2 | tr '\n' ' ')" \
	">a: 3 won of 7 worked (42.9${nb}%)< >b: 1 won of 2 worked (50.0${nb}%)< " \
	"each panel's heading sums its runs: a 3 of 7 (42.9 %), b 1 of 2"

# ---- a run without a snapshot, no longer its job's latest: the figures from its summary
sed -e 's/^name = nightly$/name = lean/' -e 's/^\[outcomes\]$/[output]\nsnapshot = no\n&/' "$tmp/d.ini" >"$tmp/lean.ini"
"$REFINERY" run -q -c "$tmp/lean.ini" && "$REFINERY" run -q -c "$tmp/lean.ini"
ok $? "job lean (no snapshot): two runs"
first=$(pq -c "SELECT min(run_id) FROM refinery.runs WHERE job = 'lean'")
"$REFINERY" report --job lean --run "$first" --html "$tmp/lean.html" >/dev/null
ok $? "report --html of its first run"
is "$(grep -o '<b>[^<]*</b><span>\(pulled\|assigned\)' "$tmp/lean.html" | sed 's/^<b>\([^<]*\)<.*/\1/' | tr '\n' ' ')" \
	"1,120 95 " "its tiles: 1,120 pulled, 95 assigned (the capacities)"
is "$(grep -c 'no longer stored' "$tmp/lean.html")" 2 "the removals and the sources say its leads are no longer stored"
err=$("$REFINERY" report --job lean --run "$first" --html - 2>&1 >"$tmp/lean-stdout.html")
is "$?/$(cmp -s "$tmp/lean.html" "$tmp/lean-stdout.html" && echo same)" "0/same" \
	"its page on standard output: the page alone"
like "$err" "run $first kept no snapshot .*: the page's sections of its leads say so" \
	"its warning speaks of the page, not of tables it does not print"
# without a snapshot the cohort a lead had comes from the next change's old_cohort: a lead
# of cohort a held after lean's second run is won, the third run makes it a customer (no
# cohort in the state); its win still counts in a, for the second run's lists
second=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'lean'")
x=$(pq -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'lean' AND cohort = 'a'
           AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
pq -c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
       SELECT 'lean', '$x', rep_id, 'won', '2025-07-02 09:30' FROM refinery.lead_state
       WHERE job = 'lean' AND lead_id = '$x'"
"$REFINERY" run -q -c "$tmp/lean.ini" && "$REFINERY" report --job lean --html "$tmp/lean3.html" >/dev/null
ok $? "lean's third run reads the win; its report"
is "$(pq -c "SELECT coalesce(cohort, '-') || ' ' || verdict FROM refinery.lead_state WHERE job = 'lean' AND lead_id = '$x'")" \
	"- customer" "the lead won is a customer, without a cohort"
like "$(cat "$tmp/lean3.html")" "<tr><td>a</td><td>$second</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">100.0${nb}%</td>" \
	"per cohort and run: 1 worked, 1 won in a, for run $second's lists"
unlike "$(cat "$tmp/lean3.html")" "<tr><td>\(none\)</td><td>" "and no outcome without a cohort"

# ---- leads held for review and customers are states of their own, never removed: job
# held reads another source (seed 31 has possible opt-outs, held for review); two of its
# first run's held leads are won, so its second run has customers too
"$GENLEADS" --rows 1200 --seed 31 --nreps 3 --out-dir "$tmp/h" >/dev/null
pg_load_leads "$tmp/h" crmh
sed -e 's/crm\./crmh./g' -e 's/^name = nightly$/name = held/' "$tmp/d.ini" >"$tmp/held.ini"
"$REFINERY" run -q -c "$tmp/held.ini"
ok $? "job held: its first run"
h1=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'held'")
pq -c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
       SELECT 'held', lead_id, rep_id, 'won', '2025-07-02 10:00' FROM refinery.lead_results
       WHERE run_id = $h1 AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 2"
"$REFINERY" run -q -c "$tmp/held.ini"
ok $? "its second run reads the two wins"
h2=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'held'")
# a cohort stored under a long Hebrew name (XY and 130 letters, 262 bytes): its panel's
# heading is whatever the database holds, whole
longname="XY$(printf 'ק%.0s' {1..130})"
pq -c "INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, target_rate, sla_hours)
       VALUES ($h2, '$longname', 99, 0, 0.05, 24)"
"$REFINERY" report --job held --html "$tmp/held.html" >/dev/null
ok $? "its report"
qh() { pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $h2 AND $1"; }
hpulled=$(qh true)
hreview=$(qh "verdict = 'review'")
hcustomer=$(qh "verdict = 'customer'")
hremoved=$(qh "verdict IN ('blacklisted', 'duplicate', 'partial', 'outlier')")
ok "$([ "$hreview" -gt 0 ] && [ "$hcustomer" = 2 ]; echo $?)" \
	"the run holds leads for review ($hreview) and has the 2 customers"
htile() { grep -o "<b>[^<]*</b><span>$1 " "$tmp/held.html" | sed 's/^<b>\([^<]*\)<.*/\1/'; }
hshare() { grep -o "<span>$1 &middot; [^<]*</span>" "$tmp/held.html" | sed "s/^<span>$1 &middot; \([0-9.]*\).*/\1/"; }
is "$(htile review)/$(hshare review)" "$hreview/$(pct "$hreview" "$hpulled")" \
	"a review tile: the leads held for review ($hreview) and their share of pulled"
is "$(htile removed)/$(hshare removed)" "$(commas "$hremoved")/$(pct "$hremoved" "$hpulled")" \
	"the removed tile counts black-listed, duplicate, partial and outlier leads only ($hremoved)"
tiles=0
for t in assigned waiting nurture customer review removed; do
	n=$(htile $t | tr -d ,)
	tiles=$((tiles + ${n:-0}))
done
is "$tiles" "$hpulled" "assigned, waiting, nurture, customer, review and removed add up to the leads pulled"
is "$(for t in assigned waiting nurture customer review removed; do hshare $t; done |
	awk '{ s += $1 } END { d = s - 100; print (d < 0 ? -d : d) <= 0.3 ? "ok" : s }')" ok \
	"their shares add up to 100 %, give or take the rounding of six shares to 0.1"
like "$(cat "$tmp/held.html")" "<tr><td>review</td><td class=\"n\">$(pq -c "SELECT counts ->> 'review' FROM refinery.runs WHERE run_id = $h1")</td><td class=\"n\">$hreview</td>" \
	"the change table has a review row"
# per source: every verdict has a column, and each source's states add up to its leads
bad=0 nsrc=0
while IFS='|' read -r src n as wa nu cu re rm; do
	nsrc=$((nsrc + 1))
	row="<tr><td>$src</td>"
	for v in "$n" "$as" "$wa" "$nu" "$cu" "$re" "$rm"; do row+="<td class=\"n\">$(commas "$v")</td>"; done
	grep -qF "$row" "$tmp/held.html" || { bad=1; diag "source $src: $n pulled = $as + $wa + $nu + $cu + $re + $rm"; }
done < <(pq -c "SELECT coalesce(source, '(none)'), count(*),
	count(*) FILTER (WHERE verdict = 'kept' AND rep_id IS NOT NULL),
	count(*) FILTER (WHERE verdict = 'kept' AND rep_id IS NULL),
	count(*) FILTER (WHERE verdict = 'nurture'), count(*) FILTER (WHERE verdict = 'customer'),
	count(*) FILTER (WHERE verdict = 'review'),
	count(*) FILTER (WHERE verdict IN ('blacklisted', 'duplicate', 'partial', 'outlier'))
	FROM refinery.lead_results WHERE run_id = $h2 GROUP BY 1")
is "$bad/$nsrc" "0/$(pq -c "SELECT count(DISTINCT coalesce(source, '(none)')) FROM refinery.lead_results WHERE run_id = $h2")" \
	"each source's row: pulled, assigned, waiting, nurture, customer, review, removed, as the results count them"
# the chart: each source's label, then the total written after its bar
bars=$(sed -n '/<figure class="chart" id="chart-sources">/,/<\/figure>/p' "$tmp/held.html" |
	grep -o 'class="[lv]">[^<]*<' | sed -e 's/^class="l">\(.*\)<$/\1|/' -e 's/^class="v">\([0-9,]*\).*/\1/' |
	paste -d '' - - | tr -d ,)
is "$bars" "$(pq -c "SELECT coalesce(source, '(none)') || '|' || count(*) FROM refinery.lead_results
	WHERE run_id = $h2 GROUP BY source ORDER BY count(*) DESC, source")" \
	"each source's bar adds up to its leads pulled, customers and reviews included"
iconv -f UTF-8 -t UTF-8 "$tmp/held.html" >/dev/null
ok $? "the page is valid UTF-8"
like "$(cat "$tmp/held.html")" "<text [^>]*>$longname: 0 won of 0 worked</text>" \
	"per cohort and run: the heading of a panel holds the cohort's whole name and its counts"

# ---- run 4's page rendered by headless Chromium
nchrome=5
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then
	skip $nchrome "chromium is not installed (tests/deps.sh installs the Debian package chromium)"
	done_testing
fi
python=$(command -v python3 || true)
[ -n "$python" ] || { skip $nchrome "python3 is not installed"; done_testing; }
render() { # URL, then chromium's options
	local url=$1
	shift
	timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
		--disable-extensions --user-data-dir="$tmp/chromium" \
		"$@" "$url" 2>>"$tmp/chromium.log"
}
# the page with a probe that lists each chart's box and its drawn shapes
probe='<script>
var o = [];
document.querySelectorAll("figure.chart").forEach(function (f) {
  var s = f.querySelector("svg"), r = s.getBoundingClientRect(), n = 0;
  s.querySelectorAll("rect").forEach(function (x) { var b = x.getBBox(); if (b.width > 0 && b.height > 0) n++; });
  o.push([f.id, Math.round(r.left), Math.round(r.top + scrollY), Math.round(r.width), Math.round(r.height), n].join(" "));
});
o.push("page " + document.documentElement.scrollWidth + " " + document.documentElement.scrollHeight);
var p = document.createElement("pre"); p.id = "probe"; p.textContent = o.join("\n"); document.body.appendChild(p);
</script>'
{ sed '$d' "$tmp/run4.html"; printf '%s\n' "$probe" '</body></html>'; } >"$tmp/probe.html" # after </main>
dom=$(render "file://$tmp/probe.html" --window-size=1100,900 --force-device-scale-factor=0.5 --dump-dom)
boxes=$(sed -n '/<pre id="probe">/,/<\/pre>/p' <<<"$dom" | sed -e 's/<[^>]*>//g')
if [ -z "$boxes" ]; then
	diag "$(tail -n 5 "$tmp/chromium.log")"
	skip $nchrome "chromium is installed but cannot render here (see the log above)"
	done_testing
fi
read -r _ _ ph < <(grep '^page ' <<<"$boxes")
is "$(grep -c '^chart-' <<<"$boxes")" 11 "Chromium lays out the eleven charts"
is "$(awk '/^chart-/ && ($4 < 100 || $5 < 20 || $6 < 1) { print $1 }' <<<"$boxes")" "" \
	"each chart has a box of some size holding drawn bars"
# at half scale: the pixels are read in pure Python, a quarter of them is plenty
render "file://$tmp/run4.html" --window-size="1100,$ph" --force-device-scale-factor=0.5 \
	--screenshot="$tmp/dashboard.png" >/dev/null
ok $? "Chromium screenshots the page (1100 x $ph CSS pixels, at half scale)"
if [ -n "${DASHBOARD_PNG:-}" ]; then # a full-size copy to look at
	render "file://$tmp/run4.html" --window-size="1100,$ph" --force-device-scale-factor=1 \
		--screenshot="$DASHBOARD_PNG" >/dev/null
fi
pixels=$(grep '^chart-' <<<"$boxes" | "$python" "$top_srcdir/tests/lib/png_regions.py" "$tmp/dashboard.png" 0.5)
like "$pixels" "^size 550 ($((ph / 2))|$(((ph + 1) / 2)))\b" "the screenshot is the whole page"
is "$(awk '/^chart-/ && $2 < 100 { print $1 " " $2 }' <<<"$pixels")" "" \
	"each chart's region of the screenshot holds bars (>= 100 coloured pixels at half scale)"
diag "$(tr '\n' ' ' <<<"$pixels")"
done_testing
