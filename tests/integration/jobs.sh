#!/bin/bash
# tests/integration/jobs.sh -- jobs against a throwaway server: each job's first run
# says it is new once it has committed (a refused one does not, a dry run says it would
# be); reading commands refuse to guess between jobs and reject unknown ones; "refinery
# jobs" and its --check; the lease (two jobs at once, one job never twice, the refusal
# naming the holder, one of two runs of a job that start together goes ahead, first runs
# of two jobs that start together both commit); the [job] guards and --force; retention
# per job and "refinery prune", every drop logged; and an upgrade of a database holding
# runs made by release 0.1.0.  Concurrency is synchronised on the file a stalled engine
# creates (REFINERY_FAULT=pull:stall:GATE) and on the locks sessions wait for, never on
# time.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
pg_test_start

N=1000
"$GENLEADS" --rows $N --seed 21 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
pq -c "CREATE TABLE crm.leads_700 AS SELECT * FROM crm.leads ORDER BY lead_id LIMIT 700;
       CREATE TABLE crm.leads_0 AS SELECT * FROM crm.leads LIMIT 0" >/dev/null
# rules JOB TABLE [MORE]: a rule file for job JOB reading TABLE
rules() {
	printf '[source]\ntable = %s\nnow = 2025-07-01\n[job]\nname = %s\n%s' "$2" "$1" "${3:-}" >"$tmp/$1.ini"
}
rules nightly crm.leads
printf '[source]\ntable = crm.leads\nnow = 2025-07-01\n' >"$tmp/plain.ini"
runs() { pq -c "SELECT count(*) FROM refinery.runs WHERE job = '$1'"; }

"$REFINERY" init-db -q
ok $? "init-db"
out=$("$REFINERY" jobs 2>&1); rc=$?
is "$rc/$out" "0/job  last_run  finished_at  rows_pulled  runs  result_rows  result_size  state_rows  state_size  change_rows" \
	"jobs on an empty schema: the header and no job"

# ---- first runs
out=$("$REFINERY" run -c "$tmp/nightly.ini" 2>&1); rc=$?
is "$rc" 0 "the first run of job nightly succeeds"
like "$out" '^refinery: info: new job "nightly"$' "and says the job is new"
out=$("$REFINERY" run -c "$tmp/nightly.ini" 2>&1)
unlike "$out" 'new job' "the second run of the job does not"
out=$("$REFINERY" run -c "$tmp/plain.ini" 2>&1); rc=$?
is "$rc" 0 "a run with no [job] section succeeds"
like "$out" '^refinery: info: new job "default"$' "and is the first run of job default"
is "$(pq -c "SELECT string_agg(job || ':' || n, ' ' ORDER BY job) FROM (SELECT job, count(*) n FROM refinery.runs GROUP BY job) s")" \
	"default:1 nightly:2" "runs belong to their jobs"
is "$(pq -c "SELECT string_agg(job || ':' || run_id, ' ' ORDER BY job) FROM refinery.latest_run")" \
	"default:3 nightly:2" "latest_run: the newest committed run of each job"

# ---- which job: never guessed
for c in "export --csv $tmp/x.csv" "explain 1" "report"; do
	err=$("$REFINERY" $c 2>&1); rc=$?
	is "$rc" 2 "${c%% *} with two jobs and no --job is a usage error"
	like "$err" '^refinery: error: results of 2 jobs are stored: say which with --job$' "${c%% *} says why"
	like "$err" '^refinery: detail: Jobs: default, nightly\.$' "${c%% *} lists the jobs"
done
err=$("$REFINERY" export --job nosuch --csv "$tmp/x.csv" 2>&1); rc=$?
is "$rc" 2 "export of an unknown job is a usage error"
like "$err" 'there is no job "nosuch"' "it names the job"
like "$err" 'Known jobs: default, nightly\.' "and lists the known ones"
err=$("$REFINERY" report --job 'bad name' 2>&1); rc=$?
is "$rc" 2 "an invalid job name is a usage error"
"$REFINERY" export --job nightly --csv "$tmp/n.csv"; rc=$?
is "$rc" 0 "export --job nightly"
is "$(($(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 2")))" \
	"$(($(wc -l <"$tmp/n.csv") - 1 - $(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 2 AND (reason LIKE '%'||chr(10)||'%' OR golden::text LIKE '%'||chr(10)||'%')")))" \
	"it exports the leads of nightly's latest run (2)"
lead=$(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 1 ORDER BY lead_id LIMIT 1")
out=$("$REFINERY" explain --verbose --job nightly --run 1 "$lead"); rc=$?
is "$rc" 0 "explain --job nightly --run 1"
like "$out" '^job +\| nightly$' "explain shows the job"
err=$("$REFINERY" explain --job default --run 1 "$lead" 2>&1); rc=$?
is "$rc" 5 "a run of another job is not found"
like "$err" 'there is no committed run 1 of job "default"' "and the message says so"
"$REFINERY" explain --run 3 "$lead" >/dev/null; rc=$?
is "$rc" 0 "--run alone names its job"
out=$("$REFINERY" report --job nightly); rc=$?
is "$rc" 0 "report --job nightly"
like "$(printf '%s\n' "$out" | sed -n 4p)" '^ +2 \| nightly +\| committed ' "the report's run table shows run 2 and its job"
rules preview crm.leads
err=$("$REFINERY" run -q --dry-run -c "$tmp/preview.ini" 2>&1 >/dev/null); rc=$?
is "$rc/$(pq -c "SELECT count(*) FROM refinery.jobs WHERE name = 'preview'")" "0/0" \
	"a dry run of a new job leaves no job behind"
is "$err" 'refinery: info: new job "preview" (a dry run: the job is not created)' "and says the job would be new"

# ---- refinery jobs
out=$("$REFINERY" jobs); rc=$?
is "$rc" 0 "jobs succeeds"
is "$(printf '%s\n' "$out" | awk 'NR > 1 { print $1, $2, $5, $6, $7, $10, $13 }' | paste -sd ';')" \
	"default 3 $N 1 $N $N 0;nightly 2 $N 2 $((2 * N)) $N 0" \
	"jobs: last run, its rows, runs, result rows, state rows and change rows of each job"
like "$(printf '%s\n' "$out" | awk 'NR == 3')" '^nightly +2 +[0-9-]+ [0-9:]+ +[0-9]+ +2 +[0-9]+ +[0-9]+ (kB|MB) +[0-9]+ +[0-9]+ (kB|MB) +[0-9]+$' \
	"jobs: the finish time and the size of the partitions"
"$REFINERY" jobs -q --check --max-age 26h; rc=$?
is "$rc" 0 "jobs --check: every job ran in the last 26 hours"
pq -c "UPDATE refinery.runs SET finished_at = finished_at - interval '30 hours' WHERE job = 'default';
       INSERT INTO refinery.jobs (name) VALUES ('idle')" >/dev/null
err=$("$REFINERY" jobs -q --check --max-age 26h 2>&1); rc=$?
is "$rc" 5 "jobs --check: an overdue job gives status 5"
like "$err" '^refinery: error: 2 jobs without a committed run in the last 26h: default, idle$' \
	"it names the overdue jobs, and only them"
like "$err" 'job "default": last committed run 3 finished .*; job "idle": no committed run\.$' \
	"the detail says when each last ran"
"$REFINERY" jobs -q --check --max-age 26h --job nightly; rc=$?
is "$rc" 0 "jobs --check --job checks that job only"
pq -c "UPDATE refinery.runs SET finished_at = finished_at + interval '30 hours' WHERE job = 'default';
       DELETE FROM refinery.jobs WHERE name = 'idle'" >/dev/null
"$REFINERY" jobs --check >/dev/null 2>&1; rc=$?
is "$rc" 2 "jobs --check without --max-age is a usage error"
"$REFINERY" jobs --check --max-age 26x >/dev/null 2>&1; rc=$?
is "$rc" 2 "a malformed age is a usage error"
"$REFINERY" jobs --check --max-age 99999999d >/dev/null 2>&1; rc=$?
is "$rc" 2 "an age past a hundred years in its unit is a usage error too, not a failed check"

# ---- the lease
start_stalled() { # JOB GATE: a run of JOB stalled in its pull (pg_run_stalled); sets $pid
	pg_run_stalled pull "$tmp/$2" -c "$tmp/$1.ini"
}
if fault_hooks; then
	before=$(pq -c "SELECT count(*) FROM refinery.runs")
	start_stalled nightly gate1
	ok $? "a run of nightly stops in the middle of its pull"
	is "$(pq -c "SELECT holder_pid FROM refinery.jobs WHERE name = 'nightly'")" "$pid" \
		"the job's row names the holder's process"
	err=$("$REFINERY" run -c "$tmp/nightly.ini" 2>&1); rc=$?
	is "$rc" 6 "a second run of nightly meanwhile exits with the lock code"
	like "$err" 'another run of job "nightly" is in progress' "it says which job"
	like "$err" "It is refinery process $pid on host \"$(hostname)\", started [0-9-]+ [0-9:]+" \
		"it names the holder's pid, host and start time"
	out=$("$REFINERY" run -c "$tmp/plain.ini" 2>&1); rc=$?
	is "$rc" 0 "a run of job default meanwhile commits"
	touch "$tmp/gate1"
	wait $pid; rc=$?
	is "$rc" 0 "the stalled nightly run then commits too"
	is "$(pq -c "SELECT count(*) FROM refinery.runs")" "$((before + 2))" "two runs were added, no more"
	is "$(pq -c "SELECT count(*) FROM refinery.jobs WHERE holder_pid IS NOT NULL")" 0 \
		"committed runs leave no holder behind"
	# a run stopped by SIGTERM rolls back and clears its record
	before=$(pq -c "SELECT count(*) FROM refinery.runs")
	start_stalled nightly gate2
	kill -TERM $pid
	wait $pid; rc=$?
	is "$rc/$(pq -c "SELECT count(*) FROM refinery.jobs WHERE holder_pid IS NOT NULL")" "7/0" \
		"a run stopped by SIGTERM exits 7 and clears the holder"
	# a killed run leaves its record, but not the lock: the next run goes ahead
	start_stalled nightly gate3
	kill -KILL $pid
	wait $pid 2>/dev/null
	pg_wait_no_engine
	is "$(pq -c "SELECT holder_pid FROM refinery.jobs WHERE name = 'nightly'")" "$pid" \
		"a killed run's record stays in the row"
	"$REFINERY" run -q -c "$tmp/nightly.ini"; rc=$?
	is "$rc" 0 "yet the next run of the job takes the lease: the lock died with the session"
	is "$(pq -c "SELECT count(*) FROM refinery.runs")/$(pq -c "SELECT count(*) FROM refinery.jobs WHERE holder_pid IS NOT NULL")" \
		"$((before + 1))/0" "only that run was added, and it cleared the record"
	# two jobs' first runs: one stalled while it writes its state (its results written,
	# not yet attached) holds no lock another job's run waits for
	rules twin1 crm.leads
	rules twin2 crm.leads
	pg_run_stalled state "$tmp/gate4" -c "$tmp/twin1.ini"
	ok $? "a first run of job twin1 stops half-way through writing its state"
	out=$("$REFINERY" run -q -c "$tmp/twin2.ini" 2>&1); rc=$?
	is "$rc/$out" "0/refinery: info: new job \"twin2\"" "meanwhile a first run of job twin2 writes, attaches its partitions and commits"
	touch "$tmp/gate4"
	wait $pid; rc=$?
	is "$rc" 0 "then twin1's run commits too"
	is "$(pq -c "SELECT string_agg(j.job || ':' || (SELECT count(*) FROM refinery.lead_results l WHERE l.run_id = j.run_id) || ':' || j.state_rows, ' ' ORDER BY j.job)
		FROM (SELECT s.job, s.last_run_id AS run_id, s.state_rows FROM refinery.job_summary s WHERE s.job LIKE 'twin%') j")" \
		"twin1:$N:$N twin2:$N:$N" "each has its $N results and $N state rows"
	# a run of one job holds no lock on the shared lead_state that another job's full write
	# waits for: stalled after reading its state, twin1's run leaves twin2's --full its
	# swap (a new partition), not a copy into the old one
	pg_run_stalled compute "$tmp/gate9" -c "$tmp/twin1.ini"
	ok $? "a run of job twin1 stops after reading its state"
	part=$(pq -c "SELECT 'refinery.lead_state_twin2'::regclass::oid")
	out=$("$REFINERY" run --full -c "$tmp/twin2.ini" 2>&1); rc=$?
	is "$rc" 0 "meanwhile a full write of job twin2 commits"
	unlike "$out" 'copied into its partition' "swapping its state in, not copying it"
	is "$(pq -c "SELECT 'refinery.lead_state_twin2'::regclass::oid <> $part")" t "twin2's partition is a new table"
	touch "$tmp/gate9"
	wait $pid; rc=$?
	is "$rc" 0 "then twin1's run commits too"
	# two runs of one job that start together: each has recorded itself as the holder,
	# the later one last, when the other checks the record under the row's lock (held
	# here by a session) and refuses; the one named waits for that lock and goes ahead.
	# No lock timeout (0: wait), so nothing depends on how long a step takes.
	printf '[output]\nlock_timeout_ms = 0\n' >"$tmp/wait.ini"
	before=$(runs nightly)
	pg_run_stalled lease "$tmp/gate5" -c "$tmp/nightly.ini" -c "$tmp/wait.ini"
	ok $? "a run of nightly stops once it has recorded itself as the holder"
	pid_a=$pid
	pg_run_stalled lease "$tmp/gate6" -c "$tmp/nightly.ini" -c "$tmp/wait.ini"
	ok $? "so does a second run of nightly, after it"
	pid_b=$pid
	is "$(pq -c "SELECT holder_pid FROM refinery.jobs WHERE name = 'nightly'")" "$pid_b" "the row names the second"
	pg_hold_open check "BEGIN; SELECT 'locked' FROM refinery.jobs WHERE name = 'nightly' FOR NO KEY UPDATE;"
	poll_until 600 grep -qx locked "$PG_TMP/check.out"
	ok $? "a session locks the job's row, as the first run's check does"
	touch "$tmp/gate6"
	lease_wait_or_exit() { # the second run waits for the row's lock to check its record, or has exited
		! kill -0 "$pid_b" 2>/dev/null ||
			pg_returns "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'refinery' AND wait_event_type = 'Lock'
				AND query LIKE 'SELECT holder_pid = %FOR NO KEY UPDATE'" 1
	}
	poll_until 600 lease_wait_or_exit
	kill -0 "$pid_b" 2>/dev/null
	ok $? "the second run, which the row names, waits for that lock instead of being refused"
	pg_hold_close check "ROLLBACK;"
	wait "$pid_b"; rc=$?
	is "$rc" 0 "once the lock is free it takes the lease and commits"
	[ "$rc" = 0 ] || sed 's/^/# /' "$tmp/gate6.err"
	touch "$tmp/gate5"
	wait "$pid_a"; rc=$?
	is "$rc" 6 "the first run, no longer named, is refused"
	like "$(cat "$tmp/gate5.err")" 'another run of job "nightly" is in progress' "saying so"
	is "$(runs nightly)/$(pq -c "SELECT count(*) FROM refinery.jobs WHERE holder_pid IS NOT NULL")" "$((before + 1))/0" \
		"one run of the job was added, and no holder is left"
	# first runs of two new jobs that start together both commit
	rules pair1 crm.leads
	rules pair2 crm.leads
	pg_run_stalled lease "$tmp/gate7" -c "$tmp/pair1.ini" -c "$tmp/wait.ini"
	pid_a=$pid
	pg_run_stalled lease "$tmp/gate8" -c "$tmp/pair2.ini" -c "$tmp/wait.ini"
	ok $? "first runs of jobs pair1 and pair2 both stop before locking their rows"
	pid_b=$pid
	touch "$tmp/gate7" "$tmp/gate8"
	wait "$pid_a"; rc=$?
	wait "$pid_b"; rc2=$?
	is "$rc/$rc2/$(runs pair1)/$(runs pair2)" "0/0/1/1" "then both take their leases and commit"
else
	skip 28 "refinery was built without --enable-fault-injection"
fi

# ---- guards
last=$(pq -c "SELECT max(run_id) FROM refinery.runs WHERE job = 'nightly'")
before=$(runs nightly)
rules nightly crm.leads_700
err=$("$REFINERY" run -c "$tmp/nightly.ini" 2>&1); rc=$?
is "$rc" 5 "a source 30% smaller fails the change guard with the data code"
like "$err" "job \"nightly\": the source gave 700 leads against $N in the last committed run \($last\), a change of 30\.0%, over \[job\] max_change_percent = 20" \
	"the message gives both counts"
is "$(runs nightly)" "$before" "and nothing was committed"
rules nightly crm.leads_700 'max_change_percent = 35'
"$REFINERY" run -q -c "$tmp/nightly.ini"; rc=$?
is "$rc" 0 "max_change_percent = 35 lets it through"
rules nightly crm.leads
"$REFINERY" run -q -c "$tmp/nightly.ini" 2>/dev/null; rc=$?
is "$rc" 5 "back to $N leads is a 42.9% change: refused"
"$REFINERY" run -q --force -c "$tmp/nightly.ini"; rc=$?
is "$rc" 0 "--force commits it anyway"
is "$(pq -c "SELECT rows_pulled FROM refinery.latest_run WHERE job = 'nightly'")" "$N" "the forced run is the latest"
rules nightly crm.leads_0
before=$(runs nightly)
err=$("$REFINERY" run -c "$tmp/nightly.ini" 2>&1); rc=$?
is "$rc" 5 "an empty source fails by default"
like "$err" 'job "nightly": the source gave 0 leads, fewer than \[job\] min_rows = 1' "the message gives both counts"
is "$(runs nightly)" "$before" "and nothing was committed"
rules small crm.leads_700
out=$("$REFINERY" run -c "$tmp/small.ini" 2>&1); rc=$?
is "$rc" 0 "a new job's first run has no change check"
rules brandnew crm.leads_0
err=$("$REFINERY" run -q -c "$tmp/brandnew.ini" 2>&1); rc=$?
is "$rc/$(pq -c "SELECT count(*) FROM refinery.jobs WHERE name = 'brandnew'")" "5/0" \
	"a refused first run leaves no job behind"
like "$err" 'fewer than \[job\] min_rows = 1' "refused by the min_rows guard"
unlike "$err" 'new job' "and does not say the job is new"
rules brandnew crm.leads_700
err=$("$REFINERY" run -q -c "$tmp/brandnew.ini" 2>&1); rc=$?
is "$rc/$err" '0/refinery: info: new job "brandnew"' "the job's first committed run says it is new"

# ---- retention per job, and prune
rules nightly crm.leads $'[output]\nkeep_runs = 2\n'
keep=$(pq -c "SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM (SELECT run_id FROM refinery.runs WHERE job = 'nightly' ORDER BY run_id DESC LIMIT 1) s")
gone=$(pq -c "SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM refinery.runs WHERE job = 'nightly' AND run_id < $keep")
defaults=$(runs default)
err=$("$REFINERY" run -q -c "$tmp/nightly.ini" 2>&1); rc=$?
is "$rc" 0 "a run with keep_runs = 2"
is "$(printf '%s\n' "$err" | sed -n 's/^refinery: info: job "nightly": dropped run \([0-9]*\) .*/\1/p' | paste -sd ' ')" "$gone" \
	"it logs each run of the job it dropped"
is "$(runs nightly)" 2 "the job keeps two runs"
is "$(runs default)" "$defaults" "other jobs are untouched"
is "$(pq -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'lead_results\_%' AND relkind = 'r'")" \
	"$(pq -c "SELECT count(*) FROM refinery.runs")" "one partition per run left, no orphan"
err=$("$REFINERY" prune --keep 1 2>&1); rc=$?
is "$rc" 2 "prune with several jobs and no --job is a usage error"
err=$("$REFINERY" prune --job default 2>&1); rc=$?
is "$rc" 2 "prune without --keep or keep_runs is a usage error"
d=$(runs default)
first=$(pq -c "SELECT string_agg(run_id::text, ' ' ORDER BY run_id) FROM (SELECT run_id FROM refinery.runs WHERE job = 'default' ORDER BY run_id DESC OFFSET 1) s")
out=$("$REFINERY" prune --job default --keep 1 2>&1); rc=$?
is "$rc" 0 "prune --job default --keep 1"
is "$(printf '%s\n' "$out" | sed -n 's/^refinery: info: job "default": dropped run \([0-9]*\) .*/\1/p' | paste -sd ' ')" "$first" \
	"it logs each run it dropped"
like "$out" "^refinery: job \"default\": dropped $((d - 1)) runs?, kept the newest 1$" "and sums up"

is "$(runs default)" 1 "job default keeps one run"
is "$(runs nightly)" 2 "job nightly is untouched"
out=$("$REFINERY" prune -c "$tmp/nightly.ini" 2>&1); rc=$?
is "$rc/$out" '0/refinery: job "nightly": nothing to drop (keeping the newest 2)' \
	"prune -c takes the job and keep_runs from the rules"

# ---- an upgrade that meets a lock gives up, changing nothing, and says why
pq -c "CREATE DATABASE locked" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d locked -f "$top_srcdir/fixtures/upgrade/0.1.0.sql" >/dev/null 2>&1
pg_hold_open reader "\\c locked
BEGIN; SELECT count(*) FROM refinery.runs;"
runs_oid=$(pq -d locked -c "SELECT 'refinery.runs'::regclass::oid")
pg_wait "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	WHERE d.datname = 'locked' AND l.relation = $runs_oid AND l.mode = 'AccessShareLock' AND l.granted" 1
ok $? "a session holds a reader's lock on the old schema's runs table"
out=$(PGOPTIONS="-c lock_timeout=200" "$REFINERY" init-db -d locked 2>&1); rc=$?
out=$(tr '\n' ' ' <<<"$out")
like "$rc/$out" "^[1-9][0-9]*/.*lock timeout.*once that is over" \
	"init-db meeting a session's lock on a table it alters fails, saying why (here after 200 ms)"
is "$(pq -d locked -c "SELECT max(version) FROM refinery.schema_migrations")" 3 "and applies nothing"
pg_hold_close reader
"$REFINERY" init-db -q -d locked
is "$?/$(pq -d locked -c "SELECT max(version) FROM refinery.schema_migrations")" "0/29" "once the lock is gone it upgrades"

# ---- upgrade from 0.1.0
pq -c "CREATE DATABASE old" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d old -f "$top_srcdir/fixtures/upgrade/0.1.0.sql" >/dev/null 2>&1
ok $? "a schema of release 0.1.0 with two runs loads"
out=$("$REFINERY" init-db -d old 2>&1); rc=$?
is "$rc" 0 "init-db upgrades it"
like "$out" 'upgraded to version 29 \(25 migrations applied\)' "by applying 004_jobs.sql to 029_rebuild_like_partition.sql"
is "$(pq -d old -c "SELECT count(*) || ':' || min(first_run) || ':' || max(changed_run) || ':' || count(fingerprint) FROM refinery.lead_state WHERE job = 'default'")" \
	"150:2:2:0" "job default's state is built from its newest run (2), fingerprints unknown"
is "$(pq -d old -c "SELECT count(*) FROM refinery.lead_state s JOIN refinery.lead_results l ON l.run_id = 2 AND l.lead_id = s.lead_id AND l.verdict = s.verdict AND l.cluster_id IS NOT DISTINCT FROM s.cluster_id AND l.rep_id IS NOT DISTINCT FROM s.rep_id")" \
	150 "with each lead's verdict, cluster and rep of that run"
is "$(pq -d old -c "SELECT string_agg(run_id || ':' || job || ':' || status, ' ' ORDER BY run_id) FROM refinery.runs")" \
	"1:default:committed 2:default:committed" "the old runs are job default"
is "$(pq -d old -c "SELECT name FROM refinery.jobs")" "default" "and job default has its row"
out=$("$REFINERY" jobs -d old); rc=$?
like "$(printf '%s\n' "$out" | sed -n 2p)" '^default +2 .* 150 +2 +300 ' "jobs lists job default with its two runs"
"$REFINERY" export -d old --csv "$tmp/old.csv"; rc=$?
is "$rc" 0 "export reads the old runs back"
is "$(head -c 8 "$tmp/old.csv")/$(pq -d old -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 2")" "run_id,l/150" \
	"the export has a header and the newest old run has its 150 leads"
is "$(($(wc -l <"$tmp/old.csv") - 1 - $(pq -d old -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 2 AND (reason LIKE '%'||chr(10)||'%' OR golden::text LIKE '%'||chr(10)||'%')")))" 150 \
	"one record per lead"
lead=$(pq -d old -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = 1 AND verdict = 'kept' ORDER BY lead_id LIMIT 1")
out=$("$REFINERY" explain --verbose -d old --run 1 "$lead"); rc=$?
is "$rc" 0 "explain reads an old run"
like "$out" '^verdict +\| kept$' "with its verdict"
like "$out" '^job +\| default$' "as job default"
PGDATABASE=old pg_load_leads "$tmp" >/dev/null
err=$("$REFINERY" run -d old -c "$tmp/plain.ini" 2>&1); rc=$?
is "$rc" 5 "a run of $N leads after 0.1.0's runs of 150 is refused by the change guard"
like "$err" "the source gave $N leads against 150 in the last committed run \(2\)" "which compares with the old run"
out=$("$REFINERY" run -d old --force -c "$tmp/plain.ini" 2>&1); rc=$?
is "$rc" 0 "a forced run on the upgraded schema commits"
unlike "$out" 'new job' "and continues job default"
like "$out" "since run 2 \(every lead rewritten\)" "comparing with the state the upgrade built (other rules: every lead rewritten)"

# ---- job names an index's name may have: the partition of job nightly has the primary key
# lead_state_nightly_pkey, the parent has lead_state_pkey; such jobs' partitions are named
# by the md5 of the job, and their first runs and full writes (a swap) work
pq -c "CREATE DATABASE names" >/dev/null
PGDATABASE=names pg_load_leads "$tmp" >/dev/null
"$REFINERY" init-db -q -d names
rules nightly_pkey crm.leads
rules pkey crm.leads
for j in nightly nightly_pkey pkey; do
	"$REFINERY" run -q -d names -c "$tmp/$j.ini"
	is "$?" 0 "job $j's first run beside the others"
done
for j in nightly_pkey nightly pkey; do
	"$REFINERY" run -q --full -d names -c "$tmp/$j.ini"
	is "$?" 0 "a full write of job $j (its partition swapped)"
done
is "$(pq -d names -c "SELECT string_agg(job || ':' || n, ' ' ORDER BY job) FROM (SELECT job, count(*) n FROM refinery.lead_state GROUP BY job) s")" \
	"nightly:$N nightly_pkey:$N pkey:$N" "each job's state holds its $N leads"
md5() { printf %s "$1" | md5sum | cut -c1-32; }
is "$(pq -d names -c "SELECT string_agg(c.relname, ' ' ORDER BY c.relname COLLATE \"C\") FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'refinery.lead_state'::regclass")" \
	"$(printf '%s\n' "lead_state_$(md5 nightly_pkey)" "lead_state_$(md5 pkey)" lead_state_nightly | LC_ALL=C sort | paste -sd' ')" \
	"nightly's partition is lead_state_nightly, the others' are named by the md5 of the job"

# ---- a cluster id once given is never given again: the job keeps the highest one
top=$(pq -d names -c "SELECT max(cluster_id) FROM refinery.lead_state WHERE job = 'pkey'")
is "$(pq -d names -c "SELECT cluster_id_high FROM refinery.jobs WHERE name = 'pkey'")" "$top" \
	"job pkey keeps the highest cluster id its runs gave ($top)"
members=$(pq -d names -c "SELECT string_agg(quote_literal(lead_id), ',') FROM refinery.lead_state WHERE job = 'pkey' AND cluster_id = $top")
# the person's rows deleted, as forget deletes them; the source still has the records
pq -d names -c "DELETE FROM refinery.lead_state WHERE job = 'pkey' AND cluster_id = $top" >/dev/null
"$REFINERY" run -q -d names -c "$tmp/pkey.ini"
is "$?" 0 "the next run of job pkey"
is "$(pq -d names -c "SELECT count(*) FILTER (WHERE cluster_id > $top) || '/' || count(*) FROM refinery.lead_state WHERE job = 'pkey' AND lead_id IN ($members)")" \
	"$(pq -d names -c "SELECT count(*) || '/' || count(*) FROM refinery.lead_state WHERE job = 'pkey' AND lead_id IN ($members)")" \
	"the records, back as new leads, form a cluster with a new id above $top, not the erased one"
is "$(pq -d names -c "SELECT cluster_id_high = (SELECT max(cluster_id) FROM refinery.lead_state WHERE job = 'pkey') AND cluster_id_high > $top FROM refinery.jobs WHERE name = 'pkey'")" t \
	"and the job's highest id rises to it"

done_testing
