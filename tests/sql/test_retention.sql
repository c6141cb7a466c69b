/*
 * tests/sql/test_retention.sql
 *    drop_run() removes one run completely and leaves the others exactly as
 *    they were (same fingerprint); apply_retention(job, keep) keeps the
 *    newest `keep` committed runs of the job and everything newer, never a
 *    running run.  test_jobs.sql checks that other jobs are untouched.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(31);

-- everything stored about a run, hashed the way RELIABILITY.md checks "unchanged"
CREATE FUNCTION pg_temp.fingerprint(run bigint) RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(r::text, ',') FROM refinery.runs r WHERE r.run_id = run),
		(SELECT string_agg(l::text, ',' ORDER BY l.lead_id) FROM refinery.lead_results l WHERE l.run_id = run),
		(SELECT string_agg(s::text, ',' ORDER BY s.ord) FROM refinery.run_stages s WHERE s.run_id = run),
		(SELECT string_agg(c::text, ',' ORDER BY c.cohort) FROM refinery.run_cohorts c WHERE c.run_id = run),
		(SELECT string_agg(p::text, ',' ORDER BY p.rep_id) FROM refinery.run_reps p WHERE p.run_id = run),
		(SELECT string_agg(q::text, ',' ORDER BY q.rep_id, q.source)
		 FROM refinery.run_rep_sources q WHERE q.run_id = run)))
$$;

-- rows of a run in every table that holds them
CREATE FUNCTION pg_temp.rows_of(run bigint) RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM refinery.runs WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.lead_results WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_stages WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_cohorts WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_reps WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_rep_sources WHERE run_id = run)
$$;

-- a run made through the engine's flow, left in `final` status, with `n` leads
CREATE FUNCTION pg_temp.make_run(final text, n int, attach boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
	VALUES (repeat('e', 64), '[source]', 'table t', '0.1.0')
	RETURNING run_id INTO id;
	IF final <> 'failed' THEN
		PERFORM refinery.new_results_table(id);
		EXECUTE format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict) '
					   'SELECT %s, ''M'' || g, ''kept'' FROM generate_series(1, %s) g', id, id, n);
		IF attach THEN
			PERFORM refinery.attach_results_table(id);
		END IF;
	END IF;
	INSERT INTO refinery.run_stages (run_id, ord, stage, rows_in, rows_out, seconds)
	VALUES (id, 1, 'normalize', n, n, 0.1);
	UPDATE refinery.runs SET status = final,
		finished_at = CASE WHEN final = 'running' THEN NULL ELSE clock_timestamp() END
	WHERE run_id = id;
	RETURN id;
END $$;

SELECT pg_temp.fingerprint(2) AS fp2 \gset
SELECT is(pg_temp.rows_of(1), 14::bigint, 'run 1 has 14 rows across the tables before');

-- drop_run
SELECT is(refinery.drop_run(1), true, 'drop_run(1) reports that it dropped run 1');
SELECT is(pg_temp.rows_of(1), 0::bigint, 'no row of run 1 is left in any table');
SELECT is(to_regclass('refinery.lead_results_1'), NULL, 'run 1''s partition is gone');
SELECT partitions_are('refinery', 'lead_results', ARRAY['refinery.lead_results_2'],
					  'run 2''s partition is the only one left');
SELECT is(pg_temp.fingerprint(2), :'fp2', 'run 2 is exactly as before (same fingerprint)');
SELECT is(pg_temp.rows_of(2), 33::bigint, 'run 2 still has its 33 rows');
SELECT is(refinery.drop_run(1), false, 'dropping run 1 again reports nothing dropped');
SELECT throws_ok('SELECT refinery.drop_run(NULL)', '22004', 'run id must not be null',
				 'drop_run(NULL) is refused');

-- apply_retention
SELECT pg_temp.make_run('running', 2) AS r3 \gset
SELECT pg_temp.make_run('failed', 0) AS r4 \gset
SELECT pg_temp.make_run('committed', 3) AS r5 \gset
SELECT pg_temp.make_run('committed', 1) AS r6 \gset
SELECT pg_temp.make_run('committed', 0) AS r7 \gset

SELECT throws_ok($$SELECT refinery.apply_retention('default', 0)$$, '22023',
				 'retention must keep at least 1 run, not "0"', 'apply_retention(0) is refused');
SELECT throws_ok($$SELECT refinery.apply_retention('default', NULL)$$, '22023', NULL,
				 'apply_retention(NULL) is refused');
SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 4)), 0, 'keep 4 with 4 committed runs drops nothing');
SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 10)), 0, 'keep 10 with 4 committed runs drops nothing');
SELECT is((SELECT count(*)::int FROM refinery.runs), 6, 'all six runs are still there');

SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 2)), 3,
		  'keep 2 drops the three runs older than the 2nd newest committed one');
SELECT results_eq('SELECT run_id, status FROM refinery.runs ORDER BY run_id',
				  format($$VALUES (%s::bigint, 'running'::text), (%s, 'committed'), (%s, 'committed')$$,
						 :r3, :r6, :r7),
				  'left: the two newest committed runs and the running one');
SELECT is(pg_temp.rows_of(2) + pg_temp.rows_of(:r4) + pg_temp.rows_of(:r5), 0::bigint,
		  'nothing is left of run 2, the failed run and the older committed run');
SELECT partitions_are('refinery', 'lead_results',
					  ARRAY['refinery.lead_results_' || :r3, 'refinery.lead_results_' || :r6,
							'refinery.lead_results_' || :r7],
					  'only the partitions of the runs left remain');
SELECT is((SELECT count(*)::int FROM refinery.lead_results), 3,
		  'lead_results holds the 2 + 1 + 0 leads of the runs left');

SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 1)), 1, 'keep 1 then drops one more run');
SELECT is((SELECT array_agg(run_id ORDER BY run_id) FROM refinery.runs),
		  ARRAY[:r3, :r7]::bigint[], 'the newest committed run and the running run are left');
SELECT is((SELECT run_id FROM refinery.latest_run), :r7::bigint, 'latest_run is the newest committed run');

-- drop_run finds a partition by its bound, whatever its name
ALTER TABLE refinery.lead_results_:r3 RENAME TO renamed_results;
SELECT is(refinery.drop_run(:r3), true, 'drop_run drops a renamed partition of its run');
SELECT is(to_regclass('refinery.renamed_results'), NULL, 'the renamed partition is gone');
SELECT is(pg_temp.rows_of(:r3), 0::bigint, 'and so is the rest of that run');

-- a table made but not attached yet, in this transaction
SELECT pg_temp.make_run('running', 2, attach => false) AS r8 \gset
SELECT is(refinery.drop_run(:r8), true, 'drop_run drops a run whose table is not attached yet');
SELECT is(to_regclass('refinery.lead_results_' || :r8), NULL, 'its table is gone');

-- inside a run's own transaction, after the run is set committed
INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('f', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS r9 \gset
SELECT refinery.new_results_table(:r9) IS NOT NULL AS made \gset
INSERT INTO refinery.lead_results_:r9 (run_id, lead_id, verdict) VALUES (:r9, 'Q1', 'kept');
SELECT refinery.attach_results_table(:r9) IS NULL AS attached \gset
UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp() WHERE run_id = :r9;
SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 1)), 1, 'apply_retention(1) in the run''s transaction drops the previous run');
SELECT is((SELECT array_agg(run_id) FROM refinery.runs), ARRAY[:r9]::bigint[],
		  'only the new run is left');
SELECT is((SELECT lead_id FROM refinery.lead_results), 'Q1', 'and its results are intact');
SELECT is((SELECT run_id FROM refinery.latest_run), :r9::bigint, 'it is latest_run');

SELECT * FROM finish();
ROLLBACK;
