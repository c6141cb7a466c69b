#!/bin/bash
# tests/integration/import.sh -- "refinery import" against a throwaway server: rows the
# file or the server rejects (a bad timestamp, a bad integer, a missing field) go to the
# reject file with their line and reason and the rest loads; --max-rejects fails the
# import with nothing loaded; without --reject the first bad row is an error naming its
# line; --truncate empties the table in the same transaction, so a second import does
# not append the file again; and many bad rows in one batch cost nothing in exactness.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start
mkdir -p "$tmp/g"

# 1000 leads; with this seed records span several lines (notes with line breaks), and
# lines 10, 500 and 800 each begin a record
"$GENLEADS" --rows 1000 --seed 3 --out-dir "$tmp/g" >/dev/null
pg_load_leads "$tmp/g"
starts=$(awk '(NR == 10 || NR == 500 || NR == 800) && /^[0-9]+,[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:]+,/' "$tmp/g/leads.csv" | wc -l)
[ "$starts" = 3 ] || { echo "Bail out! lines 10, 500 and 800 of the fixture do not all begin a record"; exit 1; }
is "$(pq -c "SELECT count(*) FROM crm.leads")" 1000 "the clean file has 1000 rows"

# line 10: a bad timestamp; line 500: a lead_id that is no integer; line 800: created_at gone
awk 'NR == 10 { sub(/,[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:]+,/, ",not-a-date,") }
     NR == 500 { sub(/^[0-9]+/, "12x4") }
     NR == 800 { sub(/,[^,]*/, "") }
     { print }' "$tmp/g/leads.csv" >"$tmp/bad.csv"
bad_ids=$(awk 'NR == 10 || NR == 500 || NR == 800 { split($0, f, ","); print f[1] }' "$tmp/g/leads.csv" | paste -sd, -)
pq -c "CREATE TABLE crm.target (LIKE crm.leads)"
count() { pq -c "SELECT count(*) FROM crm.target"; }

# ---- without --reject: the first bad row is the error, nothing loaded
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target 2>&1); rc=$?
is "$rc" 5 "without --reject a bad row is a data error (status 5)"
like "$out" "^refinery: error: file \"$tmp/bad.csv\", line 10, column 2 \(\"created_at\"\): .*\"not-a-date\"" \
	"it names line 10, the column and the server's reason"
unlike "$out" 'line (500|800)' "and stops there"
is "$(count)" 0 "nothing was loaded"

# ---- --max-rejects below the bad rows: status 5, nothing loaded
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target --reject="$tmp/rej.csv" --max-rejects=2 2>&1); rc=$?
is "$rc" 5 "three bad rows with --max-rejects=2: a data error"
like "$out" 'more than 2 rejected records' "it says the limit was passed"
is "$(count)" 0 "and nothing was loaded"

# ---- with --reject: 997 rows, 3 rejects with line and reason
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target --reject="$tmp/rej.csv" --max-rejects=3 2>&1); rc=$?
is "$rc" 0 "with --reject (and --max-rejects=3) the import succeeds"
like "$out" "^refinery: imported 997 rows into crm.target, 3 rejected \(see $tmp/rej.csv\)$" \
	"the summary counts the loaded and the rejected rows"
like "$out" '^refinery: warning: 3 rows were rejected' "and a warning says so"
is "$(count)" 997 "the table has exactly 997 rows"
is "$(pq -c "SELECT count(*) FROM (SELECT * FROM crm.target EXCEPT ALL SELECT * FROM crm.leads) s")" 0 \
	"every loaded row has exactly the values of the file"
is "$(pq -c "SELECT string_agg(lead_id::text, ',' ORDER BY lead_id) FROM (SELECT * FROM crm.leads EXCEPT ALL SELECT * FROM crm.target) s")" \
	"$(echo "$bad_ids" | tr , '\n' | sort -n | paste -sd, -)" "the rows missing are the three planted ones"
is "$(wc -l <"$tmp/rej.csv" | tr -d ' ')" 3 "the reject file has three records"
rej=$(cat "$tmp/rej.csv")
is "$(grep -o ', line [0-9]*' "$tmp/rej.csv" | paste -sd' ' -)" ", line 10 , line 500 , line 800" \
	"in file order, the server's rejects and the file's alike"
like "$rej" "^file \"$tmp/bad.csv\", line 10, column 2 \(\"created_at\"\): invalid input syntax for type timestamp.*\"not-a-date\"$" \
	"line 10: the column and the server's message with the value"
like "$rej" "^file \"$tmp/bad.csv\", line 500, column 1 \(\"lead_id\"\): invalid input syntax for type bigint: \"12x4\"$" \
	"line 500: the column and the server's message with the value"
like "$rej" "^file \"$tmp/bad.csv\", line 800, column 15 \(\"last_rep_id\"\): expected 15 fields, found 14$" \
	"line 800: the missing field, as the CSV source words it"

# ---- appending is the default; --truncate replaces, atomically
"$REFINERY" import -q --csv="$tmp/bad.csv" --table=crm.target --reject="$tmp/rej.csv"
is "$?/$(count)" "0/1994" "a second import without --truncate appends (1994 rows)"
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target --reject="$tmp/rej.csv" --truncate --max-rejects=2 2>&1); rc=$?
is "$rc/$(count)" "5/1994" "--truncate with too many rejects: status 5 and the table as it was"
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target --reject="$tmp/rej.csv" --truncate 2>&1); rc=$?
is "$rc/$(count)" "0/997" "--truncate: exactly 997 rows, not 1994"
like "$out" 'imported 997 rows into crm.target, 3 rejected' "and the summary says so"
is "$(wc -l <"$tmp/rej.csv" | tr -d ' ')" 3 "the reject file holds this import's rejects only"

# ---- many bad rows in one batch: every fourth record with a bad timestamp
awk '/^[0-9]+,[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:]+,/ && ++n % 4 == 0 {
	sub(/,[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:]+,/, ",2025-13-45 00:00:00,") }
     { print }' "$tmp/g/leads.csv" >"$tmp/dense.csv"
planted=$(grep -c '^[0-9]*,2025-13-45 ' "$tmp/dense.csv")
out=$("$REFINERY" import --csv="$tmp/dense.csv" --table=crm.target --reject="$tmp/rej.csv" --truncate 2>&1); rc=$?
is "$rc/$(count)" "0/$((1000 - planted))" "$planted bad rows spread over one batch: all the others load"
is "$(grep -c 'column 2 ("created_at"): date/time field value out of range: "2025-13-45 00:00:00"' "$tmp/rej.csv")" "$planted" \
	"each bad row is in the reject file with the server's reason"
is "$(grep -o 'line [0-9]*,' "$tmp/rej.csv" | sort -u | wc -l | tr -d ' ')" "$planted" "each once"

# ---- a usage error
out=$("$REFINERY" import --csv="$tmp/bad.csv" --table=crm.target --max-rejects=0 2>&1); rc=$?
is "$rc" 2 "--max-rejects=0 is a usage error"

done_testing
