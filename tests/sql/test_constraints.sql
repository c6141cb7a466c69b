/*
 * tests/sql/test_constraints.sql
 *    The CHECK, NOT NULL, key and foreign-key constraints refuse bad rows,
 *    and refuse them for the right reason.
 *
 * pg_temp.refusal(sql) runs one statement in a subtransaction and returns
 * the name of the constraint that refused it, else its SQLSTATE, or 'ok'
 * when it succeeded (undone either way), so a row that fails for another
 * reason than the one under test does not pass.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(44);

\ir refusal.sql

-- a lead row of run 2, with one column replaced: pg_temp.lead('verdict', '''lost''')
CREATE FUNCTION pg_temp.lead(col text DEFAULT NULL, val text DEFAULT NULL,
							 col2 text DEFAULT NULL, val2 text DEFAULT NULL,
							 tbl text DEFAULT 'refinery.lead_results')
RETURNS text LANGUAGE sql AS $$
	SELECT format('INSERT INTO %s (%s) VALUES (%s)', tbl,
				  string_agg(k, ', ' ORDER BY o), string_agg(v, ', ' ORDER BY o))
	FROM (SELECT o, k,
				 CASE k WHEN col THEN val WHEN col2 THEN val2 ELSE d END AS v
		  FROM (VALUES (1, 'run_id', '2'), (2, 'lead_id', '''Z1'''),
					   (3, 'source', '''google'''), (4, 'verdict', '''kept'''),
					   (5, 'rule_id', 'NULL'), (6, 'phone_norm', '''+972521110000'''),
					   (7, 'phone_type', '''mobile'''), (8, 'score', '50'),
					   (9, 'points', '''{"source": 50}'''), (10, 'temperature', '''warm'''),
					   (11, 'p_close', '0.5'), (12, 'call_order', '1'),
					   (13, 'cluster_id', 'NULL'), (14, 'survivor_id', 'NULL'),
					   (15, 'golden', 'NULL')) AS d (o, k, d)) s
$$;

-- lead_results: 22
SELECT is(pg_temp.refusal(pg_temp.lead()), 'ok', 'a well-formed lead row is accepted');
SELECT is(pg_temp.refusal(pg_temp.lead('verdict', '''lost''', 'rule_id', '''x''')), 'lead_results_verdict_check',
		  'a verdict outside the six is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('verdict', 'NULL')), '23502', 'a NULL verdict is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('lead_id', 'NULL')), '23502', 'a NULL lead id is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('phone_type', '''fax''')), 'lead_results_phone_type_check',
		  'an unknown phone type is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('score', '100.01')), 'lead_results_score_check',
		  'a score above 100 is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('score', '-0.01')), 'lead_results_score_check',
		  'a negative score is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('score', '100')), 'ok', 'a score of exactly 100 is accepted');
SELECT is(pg_temp.refusal(pg_temp.lead('p_close', '1.5')), 'lead_results_p_close_check',
		  'p_close above 1 is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('p_close', '-1')), 'lead_results_p_close_check',
		  'p_close -1 is refused (an unknown probability is NULL)');
SELECT is(pg_temp.refusal(pg_temp.lead('temperature', '''lukewarm''')),
		  'lead_results_temperature_check', 'an unknown temperature is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('points', '''[20, 30]''')), 'lead_results_points_check',
		  'points that are not a JSON object are refused');
SELECT is(pg_temp.refusal(pg_temp.lead('golden', '''"x"''')), 'lead_results_golden_check',
		  'a golden record that is not a JSON object is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('call_order', '0')), 'lead_results_call_order_check',
		  'call order 0 is refused (1 = first)');
SELECT is(pg_temp.refusal(pg_temp.lead('verdict', '''blacklisted''')),
		  'lead_results_removed_rule_check', 'a removed lead without its rule is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('verdict', '''duplicate''', 'rule_id', '''dedupe.phone''')),
		  'lead_results_duplicate_survivor_check', 'a duplicate without cluster and survivor is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('phone_norm', '''0521110000''')),
		  'lead_results_phone_norm_check', 'a mobile phone not in E.164 form is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('phone_norm', '''+97252''')), 'lead_results_phone_norm_check',
		  'a mobile phone too short for E.164 is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('phone_norm', 'NULL')), 'lead_results_phone_norm_check',
		  'a mobile phone type without the phone is refused');
SELECT is(pg_temp.refusal(pg_temp.lead('phone_type', '''invalid''', 'phone_norm', '''12''')), 'ok',
		  'an invalid phone may keep its digits in any form');
SELECT is(pg_temp.refusal(pg_temp.lead('lead_id', '''L01''')), 'lead_results_2_pkey',
		  'a lead id twice in one run is refused by the primary key');
SELECT is(pg_temp.refusal(pg_temp.lead('run_id', '999')), '23514',
		  'a row of a run with no partition is refused');

-- the partition table itself carries the same constraints: 2
SELECT is(pg_temp.refusal(pg_temp.lead('verdict', '''lost''', 'rule_id', '''x''', 'refinery.lead_results_2')),
		  'lead_results_verdict_check', 'the run''s partition refuses a bad verdict too');
SELECT is(pg_temp.refusal(pg_temp.lead('run_id', '1', tbl => 'refinery.lead_results_2')),
		  'lead_results_2_run_id_check', 'the run''s partition refuses another run''s row');

-- runs: 10
CREATE FUNCTION pg_temp.run(extra_cols text DEFAULT '', extra_vals text DEFAULT '',
							sha text DEFAULT repeat('c', 64))
RETURNS text LANGUAGE sql AS $$
	SELECT format('INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version%s) '
				  'VALUES (%L, ''[source]'', ''t'', ''0.1.0''%s)', extra_cols, sha, extra_vals)
$$;
SELECT is(pg_temp.refusal(pg_temp.run()), 'ok', 'a run with only the required columns is accepted');
SELECT is(pg_temp.refusal(pg_temp.run(', status, finished_at', ', ''done'', now()')), 'runs_status_check',
		  'an unknown run status is refused');
SELECT is(pg_temp.refusal(pg_temp.run(sha => 'abc')), 'runs_rules_sha256_check',
		  'a rules hash that is not 64 hex digits is refused');
SELECT is(pg_temp.refusal(pg_temp.run(sha => repeat('C', 64))), 'runs_rules_sha256_check',
		  'an upper-case rules hash is refused (one spelling per hash)');
SELECT is(pg_temp.refusal(pg_temp.run(', status', ', ''committed''')), 'runs_committed_finished_check',
		  'a committed run without finished_at is refused');
SELECT is(pg_temp.refusal(pg_temp.run(', status, finished_at', ', ''committed'', now()')), 'ok',
		  'a committed run with finished_at is accepted');
SELECT is(pg_temp.refusal(pg_temp.run(', rows_pulled, rows_kept', ', 5, 6')), 'runs_rows_kept_check',
		  'more rows kept than pulled is refused');
SELECT is(pg_temp.refusal(pg_temp.run(', counts', ', ''[1]''')), 'runs_counts_check',
		  'counts that are not a JSON object are refused');
SELECT is(pg_temp.refusal(pg_temp.run(', threads', ', 0')), 'runs_threads_check', 'zero threads is refused');
SELECT is(pg_temp.refusal(pg_temp.run(', run_id', ', 77')), '428C9',
		  'run_id cannot be chosen by the writer (GENERATED ALWAYS)');

-- summaries: 10
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_reps (run_id, rep_id, active, capacity, assigned)
							VALUES (2, 900, true, 2, 3)$$),
		  'ok', 'a rep holding more leads than the capacity is accepted (leads taken through the pull queue)');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_reps (run_id, rep_id, active, capacity, assigned)
							VALUES (2, 900, false, 2, 1)$$),
		  'run_reps_inactive_check', 'an inactive rep with leads is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_reps (run_id, rep_id, active, capacity, assigned)
							VALUES (2, 900, true, NULL, 1000)$$),
		  'ok', 'a rep with no capacity limit may take any number');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_reps (run_id, rep_id, active, assigned)
							VALUES (99, 900, true, 0)$$),
		  'run_reps_run_id_fkey', 'a rep summary of an unknown run is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, rate_smoothed)
							VALUES (2, 101, 'tv', 3, 4, 0.5)$$),
		  'run_rep_sources_wins_attempts_check', 'more wins than attempts is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, rate_smoothed)
							VALUES (2, 101, 'tv', 3, 1, 1.2)$$),
		  'run_rep_sources_rate_check', 'a smoothed rate above 1 is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, rate_smoothed)
							VALUES (2, 555, 'tv', 3, 1, 0.3)$$),
		  'run_rep_sources_rep_fkey', 'source history of a rep the run does not list is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, target_rate)
							VALUES (2, 'D', 4, 0, 1.5)$$),
		  'run_cohorts_target_rate_check', 'a target rate above 1 is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, score_min, score_max)
							VALUES (2, 'D', 4, 1, 60, 50)$$),
		  'run_cohorts_score_range_check', 'a cohort whose minimum exceeds its maximum is refused');
SELECT is(pg_temp.refusal($$INSERT INTO refinery.run_stages (run_id, ord, stage, rows_in, rows_out, seconds)
							VALUES (2, 8, 'dedupe', 5, 5, 0)$$),
		  'run_stages_stage_key', 'the same stage twice in one run is refused');

SELECT * FROM finish();
ROLLBACK;
