#!/bin/bash
# tests/bench/bench.sh [ROWS] [RUNS] -- the benchmark (not a test).
# Generates ROWS leads (default 1,000,000) with fixtures/genleads, loads them into a private
# PostgreSQL server (fsync on, as in production), and reports medians of RUNS (default 3):
#   floor      COPY of every lead row out to a file and back into a plain logged table
#   refinery   `refinery run --full` end to end (every lead's state row rewritten, and the
#              snapshot of [output] snapshot, yes by default), each stage, and the engine's
#              peak RSS as /usr/bin/time -f %M reports it
#   peer       ../shared/bench/peer_pipeline.sql, the plain-SQL competitor, when present
# then the quality score of the last run from ../shared/bench/evaluate.sql, when present, and
# tests/bench/why.sql's account of the errors left.
# Environment: JOBS (threads for refinery, default all cores; a list such as "1 2" measures
# each count in turn); EVALUATE=yes scores runs of more than 200,000 rows too (slow);
# SNAPSHOT=no sets [output] snapshot = no (only the job's state is written).
# For each thread count two fixed lines follow the table, for scripts to read:
#   ratio_to_floor=X      median refinery run over the median floor
#   peak_rss_bytes=N      median of the runs' peak resident set size, in bytes
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000} runs=${2:-3}
top_srcdir=$(pwd)
shared=$(cd .. && pwd)/shared/bench
[ -x ./refinery ] && [ -x ./fixtures/genleads ] || bash tests/build.sh
# the peak RSS comes from GNU time (Debian package time)
if [ ! -x /usr/bin/time ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y -q --no-install-recommends time >/dev/null
fi
export PG_FSYNC=on PG_SHARED_BUFFERS=1GB
. tests/lib/pg.sh
pg_start
work=$PG_TMP/bench; mkdir -p "$work"
s=gen_$rows
t0=$(date +%s.%N)
./fixtures/genleads --rows "$rows" --seed 42 --out-dir "$work" >/dev/null
echo "generated $rows leads in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA $s;
SET search_path = $s;
CREATE TABLE leads (
    lead_id bigint NOT NULL, created_at timestamp NOT NULL, source text, campaign text,
    full_name text, phone text, email text, city text, status text,
    last_touch_at timestamp, touch_count int, last_touch_type text, handler_notes text,
    automation_after_last_touch boolean, last_rep_id int);
CREATE TABLE truth (lead_id bigint PRIMARY KEY, entity_id bigint NOT NULL, is_blacklisted smallint NOT NULL,
    is_partial smallint NOT NULL, is_optout smallint NOT NULL, dirt text);
CREATE TABLE reps (rep_id int PRIMARY KEY, name text NOT NULL, active boolean NOT NULL, capacity int NOT NULL);
CREATE TABLE rep_source_stats (rep_id int, source text, attempts int, wins int, PRIMARY KEY (rep_id, source));
\copy leads FROM '$work/leads.csv' WITH (FORMAT csv, HEADER true)
\copy truth FROM '$work/truth.csv' WITH (FORMAT csv, HEADER true)
\copy reps FROM '$work/reps.csv' WITH (FORMAT csv, HEADER true)
\copy rep_source_stats FROM '$work/rep_source_stats.csv' WITH (FORMAT csv, HEADER true)
ALTER TABLE leads ADD PRIMARY KEY (lead_id);
VACUUM (ANALYZE) leads, truth, reps, rep_source_stats;
SQL
cat > "$work/bench.ini" <<INI
[source]
table = $s.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM $s.reps
stats_query = SELECT rep_id, source, attempts, wins FROM $s.rep_source_stats
[output]
keep_runs = 2
snapshot = ${SNAPSHOT:-yes}
INI
./refinery init-db -q

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

floor=()
for i in $(seq "$runs"); do
	psql -X -q -c "DROP TABLE IF EXISTS $s.floor_copy; CREATE TABLE $s.floor_copy (LIKE $s.leads)"
	a=$(date +%s.%N)
	psql -X -q -c "COPY $s.leads TO STDOUT" > "$work/rows"
	psql -X -q -c "COPY $s.floor_copy FROM STDIN" < "$work/rows"
	floor+=("$(secs "$a" "$(date +%s.%N)")")
done
rm -f "$work/rows"
f=$(printf '%s\n' "${floor[@]}" | median)

# the run's rows: its snapshot, or with SNAPSHOT=no the job's current state
if [ "${SNAPSHOT:-yes}" = no ]; then
	run_rows="SELECT lead_id FROM refinery.lead_state WHERE job = 'default' AND state = 'current'"
else
	run_rows="SELECT lead_id FROM refinery.lead_results WHERE run_id = (SELECT run_id FROM refinery.latest_run)"
fi
round_trip() {
	psql -X -qAt -c "SELECT (SELECT count(*) FROM ($run_rows) r) || ' rows, ' || (SELECT count(*) FROM
	((SELECT lead_id::text FROM $s.leads EXCEPT $run_rows) UNION ALL ($run_rows EXCEPT SELECT lead_id::text FROM $s.leads)) d)
	|| ' ids differing'"
}

echo
echo "rows $rows, $(nproc) cores, median of $runs, load average $(cut -d" " -f1-3 /proc/loadavg)"
printf '%-28s %10s\n' "floor (COPY out + in)" "$f s"
e=
# the very first run fills the job's state; every later one rewrites it (--full)
first_note=" (the first a job's first run, the others --full over its state)"
for jobs in ${JOBS:-all}; do
	eng=() rss=()
	: > "$work/stages"
	for i in $(seq "$runs"); do
		a=$(date +%s.%N)
		if [ "$jobs" = all ]; then
			/usr/bin/time -f %M -o "$work/rss" ./refinery run --full -c "$work/bench.ini" --log-format=json 2> "$work/run.json"
		else
			/usr/bin/time -f %M -o "$work/rss" ./refinery run --full -j "$jobs" -c "$work/bench.ini" --log-format=json 2> "$work/run.json"
		fi
		eng+=("$(secs "$a" "$(date +%s.%N)")")
		rss+=("$(tail -1 "$work/rss")")
		grep '"event": "run"' "$work/run.json" >> "$work/stages"
	done
	e=$(printf '%s\n' "${eng[@]}" | median)
	printf '%-28s %10s  (%.2fx the floor)\n' "refinery run, threads $jobs" "$e s" "$(awk -v e="$e" -v f="$f" 'BEGIN{print e/f}')"
	# the first run of the first thread count fills the job's state; every later one rewrites it
	echo "  each run: ${eng[*]} s${first_note}"
	first_note=" (each --full over the job's state)"
	# the round trip is exact: every pulled lead has exactly one result row, ids identical
	echo "  round trip of the last run: $(round_trip) (of $rows leads)"
	# per-stage medians from the JSON summaries
	python3 - "$work/stages" <<'PY' 2>/dev/null || true
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
names = [s["name"] for s in runs[0]["stages"]]
for k, n in enumerate(names):
    print("  %-26s %10.3f s" % (n, statistics.median(r["stages"][k]["seconds"] for r in runs)))
print("  %-26s %10.0f MiB" % ("peak RSS", statistics.median(r.get("max_rss_kb", 0) for r in runs) / 1024))
PY
	echo "ratio_to_floor=$(awk -v e="$e" -v f="$f" 'BEGIN{printf "%.2f", e/f}')"
	# %.0f, not %d: mawk's %d stops at 2^31 - 1, which a 10M run's RSS passes
	echo "peak_rss_bytes=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.0f", $1 * 1024}')"
done
if [ -f "$shared/peer_pipeline.sql" ]; then
	peer=()
	for i in $(seq "$runs"); do
		a=$(date +%s.%N)
		psql -X -q -v schema=$s -f "$shared/peer_pipeline.sql" >/dev/null 2>&1
		peer+=("$(secs "$a" "$(date +%s.%N)")")
	done
	p=$(printf '%s\n' "${peer[@]}" | median)
	printf '%-28s %10s  (%.2fx the last refinery run)\n' "SQL competitor" "$p s" "$(awk -v e="$e" -v p="$p" 'BEGIN{print p/e}')"
fi
# evaluate.sql's pair self-joins take many minutes beyond a few hundred thousand rows
if [ -f "$shared/evaluate.sql" ] && { [ "$rows" -le 200000 ] || [ "${EVALUATE:-}" = yes ]; }; then
	echo
	echo "quality of the last refinery run (evaluate.sql):"
	psql -X -v sch=$s -f "$shared/evaluate.sql"
fi
if [ "$rows" -le 200000 ] || [ "${EVALUATE:-}" = yes ]; then
	echo
	echo "where the last run's remaining errors come from (tests/bench/why.sql):"
	psql -X -q -v sch=$s -f tests/bench/why.sql
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
