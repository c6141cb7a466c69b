#!/bin/bash
# tests/integration/febrl.sh -- de-duplication against third-party ground truth: the
# FEBRL data sets 1-3 (../shared/data/febrl) through the CSV source and the CSV sink,
# with rules/febrl.ini mapping their columns.  Pair F1 of the clusters must be >= 0.99
# on each.  Then again with rules that only map the columns and name each field's
# column and comparator (no block, no number, no threshold): the defaults' automatic
# blocks ([dedupe] auto_block) must find the duplicates, cluster F1 >= 0.99 (a cluster
# counts when it holds exactly one true entity's records; singletons on both sides).
# The chaining check: dataset 3 with those rules less the id number, the street and the
# postcode (name, suburb, birth date, state: nothing a person alone holds) must give no
# cluster larger than twice the largest true one (6 records).
# Skips when ../shared is absent (the project does not ship the data).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
data=$(cd "$top_srcdir/.." && pwd)/shared/data/febrl
[ -f "$data/febrl_dataset1.csv" ] || skip_all "no ../shared/data/febrl (the FEBRL data sets)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

for n in 1 2 3; do
	out=$tmp/$n; mkdir -p "$out"
	cat > "$out/source.ini" <<INI
[source]
csv = $data/febrl_dataset$n.csv
; the files put a blank after every comma
csv_trim = yes
now = 2020-01-01
[output]
target = csv
csv_dir = $out
INI
	"$REFINERY" run -q -c "$top_srcdir/rules/febrl.ini" -c "$out/source.ini"
	ok $? "dataset $n: refinery run over the CSV source"
	rows=$(($(grep -c '' "$data/febrl_dataset$n.csv") - 1))
	got=$(($(grep -c '' "$out/lead_results.csv") - 1))
	is "$got" "$rows" "dataset $n: one result per record"
	# pair precision, recall and F1 of the clusters against the rec-N-... entity
	f1=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{
			id = $col["lead_id"]; cl = $col["cluster_id"]; if (cl == "") cl = "self:" id
			split(id, parts, "-"); ent = parts[2]
			c[cl]++; e[ent]++; ce[cl SUBSEP ent]++
		}
		END {
			for (k in c) pred += c[k] * (c[k] - 1) / 2
			for (k in e) tru += e[k] * (e[k] - 1) / 2
			for (k in ce) hit += ce[k] * (ce[k] - 1) / 2
			p = pred ? hit / pred : 0; r = tru ? hit / tru : 0
			printf "%.4f %.4f %.4f", p, r, (p + r) ? 2 * p * r / (p + r) : 0
		}' "$out/lead_results.csv")
	diag "dataset $n: pair precision, recall, F1 = $f1"
	ok $(awk -v f="${f1##* }" 'BEGIN { exit !(f >= 0.99) }'; echo $?) "dataset $n: pair F1 ${f1##* } >= 0.99"
done

# the minimal rules: the columns, and each field's column and comparator
for n in 1 2 3; do
	out=$tmp/min$n; mkdir -p "$out"
	cat > "$out/min.ini" <<INI
[source]
csv = $data/febrl_dataset$n.csv
csv_trim = yes
now = 2020-01-01
[output]
target = csv
csv_dir = $out
[columns]
lead_id = rec_id
created_at =
source =
campaign =
full_name =
phone =
phone2 =
mobile =
email =
city = suburb
status =
last_touch_at =
touch_count =
last_touch_type =
notes =
automation =
last_rep =
extra = given_name, surname, street_number, address_1, address_2, postcode, state,
	date_of_birth, soc_sec_id
[dedupe.field.name]
column = given_name, surname
[dedupe.field.dob]
comparator = date
column = date_of_birth
[dedupe.field.ssid]
comparator = text
column = soc_sec_id
[dedupe.field.postcode]
comparator = text
column = postcode
[dedupe.field.street]
comparator = text
column = street_number, address_1
[dedupe.field.state]
comparator = exact
column = state
INI
	"$REFINERY" run -q -c "$out/min.ini"
	ok $? "minimal rules, dataset $n: refinery run"
	# cluster precision / recall: clusters (entities) reproduced exactly, over
	# predicted clusters and over true entities
	cf=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{
			id = $col["lead_id"]; cl = $col["cluster_id"]; if (cl == "") cl = "self:" id
			split(id, parts, "-"); ent = parts[2]
			c[cl]++; e[ent]++; ce[cl SUBSEP ent]++
		}
		END {
			for (k in c) { np++; if (c[k] > big) big = c[k] }
			for (k in e) nt++
			for (k in ce) { split(k, q, SUBSEP); if (ce[k] == c[q[1]] && ce[k] == e[q[2]]) right++ }
			p = right / np; r = right / nt
			printf "%d %.4f", big, 2 * p * r / (p + r)
		}' "$out/lead_results.csv")
	diag "minimal rules, dataset $n: largest cluster, cluster F1 = $cf"
	ok $(awk -v f="${cf##* }" 'BEGIN { exit !(f >= 0.99) }'; echo $?) "minimal rules, dataset $n: cluster F1 ${cf##* } >= 0.99"
	# no FEBRL entity has more than 6 records (dataset 1: 2)
	ok $(awk -v b="${cf%% *}" 'BEGIN { exit !(b <= 6) }'; echo $?) "minimal rules, dataset $n: largest cluster ${cf%% *} <= 6"
done

# chaining: dataset 3 with the minimal rules less soc_sec_id, the street and the postcode
out=$tmp/chain; mkdir -p "$out"
awk -v out="$out" '/^csv_dir/ { print "csv_dir = " out; next }
	/^\[dedupe.field.(ssid|postcode|street)\]/ { skip = 1; next }
	/^\[/ { skip = 0 }
	!skip' "$tmp/min3/min.ini" > "$out/chain.ini"
ok $(grep -q '^column = \(soc_sec_id\|postcode\|street_number\)' "$out/chain.ini"; echo $((!$?))) "chaining rules compare no id, street or postcode"
"$REFINERY" run -q -c "$out/chain.ini"
ok $? "chaining rules, dataset 3: refinery run"
big=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["cluster_id"] != "" { c[$col["cluster_id"]]++ }
	END { for (k in c) if (c[k] > big) big = c[k]; print big + 0 }' "$out/lead_results.csv")
diag "chaining rules, dataset 3: largest cluster $big"
ok $(awk -v b="$big" 'BEGIN { exit !(b <= 12) }'; echo $?) "chaining rules, dataset 3: largest cluster $big <= 12 (twice the largest true one)"
done_testing
