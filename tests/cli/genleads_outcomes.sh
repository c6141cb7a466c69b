#!/bin/bash
# tests/cli/genleads_outcomes.sh -- genleads --outcomes DAY: a day's calls of the leads a
# job handed out.  The same seed, day and file give the same bytes, another day other
# draws; a lead due after the day is not called; every outcome is one of the engine's
# vocabulary, dated that day, with a callback time one or two days on; the propensity in
# the truth has mean 1 over leads of a neutral status (a log-normal of mean 1); a lead
# handed to a better rep wins whenever it wins with a worse one (one stream per lead and
# day); and leads with a higher p_win win more often.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"

[ -x "$GENLEADS" ] || { echo "Bail out! no generator at \"$GENLEADS\" (set GENLEADS)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/genleads-outcomes.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 20,000 leads of one source and neutral status over 60 reps; lead 1000000 due later
{
	echo "lead_id,rep_id,source,status,due_at"
	echo "1000000,1,web_form,new,2025-07-09 10:00:00"
	awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "%d,%d,google_ads,new,\n", 1000000 + i, i % 60 + 1 }'
} >"$tmp/a.csv"
# the same leads, each with the next rep
awk -F, 'NR == 1 { print; next } { $2 = $2 % 60 + 1; print }' OFS=, "$tmp/a.csv" >"$tmp/b.csv"
draw() { "$GENLEADS" --outcomes "$1" --assigned "$2" --seed 11 --out-dir "$tmp/$3"; }

out=$(draw 4 "$tmp/a.csv" a1); rc=$?
is "$rc" 0 "--outcomes 4 draws the day's calls"
like "$out" '^genleads: day 4: 20000 calls, [0-9]+ won' "one call a lead, the one due later left out"
draw 4 "$tmp/a.csv" a2 >/dev/null
cmp -s "$tmp/a1/outcomes.csv" "$tmp/a2/outcomes.csv" && cmp -s "$tmp/a1/outcomes_truth.csv" "$tmp/a2/outcomes_truth.csv"
ok $? "the same seed, day and file give the same bytes"
draw 5 "$tmp/a.csv" a5 >/dev/null
! cmp -s <(cut -d, -f3 "$tmp/a1/outcomes.csv") <(cut -d, -f3 "$tmp/a5/outcomes.csv")
ok $? "another day draws other outcomes"
is "$(head -n 1 "$tmp/a1/outcomes.csv")" "lead_id,rep_id,outcome,at,duration,amount,region,callback_at" "outcomes.csv header"
is "$(grep -c '^1000000,' "$tmp/a1/outcomes.csv")" 0 "the lead due on 2025-07-09 is not called on day 4"
is "$(tail -n +2 "$tmp/a1/outcomes.csv" | awk -F, '
	$3 !~ /^(won|lost|no_answer|busy|callback|refused|wrong_number|not_relevant)$/ { bad++ }
	substr($4, 1, 10) != "2025-07-05" { bad++ }
	$3 == "callback" && $8 !~ /^2025-07-0[67] 1[0-7]:/ { bad++ }
	$3 != "callback" && $8 != "" { bad++ }
	($3 == "won") != ($6 != "") { bad++ }
	END { print bad + 0 }')" 0 \
	"every outcome is in the vocabulary, dated day 4 (2025-07-05), callbacks 1-2 days on, amounts on wins only"
mean=$(tail -n +2 "$tmp/a1/outcomes_truth.csv" | awk -F, '{ s += $3 } END { printf "%.3f", s / NR }')
ok "$(awk -v m="$mean" 'BEGIN { exit !(m > 0.97 && m < 1.03) }'; echo $?)" \
	"the propensity of 20,000 leads of status new has mean 1 (got $mean)"

# a better rep wins every lead a worse one wins, on the same day
draw 4 "$tmp/b.csv" b1 >/dev/null
bad=$(join -t, <(tail -n +2 "$tmp/a1/outcomes_truth.csv" | sort -t, -k1,1) <(tail -n +2 "$tmp/b1/outcomes_truth.csv" | sort -t, -k1,1) |
	awk -F, '$4 >= $8 && $9 == "won" && $5 != "won" { bad++ } $8 >= $4 && $5 == "won" && $9 != "won" { bad++ } END { print bad + 0 }')
is "$bad" 0 "the rep with the higher p_win wins every lead the other wins"
rates=$(tail -n +2 "$tmp/a1/outcomes_truth.csv" | sort -t, -k4,4g | awk -F, '
	{ p[NR] = $4; w[NR] = ($5 == "won") } END { h = int(NR / 2); for (i = 1; i <= NR; i++) if (i <= h) lo += w[i]; else hi += w[i]; print lo, hi }')
read -r lo hi <<<"$rates"
ok "$([ "$hi" -gt $((lo * 2)) ]; echo $?)" "leads in the upper half of p_win win more than twice as often ($hi vs $lo wins)"
err=$("$GENLEADS" --outcomes 4 --seed 1 --out-dir "$tmp/x" 2>&1); rc=$?
like "$rc/$err" '^2/.*missing required option --assigned' "--outcomes without --assigned is a usage error"

done_testing
