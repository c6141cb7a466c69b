#!/bin/bash
# tests/integration/csvrun.sh -- runs with a CSV source and a CSV sink (no server): hand-made
# leads whose verdicts are known, [partial] require_contact = no (a contactless lead scored,
# nurture, no rep), and bad input that must stop the run with a clear error.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/leads.csv" <<'CSV'
lead_id,created_at,source,full_name,phone,email,city,status,last_touch_at,touch_count
1,2025-01-05 10:00:00,web_form,Dana Levi,052-4423268,dana.levi@gmail.com,Haifa,no_answer,2025-02-01 10:00:00,3
2,2025-03-05 10:00:00,facebook,Levi Dana,+972524423268,,Haifa,follow_up_high,2025-04-01 10:00:00,1
3,2025-01-07 10:00:00,web_form,Yossi Cohen,1-800-800-800,,Tel Aviv,new,,0
4,2025-01-08 10:00:00,referral,Avi Mizrahi,054-7318264,,Jerusalem,DNC,2025-01-09 10:00:00,1
5,2025-01-09 10:00:00,referral,Avi Mizrachi,0547318264,avi.m@walla.co.il,Jerusalem,no_answer,2025-01-10 10:00:00,2
6,2025-01-10 10:00:00,chat,Moran Peretz,,,Haifa,new,,0
7,2025-01-11 10:00:00,google_ads,test,0500000000,test@test.com,,new,,0
CSV
cat > "$tmp/rules.ini" <<INI
[source]
csv = $tmp/leads.csv
now = 2025-07-01
[output]
target = csv
csv_dir = $tmp
INI
out=$("$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 0 "a CSV to CSV run succeeds without a server"
like "$out" '^refinery: run written: 7 pulled' "the summary counts every lead"
v() { awk -F, -v id="$1" 'NR > 1 && $1 == id { print $3 "/" $4 }' "$tmp/lead_results.csv"; }
is "$(v 1)" "duplicate/dedupe" "the same phone in two formats and a swapped name: a duplicate"
is "$(v 2)" "kept/" "the survivor is the record with the better status (follow_up_high)"
is "$(v 3)" "blacklisted/blacklist.fake_phone" "a service number alone is a fake phone"
is "$(v 4)" "blacklisted/blacklist.dnc_status" "a legacy DNC status is black-listed"
is "$(v 5)" "blacklisted/blacklist.dnc_status" "the person's other record goes with the opt-out"
is "$(v 6)" "partial/partial.no_contact" "no phone and no e-mail: partial"
like "$(v 7)" '^blacklisted/blacklist\.(test_name|junk_name|fake_phone)' "a test record is black-listed"
is "$(awk -F, 'NR > 1 && $1 == 1 { print $8 }' "$tmp/lead_results.csv")" "'+972524423268" \
	"the phone is stored in E.164 form (formula-guarded in CSV)"

# [partial] require_contact = no: the contactless lead is scored, nurture, never a rep's
mkdir -p "$tmp/nc"
sed "s|^csv_dir = .*|csv_dir = $tmp/nc|" "$tmp/rules.ini" > "$tmp/nc.ini"
printf '[partial]\nrequire_contact = no\n' >> "$tmp/nc.ini"
"$REFINERY" run -q -c "$tmp/nc.ini"
is "$?" 0 "a run with require_contact = no"
# col N: lead 6's value of the column named N
col() { python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")):
	if r["lead_id"] == "6": print(r[sys.argv[2]])' "$tmp/nc/lead_results.csv" "$1"; }
is "$(col verdict)/$(col rule_id)/$(col reason)" "nurture/partial.no_contact/no contact" \
	"no phone and no e-mail: nurture, reason \"no contact\""
like "$(col score)" '^[0-9]+(\.[0-9]+)?$' "and scored ($(col score))"
is "$(col rep_id)" "" "and given to no rep"
is "$(awk -F, 'NR > 1 && $1 == 2 { print $3 }' "$tmp/nc/lead_results.csv")" "kept" \
	"a lead with a contact is kept as before"

# bad input: a missing lead id, a duplicate id, an unterminated quote
printf 'lead_id,full_name,phone\n2,Dana Levi,0521234567\n,Yossi Cohen,0527654321\n' > "$tmp/nullid.csv"
sed "s|$tmp/leads.csv|$tmp/nullid.csv|" "$tmp/rules.ini" > "$tmp/nullid.ini"
err=$("$REFINERY" run -c "$tmp/nullid.ini" 2>&1); rc=$?
is "$rc" 5 "a lead without an id stops the run with the data code"
like "$err" 'lead in source row 2 has no lead id' "and names the source row"
printf 'lead_id,full_name,phone\n9,Dana Levi,0521234567\n3,Yossi Cohen,0527654321\n9,Avi,0541112233\n' > "$tmp/dup.csv"
sed "s|$tmp/leads.csv|$tmp/dup.csv|" "$tmp/rules.ini" > "$tmp/dup.ini"
err=$("$REFINERY" run -c "$tmp/dup.ini" 2>&1); rc=$?
is "$rc" 5 "a duplicate lead id stops the run"
like "$err" 'lead id "9" occurs more than once' "and names the id"
like "$err" 'source rows 1 and 3' "and both source rows"
printf 'lead_id,full_name\n1,"Dana\n2,Avi\n' > "$tmp/quote.csv"
sed "s|$tmp/leads.csv|$tmp/quote.csv|" "$tmp/rules.ini" > "$tmp/quote.ini"
rm -f "$tmp/lead_results.csv"
err=$("$REFINERY" run -c "$tmp/quote.ini" 2>&1); rc=$?
is "$rc" 5 "an unterminated quote stops the run"
like "$err" 'quote\.csv", line 2' "and names the file and the line where the record began"
ok $([ ! -e "$tmp/lead_results.csv" ]; echo $?) "and writes no result file"
# rows set aside in the reject file are counted, and the reject file is this run's
printf 'lead_id,full_name,phone\n1,Dana Levi,0521234567\n2,Yossi Cohen\n3,Avi Mizrahi,0547318264\n' \
	> "$tmp/ragged.csv"
printf 'stale line from an earlier run\n' > "$tmp/ragged.rej"
awk -v f="$tmp/ragged.csv" -v r="$tmp/ragged.rej" \
	'{ if ($0 ~ /^csv = /) { print "csv = " f; print "csv_reject = " r } else print }' \
	"$tmp/rules.ini" > "$tmp/ragged.ini"
out=$("$REFINERY" run -c "$tmp/ragged.ini" 2>"$tmp/stderr"); rc=$?
is "$rc" 0 "a run with one rejected row succeeds (csv_max_rejects = 0)"
like "$out" '^refinery: run written: 2 pulled, 1 rejected, ' "the summary counts the rejected row"
like "$(cat "$tmp/stderr")" 'warning: 1 record of CSV file "[^"]*ragged\.csv" was set aside in "[^"]*ragged\.rej"' \
	"and a warning on stderr names the count and the reject file"
is "$(cat "$tmp/ragged.rej")" "file \"$tmp/ragged.csv\", line 3, column 3 (\"phone\"): expected 3 fields, found 2" \
	"the reject file holds this run's reject only"
is "$(awk -F, 'NR > 1' "$tmp/lead_results.csv" | wc -l)" 2 "the two good rows are written"
err=$("$REFINERY" run -c "$tmp/ragged.ini" --log-format=json 2>&1 >/dev/null); rc=$?
is "$rc" 0 "the same run with JSON logs"
like "$err" '"event": "run", .*"pulled": 2, "rejected": 1, ' "the JSON summary counts the rejected row"
like "$err" '\{"name": "pull", [^}]*"counters": \{"rejected": 1\}' "and so do the pull stage's counters"
like "$err" '"level": "warning", "message": "1 record of CSV file' "the warning is a JSON line too"

out=$("$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
like "$out" '^refinery: run written: 7 pulled, 0 rejected, ' "a CSV source without rejects says 0 rejected"
# a clean run empties a reject file left by an earlier one
printf 'lead_id,full_name,phone\n1,Dana Levi,0521234567\n' > "$tmp/ragged.csv"
out=$("$REFINERY" run -c "$tmp/ragged.ini" 2>"$tmp/stderr"); rc=$?
is "$rc" 0 "a clean run with a reject file succeeds"
like "$out" '^refinery: run written: 1 pulled, 0 rejected, ' "and counts no reject"
ok $([ -f "$tmp/ragged.rej" ] && [ ! -s "$tmp/ragged.rej" ]; echo $?) \
	"and leaves the reject file empty, not the earlier run's"
is "$(grep -c warning "$tmp/stderr")" 0 "and warns of nothing"

# csv_max_rejects = N: the (N+1)-th reject stops the run, naming the file and its line
printf 'lead_id,full_name,phone\n1,Dana Levi,0521234567\n2,Yossi\n3,Avi,054,x\n4,Moran,0501234567\n' \
	> "$tmp/ragged.csv"
printf '[source]\ncsv_max_rejects = 2\n' > "$tmp/max2.ini"
out=$("$REFINERY" run -c "$tmp/ragged.ini" -c "$tmp/max2.ini" 2>&1); rc=$?
is "$rc" 0 "two rejects under csv_max_rejects = 2 pass"
like "$out" 'run written: 2 pulled, 2 rejected, ' "and are counted"
printf '[source]\ncsv_max_rejects = 1\n' > "$tmp/max1.ini"
rm -f "$tmp/lead_results.csv"
err=$("$REFINERY" run -c "$tmp/ragged.ini" -c "$tmp/max1.ini" 2>&1); rc=$?
is "$rc" 5 "the second reject under csv_max_rejects = 1 stops the run with the data code"
like "$err" "error: file \"$tmp/ragged.csv\", line 4: more than 1 rejected record" \
	"naming the file and the line of that reject"
like "$err" 'csv_max_rejects' "and the rules key that sets the limit"
ok $([ ! -e "$tmp/lead_results.csv" ]; echo $?) "and writes no result file"

# duplicate header names are an error, not "the first wins"
printf 'lead_id,lead_id,full_name\n1,2,Dana Levi\n' > "$tmp/duphead.csv"
sed "s|$tmp/leads.csv|$tmp/duphead.csv|" "$tmp/rules.ini" > "$tmp/duphead.ini"
err=$("$REFINERY" run -c "$tmp/duphead.ini" 2>&1); rc=$?
is "$rc" 5 "two columns named lead_id stop the run with the data code"
like "$err" "file \"$tmp/duphead.csv\", line 1: columns 1 and 2 are both named \"lead_id\"" \
	"naming the file and both columns"
printf 'lead_id,full_name,phone,email,phone\n1,Dana Levi,0521234567,,0527654321\n' > "$tmp/duphead.csv"
err=$("$REFINERY" run -c "$tmp/duphead.ini" 2>&1); rc=$?
is "$rc" 5 "a name repeated later in the header too"
like "$err" 'columns 3 and 5 are both named "phone"' "naming columns 3 and 5"
# the reps file goes through the same reader; its names are compared without case
printf 'rep_id,name,active,capacity,Name\n1,Dana,true,10,Dana L\n' > "$tmp/reps.csv"
printf '[match]\nreps_csv = %s\n' "$tmp/reps.csv" > "$tmp/reps.ini"
err=$("$REFINERY" run -c "$tmp/rules.ini" -c "$tmp/reps.ini" 2>&1); rc=$?
is "$rc" 5 "a reps file with two name columns stops the run"
like "$err" "file \"$tmp/reps.csv\", line 1: columns 2 and 5 are both named \"name\"" \
	"naming the reps file and both columns"

# R3: a regex limit on one lead's value sets that lead aside; on more than
# [regex] max_failed_percent of the leads it stops the run naming the rule.
# 100 leads; $1 of them have a 200 KB name of "a" ending in "!", on which the
# test's nested-repeat rule runs into the match limit.
limit_leads() {
	awk -v bad="$1" 'BEGIN {
		for (big = "a"; length(big) < 200000; big = big big)
			;
		big = substr(big, 1, 200000)
		print "lead_id,full_name,phone,city"
		for (i = 1; i <= 100; i++)
			printf "%d,%s,052-44%05d,Haifa\n", i, (i == 7 || (bad > 1 && i == 70)) ? big "!" : "Dana Levi", i
	}'
}
limit_leads 1 > "$tmp/limit1.csv"
limit_leads 2 > "$tmp/limit2.csv"
limit_rules() {
	printf '[source]\ncsv = %s\nnow = 2025-07-01\n[output]\ntarget = csv\ncsv_dir = %s\n' "$1" "$2"
	printf '[blacklist.slow_name]\nfield = full_name\npattern = ^(a+)+$\n'
}
mkdir "$tmp/j1" "$tmp/j2"
limit_rules "$tmp/limit1.csv" "$tmp/j1" > "$tmp/limit1.ini"
limit_rules "$tmp/limit1.csv" "$tmp/j2" > "$tmp/limit1j2.ini"
out=$("$REFINERY" run -j1 -c "$tmp/limit1.ini" 2>&1); rc=$?
is "$rc" 0 "one lead of 100 over a regex limit: the run goes on"
like "$out" '[ (]1 outlier' "and counts that lead as an outlier"
lead7=$(awk -F, 'NR > 1 && $1 == 7 { print $3 "/" $4 "/" $5 $6 }' "$tmp/j1/lead_results.csv")
is "$lead7" 'outlier/regex_limit/"rule ""blacklist.slow_name"" could not be matched on field ""full_name"": match limit exceeded"' \
	"the lead is an outlier whose reason names the rule and the field"
is "$(awk -F, 'NR > 1 && $3 == "outlier"' "$tmp/j1/lead_results.csv" | wc -l)" 1 "no other lead is an outlier"
"$REFINERY" run -j2 -c "$tmp/limit1j2.ini" >/dev/null 2>&1
ok $(cmp -s "$tmp/j1/lead_results.csv" "$tmp/j2/lead_results.csv"; echo $?) "results are byte-identical with -j1 and -j2"
limit_rules "$tmp/limit2.csv" "$tmp/j1" > "$tmp/limit2.ini"
rm -f "$tmp/j1/lead_results.csv"
err=$("$REFINERY" run -c "$tmp/limit2.ini" 2>&1); rc=$?
is "$rc" 3 "2% of the leads over the limit (max_failed_percent 1) stops the run with the rules code"
like "$err" 'limit2\.ini:9: rule "blacklist\.slow_name" failed on 2 of 100 leads, more than \[regex\] max_failed_percent 1%; the first was lead "7"' \
	"naming the rule, the count and the first failing lead"
ok $([ ! -e "$tmp/j1/lead_results.csv" ]; echo $?) "and writes no result file"
printf '[regex]\nmax_failed_percent = 2\n' > "$tmp/limit2more.ini"
out=$("$REFINERY" run -c "$tmp/limit2.ini" -c "$tmp/limit2more.ini" 2>&1); rc=$?
is "$rc" 0 "max_failed_percent = 2 lets the same run through"
like "$out" '[ (]2 outlier' "with both leads outliers"
# consent per channel, read from the source's consent columns
cat > "$tmp/consent.csv" <<'CSV'
lead_id,created_at,source,full_name,phone,email,city,status,last_touch_at,touch_count,consent_call,consent_sms,consent_email
1,2025-01-05 10:00:00,referral,Dana Levi,052-4423268,dana.levi@gmail.com,Haifa,follow_up_high,2025-06-01 10:00:00,1,yes,yes,no
2,2025-01-05 10:00:00,referral,Yossi Cohen,054-7318264,yossi.cohen@walla.co.il,Haifa,follow_up_high,2025-06-01 10:00:00,1,no,yes,yes
CSV
sed "s|$tmp/leads.csv|$tmp/consent.csv|" "$tmp/rules.ini" > "$tmp/consent.ini"
"$REFINERY" run -q -c "$tmp/consent.ini"; rc=$?
is "$rc" 0 "a run with consent columns"
plan() {
	python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    if r["lead_id"] == sys.argv[2]: print(r["verdict"] + "|" + r["channel_plan"])' "$tmp/lead_results.csv" "$1"
}
like "$(plan 1)" '^kept\|call x[0-9]' "consent_email = no: the lead is still called"
unlike "$(plan 1)" 'email|mailing' "but gets no e-mail step (an unsubscribe stops e-mail only)"
like "$(plan 2)" '^kept\|email now' "consent_call = no: e-mail now"
unlike "$(plan 2)" 'call|voicemail|sms' "and no call, voicemail or SMS"
# a small file: two namesakes in one city whose phones and e-mails differ are two people
# (the model's estimates come from three leads: a level no pair shows is unlikely, not
# impossible, and u given the name falls back to the plain u without namesakes to count)
cat > "$tmp/small.csv" <<'CSV'
lead_id,created_at,source,full_name,phone,email,city,status
1,2024-01-02,web,Dana Cohen,052-4423268,dana@gmail.com,Haifa,new
2,2024-02-03,web,Dana Cohen,054-7781234,dcohen@walla.co.il,Haifa,new
3,2024-03-04,web,Moshe Levi,050-6655443,moshe@yahoo.com,Tel Aviv,new
CSV
sed "s|$tmp/leads.csv|$tmp/small.csv|" "$tmp/rules.ini" > "$tmp/small.ini"
"$REFINERY" run -q -c "$tmp/small.ini"; rc=$?
is "$rc" 0 "a run over three leads"
is "$(python3 -c 'import csv, sys
print(" ".join(r["verdict"] for r in csv.DictReader(open(sys.argv[1]))))' "$tmp/lead_results.csv")" "kept kept kept" \
	"two namesakes with different phones and e-mails are not merged"
done_testing
