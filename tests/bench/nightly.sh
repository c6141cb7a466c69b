#!/bin/bash
# tests/bench/nightly.sh [ROWS] [NIGHTS] [RUNS] -- the nightly loop's benchmark (not a test).
# Generates ROWS leads (default 1,000,000) with fixtures/genleads and their nightly increments
# (--night K), loads them into a private PostgreSQL server (fsync on) and reports:
#   floor       COPY of every lead row out and back into a plain table (median of RUNS)
#   full        a job's first run over the base data, [output] snapshot = no (median of RUNS,
#               each a new job)
#   nightly     the same job's run after one night's increment (median of RUNS: the night
#               loaded, the run, the state put back with refinery revert)
#   nights      then NIGHTS (default 30) increments one after another: each night's time, rows
#               written and the state's size, so that storage can be seen to grow with the
#               changes, not with the runs
#   together    two jobs' first runs at once, each over the full base data
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000} nights=${2:-30} runs=${3:-3}
top_srcdir=$(pwd)
[ -x ./refinery ] && [ -x ./fixtures/genleads ] || bash tests/build.sh
export PG_FSYNC=on PG_SHARED_BUFFERS=1GB
. tests/lib/pg.sh
pg_start
work=$PG_TMP/nightly; mkdir -p "$work"
./fixtures/genleads --rows "$rows" --seed 42 --out-dir "$work/n0" >/dev/null
pg_load_leads "$work/n0" >/dev/null
psql -X -q -c "ALTER TABLE crm.leads ADD PRIMARY KEY (lead_id)"
./refinery init-db -q

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
rules() { # JOB
	cat >"$work/$1.ini" <<INI
[source]
table = crm.leads
now = auto
[job]
name = $1
max_change_percent = 0
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI
}
timed_run() { # JOB [ARGS]: prints the seconds; the engine's CPU seconds (user + system) go to $work/cpu
	local a
	a=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$work/time" ./refinery run -q -c "$work/$1.ini" "${@:2}"
	secs "$a" "$(date +%s.%N)"
	awk '{printf "%.2f\n", $1 + $2}' "$work/time" >>"$work/cpu"
}
load() { # K
	[ -d "$work/n$1" ] || ./fixtures/genleads --rows "$rows" --seed 42 --night "$1" --out-dir "$work/n$1" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 <<SQL
TRUNCATE crm.leads;
\copy crm.leads FROM '$work/n$1/leads.csv' WITH (FORMAT csv, HEADER true)
ANALYZE crm.leads;
SQL
}
last() { psql -X -qAt -c "SELECT max(run_id) FROM refinery.runs WHERE job = '$1' AND status = 'committed'"; }
state_bytes() { psql -X -qAt -c "SELECT state_bytes + coalesce((SELECT pg_total_relation_size('refinery.lead_changes')), 0) FROM refinery.job_summary WHERE job = '$1'"; }

floor=() full=() nightly=()
for i in $(seq "$runs"); do
	psql -X -q -c "DROP TABLE IF EXISTS crm.floor_copy; CREATE TABLE crm.floor_copy (LIKE crm.leads)"
	a=$(date +%s.%N)
	psql -X -q -c "COPY crm.leads TO STDOUT" >"$work/rows"
	psql -X -q -c "COPY crm.floor_copy FROM STDIN" <"$work/rows"
	floor+=("$(secs "$a" "$(date +%s.%N)")")
	rules "full$i"
	full+=("$(timed_run "full$i")")
done
rm -f "$work/rows"
# the nightly run: job full1 after night 1, reverted after each measurement
load 1
: >"$work/cpu"
for i in $(seq "$runs"); do
	nightly+=("$(timed_run full1)")
	n=$(last full1)
	written=$(psql -X -qAt -c "SELECT leads_new + leads_changed + leads_vanished FROM refinery.runs WHERE run_id = $n")
	./refinery revert -q --job full1 --run "$n"
done
f=$(printf '%s\n' "${floor[@]}" | median)
fr=$(printf '%s\n' "${full[@]}" | median)
nr=$(printf '%s\n' "${nightly[@]}" | median)
echo "rows $rows, $(nproc) cores, median of $runs"
printf '%-34s %10s\n' "floor (COPY out + in)" "$f s"
printf '%-34s %10s %8s\n' "full first run (snapshot = no)" "$fr s" "$(awk -v a="$fr" -v b="$f" 'BEGIN{printf "%.2fx", a/b}')"
printf '%-34s %10s %8s   %s of full run, %s leads written\n' "nightly run after one night" "$nr s" \
	"$(awk -v a="$nr" -v b="$f" 'BEGIN{printf "%.2fx", a/b}')" "$(awk -v a="$nr" -v b="$fr" 'BEGIN{printf "%.0f%%", 100*a/b}')" "$written"
echo "full runs: ${full[*]}; nightly runs: ${nightly[*]}; floors: ${floor[*]}"
echo "nightly runs' engine CPU (user + system): $(paste -sd ' ' "$work/cpu") s; load average now $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "phases of the last nightly run:"
psql -X -qAt -F ' ' -c "SELECT stage, round(seconds::numeric, 2) FROM refinery.stage_times WHERE run_id = (SELECT max(run_id) FROM refinery.runs WHERE job = 'full1') ORDER BY ord" | paste -sd ' '
echo "state rows read behind the stages: $(psql -X -qAt -c "SELECT counters ->> 'read behind the stages' FROM refinery.stage_times WHERE stage = 'state' AND run_id = (SELECT max(run_id) FROM refinery.runs WHERE job = 'full1')")"

# the nights one after another, on job full1
echo
printf '%-6s %8s %10s %12s %14s\n' night seconds written change_rows state+log
printf '%-6s %8s %10s %12s %14s\n' 0 - - 0 "$(state_bytes full1)"
for k in $(seq 1 "$nights"); do
	load "$k"
	t=$(timed_run full1)
	n=$(last full1)
	printf '%-6s %8s %10s %12s %14s\n' "$k" "$t" \
		"$(psql -X -qAt -c "SELECT leads_new + leads_changed + leads_vanished FROM refinery.runs WHERE run_id = $n")" \
		"$(psql -X -qAt -c "SELECT count(*) FROM refinery.lead_changes WHERE job = 'full1'")" "$(state_bytes full1)"
done
psql -X -q -c "SELECT job, runs, state_rows, pg_size_pretty(state_bytes) AS state, change_rows FROM refinery.job_summary WHERE job = 'full1'"
# reading a run without a snapshot: explain and a rep's export go through refinery.results
lead=$(psql -X -qAt -c "SELECT lead_id FROM refinery.lead_state WHERE job = 'full1' AND rep_id IS NOT NULL ORDER BY lead_id LIMIT 1")
rep=$(psql -X -qAt -c "SELECT rep_id FROM refinery.lead_state WHERE job = 'full1' AND lead_id = '$lead'")
a=$(date +%s.%N)
./refinery explain --job full1 "$lead" >/dev/null
echo "explain of one lead (state of 1M): $(secs "$a" "$(date +%s.%N)") s"
a=$(date +%s.%N)
./refinery export --job full1 --rep "$rep" --csv "$work/rep.csv"
echo "export of rep $rep's queue: $(secs "$a" "$(date +%s.%N)") s, $(($(wc -l <"$work/rep.csv") - 1)) lines"

# two jobs' first runs at once
load 0
rules twin1
rules twin2
a=$(date +%s.%N)
./refinery run -q -c "$work/twin1.ini" &
p1=$!
./refinery run -q -c "$work/twin2.ini" &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
echo
echo "two 1st runs at once: exit $r1 and $r2, $(secs "$a" "$(date +%s.%N)") s for both"
pg_stop
