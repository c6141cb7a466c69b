/*
 * tests/sql/test_atomicity.sql
 *    A run is all or nothing, and readers are not blocked while it writes.
 *
 * A second session (dblink "w") plays the engine; this session plays a
 * DBA reading with lock_timeout set, so a read that would wait fails
 * instead.  Runs that are rolled back, or whose backend is killed, leave no
 * row, no table and the same latest_run; a committed run appears whole.
 * Dropping a run does block readers until its transaction ends (ACCESS
 * EXCLUSIVE on the parent), and a reader holding SHARE blocks the ATTACH
 * (the engine's lock_timeout then fails the run cleanly).  Not wrapped in
 * one transaction: the two sessions must see each other's commits.
 */
SET client_min_messages = warning;
SELECT plan(22);

SELECT count(*) = 1 AS have_dblink FROM pg_extension WHERE extname = 'dblink' \gset
\if :have_dblink

-- the whole refinery data, hashed
CREATE FUNCTION pg_temp.everything() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(r::text, ',' ORDER BY r.run_id) FROM refinery.runs r),
		(SELECT string_agg(l::text, ',' ORDER BY l.run_id, l.lead_id) FROM refinery.lead_results l),
		(SELECT string_agg(s::text, ',' ORDER BY s.run_id, s.ord) FROM refinery.run_stages s),
		(SELECT string_agg(c::text, ',' ORDER BY c.run_id, c.cohort) FROM refinery.run_cohorts c),
		(SELECT string_agg(p::text, ',' ORDER BY p.run_id, p.rep_id) FROM refinery.run_reps p),
		(SELECT string_agg(q::text, ',' ORDER BY q.run_id, q.rep_id, q.source)
		 FROM refinery.run_rep_sources q),
		(SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
		 WHERE c.relnamespace = 'refinery'::regnamespace)))
$$;

-- rows of a run anywhere, and whether its table exists
CREATE FUNCTION pg_temp.traces_of(run bigint) RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM refinery.runs WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.lead_results WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_stages WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_cohorts WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_reps WHERE run_id = run)
		 + (SELECT count(*) FROM refinery.run_rep_sources WHERE run_id = run)
		 + (SELECT count(*) FROM pg_class WHERE relname = 'lead_results_' || run)
$$;

-- in session w: begin a run and write it up to (not including) COMMIT; returns its id
CREATE FUNCTION pg_temp.write_run(leads int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
BEGIN
	PERFORM dblink_exec('w', 'BEGIN');
	PERFORM dblink_exec('w', 'SET LOCAL lock_timeout = ''3s''');
	SELECT t.run_id INTO id
	FROM dblink('w', $q$INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
					   VALUES (repeat('9', 64), '[source]', 'table t', '0.1.0') RETURNING run_id$q$)
		 AS t (run_id bigint);
	PERFORM * FROM dblink('w', format('SELECT refinery.new_results_table(%s)', id)) AS t (x text);
	PERFORM dblink_exec('w', format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict) '
									'SELECT %s, ''W'' || g, ''kept'' FROM generate_series(1, %s) g',
									id, id, leads));
	PERFORM dblink_exec('w', format('INSERT INTO refinery.run_stages VALUES (%s, 1, ''normalize'', %s, %s, 0.1, NULL)',
									id, leads, leads));
	PERFORM dblink_exec('w', format('INSERT INTO refinery.run_reps VALUES (%s, 1, ''R'', true, NULL, %s, 0, 0.1)',
									id, leads));
	PERFORM * FROM dblink('w', format('SELECT refinery.attach_results_table(%s)', id)) AS t (x text);
	PERFORM dblink_exec('w', format('UPDATE refinery.runs SET status = ''committed'', '
									'finished_at = clock_timestamp(), rows_pulled = %s, rows_kept = %s '
									'WHERE run_id = %s', leads, leads, id));
	RETURN id;
END $$;

SELECT format('host=%s port=%s dbname=%s user=%s', current_setting('unix_socket_directories'),
			  current_setting('port'), current_database(), current_user) AS conninfo \gset
SELECT dblink_connect('w', :'conninfo') = 'OK' AS connected \gset
SELECT t.pid AS wpid FROM dblink('w', 'SELECT pg_backend_pid()') AS t (pid int) \gset
SELECT pg_temp.everything() AS before \gset
SET lock_timeout = '1s';

-- 1. an open run: readers go on, and see nothing of it
SELECT pg_temp.write_run(1000) AS r1 \gset
SELECT ok(EXISTS (SELECT 1 FROM pg_locks WHERE pid = :wpid AND granted
				  AND relation = 'refinery.lead_results'::regclass AND mode = 'ShareUpdateExclusiveLock'),
		  'the writer holds ATTACH''s SHARE UPDATE EXCLUSIVE lock on lead_results');
SELECT lives_ok('SELECT count(*) FROM refinery.lead_results',
				'a reader scanning lead_results is not blocked by the attached, uncommitted run');
SELECT lives_ok('SELECT * FROM refinery.lead_explain WHERE run_id = 2 AND lead_id = ''L01''',
				'a reader using the primary key index is not blocked either');
SELECT is((SELECT count(*)::int FROM refinery.lead_results), 16,
		  'the reader sees only the 16 committed leads');
SELECT is((SELECT run_id FROM refinery.latest_run), 2::bigint, 'latest_run is still run 2');
SELECT is(pg_temp.traces_of(:r1), 0::bigint, 'no row and no table of the open run is visible');

-- 2. rolled back: no trace
SELECT is(dblink_exec('w', 'ROLLBACK'), 'ROLLBACK', 'the writer rolls the run back');
SELECT is(pg_temp.traces_of(:r1), 0::bigint, 'a rolled-back run leaves no row and no table');
SELECT is(pg_temp.everything(), :'before', 'the refinery data is exactly as before');
SELECT is((SELECT run_id FROM refinery.latest_run), 2::bigint, 'latest_run is unchanged');

-- 3. the engine dies mid-run (its backend is killed): no trace
SELECT pg_temp.write_run(10) AS r2 \gset
SELECT ok(pg_terminate_backend(:wpid, 5000), 'the writer''s backend is killed before COMMIT');
SELECT dblink_disconnect('w') = 'OK' AS gone \gset
SELECT is(pg_temp.traces_of(:r2), 0::bigint, 'a killed run leaves no row and no table');
SELECT is(pg_temp.everything(), :'before', 'the refinery data is exactly as before');

-- 4. committed: it appears whole at once
SELECT dblink_connect('w', :'conninfo') = 'OK' AS connected \gset
SELECT t.pid AS wpid FROM dblink('w', 'SELECT pg_backend_pid()') AS t (pid int) \gset
SELECT pg_temp.write_run(7) AS r3 \gset
SELECT is(pg_temp.traces_of(:r3), 0::bigint, 'before COMMIT the run is invisible');
SELECT dblink_exec('w', 'COMMIT') = 'COMMIT' AS committed \gset
SELECT is((SELECT run_id FROM refinery.latest_run), :r3::bigint, 'after COMMIT it is latest_run');
SELECT is(pg_temp.traces_of(:r3), 11::bigint,
		  'with all its rows and its table: runs 1 + leads 7 + stage 1 + rep 1 + table 1');

-- 5. dropping a run blocks readers until it commits
SELECT dblink_exec('w', 'BEGIN') = 'BEGIN' AS began \gset
SELECT t.dropped AS dropped FROM dblink('w', format('SELECT refinery.drop_run(%s)', :r3)) AS t (dropped boolean) \gset
SET lock_timeout = '200ms';
SELECT throws_ok('SELECT count(*) FROM refinery.lead_results', '55P03', NULL,
				 'while drop_run''s transaction is open, a reader of lead_results waits (here: times out)');
SELECT dblink_exec('w', 'COMMIT') = 'COMMIT' AS committed \gset
SELECT lives_ok('SELECT count(*) FROM refinery.lead_results', 'after its COMMIT readers go on');
SELECT is(pg_temp.everything(), :'before', 'with the run dropped the data is exactly as before it');

-- 6. a reader holding SHARE on lead_results: the run's ATTACH times out, nothing is left
BEGIN;
LOCK TABLE refinery.lead_results IN SHARE MODE;
SELECT dblink_exec('w', 'BEGIN') = 'BEGIN' AS began \gset
SELECT t.run_id AS r4
FROM dblink('w', $q$INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
				   VALUES (repeat('9', 64), '[source]', 'table t', '0.1.0') RETURNING run_id$q$)
	 AS t (run_id bigint) \gset
SELECT dblink_exec('w', 'SET LOCAL lock_timeout = ''200ms''') = 'SET' AS set \gset
SELECT t.x AS made FROM dblink('w', format('SELECT refinery.new_results_table(%s)', :r4)) AS t (x text) \gset
SELECT is(dblink_exec('w', format('DO $d$ BEGIN PERFORM refinery.attach_results_table(%s); END $d$', :r4),
					 false), 'ERROR',
		  'the ATTACH cannot get its lock while a reader holds SHARE');
SELECT alike(dblink_error_message('w'), '%canceling statement due to lock timeout%',
		  'and fails on lock_timeout, which the engine sets');
COMMIT;
SELECT dblink_exec('w', 'ROLLBACK') = 'ROLLBACK' AS rolled_back \gset
SELECT is(pg_temp.everything(), :'before', 'the failed run left the data exactly as before');

SELECT dblink_disconnect('w') = 'OK' AS gone \gset

\else
SELECT skip('dblink is not installed (postgresql-contrib)', 22);
\endif

SELECT * FROM finish();
