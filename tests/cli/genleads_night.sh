#!/bin/bash
# tests/cli/genleads_night.sh -- genleads --night K: the data after K nightly increments.
# --night 0 is the data without --night; each night adds, changes and deletes exactly the
# rows its shares of --rows say; surviving rows keep all but their status; new rows come
# after every base id and date; the truth follows the changed statuses; and it is the
# same bytes on every run, night k the same whatever K comes after it.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"

[ -x "$GENLEADS" ] || { echo "Bail out! no generator at \"$GENLEADS\" (set GENLEADS)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/genleads-night.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

N=20000
SEED=7
FILES="leads truth reps rep_source_stats"
# each night's counts, from the shares of N (0.5%, 0.4%, 0.1%), rounded to the nearest row
NEW=$(((N * 5 + 500) / 1000))
CHG=$(((N * 4 + 500) / 1000))
DEL=$(((N + 500) / 1000))
is "$NEW $CHG $DEL" "100 80 20" "each night at $N rows: 100 new, 80 status changes, 20 deletions"

gen() { "$GENLEADS" --rows $N --seed $SEED "$@" >/dev/null; }

# one line a leads.csv record, fields separated by \037, a newline inside a field
# written \n; the header left out
recs() {
	LC_ALL=C awk '
	function put(s,   n, i, c, q, cur, out) {
		if (index(s, "\"") == 0) { gsub(/,/, "\037", s); print s; return }
		n = length(s); out = ""; cur = ""; q = 0
		for (i = 1; i <= n; i++) {
			c = substr(s, i, 1)
			if (q) {
				if (c != "\"") cur = cur c
				else if (substr(s, i + 1, 1) == "\"") { cur = cur c; i++ }
				else q = 0
			} else if (c == "\"") q = 1
			else if (c == ",") { out = out cur "\037"; cur = "" }
			else cur = cur c
		}
		print out cur
	}
	NR == 1 { next }
	{ rec = inq ? rec "\\n" $0 : $0
	  line = $0; if (gsub(/"/, "", line) % 2) inq = !inq
	  if (!inq) put(rec) }' "$1"
}

# ---- command line --------------------------------------------------------------------
out=$("$GENLEADS" --help)
like "$out" '--night K' "--help shows --night"
wide=$(printf '%s\n' "$out" | awk 'length($0) > 79' | wc -l)
is "$wide" 0 "--help still fits in 80 columns"
for bad in -1 10001 3x ""; do
	err=$("$GENLEADS" --rows 10 --seed 1 --night "$bad" --out-dir "$tmp/x" 2>&1); rc=$?
	is "$rc" 2 "--night \"$bad\" exits 2"
done
like "$err" 'invalid number of nights: ""' "the bad value is quoted"
err=$("$GENLEADS" --rows 100000000 --seed 1 --night 10000 --out-dir "$tmp/x" 2>&1); rc=$?
is "$rc" 2 "--rows 100000000 --night 10000 (more rows than it will hold) exits 2"
err=$("$GENLEADS" --lists --night 1 2>&1 >/dev/null); is "$?" 2 "--lists with --night exits 2"
[ ! -e "$tmp/x" ]; ok $? "nothing is written after a usage error"

# ---- --night 0 and determinism ----------------------------------------------------------
gen --out-dir "$tmp/base"; ok $? "the base: $N rows"
gen --night 0 --out-dir "$tmp/k0"; ok $? "--night 0"
for f in $FILES; do
	cmp -s "$tmp/base/$f.csv" "$tmp/k0/$f.csv"; ok $? "--night 0 gives the bytes of no --night: $f.csv"
done
gen --night 3 --out-dir "$tmp/k3"; ok $? "--night 3"
gen --night 3 --out-dir "$tmp/k3b"
for f in $FILES; do
	cmp -s "$tmp/k3/$f.csv" "$tmp/k3b/$f.csv"; ok $? "--night 3 twice, the same bytes: $f.csv"
done
for f in reps rep_source_stats; do
	cmp -s "$tmp/base/$f.csv" "$tmp/k3/$f.csv"; ok $? "$f.csv does not change with the nights"
done
gen --night 1 --out-dir "$tmp/k1"; ok $? "--night 1"
left=$(find "$tmp/k3" -name '*.tmp' | wc -l | tr -d ' ')
is "$left" 0 "no temporary files are left behind"

for d in base k1 k3; do
	recs "$tmp/$d/leads.csv" >"$tmp/$d.rec"
	tail -n +2 "$tmp/$d/truth.csv" >"$tmp/$d.truth"
done
is "$(awk -F'\037' 'NF != 15 { n++ } END { print n + 0 }' "$tmp/base.rec" "$tmp/k1.rec" \
	"$tmp/k3.rec")" 0 "every record has 15 fields (the record reader works)"
is "$(wc -l <"$tmp/base.rec" | tr -d ' ')" $N "the base has $N records"
maxid=$(tail -n 1 "$tmp/base.truth" | cut -d, -f1)
maxday=$(cut -d$'\037' -f2 "$tmp/base.rec" | sort | tail -n 1 | cut -c1-10)
like "$maxday" '^2025-0(6-30|7-01)$' "the base ends on 2025-06-30 or just after midnight ($maxday)"

# ---- one night: every count exact ---------------------------------------------------------
# rows, base rows kept, new rows and how many of them are records of people already there
counts() {
	awk -F, -v max="$maxid" -v base="$tmp/base.truth" '
		BEGIN { while ((getline l < base) > 0) { split(l, f, ","); seen[f[2]] = 1 } }
		{ n++ }
		$1 + 0 <= max { kept++ }
		$1 + 0 > max { new++; d = ";" $6 ";"
			if (d ~ /;dup;/) { dup++; if (!($2 in seen)) lost++ }
			else if ($2 in seen) reused++ }
		END { printf "%d %d %d %d %d %d\n", n, kept, new, dup, lost, reused }' "$1"
}
# shellcheck disable=SC2046
set -- $(counts "$tmp/k1.truth")
is "$1" $((N - DEL + NEW)) "--night 1: N - $DEL deleted + $NEW new = $((N - DEL + NEW)) rows"
is "$2" $((N - DEL)) "--night 1: $DEL base rows deleted"
is "$3" $NEW "--night 1: $NEW new rows"
is "$4" $((NEW / 2)) "--night 1: half the new rows ($((NEW / 2))) are new records of people"
is "$5" 0 "each of them carries the entity_id of a person of the base"
is "$6" 0 "the other new rows are new people (entity ids the base never used)"

# ---- three nights -----------------------------------------------------------------------------
# shellcheck disable=SC2046
set -- $(counts "$tmp/k3.truth")
rows=$1 kept=$2 new=$3
is "$rows" $((N + 3 * NEW - 3 * DEL)) "--night 3: N + 3 x $NEW new - 3 x $DEL deleted rows"
# a night deletes among all rows alive then, the earlier nights' new rows as well
is "$(((N - kept) + (3 * NEW - new)))" $((3 * DEL)) \
	"--night 3: the base rows and new rows gone add up to 3 x $DEL deletions"
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
within $((N - kept)) $((3 * DEL - 5)) $((3 * DEL)); ok $? "most deletions hit base rows ($((N - kept)))"

cut -d$'\037' -f1 "$tmp/k3.rec" >"$tmp/k3.ids"
cut -d, -f1 "$tmp/k3.truth" >"$tmp/k3.tids"
cmp -s "$tmp/k3.ids" "$tmp/k3.tids"; ok $? "truth.csv has one row per lead row, ids matching, in order"
bad=$(awk '!($1 ~ /^[0-9]+$/ && $1 + 0 > prev + 0) { n++ } { prev = $1 } END { print n + 0 }' \
	"$tmp/k3.ids")
is "$bad" 0 "lead ids rise row after row: base rows in base order, then new rows, all unique"
is "$(awk -v max="$maxid" '$1 + 0 > max' "$tmp/k3.ids" | wc -l | tr -d ' ')" "$new" \
	"the new rows are exactly the ids above the base's last ($maxid)"

# deletions spread over the base, not taken from its end
q=$(awk -F'\037' -v n=$N 'NR == FNR { keep[$1] = 1; next }
	{ i++; if (!($1 in keep)) gone[int(4 * (i - 1) / n)]++ }
	END { printf "%d %d %d %d\n", gone[0], gone[1], gone[2], gone[3] }' "$tmp/k3.ids" "$tmp/base.rec")
awk -v q="$q" 'BEGIN { split(q, g, " "); for (i = 1; i <= 4; i++) if (g[i] < 3) exit 1 }'
ok $? "deleted base rows come from every quarter of the base ($q)"

# surviving base rows: every field but the status as in the base
cmp_rows() {
	awk -F'\037' 'NR == FNR { b[$1] = $0; next }
		($1 in b) { k++; split(b[$1], f, "\037")
			for (i = 1; i <= 15; i++) if (i != 9 && f[i] != $i) { bad++; break }
			if (f[9] != $9) st++ }
		END { printf "%d %d %d\n", k, bad, st }' "$1" "$2"
}
# shellcheck disable=SC2046
set -- $(cmp_rows "$tmp/base.rec" "$tmp/k3.rec")
is "$1" "$kept" "every kept base row found by its id"
is "$2" 0 "kept base rows keep every field but the status"
changed=$3
# 3 x 80 changes, less those on the nights' new rows, on rows deleted later, or twice on a row
within "$changed" $((3 * CHG - 30)) $((3 * CHG)); ok $? "about 3 x $CHG base rows have a new status ($changed)"
# shellcheck disable=SC2046
set -- $(cmp_rows "$tmp/k1.rec" "$tmp/k3.rec")
within "$1" $((N + NEW - DEL - 2 * DEL)) $((N + NEW - DEL)); ok $? "--night 1's rows found in --night 3 ($1)"
is "$2" 0 "night 1's rows are the same in --night 3 but for the status (night 1 does not depend on K)"

# the truth follows the statuses: black-listed on junk, dead statuses and opt-outs in the notes;
# opt-out on refusals, denials, do-not-call and opt-outs in the notes
# (the statuses and their older spellings, as genleads --lists gives them)
person='refused|denies|do_not_call|Refused|סירב|Denies|מכחיש|DNC|Do Not Call|do not call|אל תתקשר'
dead='wrong_number|disconnected|Wrong Number|wrong number|מספר שגוי|WRONG_NUMBER|Disconnected|מנותק|disconnected '
truthcheck() {
	LC_ALL=C awk -F'\037' -v person="$person" -v dead="$dead" '
		BEGIN { n = split(person, p, "|"); for (i = 1; i <= n; i++) P[p[i]] = 1
			n = split(dead, p, "|"); for (i = 1; i <= n; i++) D[p[i]] = 1 }
		NR == FNR { st[NR] = $9; next }
		{ split($0, t, ","); d = ";" t[6] ";"
		  bl = d ~ /;(junk|bl_status|dnc_in_notes);/
		  opt = (st[FNR] in P) || d ~ /;dnc_in_notes;/
		  if ((t[3] == 1) != bl || (t[5] == 1) != opt) bad++
		  if (d ~ /;bl_status;/ && !(st[FNR] in P) && !(st[FNR] in D)) bad++
		  if (d ~ /;status_changed;/) { chg++; if (st[FNR] in P) optchg++ } }
		END { printf "%d %d %d\n", bad, chg, optchg }' "$1" "$2"
}
# shellcheck disable=SC2046
set -- $(truthcheck "$tmp/k3.rec" "$tmp/k3.truth")
is "$1" 0 "is_blacklisted and is_optout agree with every row's status and dirt"
within "$2" "$changed" $((3 * CHG)); ok $? "rows tagged status_changed: the changed ones and at most 3 x $CHG ($2)"
within "$3" 1 $((3 * CHG)); ok $? "some status changes are opt-outs ($3)"
# shellcheck disable=SC2046
set -- $(truthcheck "$tmp/base.rec" "$tmp/base.truth")
is "$1 $2" "0 0" "(the same rules hold in the base, where nothing is tagged status_changed)"
# a base row whose status changed to an opt-out: black-listed and opt-out in the truth
n=$(LC_ALL=C awk -F'\037' 'NR == FNR { b[$1] = $9; next }
	FILENAME ~ /rec$/ { if (($1 in b) && b[$1] != $9 && ($9 == "refused" || $9 == "denies" ||
		$9 == "do_not_call")) o[$1] = 1; next }
	($1 in o) { n++; if ($3 == 1 && $5 == 1) flagged++ }
	END { printf "%d %d\n", n, flagged }' "$tmp/base.rec" "$tmp/k3.rec" FS=, "$tmp/k3.truth")
# shellcheck disable=SC2086
set -- $n
within "$1" 1 $((3 * CHG)); ok $? "some base rows changed to refused, denies or do_not_call ($1)"
is "$2" "$1" "each of them is_blacklisted = 1 and is_optout = 1 in the truth"

# new rows: dated on their night, after the base
days=$(awk -F'\037' -v max="$maxid" '$1 + 0 > max { print substr($2, 1, 10) }' "$tmp/k3.rec" |
	sort | uniq -c | awk -v per=$NEW '{ printf "%s%s:%s", sep, $2, ($1 <= per ? "ok" : $1); sep = " " }')
is "$days" "2025-07-02:ok 2025-07-03:ok 2025-07-04:ok" "new rows are dated on nights 1-3 (at most $NEW a night)"
bad=$(awk -F'\037' -v max="$maxid" '$1 + 0 > max && substr($10, 1, 10) > substr($2, 1, 10)' \
	"$tmp/k3.rec" | wc -l | tr -d ' ')
is "$bad" 0 "no new row has a touch after its night"

done_testing
