/*
 * tests/sql/test_partition_flow.sql
 *    The write-back flow: new_results_table() makes a detached table with
 *    the run's CHECK, rows stay invisible through the parent until
 *    attach_results_table(), which builds the primary key, locks the parent
 *    only SHARE UPDATE EXCLUSIVE, and fails on a duplicate lead id naming it.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(29);

-- the SQLSTATE and detail of a failing statement, or 'ok'
CREATE FUNCTION pg_temp.failure(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	state text;
	msg text;
	detail text;
	cname text;
BEGIN
	BEGIN
		EXECUTE stmt;
		RAISE EXCEPTION USING ERRCODE = 'RFOK0';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
			detail = PG_EXCEPTION_DETAIL, cname = CONSTRAINT_NAME;
		IF state = 'RFOK0' THEN
			RETURN 'ok';
		END IF;
		RETURN concat_ws(' | ', state, nullif(cname, ''), msg, nullif(detail, ''));
	END;
END $$;

INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('d', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS run_id \gset

SELECT is(refinery.new_results_table(:run_id), 'refinery.lead_results_' || :run_id,
		  'new_results_table returns the qualified name of the run''s table');
SELECT has_table('refinery', 'lead_results_' || :run_id, 'the run''s table exists');
SELECT is((SELECT relispartition FROM pg_class WHERE oid = ('refinery.lead_results_' || :run_id)::regclass),
		  false, 'it is not a partition yet');
SELECT is((SELECT pg_get_constraintdef(oid) FROM pg_constraint
		   WHERE conrelid = ('refinery.lead_results_' || :run_id)::regclass
			 AND conname = 'lead_results_' || :run_id || '_run_id_check'),
		  'CHECK ((run_id = ' || :run_id || '))',
		  'it has CHECK (run_id = N), which lets ATTACH skip its validation scan');
SELECT is((SELECT count(*)::int FROM pg_constraint
		   WHERE conrelid = ('refinery.lead_results_' || :run_id)::regclass AND contype = 'c'),
		  (SELECT count(*)::int + 1 FROM pg_constraint
		   WHERE conrelid = 'refinery.lead_results'::regclass AND contype = 'c'),
		  'it has every CHECK of the parent plus its own');
SELECT is((SELECT count(*)::int FROM pg_index
		   WHERE indrelid = ('refinery.lead_results_' || :run_id)::regclass),
		  0, 'it has no index yet: the primary key is built once, at ATTACH');
SELECT is((SELECT relowner FROM pg_class WHERE oid = ('refinery.lead_results_' || :run_id)::regclass),
		  (SELECT relowner FROM pg_class WHERE oid = 'refinery.lead_results'::regclass),
		  'it belongs to the owner of refinery.lead_results');

INSERT INTO refinery.lead_results_:run_id (run_id, lead_id, source, verdict, rule_id, score, points)
VALUES (:run_id, 'N1', 'google', 'kept', NULL, 40, '{"source": 40}'),
	   (:run_id, 'N2', 'google', 'kept', NULL, 30, '{"source": 30}'),
	   (:run_id, 'N3', 'tv', 'partial', 'partial.no_contact', NULL, NULL);

SELECT is((SELECT count(*)::int FROM refinery.lead_results WHERE run_id = :run_id), 0,
		  'before ATTACH the rows are not in refinery.lead_results');
SELECT alike(pg_temp.failure(format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict) '
								   'VALUES (2, ''X'', ''kept'')', :run_id)),
			'23514 | lead_results_' || :run_id || '_run_id_check | %',
			'the run''s table refuses a row of another run');

SELECT pg_stat_get_xact_numscans(('refinery.lead_results_' || :run_id)::regclass) AS scans_before \gset
SELECT lives_ok(format('SELECT refinery.attach_results_table(%s)', :run_id),
				'attach_results_table attaches the run''s table');
SELECT is(pg_stat_get_xact_numscans(('refinery.lead_results_' || :run_id)::regclass) - :scans_before, 1::bigint,
		  'ATTACH read the table once, to build the primary key: the CHECK spared the validation scan');
SELECT is((SELECT relispartition FROM pg_class WHERE oid = ('refinery.lead_results_' || :run_id)::regclass),
		  true, 'it is now a partition');
SELECT is((SELECT pg_get_expr(relpartbound, oid) FROM pg_class
		   WHERE oid = ('refinery.lead_results_' || :run_id)::regclass),
		  format('FOR VALUES IN (''%s'')', :run_id), 'for the values of its run only');
SELECT is((SELECT count(*)::int FROM refinery.lead_results WHERE run_id = :run_id), 3,
		  'after ATTACH its rows are in refinery.lead_results');
SELECT is((SELECT i.inhparent::regclass::text FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid
		   WHERE x.indrelid = ('refinery.lead_results_' || :run_id)::regclass AND x.indisprimary),
		  'refinery.lead_results_pkey', 'ATTACH built its primary key as part of the parent''s');
SELECT ok((SELECT bool_or(mode = 'ShareUpdateExclusiveLock') AND NOT bool_or(mode = 'AccessExclusiveLock')
		   FROM pg_locks
		   WHERE pid = pg_backend_pid() AND locktype = 'relation'
			 AND relation = 'refinery.lead_results'::regclass),
		  'the flow locked refinery.lead_results SHARE UPDATE EXCLUSIVE, never ACCESS EXCLUSIVE');

UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp(), rows_pulled = 3,
	rows_kept = 2 WHERE run_id = :run_id;
SELECT is((SELECT run_id FROM refinery.latest_run), :run_id::bigint,
		  'inside its transaction the new run is latest_run');
SELECT results_eq(format('SELECT verdict, leads FROM refinery.run_funnel WHERE run_id = %s ORDER BY step', :run_id),
				  $$VALUES ('pulled', 3::bigint), ('partial', 1), ('kept', 2)$$,
				  'and the views read its partition');

-- a duplicate lead id fails the ATTACH and names the id (RELIABILITY F9)
INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('d', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS dup_run \gset
SELECT refinery.new_results_table(:dup_run) IS NOT NULL AS made \gset
INSERT INTO refinery.lead_results_:dup_run (run_id, lead_id, verdict)
VALUES (:dup_run, 'D1', 'kept'), (:dup_run, 'D2', 'kept'), (:dup_run, 'D1', 'kept');
SELECT alike(pg_temp.failure(format('SELECT refinery.attach_results_table(%s)', :dup_run)),
			'23505 | %(run_id, lead_id)=(' || :dup_run || ', D1) is duplicated.',
			'ATTACH with a lead id twice fails with unique_violation naming the lead id');

-- control for the scan count above: without the CHECK, ATTACH reads the table twice
INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('d', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS nocheck_run \gset
SELECT refinery.new_results_table(:nocheck_run) AS nocheck_table \gset
SELECT format('ALTER TABLE %s DROP CONSTRAINT lead_results_%s_run_id_check', :'nocheck_table', :nocheck_run) \gexec
INSERT INTO :nocheck_table (run_id, lead_id, verdict) VALUES (:nocheck_run, 'C1', 'kept');
SELECT pg_stat_get_xact_numscans(:'nocheck_table'::regclass) AS scans_before \gset
SELECT refinery.attach_results_table(:nocheck_run) IS NULL AS attached \gset
SELECT is(pg_stat_get_xact_numscans(:'nocheck_table'::regclass) - :scans_before, 2::bigint,
		  'control: without the CHECK the same ATTACH reads the table twice (validation + key)');

-- a run of no leads is a valid run
INSERT INTO refinery.runs (status, rules_sha256, rules_text, source_desc, engine_version)
VALUES ('dry_run', repeat('d', 64), '[source]', 'empty.csv', '0.1.0')
RETURNING run_id AS empty_run \gset
SELECT lives_ok(format('SELECT refinery.new_results_table(%s); SELECT refinery.attach_results_table(%s)',
					   :empty_run, :empty_run),
				'a dry run''s table, even empty, goes through the same flow');
SELECT is((SELECT count(*)::int FROM refinery.run_funnel WHERE run_id = :empty_run), 0,
		  'an empty run has no funnel rows');

-- misuse is refused with a clear message
SELECT is(pg_temp.failure('SELECT refinery.new_results_table(987654)'),
		  'P0002 | run "987654" does not exist', 'a results table for an unknown run is refused');
SELECT is(pg_temp.failure('SELECT refinery.new_results_table(2)'),
		  '55000 | run "2" is "committed", not running',
		  'a results table for a committed run is refused');
SELECT alike(pg_temp.failure(format('SELECT refinery.new_results_table(%s)', :dup_run)),
			'42P07 | %already exists', 'a second results table for one run is refused');
SELECT is(pg_temp.failure('SELECT refinery.attach_results_table(987654)'),
		  '42P01 | results table of run "987654" does not exist',
		  'attaching a table that was never made is refused');
SELECT alike(pg_temp.failure(format('SELECT refinery.attach_results_table(%s)', :run_id)),
			'42809 | %is already a partition',
			'attaching a run twice is refused');

-- the CREATE ... (LIKE ...) + ATTACH form the engine may also issue by hand
INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('d', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS raw_run \gset
SELECT lives_ok(format('CREATE TABLE refinery.lead_results_%1$s (LIKE refinery.lead_results '
					   'INCLUDING DEFAULTS INCLUDING CONSTRAINTS); '
					   'ALTER TABLE refinery.lead_results_%1$s ADD CHECK (run_id = %1$s); '
					   'INSERT INTO refinery.lead_results_%1$s (run_id, lead_id, verdict) '
					   'VALUES (%1$s, ''R1'', ''kept''); '
					   'ALTER TABLE refinery.lead_results ATTACH PARTITION refinery.lead_results_%1$s '
					   'FOR VALUES IN (%1$s)', :raw_run),
				'the plain SQL form CREATE TABLE (LIKE parent) + ATTACH works on the partitioned parent');
SELECT is((SELECT lead_id FROM refinery.lead_results WHERE run_id = :raw_run), 'R1',
		  'and its row reads through the parent');

SELECT * FROM finish();
ROLLBACK;
