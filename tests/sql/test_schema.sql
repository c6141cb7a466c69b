/*
 * tests/sql/test_schema.sql
 *    The contract of DESIGN.md "SQL": tables, columns and their types,
 *    keys, partitioning, views and functions exist as documented.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(160);

-- 14 tables
SELECT has_table('refinery', t, 'table refinery.' || t || ' exists')
FROM unnest(ARRAY['schema_migrations', 'jobs', 'runs', 'run_stages', 'lead_results', 'run_cohorts',
				  'run_reps', 'run_rep_sources', 'forget_salt', 'suppressed', 'lead_state',
				  'lead_changes', 'outcomes', 'tenant_runs']) AS t;
SELECT columns_are('refinery', 'suppressed', ARRAY['kind', 'hash', 'forgotten_at'],
	'suppressed holds kind, hash and time only: no contact in clear');
SELECT is((SELECT length(salt) FROM refinery.forget_salt), 32, 'the migration made one 32-byte salt');

-- 8: exactly these columns, no more, no fewer
SELECT columns_are('refinery', 'jobs', ARRAY['name', 'created_at', 'holder_pid', 'holder_host',
	'holder_started_at', 'take_hours', 'tenant', 'dedupe_model', 'cluster_id_high'], 'jobs has exactly the contract columns');
SELECT columns_are('refinery', 'runs', ARRAY['run_id', 'started_at', 'finished_at', 'status',
	'rules_sha256', 'rules_text', 'rules_files', 'source_desc', 'engine_version', 'host',
	'threads', 'rows_pulled', 'rows_kept', 'seconds_total', 'counts', 'job', 'snapshot',
	'full_write', 'leads_new', 'leads_changed', 'leads_vanished', 'reverted_at', 'warnings',
	'tenant', 'dedupe_model_changed', 'dedupe_model_before'],
	'runs has exactly the contract columns');
SELECT columns_are('refinery', 'tenant_runs', ARRAY['attempt', 'job', 'tenant', 'node', 'run_id',
	'status', 'exit_code', 'message', 'started_at', 'finished_at', 'host', 'pid'],
	'tenant_runs has exactly the contract columns');
SELECT columns_are('refinery', 'run_stages', ARRAY['run_id', 'ord', 'stage', 'rows_in',
	'rows_out', 'seconds', 'counters'], 'run_stages has exactly the contract columns');
SELECT columns_are('refinery', 'lead_results', ARRAY['run_id', 'lead_id', 'source', 'verdict',
	'rule_id', 'reason', 'cluster_id', 'survivor_id', 'phone_norm', 'phone_type', 'phone_repair',
	'email_norm', 'name_norm', 'status_norm', 'score', 'points', 'temperature', 'persona',
	'cohort', 'rep_id', 'call_order', 'p_close', 'channel_plan', 'sla_due_at', 'golden'],
	'lead_results has exactly the contract columns');
SELECT columns_are('refinery', 'run_cohorts', ARRAY['run_id', 'cohort', 'ord', 'leads',
	'score_min', 'score_max', 'mean_score', 'expected_conversions', 'target_rate', 'sla_hours',
	'channel_plan'], 'run_cohorts has exactly the contract columns');
SELECT columns_are('refinery', 'run_reps', ARRAY['run_id', 'rep_id', 'rep_name', 'active',
	'capacity', 'assigned', 'expected_conversions', 'close_rate'],
	'run_reps has exactly the contract columns');
SELECT columns_are('refinery', 'run_rep_sources', ARRAY['run_id', 'rep_id', 'source',
	'attempts', 'wins', 'rate_smoothed'], 'run_rep_sources has exactly the contract columns');

-- 78 column types
SELECT col_type_is('refinery', t, c, ty, format('%s.%s is %s', t, c, ty))
FROM (VALUES
	('runs', 'run_id', 'bigint'), ('runs', 'started_at', 'timestamp with time zone'),
	('runs', 'finished_at', 'timestamp with time zone'), ('runs', 'status', 'text'),
	('runs', 'rules_sha256', 'text'), ('runs', 'rules_text', 'text'),
	('runs', 'rules_files', 'text'), ('runs', 'source_desc', 'text'),
	('runs', 'engine_version', 'text'), ('runs', 'host', 'text'), ('runs', 'threads', 'integer'),
	('runs', 'rows_pulled', 'bigint'), ('runs', 'rows_kept', 'bigint'),
	('runs', 'seconds_total', 'double precision'), ('runs', 'counts', 'jsonb'),
	('runs', 'job', 'text'), ('jobs', 'name', 'text'),
	('jobs', 'created_at', 'timestamp with time zone'), ('jobs', 'holder_pid', 'integer'),
	('jobs', 'holder_host', 'text'), ('jobs', 'holder_started_at', 'timestamp with time zone'),
	('run_stages', 'run_id', 'bigint'), ('run_stages', 'ord', 'integer'),
	('run_stages', 'stage', 'text'), ('run_stages', 'rows_in', 'bigint'),
	('run_stages', 'rows_out', 'bigint'), ('run_stages', 'seconds', 'double precision'),
	('run_stages', 'counters', 'jsonb'),
	('lead_results', 'run_id', 'bigint'), ('lead_results', 'lead_id', 'text'),
	('lead_results', 'source', 'text'), ('lead_results', 'verdict', 'text'),
	('lead_results', 'rule_id', 'text'), ('lead_results', 'reason', 'text'),
	('lead_results', 'cluster_id', 'bigint'), ('lead_results', 'survivor_id', 'text'),
	('lead_results', 'phone_norm', 'text'), ('lead_results', 'phone_type', 'text'),
	('lead_results', 'phone_repair', 'text'), ('lead_results', 'email_norm', 'text'),
	('lead_results', 'name_norm', 'text'), ('lead_results', 'status_norm', 'text'),
	('lead_results', 'score', 'numeric(5,2)'), ('lead_results', 'points', 'json'),
	('lead_results', 'temperature', 'text'), ('lead_results', 'persona', 'text'),
	('lead_results', 'cohort', 'text'), ('lead_results', 'rep_id', 'bigint'),
	('lead_results', 'call_order', 'integer'), ('lead_results', 'p_close', 'double precision'),
	('lead_results', 'channel_plan', 'text'),
	('lead_results', 'sla_due_at', 'timestamp with time zone'),
	('lead_results', 'golden', 'json'),
	('run_cohorts', 'run_id', 'bigint'), ('run_cohorts', 'cohort', 'text'),
	('run_cohorts', 'ord', 'integer'), ('run_cohorts', 'leads', 'bigint'),
	('run_cohorts', 'score_min', 'numeric(5,2)'), ('run_cohorts', 'score_max', 'numeric(5,2)'),
	('run_cohorts', 'mean_score', 'double precision'),
	('run_cohorts', 'expected_conversions', 'double precision'),
	('run_cohorts', 'target_rate', 'double precision'), ('run_cohorts', 'sla_hours', 'integer'),
	('run_cohorts', 'channel_plan', 'text'),
	('run_reps', 'run_id', 'bigint'), ('run_reps', 'rep_id', 'bigint'),
	('run_reps', 'rep_name', 'text'), ('run_reps', 'active', 'boolean'),
	('run_reps', 'capacity', 'integer'), ('run_reps', 'assigned', 'bigint'),
	('run_reps', 'expected_conversions', 'double precision'),
	('run_reps', 'close_rate', 'double precision'),
	('run_rep_sources', 'run_id', 'bigint'), ('run_rep_sources', 'rep_id', 'bigint'),
	('run_rep_sources', 'source', 'text'), ('run_rep_sources', 'attempts', 'integer'),
	('run_rep_sources', 'wins', 'integer'),
	('run_rep_sources', 'rate_smoothed', 'double precision')) AS v (t, c, ty);

-- what an [outcomes] query or csv adds to an outcome (009): 4 column types and a check
SELECT col_type_is('refinery', 'outcomes', c, ty, format('outcomes.%s is %s', c, ty))
FROM (VALUES ('duration_s', 'integer'), ('amount', 'numeric'), ('region', 'text'),
			 ('callback_at', 'timestamp with time zone')) AS v (c, ty);
SELECT throws_ok($$INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at, duration_s)
				   VALUES ('default', 'x', 1, 'won', now(), -1)$$, '23514', NULL,
				 'a negative call duration is refused');
SELECT has_index('refinery', 'lead_state', 'lead_state_unheld_idx',
				 ARRAY['p_close', 'sla_due_at', 'call_order', 'lead_id'],
				 'the pull queue''s unheld leads are indexed in next_lead''s order (a partition holds one job)');

-- 11 NOT NULL columns a reader relies on
SELECT col_not_null('refinery', t, c, format('%s.%s is NOT NULL', t, c))
FROM (VALUES ('runs', 'started_at'), ('runs', 'status'), ('runs', 'rules_sha256'),
			 ('runs', 'rules_text'), ('runs', 'source_desc'), ('runs', 'engine_version'),
			 ('lead_results', 'run_id'), ('lead_results', 'lead_id'),
			 ('lead_results', 'verdict'), ('run_reps', 'active'),
			 ('run_reps', 'assigned')) AS v (t, c);

-- 6 primary keys
SELECT col_is_pk('refinery', 'runs', ARRAY['run_id'], 'runs: primary key run_id');
SELECT col_is_pk('refinery', 'lead_results', ARRAY['run_id', 'lead_id'],
				 'lead_results: primary key (run_id, lead_id), a partitioned index');
SELECT col_is_pk('refinery', 'run_stages', ARRAY['run_id', 'ord'], 'run_stages: primary key (run_id, ord)');
SELECT col_is_pk('refinery', 'run_cohorts', ARRAY['run_id', 'cohort'],
				 'run_cohorts: primary key (run_id, cohort)');
SELECT col_is_pk('refinery', 'run_reps', ARRAY['run_id', 'rep_id'], 'run_reps: primary key (run_id, rep_id)');
SELECT col_is_pk('refinery', 'run_rep_sources', ARRAY['run_id', 'rep_id', 'source'],
				 'run_rep_sources: primary key (run_id, rep_id, source)');

-- 7 foreign keys, all ON DELETE CASCADE, none on lead_results
SELECT fk_ok('refinery', t, ARRAY['run_id'], 'refinery', 'runs', ARRAY['run_id'],
			 t || '.run_id references runs')
FROM unnest(ARRAY['run_stages', 'run_cohorts', 'run_reps', 'run_rep_sources']) AS t;
SELECT fk_ok('refinery', 'run_rep_sources', ARRAY['run_id', 'rep_id'],
			 'refinery', 'run_reps', ARRAY['run_id', 'rep_id'],
			 'run_rep_sources (run_id, rep_id) references run_reps');
SELECT fk_ok('refinery', 'runs', ARRAY['job'], 'refinery', 'jobs', ARRAY['name'],
			 'runs.job references jobs');
-- a job's runs go with drop_run (their partitions too), never by deleting the job
SELECT is((SELECT array_agg(conname::text) FROM pg_constraint
		   WHERE contype = 'f' AND connamespace = 'refinery'::regnamespace AND confdeltype <> 'c'),
		  ARRAY['outcomes_job_fkey', 'runs_job_fkey'], 'every foreign key on a run is ON DELETE CASCADE; those to jobs (runs.job, outcomes.job) are not');
SELECT is((SELECT count(*)::int FROM pg_constraint
		   WHERE contype = 'f' AND conrelid = 'refinery.lead_results'::regclass),
		  0, 'lead_results has no foreign key (ATTACH would re-check every row)');

-- 6 identity, defaults, partitioning
SELECT is((SELECT attidentity::text FROM pg_attribute
		   WHERE attrelid = 'refinery.runs'::regclass AND attname = 'run_id'),
		  'a', 'runs.run_id is GENERATED ALWAYS AS IDENTITY');
SELECT col_default_is('refinery', 'runs', 'status', 'running', 'runs.status defaults to running');
SELECT is_partitioned('refinery', 'lead_results', 'lead_results is partitioned');
SELECT is(pg_get_partkeydef('refinery.lead_results'::regclass), 'LIST (run_id)',
		  'lead_results is partitioned BY LIST (run_id)');
SELECT partitions_are('refinery', 'lead_results', ARRAY['refinery.lead_results_1', 'refinery.lead_results_2'],
					  'the fixture''s two runs are the two partitions');
SELECT results_eq('SELECT version, name FROM refinery.schema_migrations ORDER BY version',
				  $$VALUES (1, '001_schema.sql'), (2, '002_views.sql'), (3, '003_functions.sql'),
						 (4, '004_jobs.sql'), (5, '005_forget.sql'), (6, '006_state.sql'),
						 (7, '007_queue.sql'), (8, '008_review.sql'), (9, '009_outcomes_in.sql'),
						 (10, '010_feedback.sql'), (11, '011_incremental.sql'),
						 (12, '012_run_warnings.sql'), (13, '013_record_details.sql'),
						 (14, '014_results_json.sql'), (15, '015_tenants.sql'), (16, '016_dedupe_model.sql'),
						 (18, '018_state_rebuild.sql'), (19, '019_state_json.sql'),
						 (20, '020_queue_index.sql'), (21, '021_decisions_hash.sql'),
						 (22, '022_revert_model.sql'), (23, '023_revert_take.sql'),
						 (24, '024_attach_prebuilt.sql'), (25, '025_retention_order.sql'),
						 (26, '026_state_table_names.sql'), (27, '027_lease_comment.sql'), (28, '028_cluster_id_high.sql'),
						 (29, '029_rebuild_like_partition.sql')$$,
				  'every migration file is recorded in schema_migrations');

-- 11 views
SELECT has_view('refinery', v, 'view refinery.' || v || ' exists')
FROM unnest(ARRAY['latest_run', 'run_funnel', 'lead_explain', 'rep_load', 'cohort_summary',
				  'stage_times', 'source_summary', 'job_summary', 'results', 'outcome_meanings',
				  'tenant_status']) AS v;

-- 10 functions and their results
SELECT has_function('refinery', 'new_results_table', ARRAY['bigint'], 'new_results_table(bigint) exists');
SELECT function_returns('refinery', 'new_results_table', ARRAY['bigint'], 'text',
						'new_results_table returns text');
SELECT has_function('refinery', 'attach_results_table', ARRAY['bigint'], 'attach_results_table(bigint) exists');
SELECT function_returns('refinery', 'attach_results_table', ARRAY['bigint'], 'void',
						'attach_results_table returns void');
SELECT has_function('refinery', 'drop_run', ARRAY['bigint'], 'drop_run(bigint) exists');
SELECT function_returns('refinery', 'drop_run', ARRAY['bigint'], 'boolean', 'drop_run returns boolean');
SELECT has_function('refinery', 'apply_retention', ARRAY['text', 'integer'],
					'apply_retention(text, integer) exists');
SELECT function_returns('refinery', 'apply_retention', ARRAY['text', 'integer'], 'setof bigint',
						'apply_retention returns setof bigint (the runs dropped)');
SELECT has_function('refinery', 'missing_privileges', ARRAY[]::text[], 'missing_privileges() exists');
SELECT function_returns('refinery', 'missing_privileges', ARRAY[]::text[], 'setof text',
						'missing_privileges returns setof text');

SELECT * FROM finish();
ROLLBACK;
