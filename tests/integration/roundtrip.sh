#!/bin/bash
# tests/integration/roundtrip.sh -- the whole pipeline against a private, throwaway server:
# init-db, a run on generated leads, every row and value accounted for, dry runs, the
# lock, export/explain/report, and secrets kept out of every output.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
. "$top_srcdir/tests/lib/stages.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work; mkdir -p "$tmp"

N=3000
"$GENLEADS" --rows $N --seed 11 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
ok $? "generated leads loaded"

cat > "$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI

# init-db: creates, then is a no-op
out=$("$REFINERY" init-db 2>&1); rc=$?
is "$rc" 0 "init-db succeeds"
like "$out" 'upgraded to version [0-9]+' "init-db applies the migrations"
out=$("$REFINERY" init-db 2>&1)
like "$out" 'is up to date' "a second init-db is a no-op"
is "$(pq -c "SELECT count(*) > 0 FROM refinery.schema_migrations")" "t" "migrations are recorded"

# a migration whose applied text differs from the program's is reported, not re-run
pq -c "UPDATE refinery.schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1" >/dev/null
out=$("$REFINERY" init-db 2>&1); rc=$?
is "$rc" 0 "init-db with a changed migration still succeeds"
like "$out" 'warning: migration "001_schema.sql" differs from the one applied' "and warns, naming it"

# a run refuses a database without the schema
pq -c "CREATE DATABASE empty" >/dev/null
err=$("$REFINERY" run -c "$tmp/rules.ini" -d empty 2>&1); rc=$?
is "$rc" 5 "a run on a database without the schema fails with the data code"
like "$err" 'refinery init-db' "and says to run init-db"
# ... and one upgraded before a migration numbered below its newest (008 after 012) existed
pq -c "CREATE TABLE refinery.m8 AS SELECT * FROM refinery.schema_migrations WHERE version = 8;
       DELETE FROM refinery.schema_migrations WHERE version = 8" >/dev/null
err=$("$REFINERY" run -q --dry-run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 5 "a run on a schema lacking 008 (its newest version present) fails with the data code"
like "$err" 'lacks a migration of this program' "and says so"
like "$err" 'hint: Run "refinery init-db"' "and to run init-db"
pq -c "INSERT INTO refinery.schema_migrations SELECT * FROM refinery.m8; DROP TABLE refinery.m8" >/dev/null

# a source table that does not exist is a rules error naming the file and line;
# unquoted names fold to lower case as in SQL
printf '[source]\ntable = CRM.Leads\nnow = auto\n' > "$tmp/upper.ini"
"$REFINERY" run -q --dry-run -c "$tmp/upper.ini" >/dev/null; ok $? "CRM.Leads means crm.leads, as in SQL"
printf '[source]\ntable = crm.no_such_table\n' > "$tmp/missing.ini"
err=$("$REFINERY" run -c "$tmp/missing.ini" 2>&1); rc=$?
is "$rc" 3 "a missing source table exits with the rules code"
like "$err" 'missing.ini:2: \[source\] table: there is no table "crm"."no_such_table"' "and names file and line"

# dry run: the funnel, nothing written
out=$("$REFINERY" run --dry-run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 0 "dry run succeeds"
like "$out" 'outcome +leads +share' "dry run prints the funnel"
like "$out" "pulled +$N" "the funnel counts every lead"
like "$out" 'dry run \(rolled back\)' "dry run says it rolled back"
is "$(pq -c "SELECT count(*) FROM refinery.runs")" "0" "dry run leaves no run row"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results")" "0" "dry run leaves no results"

# the real run
out=$("$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 0 "run succeeds"
like "$out" "^refinery: run [0-9]+ committed: $N pulled, " "one summary line with the run id"
is "$(printf '%s\n' "$out" | head -n 1)" 'refinery: info: new job "default"' "the first run of a job says it is new"
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" "2" "quiet on success: that and one summary line"
run=$(pq -c "SELECT max(run_id) FROM refinery.runs")
is "$(pq -c "SELECT status FROM refinery.runs WHERE run_id = $run")" "committed" "run is committed"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $run")" "$N" \
	"one result row per pulled lead"
is "$(pq -c "SELECT count(*) FROM crm.leads l LEFT JOIN refinery.lead_results r ON r.run_id = $run AND r.lead_id = l.lead_id::text WHERE r.lead_id IS NULL")" \
	"0" "every source lead id is in the results"
is "$(pq -c "SELECT sum((counts->>v)::bigint) FROM refinery.runs, unnest(array['kept','blacklisted','duplicate','partial','outlier','nurture','customer','review']) v WHERE run_id = $run")" \
	"$N" "verdict counts add up to the pulled rows"
is "$(pq -c "SELECT rows_pulled FROM refinery.runs WHERE run_id = $run")" "$N" "rows_pulled recorded"
is "$(pq -c "SELECT length(rules_sha256) = 64 AND rules_text LIKE '%table = crm.leads%' FROM refinery.runs WHERE run_id = $run")" \
	"t" "the rule text and its SHA-256 are stored"
is "$(pq -c "SELECT count(*) FROM refinery.run_stages WHERE run_id = $run")" "$(($(stage_count) + 3))" \
	"every stage recorded, with pull and write"
is "$(pq -c "SELECT string_agg(stage, ',' ORDER BY ord) FROM refinery.run_stages WHERE run_id = $run")" \
	"pull,state,$(stage_names ','),write" "stages in pipeline order"
# every value survives the trip: the normalised phone of a known row, and a multi-line note row
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $run AND phone_type IN ('mobile', 'landline', 'voip') AND phone_norm !~ '^\+972[0-9]{8,9}$'")" \
	"0" "every stored phone is in E.164 form"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results r WHERE run_id = $run AND verdict <> 'kept' AND rule_id IS NULL")" \
	"0" "every removed lead names its rule"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $run AND verdict = 'kept' AND score IS NULL")" \
	"0" "every kept lead has a score"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $run AND score IS NOT NULL AND score <> (SELECT sum(value::numeric) FROM jsonb_each_text(points::jsonb))")" \
	"0" "every score is exactly the sum of its points"

# the summaries a DBA reads: cohorts, reps and their per-source rates, one view per question
is "$(pq -c "SELECT count(*) > 0 FROM refinery.run_cohorts WHERE run_id = $run")" "t" "cohort summaries are written"
is "$(pq -c "SELECT sum(leads) FROM refinery.run_cohorts WHERE run_id = $run")" \
	"$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $run AND cohort IS NOT NULL")" \
	"the cohort summaries count every lead given a cohort"
is "$(pq -c "SELECT count(*) FROM refinery.run_reps WHERE run_id = $run")" "$(pq -c "SELECT count(*) FROM crm.reps")" \
	"every rep has a summary row"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results r JOIN crm.reps p ON p.rep_id = r.rep_id WHERE r.run_id = $run AND NOT p.active")" \
	"0" "no lead goes to an inactive rep"
is "$(pq -c "SELECT count(*) FROM (SELECT rep_id, count(*) n FROM refinery.lead_results WHERE run_id = $run AND rep_id IS NOT NULL GROUP BY rep_id) a JOIN crm.reps p USING (rep_id) WHERE a.n > p.capacity")" \
	"0" "no rep gets more leads than capacity"
is "$(pq -c "SELECT count(*) FROM refinery.lead_explain WHERE run_id = $run")" "$N" "lead_explain has one row per lead"

# same input, same rules: byte-identical results, whatever the thread count
"$REFINERY" run -q -j 1 -c "$tmp/rules.ini" && "$REFINERY" run -q -j 2 -c "$tmp/rules.ini" && \
	"$REFINERY" run -q -j 4 -c "$tmp/rules.ini"
ok $? "runs with 1, 2 and 4 threads"
cols="lead_id, verdict, rule_id, reason, cluster_id, survivor_id, phone_norm, email_norm, score, points, temperature, persona, cohort, rep_id, call_order, p_close, channel_plan, golden"
h=$(pq -c "SELECT count(DISTINCT h) FROM (SELECT run_id, md5(string_agg(row($cols)::text, '|' ORDER BY lead_id)) h FROM refinery.lead_results GROUP BY run_id) s")
is "$h" "1" "four runs (default, 1, 2, 4 threads) have identical results"

# the lease: a second run while another session holds the job's row exits at once
# with its own code.  The holder keeps the row locked until the engine has exited,
# so an engine that waited for the lock would never exit while it is still held.
held="SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%FROM refinery.jobs%FOR UPDATE%'"
pg_hold_open run_lock "BEGIN; SELECT name FROM refinery.jobs WHERE name = 'default' FOR UPDATE;"
pg_wait "$held" 1
before=$(pq -c "SELECT count(*) FROM refinery.runs")
err=$("$REFINERY" run -c "$tmp/rules.ini" 2>&1); rc=$?
is "$rc" 6 "a concurrent run exits with the lock-held code"
like "$err" 'another run of job "default" is in progress' "and says why"
is "$(pq -c "$held")" 1 "it does not wait for the lock: it exited while the lease was still held"
is "$(pq -c "SELECT count(*) FROM refinery.runs")" "$before" "and writes nothing"
pg_hold_close run_lock

# export, explain, report
"$REFINERY" export --run "$run" --csv "$tmp/out.csv"; rc=$?
is "$rc" 0 "export succeeds"
is "$(($(wc -l < "$tmp/out.csv")))" "$(pq -c "SELECT count(*) + 1 + (SELECT count(*) FROM refinery.lead_results WHERE run_id = $run AND (reason LIKE '%'||chr(10)||'%' OR golden::text LIKE '%'||chr(10)||'%')) FROM refinery.lead_results WHERE run_id = $run")" \
	"export has a header and one record per lead"
rep=$(pq -c "SELECT rep_id FROM refinery.lead_results WHERE run_id = $run AND rep_id IS NOT NULL GROUP BY rep_id ORDER BY count(*) DESC, rep_id LIMIT 1")
"$REFINERY" export --csv "$tmp/rep.csv" --rep "$rep"; rc=$?
is "$rc" 0 "export of one rep's call list"
is "$(($(wc -l < "$tmp/rep.csv") - 1))" "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = (SELECT max(run_id) FROM refinery.runs) AND rep_id = $rep")" \
	"the rep's list has all the rep's leads"
lead=$(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = $run AND verdict = 'duplicate' LIMIT 1")
out=$("$REFINERY" explain --verbose --run "$run" "$lead"); rc=$?
is "$rc" 0 "explain succeeds"
like "$out" 'verdict +\| duplicate' "explain shows the verdict"
err=$("$REFINERY" explain --run "$run" no-such-lead 2>&1); is "$?" 5 "explain of an unknown lead fails"
out=$("$REFINERY" report --run "$run" --html "$tmp/report.html"); rc=$?
is "$rc" 0 "report succeeds"
like "$out" 'Funnel: leads per verdict' "report prints the funnel"
like "$out" 'Unmatched opt-outs' "report has a section for the opt-outs dedupe could not match"
like "$(cat "$tmp/report.html")" '<svg' "the HTML report has charts"
err=$("$REFINERY" export --run 999999 --csv "$tmp/x.csv" 2>&1); is "$?" 5 "export of an unknown run fails"
ok $([ ! -e "$tmp/x.csv" ]; echo $?) "and leaves no file"

# calibrate: fitted points from the outcomes, written as a rule file a run accepts
out=$("$REFINERY" calibrate -c "$tmp/rules.ini" -o "$tmp/fitted.ini" 2>&1); rc=$?
is "$rc" 0 "calibrate succeeds"
like "$out" 'holdout AUC 0\.[5-9][0-9]*' "calibrate reports a holdout AUC above chance"
like "$out" 'decile +leads +wins' "calibrate prints conversion by decile"
like "$(cat "$tmp/fitted.ini")" '^\[score\.source\]' "the fitted file has a [score.source] section"
"$REFINERY" check-rules "$tmp/rules.ini" "$tmp/fitted.ini" >/dev/null; ok $? "the fitted rules check"
"$REFINERY" run -q -c "$tmp/rules.ini" -c "$tmp/fitted.ini"; ok $? "a run with the fitted rules succeeds"
fitted_run=$(pq -c "SELECT max(run_id) FROM refinery.runs")
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $fitted_run AND score IS NOT NULL AND score <> (SELECT sum(value::numeric) FROM jsonb_each_text(points::jsonb))")" \
	"0" "with fitted points every score is still the sum of its points"

# the application name, and a password given in the conninfo
out=$("$REFINERY" run -c "$tmp/rules.ini" --log-format=json -d "host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres password=$PG_TEST_PASSWORD" 2>&1); rc=$?
is "$rc" 0 "a run over TCP with the password in the conninfo"
like "$out" '"event": "run"' "--log-format=json gives the summary as JSON"
"$REFINERY" run -c "$tmp/rules.ini" -d "host=127.0.0.1 port=$PGPORT user=postgres password=wrong-$PG_TEST_PASSWORD" >"$tmp/bad.out" 2>&1; rc=$?
is "$rc" 4 "a wrong password exits with the connection code"
all=$(cat "$tmp/bad.out"; echo "$out"; pq -c "SELECT rules_text || source_desc FROM refinery.runs"; pg_log)
unlike "$all" "$PG_TEST_PASSWORD" "the password appears in no output, run record or server log"
done_testing
