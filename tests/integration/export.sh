#!/bin/bash
# tests/integration/export.sh -- refinery export's three formats against a throwaway
# server: raw as it always was, the dialer call list (E.164 phones unguarded, in call
# order, kept leads only, one row per callable number: a second valid number gets its
# row, an invalid, do-not-call or wrong number none), the spreadsheet file (BOM, guard
# on text only, values as entered from the source, every callable number), --cohort,
# unknown reps and cohorts refused, and --verdict review with the evidence columns.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
command -v python3 >/dev/null || skip_all "python3 is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work; mkdir -p "$tmp"

N=1500
"$GENLEADS" --rows $N --seed 31 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat >"$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = 2025-07-01
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
[blacklist.dnc_list]
level = record
phone_list = $tmp/dnc.csv
reason = on the do-not-call list
INI
printf 'phone\n+972549999999\n' >"$tmp/dnc.csv"
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/rules.ini" >/dev/null
ok $? "a run with reps"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE status = 'committed'")
# col FILE N: field N (1-based) of every data record of a CSV file, a record per line
col() {
	python3 -c 'import csv, sys
r = csv.reader(open(sys.argv[1], newline="", encoding="utf-8-sig"))
next(r)
for rec in r: print(rec[int(sys.argv[2]) - 1].replace("\n", " "))' "$1" "$2"
}
rep=$(pq -c "SELECT rep_id FROM refinery.results WHERE run_id = $run AND rep_id IS NOT NULL
             GROUP BY rep_id ORDER BY count(*) DESC, rep_id LIMIT 1")
[ -n "$rep" ] || { echo "Bail out! the run assigned no lead"; exit 1; }

# ---- raw: what export always wrote
"$REFINERY" export -q --csv "$tmp/old.csv"; rc1=$?
"$REFINERY" export -q --format raw --csv "$tmp/raw.csv"; rc2=$?
is "$rc1/$rc2" "0/0" "export without --format and with --format raw"
cmp -s "$tmp/old.csv" "$tmp/raw.csv"
ok $? "--format raw writes the same file as no --format"
is "$(head -1 "$tmp/raw.csv")" \
	"run_id,lead_id,source,verdict,rule_id,reason,cluster_id,survivor_id,phone_norm,phone_type,phone_repair,email_norm,name_norm,status_norm,score,points,temperature,persona,cohort,rep_id,call_order,p_close,channel_plan,sla_due_at,golden" \
	"raw: the header is every column of refinery.results"
is "$(col "$tmp/raw.csv" 1 | wc -l)" \
	"$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run")" "raw: one record per lead of the run"

# ---- dialer
"$REFINERY" export -q --format dialer --rep "$rep" --csv "$tmp/d.csv"; rc=$?
is "$rc" 0 "export --format dialer --rep $rep"
is "$(head -1 "$tmp/d.csv")" "lead_id,phone,rep_id,call_order,due_at,channel_plan" "dialer: the header"
is "$(tail -n +2 "$tmp/d.csv" | cut -d, -f1 | sort -u | wc -l)" \
	"$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND verdict = 'kept' AND rep_id = $rep AND phone_norm IS NOT NULL")" \
	"dialer: every kept lead of the rep with a phone"
is "$(tail -n +2 "$tmp/d.csv" | cut -d, -f2 | grep -cvE '^\+[0-9]{8,15}$')" 0 \
	"dialer: every phone is E.164, with no guard apostrophe"
is "$(tail -n +2 "$tmp/d.csv" | cut -d, -f3 | sort -u | paste -sd' ')" "$rep" "dialer: only that rep"
is "$(tail -n +2 "$tmp/d.csv" | cut -d, -f4 | paste -sd' ')" \
	"$(tail -n +2 "$tmp/d.csv" | cut -d, -f4 | sort -n | paste -sd' ')" "dialer: rows in call order"
is "$(tail -n +2 "$tmp/d.csv" | cut -d, -f1,2 | awk -F, '!seen[$1]++' | paste -sd' ')" \
	"$(pq -c "SELECT string_agg(lead_id || ',' || phone_norm, ' ' ORDER BY call_order) FROM refinery.results WHERE run_id = $run AND verdict = 'kept' AND rep_id = $rep AND phone_norm IS NOT NULL")" \
	"dialer: each lead's first row is the number the run chose"
like "$(sed -n 2p "$tmp/d.csv" | cut -d, -f5)" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
	"dialer: due_at in ISO 8601, UTC"
"$REFINERY" export -q --format dialer --csv "$tmp/all.csv"; rc=$?
is "$rc/$(tail -n +2 "$tmp/all.csv" | cut -d, -f1 | sort -u | wc -l)" \
	"0/$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND verdict = 'kept' AND phone_norm IS NOT NULL")" \
	"dialer without --rep: every kept lead with a phone"
is "$(tail -n +2 "$tmp/all.csv" | awk -F, '{ print ($3 == "" ? 999999999 : $3), ($4 == "" ? 999999999 : $4) }' | paste -sd';')" \
	"$(tail -n +2 "$tmp/all.csv" | awk -F, '{ print ($3 == "" ? 999999999 : $3), ($4 == "" ? 999999999 : $4) }' | sort -s -k1,1n -k2,2n | paste -sd';')" \
	"dialer without --rep: by rep, then call order"
err=$("$REFINERY" export --format dialer --verdict kept --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "dialer with --verdict is a usage error"
like "$err" 'does not take --verdict' "and says so"
err=$("$REFINERY" export --format pdf --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "an unknown format is a usage error"

# ---- unknown rep and cohort
err=$("$REFINERY" export --rep 999 --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "--rep 999 (no such rep in the run) is a usage error"
like "$err" "^refinery: error: run $run has no rep 999$" "it names the rep"
like "$err" "Known reps of run $run: [0-9]+(, [0-9]+)*" "and lists known ones"
[ ! -e "$tmp/x.csv" ]
ok $? "and writes no file"
err=$("$REFINERY" export --format dialer --cohort nosuch --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "an unknown cohort is a usage error"
like "$err" "run $run has no cohort \"nosuch\"" "it names the cohort"
like "$err" "Known cohorts of run $run: [a-z_]+" "and lists known ones"
idle=$(pq -c "SELECT rep_id FROM refinery.run_reps WHERE run_id = $run AND assigned = 0 LIMIT 1")
if [ -n "$idle" ]; then
	"$REFINERY" export -q --format dialer --rep "$idle" --csv "$tmp/idle.csv"; rc=$?
	is "$rc/$(wc -l <"$tmp/idle.csv")" "0/1" "a rep of the run with no leads: the header alone"
else
	skip 1 "every rep of the run has leads"
fi

# ---- --cohort
cohort=$(pq -c "SELECT cohort FROM refinery.run_cohorts WHERE run_id = $run AND leads > 0 ORDER BY ord LIMIT 1")
"$REFINERY" export -q --cohort "$cohort" --csv "$tmp/c.csv"; rc=$?
is "$rc/$(col "$tmp/c.csv" 19 | sort -u)" "0/$cohort" "--cohort: only that cohort's leads"
is "$(col "$tmp/c.csv" 19 | wc -l)" \
	"$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND cohort = '$cohort'")" "--cohort: all of them"
"$REFINERY" export -q --format dialer --rep "$rep" --cohort "$cohort" --csv "$tmp/rc.csv"; rc=$?
is "$rc/$(tail -n +2 "$tmp/rc.csv" | cut -d, -f1 | sort -u | wc -l)" \
	"0/$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND verdict = 'kept' AND rep_id = $rep AND cohort = '$cohort' AND phone_norm IS NOT NULL")" \
	"--rep and --cohort combine"

# ---- sheet
lead=$(tail -n +2 "$tmp/d.csv" | head -1 | cut -d, -f1)
pq -c "UPDATE crm.leads SET full_name = '=1+2', handler_notes = '+972 call back', city = 'חיפה'
       WHERE lead_id::text = '$lead'" >/dev/null
"$REFINERY" export -q --format sheet --rep "$rep" --csv "$tmp/s.csv"; rc=$?
is "$rc" 0 "export --format sheet --rep $rep"
is "$(head -c 3 "$tmp/s.csv" | od -An -tx1 | tr -d ' ')" "efbbbf" "sheet: starts with a UTF-8 BOM"
is "$(head -1 "$tmp/s.csv" | tail -c +4)" \
	"lead_id,verdict,cohort,rep_id,call_order,score,temperature,due_at,channel_plan,phone,email,name_norm,name,city,notes,phone_entered,phone2_entered,mobile_entered,phones" \
	"sheet: the header"
line=$(grep "^$lead," "$tmp/s.csv")
is "$(echo "$line" | awk -F, '{ print $13 "|" $14 "|" $15 }')" "'=1+2|חיפה|'+972 call back" \
	"sheet: name, city and notes as entered in the source, formulas guarded"
like "$(echo "$line" | awk -F, '{ print $10 }')" '^\+[0-9]{8,15}$' "sheet: the E.164 phone is not guarded"
like "$(echo "$line" | awk -F, '{ print $4 "|" $5 "|" $6 }')" "^$rep\\|1\\|[0-9]+(\\.[0-9]+)?$" \
	"sheet: rep, call order and score are plain numbers"
is "$(echo "$line" | awk -F, '{ print $16 }')" \
	"$(pq -c "SELECT phone FROM crm.leads WHERE lead_id::text = '$lead'" | sed "s/^\([-+=@]\)/'\1/")" \
	"sheet: the phone as entered in the source"
is "$(col "$tmp/s.csv" 1 | wc -l)" \
	"$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND rep_id = $rep")" \
	"sheet: every lead of the rep"

# ---- --verdict review: the leads held as possible opt-outs, with the evidence
nrev=$(pq -c "SELECT count(*) FROM refinery.results WHERE run_id = $run AND verdict = 'review'")
ok "$([ "$nrev" -gt 0 ]; echo $?)" "the run held leads for review ($nrev)"
"$REFINERY" export -q --verdict review --csv "$tmp/rv.csv"; rc=$?
is "$rc" 0 "export --verdict review"
is "$(head -1 "$tmp/rv.csv")" \
	"$(head -1 "$tmp/raw.csv"),optout_lead_id,optout_name_norm,optout_phone_norm,optout_email_norm,optout_rule_id,optout_reason,match_probability" \
	"review: every column of refinery.results, then the evidence"
is "$(col "$tmp/rv.csv" 4 | sort -u)" "review" "review: only leads in review"
is "$(col "$tmp/rv.csv" 1 | wc -l)" "$nrev" "review: every one of them"
# the opt-out each names is a black-listed lead of the run that opted out (person-level)
is "$(col "$tmp/rv.csv" 26 | sort -u | while read -r o; do
	pq -c "SELECT verdict FROM refinery.results WHERE run_id = $run AND lead_id = '$o'"; done | sort -u)" \
	"blacklisted" "review: each names a black-listed lead of the run"
is "$(col "$tmp/rv.csv" 32 | awk '$1 < 0 || $1 >= 0.6 || $1 == "" { n++ } END { print n + 0 }')" 0 \
	"review: match probabilities below min_probability (else the leads would have merged)"

# ---- every callable number: the source's other phones, read again at export time
# Five kept leads of the rep get a second phone column after the run: a valid mobile
# (two rows), an invalid number (one row), a number then put on the do-not-call list
# (one row), the number of another lead whose last outcome is wrong_number (one row),
# and the number of a person then erased with forget (one row).
set -- $(tail -n +2 "$tmp/d.csv" | cut -d, -f1 | awk '!seen[$1]++' | head -5)
[ $# = 5 ] || { echo "Bail out! the rep has fewer than 5 leads"; exit 1; }
l1=$1 l2=$2 l3=$3 l4=$4 l5=$5
dead_lead=$(pq -c "SELECT lead_id FROM refinery.results WHERE run_id = $run AND phone_norm IS NOT NULL
                   AND lead_id NOT IN ('$l1', '$l2', '$l3', '$l4', '$l5') ORDER BY lead_id LIMIT 1")
dead=$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$dead_lead'")
job=$(pq -c "SELECT job FROM refinery.runs WHERE run_id = $run")
pq -c "ALTER TABLE crm.leads ADD COLUMN phone2 text;
       UPDATE crm.leads SET phone2 = CASE lead_id::text WHEN '$l1' THEN '052-777-1234'
           WHEN '$l2' THEN '052-12' WHEN '$l3' THEN '054 555 0101' WHEN '$l4' THEN '$dead'
           ELSE '+972 53-606-0606' END
       WHERE lead_id::text IN ('$l1', '$l2', '$l3', '$l4', '$l5');
       INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
       VALUES ('$job', '$dead_lead', $rep, 'wrong_number', now())" >/dev/null
printf '054-555-0101\n' >>"$tmp/dnc.csv"
"$REFINERY" forget -q -c "$tmp/rules.ini" --phone 0536060606 >/dev/null
ok $? "forget a number no result holds"
"$REFINERY" export -q --format dialer --rep "$rep" --csv "$tmp/d2.csv"; rc=$?
is "$rc" 0 "dialer after the source gained second phones"
# read as a dialer would: plain CSV, no BOM, every number E.164 as it is
bad=$(python3 -c 'import csv, re, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
assert rows[0] == ["lead_id", "phone", "rep_id", "call_order", "due_at", "channel_plan"], rows[0]
print(sum(1 for r in rows[1:] if len(r) != 6 or not re.fullmatch(r"\+[0-9]{8,15}", r[1])))' "$tmp/d2.csv")
is "$bad" 0 "dialer: a CSV reader finds every phone in E.164 with no guard character"
numbers() { grep "^$1," "$tmp/d2.csv" | cut -d, -f2 | paste -sd' '; }
p1=$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$l1'")
is "$(numbers "$l1")" "$p1 +972527771234" "a second valid number: two rows, the run's number first"
is "$(grep -c "^$l1,.*,$rep,1," "$tmp/d2.csv")" 2 "both rows with the lead's rep and call order"
is "$(numbers "$l2")" "$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$l2'")" \
	"an invalid second number: one row"
is "$(numbers "$l3")" "$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$l3'")" \
	"a second number put on the do-not-call list: left out"
is "$(numbers "$l4")" "$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$l4'")" \
	"a second number reported wrong on another lead: left out"
is "$(numbers "$l5")" "$(pq -c "SELECT phone_norm FROM refinery.results WHERE run_id = $run AND lead_id = '$l5'")" \
	"a second number of an erased person: left out"
is "$(tail -n +2 "$tmp/d2.csv" | wc -l)" "$(($(tail -n +2 "$tmp/d.csv" | wc -l) + 1))" \
	"one row more than before, nothing else changed"
"$REFINERY" export -q --format sheet --rep "$rep" --csv "$tmp/s2.csv"; rc=$?
is "$rc/$(grep "^$l1," "$tmp/s2.csv" | awk -F, '{ print $17 "|" $NF }')" "0/052-777-1234|$p1; +972527771234" \
	"sheet: the second phone as entered, and every callable number"

# a lead whose first number is a service number (kept: the rules do not call service numbers
# junk): its dialer rows hold its other numbers only
L=$(pq -c "SELECT lead_id FROM refinery.results WHERE run_id = $run AND rep_id = $rep ORDER BY lead_id LIMIT 1")
pq -c "UPDATE crm.leads SET phone = '1-700-500-500, 052-987-6543' WHERE lead_id = $L" >/dev/null
printf '[blacklist.fake_phone]\nspecial_is_junk = no\n' >"$tmp/service.ini"
"$REFINERY" run -q -c "$tmp/rules.ini" -c "$tmp/service.ini"; rc=$?
r2=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE status = 'committed'")
is "$rc/$(pq -c "SELECT verdict || ' ' || phone_norm || ' ' || phone_type FROM refinery.results WHERE run_id = $r2 AND lead_id = '$L'")" \
	"0/kept +9721700500500 special" "the run keeps the lead, its service number first ($L)"
"$REFINERY" export -q --format dialer --csv "$tmp/svc.csv"; rc=$?
is "$rc/$(awk -F, -v l="$L" '$1 == l {print $2}' "$tmp/svc.csv" | paste -sd' ')" "0/+972529876543" \
	"the dialer list calls its mobile, never the service number"
done_testing
