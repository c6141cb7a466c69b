#!/bin/bash
# tests/integration/tenants.sh -- scale-out by tenant on two throwaway servers standing
# in for Citus workers: 8 tenants of generated leads, one 5x the others, half on each
# server, driven by one command through a [cluster] map, the status of each tenant in
# refinery.tenant_runs on the first server (the catalogue).  Every tenant's results
# equal those of a single-node run of that tenant alone (its leads in a table of their
# own, no tenant column); the global do-not-call table applies to every tenant; no
# lead is lost; a tenant that fails fails alone, and --tenants exits with the first
# failing tenant's status; a run killed mid-write leaves its tenant unchanged and the
# rerun completes it; a tenant started twice at once runs once.  With slurm-wlm and
# munge, contrib/slurm drives the same tenants as a Slurm array on a localhost
# cluster of two nodes (skipped with the reason where Slurm cannot start).  Every wait
# is for an observed state (a file, a row, an empty queue), never a fixed time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
. "$top_srcdir/tests/lib/slurm.sh"
# about 50 s in all: the plain pass only (the engine code it runs is shared with the
# other integration tests, which the sanitizer pass runs)
grep -q '^SAN_CFLAGS = -fsanitize' "${top_builddir:-$top_srcdir}/Makefile" 2>/dev/null &&
	skip_all "a sanitized build: this test (about 50 s) runs in the plain pass only"
pg_test_start

# ---- two servers: A (catalogue and node of the odd tenants), B (node of the even ones)
A_TMP=$PG_TMP A_PORT=$PGPORT A_BIN=$PG_BIN
pg_start || { echo "Bail out! could not start a second PostgreSQL"; exit 1; }
B_TMP=$PG_TMP B_PORT=$PGPORT
stop_all() {
	slurm_stop
	PG_TMP=$B_TMP pg_stop
	PG_TMP=$A_TMP pg_stop
}
trap stop_all EXIT
export PGHOST=$A_TMP PGPORT=$A_PORT
PG_TMP=$A_TMP
qa() { PGHOST=$A_TMP PGPORT=$A_PORT pq "$@"; }
qb() { PGHOST=$B_TMP PGPORT=$B_PORT pq "$@"; }
# q NODE ...: psql on the node holding the tenant's data
q() { local n=$1; shift; if [ "$n" = A ]; then qa "$@"; else qb "$@"; fi; }
node_of() { case $1 in t1 | t3 | t5 | t7) echo A ;; *) echo B ;; esac; }
CONN_A="host=$A_TMP port=$A_PORT dbname=postgres user=postgres"
CONN_B="host=$B_TMP port=$B_PORT dbname=postgres user=postgres"

# ---- the data: tenant t1 has 5x the leads of each other tenant; lead ids repeat
# across tenants (each tenant's generator starts at the same id), as client companies' do
TENANTS="t1 t2 t3 t4 t5 t6 t7 t8"
rows_of() { if [ "$1" = t1 ]; then echo 1500; else echo 300; fi; }
for n in A B; do
	q $n -c "CREATE SCHEMA crm;
		CREATE TABLE crm.leads (tenant text NOT NULL, lead_id bigint NOT NULL, created_at timestamp NOT NULL,
		    source text, campaign text, full_name text, phone text, email text, city text, status text,
		    last_touch_at timestamp, touch_count int, last_touch_type text, handler_notes text,
		    automation_after_last_touch boolean, last_rep_id int, PRIMARY KEY (tenant, lead_id));
		CREATE TABLE crm.do_not_call (phone text, email text)" >/dev/null
done
qa -c "CREATE DATABASE ref" >/dev/null
i=0
for t in $TENANTS; do
	i=$((i + 1))
	"$GENLEADS" --rows "$(rows_of $t)" --seed $((40 + i)) --out-dir "$tmp/$t" >/dev/null
	n=$(node_of $t)
	# each tenant's own rows: on its node under its tenant, and alone in database ref
	if [ $n = A ]; then PGHOST=$A_TMP PGPORT=$A_PORT pg_load_leads "$tmp/$t" "src_$t" >/dev/null
	else PGHOST=$B_TMP PGPORT=$B_PORT pg_load_leads "$tmp/$t" "src_$t" >/dev/null; fi
	q $n -c "INSERT INTO crm.leads SELECT '$t', * FROM src_$t.leads" >/dev/null
	PGDATABASE=ref pg_load_leads "$tmp/$t" "src_$t" >/dev/null
done
# the global do-not-call list: every 23rd lead's phone of every tenant, on every node
for t in $TENANTS; do
	q $(node_of $t) -At -c "SELECT phone FROM src_$t.leads WHERE lead_id % 23 = 0 AND phone ~ '^05[0-9]-?[0-9]{7}$'"
done >"$tmp/dnc.txt"
for n in A B; do
	q $n -c "\\copy crm.do_not_call (phone) FROM '$tmp/dnc.txt'" >/dev/null
done
PGDATABASE=ref qa -c "CREATE SCHEMA crm; CREATE TABLE crm.do_not_call (phone text, email text)" >/dev/null
PGDATABASE=ref qa -c "\\copy crm.do_not_call (phone) FROM '$tmp/dnc.txt'" >/dev/null
is "$(wc -l <"$tmp/dnc.txt")" "$(for t in $TENANTS; do q $(node_of $t) -c "SELECT count(*) FROM src_$t.leads WHERE lead_id % 23 = 0 AND phone ~ '^05[0-9]-?[0-9]{7}$'"; done | awk '{ s += $1 } END { print s }')" \
	"the do-not-call list holds phones of every tenant"

common='now = 2025-07-01
[job]
min_rows = 1
max_change_percent = 0
[blacklist.dnc_list]
level = person
query = SELECT phone, email FROM crm.do_not_call
reason = on the do-not-call list'
printf 'tenant,conninfo\n' >"$tmp/map.csv"
for t in $TENANTS t10; do
	if [ "$(node_of $t)" = A ]; then echo "$t,$CONN_A"; else echo "$t,\"$CONN_B\""; fi
done >>"$tmp/map.csv"
cat >"$tmp/tenants.ini" <<INI
[source]
table = crm.leads
tenant_column = tenant
$common
[job]
name = nightly
[cluster]
map = $tmp/map.csv
INI

for d in postgres ref; do PGDATABASE=$d "$REFINERY" init-db -q || echo "Bail out! init-db $d"; done
PGHOST=$B_TMP PGPORT=$B_PORT "$REFINERY" init-db -q || echo "Bail out! init-db on B"

# ---- usage: the tenant and the rules go together
err=$("$REFINERY" run -c "$tmp/tenants.ini" 2>&1); rc=$?
is "$rc" 2 "a shared source (tenant_column) without --tenant is a usage error"
like "$err" 'tenants.ini:[0-9]+: \[source\] tenant_column is set: a run refines one tenant' "naming the rule's place"
printf '[source]\ntable = src_t1.leads\n%s\n' "$common" >"$tmp/plain.ini"
err=$("$REFINERY" run -c "$tmp/plain.ini" --tenant t1 2>&1); rc=$?
is "$rc" 2 "--tenant without [source] tenant_column is a usage error"
err=$("$REFINERY" run -c "$tmp/tenants.ini" --tenant 'bad tenant' 2>&1); rc=$?
is "$rc" 2 "an invalid tenant ID is a usage error"
sed "s|^t3,.*|t3,$CONN_A password=hunter2|" "$tmp/map.csv" >"$tmp/pwmap.csv"
sed "s|^map = .*|map = $tmp/pwmap.csv|" "$tmp/tenants.ini" >"$tmp/pw.ini"
err=$("$REFINERY" run -c "$tmp/pw.ini" --tenant t1 2>&1); rc=$?
is "$rc" 3 "a password in the map is a rules error"
like "$err" "pwmap.csv:4: \\[cluster\\] map: the conninfo of tenant \"t3\" holds a password" "naming the file and line"
unlike "$err" 'hunter2' "without showing it"
is "$(qa -c "SELECT count(*) FROM refinery.runs")/$(qb -c "SELECT count(*) FROM refinery.runs")" "0/0" "those refusals wrote no run"

# ---- the single-node reference: each tenant alone in database ref, no tenant column
for t in $TENANTS; do
	printf '[source]\ntable = src_%s.leads\n%s\n[job]\nname = solo-%s\n' "$t" "$common" "$t" >"$tmp/solo-$t.ini"
	"$REFINERY" run -q -d ref -c "$tmp/solo-$t.ini" -j 1 || echo "# reference run of $t failed"
done
is "$(PGDATABASE=ref qa -c "SELECT count(*) FROM refinery.runs WHERE status = 'committed'")" 8 "8 single-node reference runs"

# ---- all tenants, one command, over both servers
printf '%s\n' $TENANTS >"$tmp/tenants.txt"
out=$("$REFINERY" run -q -c "$tmp/tenants.ini" --tenants "$tmp/tenants.txt" -j 1 2>&1); rc=$?
is "$rc" 0 "run --tenants over 8 tenants on 2 servers exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(qa -c "SELECT string_agg(tenant || ':' || status || ':' || exit_code, ' ' ORDER BY tenant) FROM refinery.tenant_status WHERE job = 'nightly'")" \
	"t1:committed:0 t2:committed:0 t3:committed:0 t4:committed:0 t5:committed:0 t6:committed:0 t7:committed:0 t8:committed:0" \
	"tenant_status: every tenant committed, on the catalogue"
is "$(qa -c "SELECT string_agg(DISTINCT job, ' ' ORDER BY job) FROM refinery.runs")" "nightly@t1 nightly@t3 nightly@t5 nightly@t7" \
	"server A holds the runs of the odd tenants, one job per tenant"
is "$(qb -c "SELECT string_agg(DISTINCT job || '/' || tenant, ' ' ORDER BY job || '/' || tenant) FROM refinery.runs")" \
	"nightly@t2/t2 nightly@t4/t4 nightly@t6/t6 nightly@t8/t8" "server B the even ones, runs.tenant set"
is "$(qa -c "SELECT source_desc FROM refinery.runs WHERE job = 'nightly@t3'")" "table crm.leads (tenant tenant = t3)" \
	"the run's source names the tenant"
is "$(qa -c "SELECT count(*) FROM refinery.tenant_runs WHERE node IS NULL OR node LIKE '%password%'")" 0 \
	"each attempt names its node, with no password"

# results: tenant run == single-node run, lead by lead, every column but the run
res() { # NODE/DB JOB
	local n=${1%/*} d=${1#*/}
	PGDATABASE=$d q $n -c "SELECT (to_jsonb(l) - 'run_id')::text FROM refinery.lead_results l
		WHERE run_id = (SELECT run_id FROM refinery.latest_run WHERE job = '$2') ORDER BY lead_id"
}
same=0 lost=0 published=0 dnc_hits=""
for t in $TENANTS; do
	n=$(node_of $t)
	res "$n/postgres" "nightly@$t" >"$tmp/$t.res"
	res "A/ref" "solo-$t" >"$tmp/$t.ref"
	[ -s "$tmp/$t.res" ] && cmp -s "$tmp/$t.res" "$tmp/$t.ref" && same=$((same + 1))
	[ "$(wc -l <"$tmp/$t.res")" = "$(rows_of $t)" ] || lost=$((lost + 1))
	published=$((published + $(q $n -c "SELECT count(*) FROM refinery.lead_results l
		JOIN src_$t.leads s ON s.lead_id::text = l.lead_id::text
		WHERE l.run_id = (SELECT run_id FROM refinery.latest_run WHERE job = 'nightly@$t')
		  AND s.phone IN (SELECT phone FROM crm.do_not_call) AND l.verdict = 'kept'")))
	dnc_hits="$dnc_hits $(q $n -c "SELECT count(*) > 0 FROM refinery.lead_results
		WHERE run_id = (SELECT run_id FROM refinery.latest_run WHERE job = 'nightly@$t')
		  AND rule_id = 'blacklist.dnc_list'")"
done
is "$same" 8 "every tenant's results equal a single-node run of that tenant alone"
is "$lost" 0 "every tenant has one result row per lead it holds: 0 leads lost"
is "$published" 0 "0 leads on the do-not-call list kept"
is "$dnc_hits" " t t t t t t t t" "the global do-not-call list removed leads of every tenant, on both servers"

# the reading commands take a tenant's job by its name
PGHOST=$B_TMP PGPORT=$B_PORT "$REFINERY" export --job nightly@t2 --csv "$tmp/t2.csv"; rc=$?
is "$rc/$(($(wc -l <"$tmp/t2.csv") - 1))" "0/$(rows_of t2)" "export --job nightly@t2 exports that tenant's leads"
err=$("$REFINERY" export --job 'nightly@bad tenant' --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "--job with an invalid tenant part is a usage error"

# ---- a tenant that fails fails alone; the exit status is the first failure's
printf 't2\nt10\nt9\nt4\n' >"$tmp/some.txt"
err=$("$REFINERY" run -q -c "$tmp/tenants.ini" --tenants "$tmp/some.txt" 2>&1); rc=$?
is "$rc" 5 "--tenants exits with the first failing tenant's status (t10: no leads, 5)"
like "$err" 'tenant "t10": job "nightly@t10": the source gave 0 leads' "naming that tenant"
like "$err" 'tenant "t9": .*tenants.ini:[0-9]+: \[cluster\] map: tenant "t9" is not in the map' "and the next (t9: not mapped)"
like "$err" '2 of 4 tenants failed' "then how many failed"
is "$(qa -c "SELECT string_agg(tenant || ':' || status || ':' || exit_code, ' ' ORDER BY attempt) FROM refinery.tenant_runs WHERE attempt > 8")" \
	"t2:committed:0 t10:failed:5 t9:failed:3 t4:committed:0" "each tenant's attempt recorded with its own status"
is "$(qb -c "SELECT count(*) FROM refinery.jobs WHERE name = 'nightly@t10'")" 0 "the failed tenant left no job behind"

# the tenants from a query on the catalogue, and the map from one
qa -c "CREATE SCHEMA catalogue; CREATE TABLE catalogue.tenant_nodes (tenant text, conninfo text);
	INSERT INTO catalogue.tenant_nodes VALUES ('t5', '$CONN_A'), ('t6', '$CONN_B')" >/dev/null
sed "s|^map = .*|map = SELECT tenant, conninfo FROM catalogue.tenant_nodes|" "$tmp/tenants.ini" >"$tmp/qmap.ini"
"$REFINERY" run -q -c "$tmp/qmap.ini" --tenants "SELECT tenant FROM catalogue.tenant_nodes ORDER BY 1"; rc=$?
is "$rc/$(qa -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t5'")/$(qb -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t6'")" \
	"0/2/2" "--tenants QUERY with [cluster] map = QUERY runs each tenant on its node"

# ---- a run killed mid-write leaves its tenant unchanged; the rerun completes it
tstate() { # NODE TENANT: every row of the tenant's job
	q $1 -c "SELECT md5(coalesce((SELECT string_agg(r::text, ',' ORDER BY run_id) FROM refinery.runs r WHERE job = 'nightly@$2'), '')
		|| coalesce((SELECT string_agg(s::text, ',' ORDER BY lead_id) FROM refinery.lead_state s WHERE job = 'nightly@$2'), '')
		|| coalesce((SELECT string_agg(l::text, ',' ORDER BY run_id, lead_id) FROM refinery.lead_results l
		             JOIN refinery.runs r USING (run_id) WHERE r.job = 'nightly@$2'), ''))"
}
if fault_hooks; then
	# the same change of the source for t3 on A and for its reference in database ref
	change="UPDATE src_t3.leads SET status = 'do_not_call' WHERE lead_id % 7 = 0"
	qa -c "$change; UPDATE crm.leads l SET status = s.status FROM src_t3.leads s
		WHERE l.tenant = 't3' AND l.lead_id = s.lead_id" >/dev/null
	PGDATABASE=ref qa -c "$change" >/dev/null
	before=$(tstate A t3) other=$(tstate A t1)
	REFINERY_FAULT=write "$REFINERY" run -q -c "$tmp/tenants.ini" --tenant t3 -j 1 >/dev/null 2>&1; rc=$?
	is "$rc" 137 "the tenant's run killed half-way through its write"
	pg_wait_no_engine
	is "$(tstate A t3)" "$before" "the tenant's runs, state and results are unchanged"
	is "$(tstate A t1)" "$other" "and so is every other tenant's"
	is "$(qa -c "SELECT status FROM refinery.tenant_status WHERE job = 'nightly' AND tenant = 't3'")" running \
		"tenant_status shows the killed attempt as running (never finished)"
	"$REFINERY" run -q -c "$tmp/tenants.ini" --tenant t3 -j 1; rc=$?
	"$REFINERY" run -q -d ref -c "$tmp/solo-t3.ini" -j 1
	res A/postgres nightly@t3 >"$tmp/t3.res2"
	res A/ref solo-t3 >"$tmp/t3.ref2"
	is "$rc/$(qa -c "SELECT status FROM refinery.tenant_status WHERE job = 'nightly' AND tenant = 't3'")" "0/committed" \
		"the rerun commits the tenant"
	ok "$(cmp -s "$tmp/t3.res2" "$tmp/t3.ref2" && [ -s "$tmp/t3.res2" ] && echo 0 || echo 1)" \
		"and its results equal the single-node run of the changed source"
else
	skip 6 "refinery built without fault injection (REFINERY_FAULT)"
fi

# ---- one tenant started twice at once runs once
if fault_hooks; then
	runs0=$(qb -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t2'")
	pg_run_stalled compute "$tmp/gate" -q -c "$tmp/tenants.ini" --tenant t2 -j 1 ||
		diag "$(cat "$tmp/gate.err")"
	err=$("$REFINERY" run -q -c "$tmp/tenants.ini" --tenant t2 -j 1 2>&1); rc=$?
	is "$rc" 6 "the second copy of tenant t2 is refused (lease taken)"
	like "$err" 'another run of job "nightly@t2" is in progress' "naming the tenant's job"
	touch "$tmp/gate"
	wait $pid; rc=$?
	is "$rc" 0 "the first copy commits"
	is "$(qb -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t2'")" $((runs0 + 1)) "t2 ran once"
	is "$(qa -c "SELECT status || ':' || attempts FROM refinery.tenant_status WHERE job = 'nightly' AND tenant = 't2'")" \
		"committed:4" "tenant_status shows the committed attempt, not the refused copy (status locked)"
else
	skip 5 "refinery built without fault injection (REFINERY_FAULT)"
fi

# ---- the same tenants as Slurm jobs on a localhost cluster of two nodes (contrib/slurm)
slurm_tests=10
if ! slurm_start 2; then
	skip $slurm_tests "no localhost Slurm cluster: $SLURM_WHY"
else
	S=$tmp/slurm
	mkdir -p "$S"
	runs_before=$(for t in $TENANTS; do q $(node_of $t) -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@$t'"; done | paste -sd' ')
	for t in $TENANTS; do echo "$t,$(rows_of $t)"; done >"$tmp/sized.csv"
	out=$(REFINERY=$REFINERY "$top_srcdir/contrib/slurm/refinery-submit" -c "$tmp/tenants.ini" -t "$tmp/sized.csv" -o "$S" 2>&1); rc=$?
	is "$rc/$(printf '%s\n' "$out" | head -n 1 | cut -d' ' -f1)" "0/t1" "refinery-submit sends the tenants' jobs, the biggest first"
	like "$out" 'refinery-submit: 8 tenant jobs, report job [0-9]+' "then the report job"
	slurm_wait_idle || diag "the Slurm jobs did not finish"
	runs_after=$(for t in $TENANTS; do q $(node_of $t) -c "SELECT count(*) - 1 FROM refinery.runs WHERE job = 'nightly@$t'"; done | paste -sd' ')
	is "$runs_after" "$runs_before" "each tenant ran once more, as a Slurm job"
	same=0
	for t in $TENANTS; do
		res "$(node_of $t)/postgres" "nightly@$t" >"$tmp/$t.sres"
		res "A/ref" "solo-$t" >"$tmp/$t.sref"
		[ -s "$tmp/$t.sres" ] && cmp -s "$tmp/$t.sres" "$tmp/$t.sref" && same=$((same + 1))
	done
	is "$same" 8 "every tenant's results still equal its single-node run"
	is "$(tail -n +2 "$S/refinery-tenants-nightly.csv" | cut -d, -f1,2,3 | paste -sd' ')" \
		"t1,committed,0 t2,committed,0 t3,committed,0 t4,committed,0 t5,committed,0 t6,committed,0 t7,committed,0 t8,committed,0" \
		"the report job wrote the cross-tenant report from tenant_status"
	like "$(cat "$S"/refinery-report-nightly-*.log)" 'job nightly: 8 tenants, 8 committed, 0 failed, 0 locked, 0 running, 0 not run' "and its summary line"

	# a tenant submitted twice runs once: both held, then released; singleton queues the
	# second behind the first, which then finds the tenant refined since it was sent
	runs0=$(qb -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t4'")
	echo t4 >"$tmp/t4.txt"
	for k in 1 2; do
		REFINERY=$REFINERY "$top_srcdir/contrib/slurm/refinery-submit" -c "$tmp/tenants.ini" -t "$tmp/t4.txt" -o "$S/twice" -- --hold >/dev/null
	done
	scontrol release "$(squeue -h -o %i | paste -sd,)"
	slurm_wait_idle
	is "$(qb -c "SELECT count(*) FROM refinery.runs WHERE job = 'nightly@t4'")" $((runs0 + 1)) "a tenant submitted twice ran once"
	like "$(cat "$S"/twice/refinery-t4-*.log)" 'tenant "t4" of job "nightly" was refined by a run started at .*: nothing to do' \
		"the second copy says why it did nothing"

	# -m 1: one lane, so the tenants run one at a time although two nodes are free
	first=$(qa -c "SELECT max(attempt) FROM refinery.tenant_runs")
	printf 't5\nt7\nt8\n' >"$tmp/lane.txt"
	REFINERY=$REFINERY "$top_srcdir/contrib/slurm/refinery-submit" -c "$tmp/tenants.ini" -t "$tmp/lane.txt" -m 1 -o "$S/lane" >/dev/null
	slurm_wait_idle
	is "$(qa -c "SELECT count(*) || '/' || count(*) FILTER (WHERE status = 'committed') || '/' ||
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM refinery.tenant_runs o WHERE o.attempt > $first
			AND o.attempt <> t.attempt AND o.started_at < t.finished_at AND t.started_at < o.finished_at))
		FROM refinery.tenant_runs t WHERE attempt > $first")" "3/3/0" \
		"-m 1: three tenants committed, no two at once"

	# a task whose tenant's lease is held elsewhere succeeds with a message (exit 6 -> 0)
	if fault_hooks; then
		pg_run_stalled compute "$tmp/gate6" -q -c "$tmp/tenants.ini" --tenant t6 -j 1
		echo t6 >"$tmp/t6.txt"
		REFINERY=$REFINERY "$top_srcdir/contrib/slurm/refinery-submit" -c "$tmp/tenants.ini" -t "$tmp/t6.txt" -o "$S/held" >/dev/null
		slurm_wait_idle
		touch "$tmp/gate6"
		wait $pid
		like "$(cat "$S"/held/refinery-t6-*.log)" 'refinery-task: tenant "t6": another run of the tenant holds its lease' \
			"a task refused by the lease (exit 6) succeeds with a message"
	else
		skip 1 "refinery built without fault injection (REFINERY_FAULT)"
	fi
	slurm_stop
fi

# ---- single-tenant jobs are untouched
"$REFINERY" run -q -c "$tmp/plain.ini"; rc=$?
is "$rc/$(qa -c "SELECT job || ':' || coalesce(tenant, 'NULL') FROM refinery.runs WHERE job = 'default'")" "0/default:NULL" \
	"a job without tenants runs as before, tenant NULL"

done_testing
