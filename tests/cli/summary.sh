#!/bin/bash
# tests/cli/summary.sh -- what a run says, on CSV runs that need no server: the summary
# line, the dry run's funnel and the JSON summary count assigned / waiting / nurture /
# removed per verdict; the JSON summary opens as an error object does and has no fake
# run id; progress through every stage (--progress for logs, and on a terminal); and the
# warnings of user rule keys that match no lead.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stages.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Seven leads whose fate is known by construction:
#   1 and 2: one person (the same phone in two formats, the name swapped): one duplicate;
#   3: status DNC, a spelling of do_not_call: blacklisted;
#   7: status Won, a spelling of closed_won, an [score] exclude_statuses status: nurture;
#   the survivor of 1/2, 4, 5 and 6: four kept people, each with a valid mobile phone,
#   for one active rep of capacity 2 ([score] nurture_below = 0 keeps low scores kept):
#   2 assigned, 2 waiting.
cat > "$tmp/leads.csv" <<'CSV'
lead_id,created_at,source,full_name,phone,email,city,status,last_touch_at,touch_count
1,2025-01-05 10:00:00,web_form,Dana Levi,052-4423268,dana.levi@gmail.com,Haifa,no_answer,2025-02-01 10:00:00,3
2,2025-03-05 10:00:00,facebook,Levi Dana,+972524423268,,Haifa,follow_up_high,2025-04-01 10:00:00,1
3,2025-01-08 10:00:00,referral,Avi Mizrahi,054-7318264,,Jerusalem,DNC,2025-01-09 10:00:00,1
4,2025-02-09 10:00:00,referral,Moshe Katz,054-6123457,,Tel Aviv,new,,0
5,2025-02-10 10:00:00,web_form,Rina Shapiro,053-7712345,,Haifa,follow_up_low,2025-03-01 10:00:00,2
6,2025-02-11 10:00:00,chat,Eli Ben David,050-8834567,,Ashdod,price,2025-03-02 10:00:00,1
7,2025-02-12 10:00:00,referral,Noa Friedman,052-9945678,,Haifa,Won,2025-03-03 10:00:00,2
CSV
printf 'rep_id,name,active,capacity\n1,Tal,t,2\n' > "$tmp/reps.csv"
rules() {
	cat <<INI
[source]
csv = $tmp/leads.csv
now = 2025-07-01
[output]
target = csv
csv_dir = $1
[score]
nurture_below = 0
[match]
reps_csv = $tmp/reps.csv
INI
}
mkdir "$tmp/a" "$tmp/b" "$tmp/c"
rules "$tmp/a" > "$tmp/rules.ini"
counts='7 pulled, 0 rejected, 2 assigned, 2 waiting, 1 nurture, 2 removed \(1 blacklisted, 1 duplicate\)'

# 1. the summary line, the dry run
# -j1: these runs are tiny, and a busy machine's idle threads only slow them down
out=$("$REFINERY" run -j1 -c "$tmp/rules.ini" 2>"$tmp/err"); rc=$?
is "$rc" 0 "the run succeeds"
unlike "$(cat "$tmp/err")" 'progress|rows/s' "standard error not a terminal and no --progress: no progress"
like "$out" "^refinery: run written: $counts;" \
	"the summary counts assigned, waiting, nurture and removed per verdict (not one kept count)"
unlike "$out" ' kept' "and says no \"kept\" that lumps assigned and waiting together"
is "$(awk -F, 'NR > 1 { print $3 }' "$tmp/a/lead_results.csv" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')" \
	"blacklisted:1 duplicate:1 kept:4 nurture:1 " "the result file has the verdicts the counts are made of"
out=$("$REFINERY" run -j1 -n -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 0 "a dry run succeeds"
like "$out" "^refinery: dry run \(rolled back\): $counts;" "a dry run's summary counts the same"
like "$out" '^outcome +leads +share$' "the dry run's funnel has an outcome table"
like "$out" '^assigned +2 +28\.57%$' "with the assigned leads and their share"
like "$out" '^waiting \(no rep\) +2 +28\.57%$' "the waiting ones"
like "$out" '^nurture +1 +14\.29%$' "the nurture ones"
like "$out" '^  exclude_status +1$' "each with its rule"
like "$out" '^removed +2 +28\.57%$' "the removed ones"
like "$out" '^  blacklisted +1 +14\.29%$' "per verdict"
like "$out" '^    blacklist\.dnc_status +1$' "and per rule"
like "$out" '^    dedupe +1$' "(the duplicate's rule too)"

# 2. the JSON summary: the head of an error object, the job, no fake run id
jsonerr=$("$REFINERY" run -j1 -c "$tmp/rules.ini" --log-format=json --progress=0.05 2>&1 >/dev/null)
json=$(printf '%s\n' "$jsonerr" | grep '"event": "run"')
like "$json" '^\{"ts": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", "program": "refinery", "level": "info", ' \
	"the JSON summary opens with ts, program and level"
errjson=$("$REFINERY" run -c "$tmp/nosuch.ini" --log-format=json 2>&1)
is "$(printf '%s' "$errjson" | sed 's/^{"ts": "[^"]*", \("program": "refinery"\), "level": "[a-z]*".*/\1/')" \
	'"program": "refinery"' "as an error object does"
like "$json" '"job": "default"' "it names the job"
like "$json" '"run_id": null, "status": "written", "dry_run": false' \
	"a CSV run has no run id: null, not -1"
like "$json" '"assigned": 2, "waiting": 2, "nurture": 1, "removed": \{"blacklisted": 1, "duplicate": 1, "partial": 0, "outlier": 0, "customer": 0\}' \
	"and counts assigned, waiting, nurture and removed per verdict"
like "$json" '\}, "review": 0, "verdicts": \{' "and the leads held for review (none here)"
like "$json" '"warnings": \[\]' "with an empty warnings array"
json=$("$REFINERY" run -j1 -n -c "$tmp/rules.ini" --log-format=json 2>&1 >/dev/null | grep '"event": "run"')
like "$json" '"run_id": null, "status": "dry_run", "dry_run": true' "a dry run: run_id null, and it says dry run"
unlike "$json" '"run_id": -1' "no run id -1"
if command -v python3 >/dev/null; then
	is "$(printf '%s' "$json" | python3 -c 'import json, sys; o = json.load(sys.stdin); print(o["assigned"] + o["waiting"] + o["nurture"] + o["review"] + sum(o["removed"].values()), o["pulled"])')" \
		"7 7" "the JSON summary parses, and its outcomes add up to the leads pulled"
else
	ok 0 "# SKIP python3 is not installed"
fi

# 3. progress through every stage, without changing a result
stages="pull $(stage_names ' ') write"
rules "$tmp/b" > "$tmp/b.ini"
err=$("$REFINERY" run -j1 -c "$tmp/b.ini" --progress=0.05 2>&1 >/dev/null); rc=$?
is "$rc" 0 "a run with --progress succeeds"
for s in $stages; do
	like "$err" "^refinery: progress: $s done: [0-9]+ rows in [0-9.]+ s \([0-9]+ rows/s\)$" \
		"--progress: a line as stage $s ends, with its rows and rate"
done
like "$err" '^refinery: progress: dedupe done: 6 rows in ' "a stage's rows are the kept rows it works on"
like "$err" '^refinery: progress: pull done: 7 rows in ' "the pull's the rows read"
ok "$(cmp -s "$tmp/a/lead_results.csv" "$tmp/b/lead_results.csv"; echo $?)" \
	"the results are byte-identical with and without progress"
is "$(printf '%s\n' "$jsonerr" | grep -c '"event": "progress", "stage": "[a-z]*", "done": true, "rows": [0-9]*')" \
	"$(echo $stages | wc -w)" "with --log-format=json: one progress object as each stage ends"
err=$("$REFINERY" run -c "$tmp/b.ini" --progress=0 2>&1); rc=$?
is "$rc" 2 "--progress=0 is a usage error"
err=$("$REFINERY" export --progress=5 --csv x 2>&1); rc=$?
is "$rc" 2 "--progress is an option of run only"
if command -v script >/dev/null && script -qfc true /dev/null >/dev/null 2>&1; then
	tty=$(script -qfc "\"$REFINERY\" run -j1 -c \"$tmp/b.ini\"" /dev/null 2>&1 | tr '\r' '\n')
	for s in $stages; do
		like "$tty" "^refinery: $s: [0-9]+ rows, [0-9.]+ s, [0-9]+ rows/s, done" \
			"on a terminal: the line rewritten in place shows stage $s with its rows and rate"
	done
	like "$tty" "refinery: run written: $counts;" "and the summary follows, the progress line cleared"
else
	ok 0 "# SKIP script(1) cannot make a terminal here"
fi

# 4. warnings: keys of the user's own files that match no lead; the exit status unchanged
rules "$tmp/c" > "$tmp/w.ini"
cat >> "$tmp/w.ini" <<'INI'
[status_map]
callback_later = CB later
[score.source]
refferal = 30
referral = 26
[blacklist.vip_test]
field = full_name
pattern = ^ZZZ nobody$
INI
line() { grep -n "^$1" "$tmp/w.ini" | head -n 1 | cut -d: -f1; }
out=$("$REFINERY" run -j1 -c "$tmp/w.ini" 2>&1); rc=$?
is "$rc" 0 "a run with warnings still exits 0"
like "$out" "^refinery: warning: $tmp/w.ini:$(line callback_later): \[status_map\] callback_later: no lead has this status or any of its spellings$" \
	"a [status_map] status no lead has: a warning naming file and line"
like "$out" "^refinery: warning: $tmp/w.ini:$(line refferal): \[score.source\] refferal: no lead's source is \"refferal\"$" \
	"a map category no lead's value falls in (a typo of referral)"
like "$out" "^refinery: warning: $tmp/w.ini:$(line field): \[blacklist.vip_test\]: the rule matched no lead$" \
	"a black-list rule that matched no lead"
is "$(printf '%s\n' "$out" | grep -c '^refinery: warning: ')" 3 \
	"and nothing else: not referral (leads have it), not the shipped categories no lead has"
like "$out" ', 3 warnings;' "the summary line counts them"
json=$("$REFINERY" run -j1 -c "$tmp/w.ini" --log-format=json 2>&1 >/dev/null | grep '"event": "run"')
like "$json" "\"warnings\": \[\"$tmp/w.ini:$(line callback_later): \[status_map\] callback_later: .*refferal.*vip_test[^\"]*\"\], \"seconds\"" \
	"the JSON summary has them in its warnings array"
is "$(printf '%s\n' "$json" | grep -c .)" 1 "and they are not also lines of their own"
done_testing
