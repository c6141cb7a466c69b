#!/bin/bash
# tests/bench/month.sh [ROWS] [DAYS] -- the closed loop over a simulated month (a benchmark,
# not a test: `make check` does not run it).
#
# ARMS (default "closed open learn rr") names the arms to run; SEED the generator's seed.
# Generates ROWS leads (default 30,000) with fixtures/genleads and, day after day, their
# nightly increments (--night K); each night every arm below runs its own job over the same
# data, its assigned leads are called the next day (genleads --outcomes: won by the rep's
# true skill on the source times the lead's propensity, one random stream per lead and day,
# so the arms differ only in who calls which lead), and the job's next run reads the calls
# from [outcomes] csv.  The arms:
#   closed  [match] stats_query as prior history plus the rates learnt from the job's own
#           outcomes ([outcomes] learn_rates = yes)
#   open    the same stats, fixed: learn_rates = no
#   learn   no stats_query: the rates come from the job's outcomes alone
#   blind   no stats_query and learn_rates = no: every rep alike (the control for learn;
#           not run unless named in ARMS)
#   rr      score-ordered round robin: the job's kept leads, best score first, dealt to the
#           active reps in turn up to each one's capacity (the engine's own assignment unused,
#           hold_days = 0)
# No arm takes holds from the CRM's last_rep (seed_from_last_rep = no): the generator's
# leads mostly name one, and those holds would fill every rep's capacity for weeks.
# Realised wins are counted from the generator's draws (its truth), never from the engine's
# p_close.  Writes into OUT (default ./month-out):
#   month_wins.csv     arm, day, calls, wins, expected_wins (the truth's probability of a
#                      win summed over the calls)
#   month_cohorts.csv  arm, day, cohort, calls, wins, actual_rate, target_rate, expected_rate
#                      (mean p_close of the cohort's called leads): actual vs target per
#                      cohort per day, for the report to plot
#   month_ARM.html     refinery report --html of each arm's last run: its "Per cohort
#                      and run" chart plots the month's actual vs target per cohort
# and prints the month's totals per arm.  KEEP=1 leaves the database server running
# at the end (and says how to reach and stop it), to query or report on it again.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-30000} days=${2:-30} seed=${SEED:-42}
arms=${ARMS:-closed open learn rr}
top_srcdir=$(pwd)
out=${OUT:-$top_srcdir/month-out}
[ -x ./refinery ] && [ -x ./fixtures/genleads ] || bash tests/build.sh
. tests/lib/pg.sh
pg_start
work=$PG_TMP/month
mkdir -p "$work" "$out"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
qa() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }

./fixtures/genleads --rows "$rows" --seed "$seed" --out-dir "$work/n0" >/dev/null
pg_load_leads "$work/n0" >/dev/null
q -c "ALTER TABLE crm.leads ADD PRIMARY KEY (lead_id)"
./refinery init-db -q
q <<'SQL'
CREATE SCHEMA bench;
CREATE TABLE bench.assigned (arm text, day int, lead_id text, rep_id bigint, cohort text, p_close float8);
CREATE TABLE bench.calls (arm text, day int, lead_id text, rep_id bigint, propensity float8, p_win float8,
                          outcome text);
CREATE TABLE bench.runs (arm text, day int, run_id bigint);
SQL

day_date() { date -u -d "2025-07-01 + $1 days" +%F; }
rules() { # ARM DAY
	local arm=$1 d=$2 learn=yes hold=14
	local stats="stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats"
	case $arm in
		closed) ;;
		open) learn=no ;;
		learn) stats="" ;;
		blind) stats="" learn=no ;;
		rr) learn=no hold=0 ;;
	esac
	[ -f "$work/$arm/outcomes.csv" ] || { mkdir -p "$work/$arm"; echo "lead_id,rep_id,outcome,at" >"$work/$arm/outcomes.csv"; }
	cat >"$work/$arm.ini" <<INI
[source]
table = crm.leads
now = $(day_date $((d + 1)))
[job]
name = $arm
max_change_percent = 0
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
$stats
hold_days = $hold
seed_from_last_rep = no
[outcomes]
csv = $work/$arm/outcomes.csv
learn_rates = $learn
INI
}
# the leads the arm's reps call on day D+1: lead, rep, source, status (for the propensity),
# the pending callback's time (not called before it), cohort and p_close
latest="LEFT JOIN LATERAL (SELECT o.outcome, o.callback_at FROM refinery.outcomes o WHERE o.job = s.job
	AND o.lead_id = s.lead_id ORDER BY o.at DESC LIMIT 1) o ON true"
cols="l.source, l.status, CASE WHEN o.outcome = 'callback' THEN to_char(o.callback_at, 'YYYY-MM-DD HH24:MI:SS') END AS due_at,
	s.cohort, s.p_close"
export_assigned() { # ARM FILE
	if [ "$1" = rr ]; then
		q -c "\\copy (WITH k AS (SELECT s.lead_id, row_number() OVER (ORDER BY s.score DESC, s.lead_id) AS j, $cols
			FROM refinery.lead_state s JOIN crm.leads l ON l.lead_id::text = s.lead_id $latest
			WHERE s.job = 'rr' AND s.state = 'current' AND s.verdict = 'kept'),
			slots AS (SELECT r.rep_id, row_number() OVER (ORDER BY g, r.rep_id) AS j
			FROM crm.reps r, generate_series(1, r.capacity) g WHERE r.active)
			SELECT k.lead_id, slots.rep_id, k.source, k.status, k.due_at, k.cohort, k.p_close
			FROM k JOIN slots USING (j) ORDER BY 1) TO '$2' WITH (FORMAT csv, HEADER true)"
	else
		q -c "\\copy (SELECT s.lead_id, s.rep_id, $cols FROM refinery.lead_state s JOIN crm.leads l ON l.lead_id::text = s.lead_id
			$latest WHERE s.job = '$1' AND s.state = 'current' AND s.verdict = 'kept' AND s.rep_id IS NOT NULL
			ORDER BY 1) TO '$2' WITH (FORMAT csv, HEADER true)"
	fi
}

t0=$(date +%s)
for d in $(seq 0 $((days - 1))); do
	if [ "$d" -gt 0 ]; then
		./fixtures/genleads --rows "$rows" --seed "$seed" --night "$d" --out-dir "$work/night" >/dev/null
		q <<SQL
TRUNCATE crm.leads;
\copy crm.leads FROM '$work/night/leads.csv' WITH (FORMAT csv, HEADER true)
ANALYZE crm.leads;
SQL
	fi
	line="day $d:"
	for arm in $arms; do
		rules "$arm" "$d"
		./refinery run -q -c "$work/$arm.ini"
		q -c "INSERT INTO bench.runs SELECT '$arm', $d, max(run_id) FROM refinery.runs WHERE job = '$arm'"
		export_assigned "$arm" "$work/$arm/assigned.csv"
		./fixtures/genleads --outcomes $((d + 1)) --assigned "$work/$arm/assigned.csv" --seed "$seed" \
			--out-dir "$work/$arm" >/dev/null
		q <<SQL
CREATE TEMP TABLE a (lead_id text, rep_id bigint, source text, status text, due_at text, cohort text, p_close float8);
\copy a FROM '$work/$arm/assigned.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO bench.assigned SELECT '$arm', $d, lead_id, rep_id, cohort, p_close FROM a;
CREATE TEMP TABLE c (lead_id text, rep_id bigint, propensity float8, p_win float8, outcome text);
\copy c FROM '$work/$arm/outcomes_truth.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO bench.calls SELECT '$arm', $d, * FROM c;
SQL
		line="$line $arm $(qa -c "SELECT count(*) FILTER (WHERE outcome = 'won') || '/' || count(*) FROM bench.calls WHERE arm = '$arm' AND day = $d")"
	done
	echo "$line"
done
t1=$(date +%s)

# a call wins with probability 0.98 (not a wrong number) x 0.55 (answered) x p_win
q -c "\\copy (SELECT arm, day, count(*) AS calls, count(*) FILTER (WHERE outcome = 'won') AS wins,
	round(sum(0.98 * 0.55 * p_win)::numeric, 2) AS expected_wins FROM bench.calls GROUP BY 1, 2 ORDER BY 1, 2)
	TO '$out/month_wins.csv' WITH (FORMAT csv, HEADER true)"
q -c "\\copy (SELECT c.arm, c.day, a.cohort, count(*) AS calls, count(*) FILTER (WHERE c.outcome = 'won') AS wins,
	round(count(*) FILTER (WHERE c.outcome = 'won')::numeric / count(*), 4) AS actual_rate,
	max(rc.target_rate) AS target_rate, round(avg(a.p_close)::numeric, 4) AS expected_rate
	FROM bench.calls c JOIN bench.assigned a USING (arm, day, lead_id)
	JOIN bench.runs r USING (arm, day) LEFT JOIN refinery.run_cohorts rc ON rc.run_id = r.run_id AND rc.cohort = a.cohort
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) TO '$out/month_cohorts.csv' WITH (FORMAT csv, HEADER true)"
echo "month of $days days over $rows leads (seed $seed), $((t1 - t0)) s:"
q -c "SELECT arm, count(*) AS calls, count(*) FILTER (WHERE outcome = 'won') AS realised_wins,
	round(sum(0.98 * 0.55 * p_win)::numeric, 1) AS expected_wins_truth,
	count(*) FILTER (WHERE outcome = 'won' AND day < 7) AS wins_week1,
	count(*) FILTER (WHERE outcome = 'won' AND day >= $days - 7) AS wins_last_week,
	round(avg(p_win) FILTER (WHERE day < 7)::numeric, 4) AS mean_p_win_week1,
	round(avg(p_win) FILTER (WHERE day >= $days - 7)::numeric, 4) AS mean_p_win_last_week
	FROM bench.calls GROUP BY 1 ORDER BY 3 DESC"
echo "wrote $out/month_wins.csv and $out/month_cohorts.csv"
for arm in $arms; do
	./refinery report --job "$arm" --html "$out/month_$arm.html" >/dev/null
done
echo "wrote the reports:$(printf " $out/month_%s.html" $arms)"
if [ -n "${KEEP:-}" ]; then
	trap - EXIT
	echo "the database stays: export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER PGDATABASE=$PGDATABASE"
	echo "stop it with: $([ "$(id -u)" = 0 ] && echo "runuser -u postgres -- ")$PG_BIN/pg_ctl -D $PG_TMP/data -m fast stop && rm -rf $PG_TMP"
fi
