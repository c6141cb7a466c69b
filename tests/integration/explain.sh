#!/bin/bash
# tests/integration/explain.sh -- refinery explain tells a lead's story: one paragraph per
# decision the run took, for leads of known fates in a small hand-made run (a black-listed
# lead, a merged duplicate and its survivor, an assigned lead, a lead waiting for a rep),
# and the raw fields only with --verbose; a long raw value cut between two characters.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

# Five leads.  Each lead's score is given: one parameter maps the campaign to its
# points out of a largest key of 100 (the shipped parameters at weight 0), so a
# lead's score is its campaign's number (hot from the shipped hot_at = 60), and the
# shipped cohorts (a from 60 with an
# SLA of 4 h, b from 48, c from 38, d from 0) place them.  Lead 2 is lead 1 again
# (the same phone in another format, the name swapped) with another e-mail; lead 1
# survives with the better status.  Lead 3 asked not to be called.  One rep, Dana
# (7), takes one lead a day: the best lead (4, 90 points) gets her, leads 1 and 5
# wait over capacity.
cat >"$tmp/leads.csv" <<'CSV'
lead_id,created_at,source,campaign,full_name,phone,email,city,status,last_touch_at,touch_count,last_touch_type,handler_notes,automation_after_last_touch,last_rep_id
1,2025-06-20 10:00:00,referral,s70,Dana Levi,052-4423268,dana.levi@gmail.com,Haifa,follow_up_high,2025-06-25 10:00:00,2,call,,false,
2,2025-06-21 10:00:00,referral,s70,Levi Dana,+972524423268,dana.l@walla.co.il,Haifa,no_answer,2025-06-22 10:00:00,1,call,,false,
3,2025-06-20 10:00:00,referral,s80,Avi Mizrahi,054-7318264,,Jerusalem,do_not_call,2025-06-21 10:00:00,1,call,,false,
4,2025-06-22 10:00:00,referral,s90,Moran Peretz,054-6612345,moran.p@gmail.com,Haifa,new,,0,,,false,
5,2025-06-23 10:00:00,facebook,s20,Noa Bar,053-2817364,noa.bar@gmail.com,Haifa,new,,0,,,false,
CSV
printf 'rep_id,name,active,capacity\n7,Dana,t,1\n' >"$tmp/reps.csv"
printf 'rep_id,source,attempts,wins\n7,referral,100,30\n' >"$tmp/rep_source_stats.csv"
pg_load_leads "$tmp"
cat >"$tmp/rules.ini" <<'INI'
[source]
table = crm.leads
now = 2025-07-01 00:00:00
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[score]
nurture_below = 0
[score.given]
kind = map
field = campaign
top = 100
s90 = 90
s80 = 80
s70 = 70
s20 = 20
[score.source]
weight = 0
[score.created_at]
weight = 0
[score.status]
weight = 0
[score.last_touch_at]
weight = 0
[score.touch_count]
weight = 0
[score.last_touch_type]
weight = 0
[score.notes]
weight = 0
[score.automation]
weight = 0
INI
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/rules.ini" >/dev/null
ok $? "a run of five hand-made leads"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE status = 'committed'")
is "$(pq -c "SELECT string_agg(lead_id || ':' || verdict || ':' || coalesce(rep_id::text, '-'), ' ' ORDER BY lead_id)
             FROM refinery.results WHERE run_id = $run")" \
	"1:kept:- 2:duplicate:- 3:blacklisted:- 4:kept:7 5:kept:-" "the leads' fates are the ones the story is tested on"

story() { "$REFINERY" explain "$@"; }
# line N of a story
line() { sed -n "${2}p" <<<"$1"; }

# ---- a black-listed lead: what became of it and why, nothing about stages it never reached
out=$(story 3); rc=$?
is "$rc" 0 "explain 3"
is "$(line "$out" 1)" "Lead 3 (source referral), run $run of job default: blacklisted." \
	"black-listed: the first line says what became of the lead"
is "$(line "$out" 2)" \
	"Removed by the black-list because refused, denied leaving details, or asked not to be called: \"do_not_call\" (rule blacklist.dnc_status)." \
	"black-listed: removed because the rule's reason with the status that triggered it, naming the rule"
is "$(wc -l <<<"$out")" 2 "black-listed: two lines, none for the stages it never reached"
unlike "$out" '^$' "no empty line"
unlike "$out" '[{}]' "no JSON"

# ---- a merged duplicate
out=$(story 2)
is "$(line "$out" 1)" "Lead 2 (source referral), run $run of job default: merged into lead 1." \
	"duplicate: merged into its survivor"
like "$(line "$out" 2)" '^Merged with lead 1 \(cluster [0-9]+\) because same phone \+972524423268; ' \
	"duplicate: merged with the survivor because of the evidence the dedupe stage found"
like "$(line "$out" 2)" 'despite a different e-mail \(dana\.l@walla\.co\.il here, dana\.levi@gmail\.com there\)' \
	"duplicate: despite the contact that differs, with both values"
unlike "$(line "$out" 2)" "different (phone|name)" "duplicate: neither the phone it shares nor its name in another word order is a difference"
is "$(wc -l <<<"$out")" 2 "duplicate: no score, cohort or rep paragraph"

# ---- its survivor, waiting for a rep
out=$(story 1)
is "$(line "$out" 1)" "Lead 1 (source referral), run $run of job default: kept, waiting for a rep." \
	"waiting: the first line"
is "$(line "$out" 2)" "Survivor of cluster $(pq -c "SELECT cluster_id FROM refinery.results WHERE run_id = $run AND lead_id = '1'"): lead 2 merged into it, and it carries the merged record." \
	"survivor: the lead merged into it"
is "$(line "$out" 3)" 'Score 70 of 100 (hot): given "s70" -> 70 of 100 points.' \
	"score: the parameter's raw value, its points of its maximum; parameters at weight 0 left out"
like "$(line "$out" 4)" '^Cohort a \(from score 60, first contact within 4 h\): first contact due by 2025-07-0[0-9] [0-9]{2}:[0-9]{2}; channels: call x6' \
	"cohort: its bound, its SLA, the due time to the minute and the channels"
like "$(line "$out" 5)" '^Waiting for a rep: over capacity; the 1 active rep took 1 lead with a better chance to close \(this lead.s: [0-9.]+%\)\.$' \
	"waiting: over capacity, the reps' take and the lead's own chance"
is "$(wc -l <<<"$out")" 5 "waiting: five paragraphs"

# ---- the assigned lead
out=$(story 4)
is "$(line "$out" 1)" "Lead 4 (source referral), run $run of job default: assigned to rep Dana." \
	"assigned: the first line names the rep"
is "$(line "$out" 2)" 'Score 90 of 100 (hot): given "s90" -> 90 of 100 points.' "assigned: the score"
like "$(line "$out" 4)" '^Rep Dana \(id 7\), number 1 in the queue, chosen because the run gave each rep the leads it is likeliest to close: [0-9.]+% chance to close this one; Dana closed 30 of 100 referral leads \([0-9.]+% after smoothing\)' \
	"assigned: why this rep, with her history on the lead's source"
like "$(line "$out" 4)" '[0-9]\.[0-9]%|[0-9]%' "percentages rounded to one decimal"
unlike "$out" '[0-9]\.[0-9]{2,}' "no unrounded number"

# ---- --verbose: the raw fields after the story
out=$(story --verbose 4)
is "$(line "$out" 1)" "Lead 4 (source referral), run $run of job default: assigned to rep Dana." \
	"--verbose: the story first"
is "$(line "$out" 5)" "" "--verbose: an empty line after the story"
like "$(line "$out" 6)" "^run_id +\\| $run\$" "--verbose: then every field of the row"
like "$out" '^rep_name +\| Dana$' "--verbose: a field of the view"
unlike "$(story 4)" 'rep_name +\|' "without --verbose no raw field"
err=$(story --verbose --html x 4 2>&1); is "$?" 2 "explain takes no --html"

# ---- a CSV source: the story goes on without raw values, and says so
sed -e "s|^table = crm.leads\$|csv = $tmp/leads.csv|" -e 's|^\[source\]$|[job]\nname = fromcsv\n[source]|' \
	"$tmp/rules.ini" >"$tmp/csv.ini"
"$REFINERY" run -q -c "$tmp/csv.ini" >/dev/null
ok $? "the same leads from a CSV file, as job fromcsv"
out=$(story --job fromcsv 4)
is "$(line "$out" 2)" 'Score 90 of 100 (hot): given -> 90 of 100 points.' \
	"CSV source: the points of the maximum, no raw value"
is "$(line "$out" 3)" "Raw values are not shown: the source is a CSV file." "CSV source: and why"

# ---- a long raw value is cut after 60 characters, never inside one: lead 5's campaign
# becomes X and 70 times shin with qamats (a letter and its vowel point, four bytes)
qs=$(printf '\xd7\xa9\xd6\xb8')
pq -c "UPDATE crm.leads SET campaign = 'X' || repeat('$qs', 70) WHERE lead_id = 5"
"$REFINERY" run -q -c "$tmp/rules.ini" >/dev/null
ok $? "a run with lead 5's long Hebrew campaign"
out=$(story --job default 5); rc=$?
is "$rc/$(printf '%s' "$out" | iconv -f UTF-8 -t UTF-8 >/dev/null && echo valid)" "0/valid" \
	"explain 5: its story is valid UTF-8"
is "$(grep '^Score ' <<<"$out" | grep -o 'given "[^"]*"')" "given \"X$(printf "$qs%.0s" {1..59})...\"" \
	"the campaign: its first 60 characters (X and 59 pointed letters), then ..."
done_testing
