#!/bin/bash
# tests/bench/queue.sh [ROWS] [CALLS] -- the pull queue's throughput (a benchmark, not a
# test).  Generates ROWS leads (default 50,000), runs a job over them, and has 32 pgbench
# sessions (2 threads) make CALLS calls each (default: as many as leave half the kept leads
# unhanded, at most 500, so that every call could get a lead) of:
#   next_lead          SELECT * FROM refinery.next_lead(job, rep): the rep's held leads first,
#                      then the best unheld one, FOR UPDATE SKIP LOCKED
#   next_lead+record   the same, then record_outcome() of the lead it gave (no_answer)
#   plain FOR UPDATE   a plain table of the same kept leads: UPDATE ... WHERE lead_id =
#                      (SELECT ... ORDER BY p_close DESC LIMIT 1 FOR UPDATE), the textbook queue
#   plain SKIP LOCKED  the same with SKIP LOCKED
# and prints calls per second, the leads handed out, the calls that got none, and the leads
# handed out twice (each variant on fresh rows; with record_outcome a lead comes back to its
# rep's queue at once, so it is handed out again by design).  The plain tables get the index their
# ORDER BY needs; lead_state has the indexes of sql/.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-50000} per=${2:-}
top_srcdir=$(pwd)
[ -x ./refinery ] && [ -x ./fixtures/genleads ] || bash tests/build.sh
export PG_MAX_CONNECTIONS=50
. tests/lib/pg.sh
pg_start
bindir=$(pg_bindir)
work=$PG_TMP/queue
mkdir -p "$work"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
qa() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }

./fixtures/genleads --rows "$rows" --seed 42 --out-dir "$work/g" >/dev/null
pg_load_leads "$work/g" >/dev/null
./refinery init-db -q
cat >"$work/q.ini" <<EOF
[source]
table = crm.leads
now = 2025-07-01
[job]
name = q
[output]
snapshot = no
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
EOF
./refinery run -q -c "$work/q.ini"
q <<'SQL'
CREATE TABLE public.pulls (rep bigint, lead_id text);
CREATE TABLE public.base AS
	SELECT lead_id, rep_id, p_close, NULL::timestamptz AS taken_at, NULL::bigint AS taken_by
	FROM refinery.lead_state WHERE job = 'q' AND state = 'current' AND verdict = 'kept';
SQL
reps=$(qa -c "SELECT string_agg(rep_id::text, ' ') FROM crm.reps WHERE active")
nreps=$(wc -w <<<"$reps")
kept=$(qa -c "SELECT count(*) FROM public.base")
held=$(qa -c "SELECT count(*) FROM public.base WHERE rep_id IS NOT NULL")
[ -n "$per" ] || per=$((kept / 64 < 500 ? kept / 64 : 500))
pick="(string_to_array('$reps', ' '))[:r]::bigint"

cat >"$work/next.sql" <<EOF
\\set r random(1, $nreps)
INSERT INTO public.pulls SELECT $pick, n.lead_id FROM refinery.next_lead('q', $pick) n;
EOF
cat >"$work/record.sql" <<EOF
\\set r random(1, $nreps)
WITH n AS (SELECT n.lead_id FROM refinery.next_lead('q', $pick) n),
     p AS (INSERT INTO public.pulls SELECT $pick, lead_id FROM n)
SELECT refinery.record_outcome('q', n.lead_id, $pick, 'no_answer', clock_timestamp()) FROM n;
EOF
cat >"$work/plain.sql" <<EOF
\\set r random(1, $nreps)
WITH t AS (UPDATE public.plainq SET taken_at = now(), taken_by = $pick
           WHERE lead_id = (SELECT lead_id FROM public.plainq WHERE taken_at IS NULL
                            ORDER BY p_close DESC, lead_id LIMIT 1 FOR UPDATE)
           RETURNING lead_id)
INSERT INTO public.pulls SELECT $pick, lead_id FROM t;
EOF
sed 's/LIMIT 1 FOR UPDATE)/LIMIT 1 FOR UPDATE SKIP LOCKED)/' "$work/plain.sql" >"$work/skip.sql"

fresh() {
	q <<'SQL'
TRUNCATE public.pulls;
UPDATE refinery.lead_state SET taken_at = NULL, taken_by = NULL WHERE job = 'q' AND taken_at IS NOT NULL;
DELETE FROM refinery.outcomes WHERE job = 'q';
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.plainq;
CREATE TABLE public.plainq AS SELECT * FROM public.base;
ALTER TABLE public.plainq ADD PRIMARY KEY (lead_id);
CREATE INDEX ON public.plainq (p_close DESC, lead_id) WHERE taken_at IS NULL;
VACUUM ANALYZE public.plainq;
VACUUM ANALYZE refinery.lead_state;
SQL
}
bench() { # NAME SCRIPT
	local tps calls
	fresh
	"$bindir/pgbench" -n -c 32 -j 2 -t "$per" -f "$2" >"$work/$1.out" 2>&1 ||
		{ tail -5 "$work/$1.out" >&2; return 1; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$1.out")
	calls=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/$1.out")
	printf '%-18s %9.0f %8d %8d %8d %8d\n' "$1" "$tps" "$calls" \
		"$(qa -c "SELECT count(*) FROM public.pulls")" \
		"$((calls - $(qa -c "SELECT count(*) FROM public.pulls")))" \
		"$(qa -c "SELECT count(*) - count(DISTINCT lead_id) FROM public.pulls")"
}
echo "$rows leads, $kept kept ($held held by $nreps active reps); 32 sessions x $per calls, 2 threads"
printf '%-18s %9s %8s %8s %8s %8s\n' variant calls/s calls handed none twice
bench next_lead "$work/next.sql"
bench next_lead+record "$work/record.sql"
bench "plain FOR UPDATE" "$work/plain.sql"
bench "plain SKIP LOCKED" "$work/skip.sql"
