/*
 * tests/sql/test_jobs.sql
 *    Jobs (004_jobs.sql): latest_run is one row per job, the views carry
 *    the run's job, retention of one job leaves the others untouched,
 *    job_summary adds up a job's runs, and job names are checked.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

-- a committed run of `job` with `n` leads, made through the engine's flow
CREATE FUNCTION pg_temp.make_run(job text, n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO refinery.jobs (name) VALUES (job) ON CONFLICT DO NOTHING;
	INSERT INTO refinery.runs (job, rules_sha256, rules_text, source_desc, engine_version)
	VALUES (job, repeat('f', 64), '[source]', 'table t', '0.2.0')
	RETURNING run_id INTO id;
	PERFORM refinery.new_results_table(id);
	EXECUTE format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict) '
				   'SELECT %s, ''J'' || g, ''kept'' FROM generate_series(1, %s) g', id, id, n);
	PERFORM refinery.attach_results_table(id);
	UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp(),
		rows_pulled = n, rows_kept = n
	WHERE run_id = id;
	RETURN id;
END $$;

-- the fixture's runs 1 and 2 are job default; add three runs of job nightly
SELECT pg_temp.make_run('nightly', 3) AS n1 \gset
SELECT pg_temp.make_run('nightly', 4) AS n2 \gset
SELECT pg_temp.make_run('nightly', 5) AS n3 \gset

SELECT results_eq('SELECT job, run_id FROM refinery.latest_run ORDER BY job',
				  format($$VALUES ('default'::text, 2::bigint), ('nightly', %s)$$, :n3),
				  'latest_run: one row per job, its newest committed run');
SELECT is((SELECT count(*)::int FROM refinery.latest_run), 2, 'latest_run has exactly two rows');

-- every view names the run's job
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.run_funnel WHERE run_id = :n3),
		  ARRAY['nightly'], 'run_funnel: the nightly run is job nightly');
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.run_funnel WHERE run_id = 2),
		  ARRAY['default'], 'run_funnel: run 2 is job default');
SELECT is((SELECT leads FROM refinery.run_funnel WHERE run_id = :n3 AND verdict = 'pulled'),
		  5::bigint, 'run_funnel still counts the run''s leads');
SELECT is((SELECT count(*)::int FROM refinery.lead_explain WHERE job = 'nightly'), 12,
		  'lead_explain: 3 + 4 + 5 leads of job nightly');
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.rep_load WHERE run_id = 2),
		  ARRAY['default'], 'rep_load names the job');
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.cohort_summary WHERE run_id = 2),
		  ARRAY['default'], 'cohort_summary names the job');
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.stage_times WHERE run_id = 2),
		  ARRAY['default'], 'stage_times names the job');
SELECT is((SELECT array_agg(DISTINCT job) FROM refinery.source_summary WHERE run_id = :n1),
		  ARRAY['nightly'], 'source_summary names the job');

-- job_summary
SELECT results_eq('SELECT job, last_run_id, last_rows_pulled, runs, result_rows
				   FROM refinery.job_summary ORDER BY job',
				  format($$VALUES ('default'::text, 2::bigint, %s::bigint, 2::bigint, %s::bigint),
								  ('nightly', %s, 5, 3, 12)$$,
						 coalesce((SELECT rows_pulled FROM refinery.runs WHERE run_id = 2)::text, 'NULL'),
						 coalesce((SELECT sum(rows_pulled) FROM refinery.runs WHERE job = 'default')::text, 'NULL'),
						 :n3),
				  'job_summary: last run, its rows, runs kept and result rows per job');
SELECT cmp_ok((SELECT result_bytes FROM refinery.job_summary WHERE job = 'nightly'), '>', 0::bigint,
			  'job_summary: the nightly partitions take bytes');

-- retention of one job
SELECT results_eq($$SELECT refinery.apply_retention('nightly', 1)$$,
				  format('VALUES (%s::bigint), (%s::bigint)', :n1, :n2),
				  'apply_retention(nightly, 1) returns the two older nightly runs');
SELECT is((SELECT array_agg(run_id ORDER BY run_id) FROM refinery.runs WHERE job = 'nightly'),
		  ARRAY[:n3]::bigint[], 'only the newest nightly run is left');
SELECT is((SELECT array_agg(run_id ORDER BY run_id) FROM refinery.runs WHERE job = 'default'),
		  ARRAY[1, 2]::bigint[], 'both runs of job default are untouched');
SELECT is_empty($$SELECT refinery.apply_retention('nightly', 1)$$, 'a second call drops nothing');
SELECT is_empty($$SELECT refinery.apply_retention('nosuchjob', 1)$$,
				'a job with no runs drops nothing');

-- names and keys
SELECT throws_ok($$INSERT INTO refinery.jobs (name) VALUES ('two words')$$, '23514', NULL,
				 'a job name with a space is refused');
SELECT throws_ok($$INSERT INTO refinery.jobs (name) VALUES ('-x')$$, '23514', NULL,
				 'a job name starting with "-" is refused');
SELECT throws_ok($$INSERT INTO refinery.runs (job, rules_sha256, rules_text, source_desc, engine_version)
				   VALUES ('nosuchjob', repeat('a', 64), 'x', 'x', 'x')$$, '23503', NULL,
				 'a run of a job that has no row is refused');

SELECT * FROM finish();
ROLLBACK;
