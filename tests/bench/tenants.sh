#!/bin/bash
# tests/bench/tenants.sh [ROWS] -- makespan of one job's tenants run as Slurm jobs (a
# benchmark, not a test).  Generates two sets of 8 tenants in one shared source: "equal"
# (8 x ROWS leads, default 20,000) and "skewed" (tenant t1 5 x ROWS, the others ROWS).
# Times each tenant alone first (refinery run --tenant -j 1, one after another: the
# per-tenant cost), then, on a localhost Slurm cluster of K = 1 and K = 2 nodes with
# CPUs=1 each (tests/lib/slurm.sh), submits each set with contrib/slurm/refinery-submit
# (sizes given, so the biggest goes first; each task -j 1) and measures the makespan:
# from the first tenant's start to the last tenant's end in refinery.tenant_runs, and the
# wall time from submission until squeue is empty.  Prints, per set and K, the makespan,
# the sum of the tenants' own times, the bound max(biggest tenant, total / K) from the
# times measured alone, makespan / bound, and the speed-up from K = 1 to K = 2.  Each
# submission is a job of its own (a first run of every tenant: a full write).  One
# PostgreSQL server holds every tenant; it shares the machine with the Slurm nodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-20000}
top_srcdir=$(pwd)
[ -x ./refinery ] && [ -x ./fixtures/genleads ] || bash tests/build.sh
. tests/lib/pg.sh
. tests/lib/slurm.sh
pg_start
trap 'slurm_stop; pg_stop' EXIT
work=$PG_TMP/tenants
mkdir -p "$work"
REFINERY=$top_srcdir/refinery
export REFINERY
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }

"$REFINERY" init-db -q
q -c "CREATE SCHEMA crm;
	CREATE TABLE crm.leads (tenant text NOT NULL, lead_id bigint NOT NULL, created_at timestamp NOT NULL,
	    source text, campaign text, full_name text, phone text, email text, city text, status text,
	    last_touch_at timestamp, touch_count int, last_touch_type text, handler_notes text,
	    automation_after_last_touch boolean, last_rep_id int, PRIMARY KEY (tenant, lead_id))"
for set in equal skewed; do
	for i in 1 2 3 4 5 6 7 8; do
		n=$rows
		[ $set = skewed ] && [ $i = 1 ] && n=$((5 * rows))
		./fixtures/genleads --rows $n --seed $((100 + i)) --out-dir "$work/g" >/dev/null
		q <<SQL
CREATE TEMP TABLE g (LIKE crm.leads);
ALTER TABLE g DROP COLUMN tenant;
\copy g FROM '$work/g/leads.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO crm.leads SELECT '$set-t$i', * FROM g;
SQL
		echo "$set-t$i,$n" >>"$work/$set.csv"
	done
done
q -c "ANALYZE crm.leads"
rules() { # JOB
	printf '[source]\ntable = crm.leads\ntenant_column = tenant\nnow = 2025-07-01\n[job]\nname = %s\nmax_change_percent = 0\n' "$1" >"$work/$1.ini"
}

# each tenant alone, one after another: its own cost
for set in equal skewed; do
	rules "alone-$set"
	"$REFINERY" run -q -c "$work/alone-$set.ini" --tenants "$work/$set.csv" -j 1
done
echo "# per-tenant cost alone (refinery run --tenant -j 1, seconds from tenant_runs):"
q -F' ' -c "SELECT tenant, round(seconds::numeric, 2) FROM refinery.tenant_status WHERE job LIKE 'alone-%' ORDER BY job, tenant"

printf '%-7s %3s %2s %9s %9s %9s %9s %9s %7s\n' set rep K makespan wall sum biggest bound ratio
for rep in $(seq "${REPEAT:-2}"); do
	for k in 1 2; do
		slurm_start $k || { echo "no Slurm cluster: $SLURM_WHY" >&2; exit 1; }
		for set in equal skewed; do
			j=r$rep-k$k-$set
			rules "$j"
			s0=$(date +%s.%N)
			contrib/slurm/refinery-submit -c "$work/$j.ini" -t "$work/$set.csv" -j 1 -o "$work/out-$j" >/dev/null
			slurm_wait_idle
			s1=$(date +%s.%N)
			# the bound from this submission's own task times: max(biggest, total / K)
			q -F' ' -c "SELECT '$set', $rep, $k, round(extract(epoch FROM max(finished_at) - min(started_at))::numeric, 2),
				       round(($s1 - $s0)::numeric, 2), round(sum(seconds)::numeric, 2), round(max(seconds)::numeric, 2),
				       round(greatest(max(seconds), sum(seconds) / $k)::numeric, 2),
				       round((extract(epoch FROM max(finished_at) - min(started_at)) / greatest(max(seconds), sum(seconds) / $k))::numeric, 2)
				FROM refinery.tenant_status WHERE job = '$j'" |
				awk '{ printf "%-7s %3s %2s %9s %9s %9s %9s %9s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
			q -c "SELECT count(*) FROM refinery.tenant_status WHERE job = '$j' AND status <> 'committed'" |
				grep -qx 0 || echo "# some tenants of $j did not commit" >&2
		done
		slurm_stop
	done
done
q -F' ' -c "SELECT 'speed-up K=1 -> K=2 (makespan)', s.set, s.rep, round((a.m / b.m)::numeric, 2)
	FROM (SELECT set, rep FROM unnest(ARRAY['equal', 'skewed']) set, generate_series(1, ${REPEAT:-2}) rep) s,
	LATERAL (SELECT extract(epoch FROM max(finished_at) - min(started_at)) m FROM refinery.tenant_status
	         WHERE job = format('r%s-k1-%s', s.rep, s.set)) a,
	LATERAL (SELECT extract(epoch FROM max(finished_at) - min(started_at)) m FROM refinery.tenant_status
	         WHERE job = format('r%s-k2-%s', s.rep, s.set)) b
	ORDER BY 2, 3"
