/*
 * tests/sql/test_privileges.sql
 *    What roles need: a member of the schema owner's role can make runs and
 *    apply retention; a reporting role with SELECT can read every view but
 *    not write, and missing_privileges() names exactly what it lacks.
 *
 * Roles are created inside the test's transaction and vanish with it.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(25);

CREATE ROLE rf_owner NOLOGIN;
CREATE ROLE rf_run NOLOGIN IN ROLE rf_owner;
CREATE ROLE rf_reader NOLOGIN;
CREATE ROLE rf_nobody NOLOGIN;

-- as if `refinery init-db` had been run by rf_owner
DO $$
DECLARE
	obj record;
BEGIN
	EXECUTE 'ALTER SCHEMA refinery OWNER TO rf_owner';
	FOR obj IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
			   WHERE c.relnamespace = 'refinery'::regnamespace AND c.relkind IN ('r', 'p', 'v')
				 AND NOT c.relispartition
	LOOP
		EXECUTE format('ALTER %s %s OWNER TO rf_owner',
					   CASE obj.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, obj.name);
	END LOOP;
END $$;
GRANT USAGE ON SCHEMA refinery TO rf_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA refinery TO rf_reader;

-- the engine's flow as one function, run as the current role
CREATE FUNCTION pg_temp.flow() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
	VALUES (repeat('7', 64), '[source]', 'table t', '0.1.0') RETURNING run_id INTO id;
	PERFORM refinery.new_results_table(id);
	EXECUTE format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict) VALUES (%s, ''P1'', ''kept'')', id, id);
	INSERT INTO refinery.run_stages VALUES (id, 1, 'normalize', 1, 1, 0.1, NULL);
	INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads) VALUES (id, 'A', 1, 1);
	INSERT INTO refinery.run_reps (run_id, rep_id, active, assigned) VALUES (id, 1, true, 1);
	INSERT INTO refinery.run_rep_sources VALUES (id, 1, 'tv', 1, 1, 0.5);
	PERFORM refinery.attach_results_table(id);
	UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp() WHERE run_id = id;
	RETURN id;
END $$;

-- a member of the owner's role: 6
SET LOCAL ROLE rf_run;
SELECT is_empty('SELECT * FROM refinery.missing_privileges()',
				'missing_privileges() is empty for a member of the owner''s role');
SELECT pg_temp.flow() AS run_id \gset
SELECT is((SELECT run_id FROM refinery.latest_run), :run_id::bigint,
		  'a member of the owner''s role makes a whole run');
SELECT is((SELECT relowner::regrole::text FROM pg_class WHERE oid = ('refinery.lead_results_' || :run_id)::regclass),
		  'rf_owner', 'its results table belongs to the owner''s role, not to the member');
SELECT is(refinery.drop_run(2), true, 'a member drops a run made by another role (retention)');
SELECT is((SELECT count(*)::int FROM refinery.apply_retention('default', 1)), 1, 'and applies retention');
SELECT is((SELECT array_agg(run_id) FROM refinery.runs), ARRAY[:run_id]::bigint[],
		  'only the member''s run is left');
RESET ROLE;

-- a reporting role: 8
SET LOCAL ROLE rf_reader;
SELECT results_eq('SELECT * FROM refinery.missing_privileges()',
				  $$VALUES ('CREATE on schema refinery'),
						   ('membership in role rf_owner, the owner of refinery.lead_results (attaching and dropping partitions needs it)'),
						   ('INSERT on refinery.runs'), ('UPDATE on refinery.runs'), ('DELETE on refinery.runs'),
						   ('INSERT on refinery.run_stages'), ('INSERT on refinery.run_cohorts'),
						   ('INSERT on refinery.run_reps'), ('INSERT on refinery.run_rep_sources'),
						   ('INSERT on refinery.jobs'), ('UPDATE on refinery.jobs'),
						   ('INSERT on refinery.lead_state'), ('UPDATE on refinery.lead_state'),
						   ('DELETE on refinery.lead_state'), ('INSERT on refinery.lead_changes')$$,
				  'missing_privileges() names each privilege a reporting role lacks');
SELECT lives_ok('SELECT * FROM refinery.' || v, 'a reporting role reads ' || v)
FROM unnest(ARRAY['latest_run', 'run_funnel', 'lead_explain', 'rep_load', 'cohort_summary',
				  'stage_times', 'source_summary']) AS v;
RESET ROLE;

-- a role without USAGE on the schema: 1
SET LOCAL ROLE rf_nobody;
SELECT throws_ok('SELECT * FROM refinery.missing_privileges()', '42501',
				 'permission denied for schema refinery',
				 'a role without USAGE gets an error naming the schema');
RESET ROLE;

-- a read-only transaction (e.g. a standby or default_transaction_read_only): 2
SET LOCAL transaction_read_only = on;
SELECT is((SELECT * FROM refinery.missing_privileges() LIMIT 1),
		  'a read-write transaction (this one is read-only)',
		  'missing_privileges() first names the read-only transaction');
SELECT throws_ok($$INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
				   VALUES (repeat('7', 64), '', 't', '0')$$, '25006', NULL,
				 'and indeed nothing can be written');

-- the pull queue: 8
SELECT function_privs_are('refinery', 'next_lead', ARRAY['text', 'bigint', 'text'], 'refinery_dialer',
						  ARRAY['EXECUTE'], 'refinery_dialer may execute next_lead');
SELECT function_privs_are('refinery', 'record_outcome',
						  ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone', 'text', 'integer',
							'numeric', 'text', 'timestamp with time zone'],
						  'refinery_dialer', ARRAY['EXECUTE'], 'refinery_dialer may execute record_outcome');
SELECT is(has_function_privilege('rf_reader', 'refinery.next_lead(text, bigint, text)', 'EXECUTE'),
		  false, 'a role outside refinery_dialer may not execute next_lead (not granted to PUBLIC)');
SELECT is(has_function_privilege('rf_reader',
								  'refinery.record_outcome(text, text, bigint, text, timestamptz, text, integer, numeric, text, timestamptz)',
								  'EXECUTE'),
		  false, 'nor record_outcome');
SELECT is_definer('refinery', 'next_lead', ARRAY['text', 'bigint', 'text'],
				  'next_lead runs with its owner''s rights');
SELECT is_definer('refinery', 'record_outcome',
				  ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone', 'text', 'integer',
							'numeric', 'text', 'timestamp with time zone'],
				  'record_outcome runs with its owner''s rights');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'refinery.next_lead(text, bigint, text)'::regprocedure),
		  ARRAY['search_path=pg_catalog, pg_temp'], 'next_lead pins its search_path');
SELECT is(has_table_privilege('refinery_dialer', 'refinery.lead_state', 'SELECT'), false,
		  'refinery_dialer reads no table directly');

SELECT * FROM finish();
ROLLBACK;
