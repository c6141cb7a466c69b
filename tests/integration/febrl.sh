#!/bin/bash
# tests/integration/febrl.sh -- de-duplication against third-party ground truth: the
# FEBRL data sets 1-3 (../shared/data/febrl) through the CSV source and the CSV sink,
# with rules/febrl.ini mapping their columns.  Pair F1 of the clusters must be >= 0.99
# on each.  Skips when ../shared is absent (the project does not ship the data).
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
done_testing
