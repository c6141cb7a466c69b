#!/bin/bash
# tests/bench/same.sh BASE [ROWS] -- are the results of this tree the same as BASE's?
# Builds the commit BASE from history in a temporary folder, and this tree as it is (via
# tests/build.sh), generates ROWS leads (default 100,000) with this tree's
# fixtures/genleads, runs each program once on a throwaway PostgreSQL server (each in its
# own database, so each migrates its own schema), and compares the result rows of the two
# runs as refinery.results gives them (the view every reader goes through, so a change of
# storage format compares by value), sorted by lead id, column by column over the columns
# both versions have.  Prints
# one md5 per side and per column, and exits 0 when every column is the same, 1 when any
# differs (naming the first leads that differ).  A check for restructuring work, not part
# of `make check`.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:?usage: tests/bench/same.sh BASE [ROWS]}
rows=${2:-100000}
top=$(pwd)
git rev-parse --verify -q "$base^{commit}" >/dev/null || { echo "same.sh: $base is not a commit" >&2; exit 2; }
bash tests/build.sh
. tests/lib/pg.sh
pg_start
work=$PG_TMP/same
mkdir -p "$work/base"
git archive "$base" | tar -x -C "$work/base"
(cd "$work/base" && ./autogen.sh >/dev/null 2>&1 && ./configure -q >/dev/null &&
	make -s -j"$(nproc)" refinery >"$work/base.log" 2>&1) ||
	{ tail -20 "$work/base.log" >&2; echo "same.sh: $base does not build" >&2; exit 2; }
./fixtures/genleads --rows "$rows" --seed 42 --out-dir "$work" >/dev/null

cat >"$work/rules.ini" <<INI
[source]
table = crm.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI
for side in base head; do
	psql -X -q -c "CREATE DATABASE $side"
	PGDATABASE=$side pg_load_leads "$work" >/dev/null
done
PGDATABASE=base "$work/base/refinery" init-db -q
PGDATABASE=base "$work/base/refinery" run -q -c "$work/rules.ini"
PGDATABASE=head "$top/refinery" init-db -q
PGDATABASE=head "$top/refinery" run -q -c "$work/rules.ini"

cols() {
	psql -X -At -d "$1" -c "SELECT string_agg(attname, ' ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'refinery.results'::regclass AND attnum > 0 AND NOT attisdropped
		AND attname <> 'run_id'"
}
common=$(comm -12 <(cols base | tr ' ' '\n' | sort) <(cols head | tr ' ' '\n' | sort))
echo "$rows leads; base $(git rev-parse --short "$base"), head $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + uncommitted changes')"
differ=0
for c in $common; do
	q="SELECT md5(string_agg(coalesce($c::text, '<null>'), E'\\n' ORDER BY lead_id)) FROM refinery.results
	   WHERE run_id = (SELECT max(run_id) FROM refinery.runs)"
	a=$(psql -X -At -d base -c "$q") b=$(psql -X -At -d head -c "$q")
	if [ "$a" = "$b" ]; then
		printf '  %-16s %s  same\n' "$c" "$a"
	else
		printf '  %-16s %s  base\n  %-16s %s  head  DIFFERS\n' "$c" "$a" "" "$b"
		differ=1
		psql -X -At -d base -c "COPY (SELECT lead_id, coalesce($c::text, '<null>') FROM refinery.results
			WHERE run_id = (SELECT max(run_id) FROM refinery.runs) ORDER BY lead_id) TO STDOUT" >"$work/a"
		psql -X -At -d head -c "COPY (SELECT lead_id, coalesce($c::text, '<null>') FROM refinery.results
			WHERE run_id = (SELECT max(run_id) FROM refinery.runs) ORDER BY lead_id) TO STDOUT" >"$work/b"
		diff "$work/a" "$work/b" | head -6 | sed 's/^/      /' || true
	fi
done
only=$(comm -3 <(cols base | tr ' ' '\n' | sort) <(cols head | tr ' ' '\n' | sort) | tr -d '\t' | tr '\n' ' ')
[ -n "$only" ] && echo "  columns in one version only (not compared): $only"
if [ $differ = 0 ]; then echo "same: every common column identical"; else echo "DIFFERENT"; fi
exit $differ
