#!/bin/bash
# tests/demo.sh -- the main job on a throwaway local PostgreSQL, start to finish:
# builds refinery if needed, starts a private server, fills it with ~100,000 generated
# legacy leads and their reps, runs `refinery run`, prints the run's report and the
# answers to three questions a DBA would ask next in plain SQL.
#   bash tests/demo.sh [ROWS] [--keep]     --keep leaves the server running for psql
set -euo pipefail
cd "$(dirname "$0")/.."
rows=100000 keep=no
for a in "$@"; do
	case $a in
		--keep) keep=yes ;;
		*) rows=$a ;;
	esac
done
bash tests/build.sh
top_srcdir=$(pwd)
. tests/lib/pg.sh
pg_start
if [ $keep = yes ]; then trap - EXIT; fi
work=$PG_TMP/demo; mkdir -p "$work"

echo "== generating $rows legacy leads (duplicates, dead numbers, opt-outs, partial records)"
./fixtures/genleads --rows "$rows" --seed 42 --out-dir "$work"
pg_load_leads "$work"
cat > "$work/demo.ini" <<INI
# Everything not stated here comes from rules/default.ini.
[source]
table = crm.leads
# the generated history ends mid-2025: score recency against the data's own last day
now = auto

[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI

echo "== refinery init-db"
./refinery init-db
echo "== refinery run -c $work/demo.ini"
./refinery run -c "$work/demo.ini"
echo
echo "== refinery report"
./refinery report
q() {
	echo "-- $1"
	echo "$2"
	psql -X -v ON_ERROR_STOP=1 -P footer=off -c "$2"
}
q "Why did we lose leads? Removals per rule in the latest run:" \
  "SELECT verdict, rule_id, leads FROM refinery.run_funnel WHERE run_id = (SELECT run_id FROM refinery.latest_run) AND verdict <> 'kept' ORDER BY leads DESC LIMIT 12;"
q "Which duplicates were merged into one person, and why? (one cluster)" \
  "SELECT lead_id, verdict, survivor_id, reason FROM refinery.lead_results WHERE run_id = (SELECT run_id FROM refinery.latest_run) AND cluster_id = (SELECT cluster_id FROM refinery.lead_results WHERE run_id = (SELECT run_id FROM refinery.latest_run) AND verdict = 'duplicate' ORDER BY lead_id LIMIT 1) ORDER BY lead_id;"
q "Who calls whom first? The top of one rep's call list:" \
  "SELECT rep_id, call_order, lead_id, score, cohort, round(p_close::numeric, 3) AS p_close, sla_due_at FROM refinery.lead_results WHERE run_id = (SELECT run_id FROM refinery.latest_run) AND rep_id IS NOT NULL ORDER BY rep_id, call_order LIMIT 8;"
if [ $keep = yes ]; then
	echo
	echo "The server keeps running. Connect with:"
	echo "  PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres psql"
	echo "Stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D $PG_TMP/data stop  (or as yourself if not root)"
fi
