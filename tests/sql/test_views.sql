/*
 * tests/sql/test_views.sql
 *    Every view's answer on the fixture runs, against values worked out by
 *    hand from tests/sql/fixture_run.sql, and "WHERE run_id = N" pruning
 *    lead_results to that run's partition.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(30);

-- latest_run: 3
SELECT is((SELECT count(*)::int FROM refinery.latest_run), 1, 'latest_run has one row');
SELECT row_eq($$SELECT run_id, status, rules_sha256, rules_files, rows_pulled, rows_kept,
					   seconds_total, (counts ->> 'blacklisted')::int, finished_at
				FROM refinery.latest_run$$,
			  ROW(2::bigint, 'committed'::text, repeat('b', 64), E'rules/default.ini\nrules/reactivation.ini'::text,
				  12::bigint, 5::bigint, 4.0::float8, 3, '2024-03-02 02:00:04+00'::timestamptz),
			  'latest_run is run 2, the newest committed run');
INSERT INTO refinery.runs (status, finished_at, rules_sha256, rules_text, source_desc, engine_version)
VALUES ('failed', now(), repeat('0', 64), '', 'table t', '0.1.0');
SELECT is((SELECT run_id FROM refinery.latest_run), 2::bigint,
		  'a newer failed run does not become latest_run');

-- run_funnel: 4
SELECT results_eq($$SELECT step, verdict, rule_id, leads, pct_of_pulled, example_reason
					FROM refinery.run_funnel WHERE run_id = 2 ORDER BY step, leads DESC, rule_id$$,
				  $$VALUES (0, 'pulled', NULL, 12::bigint, 100.00, NULL),
						   (1, 'blacklisted', 'blacklist.optout', 2, 16.67, 'notes say "do not call"'),
						   (1, 'blacklisted', 'blacklist.status', 1, 8.33, 'status "wrong number"'),
						   (2, 'duplicate', 'dedupe.phone', 1, 8.33, 'same phone as L01'),
						   (3, 'partial', 'partial.no_contact', 1, 8.33, 'no usable phone or e-mail'),
						   (4, 'outlier', 'outlier.future_date', 1, 8.33,
							'created_at "2031-01-01" is in the future'),
						   (5, 'nurture', 'nurture.low_score', 1, 8.33, 'score 8.00 is below 10'),
						   (6, 'kept', NULL, 5, 41.67, NULL)$$,
				  'run_funnel of run 2: where its 12 leads went, rule by rule');
SELECT results_eq($$SELECT verdict, rule_id, leads, pct_of_pulled
					FROM refinery.run_funnel WHERE run_id = 1 ORDER BY step$$,
				  $$VALUES ('pulled', NULL, 4::bigint, 100.00),
						   ('blacklisted', 'blacklist.status', 1, 25.00),
						   ('duplicate', 'dedupe.phone', 1, 25.00),
						   ('kept', NULL, 2, 50.00)$$,
				  'run_funnel of run 1 holds only run 1''s leads');
SELECT is_empty($$SELECT f.run_id FROM refinery.run_funnel f JOIN refinery.runs r USING (run_id)
				  GROUP BY f.run_id, r.rows_pulled
				  HAVING sum(f.leads) FILTER (WHERE f.step > 0) <> r.rows_pulled
					  OR max(f.leads) FILTER (WHERE f.step = 0) <> r.rows_pulled$$,
				'in every run the verdict rows add up to the pulled row and to runs.rows_pulled');
SELECT is((SELECT sum(leads)::int FROM refinery.run_funnel WHERE run_id = 2 AND verdict = 'blacklisted'),
		  (SELECT (counts ->> 'blacklisted')::int FROM refinery.runs WHERE run_id = 2),
		  'the funnel agrees with runs.counts');

-- lead_explain: 7
SELECT row_eq($$SELECT verdict, cluster_id, survivor_id, score, temperature,
					   points_source, points_created_at, points_status, points_last_touch_at,
					   points_touch_count, points_last_touch_type, points_notes, points_automation,
					   points_total, persona, cohort, rep_id, rep_name, call_order, p_close,
					   rep_close_rate, rep_source_rate, rep_source_attempts, rep_source_wins,
					   golden ->> 'touch_count'
				FROM refinery.lead_explain WHERE run_id = 2 AND lead_id = 'L01'$$,
			  ROW('kept'::text, 1::bigint, 'L01'::text, 87.50::numeric(5,2), 'hot'::text,
				  20::numeric, 10.5::numeric, 15::numeric, 12::numeric, 10::numeric, 8::numeric,
				  7::numeric, 5::numeric, 87.5::numeric, 'smb'::text, 'A'::text, 101::bigint,
				  'Dana Levi'::text, 1, 0.42::float8, 0.25::float8, 0.29::float8, 40, 12, '5'::text),
			  'lead_explain of L01 in run 2: every parameter''s points, the rep and its rate for facebook');
SELECT results_eq($$SELECT lead_id, rep_id, rep_source_rate FROM refinery.lead_explain
					WHERE run_id = 2 AND verdict = 'kept' ORDER BY lead_id$$,
				  $$VALUES ('L01', 101::bigint, 0.29::float8), ('L03', 102, 0.19), ('L04', 101, 0.29),
						   ('L05', 102, 0.42), ('L06', 103, NULL)$$,
				  'each kept lead shows its rep''s smoothed rate for the lead''s own source (none for L06)');
SELECT row_eq($$SELECT rule_id, reason, cluster_id, survivor_id, score, points_total, rep_id, rep_name
				FROM refinery.lead_explain WHERE run_id = 2 AND lead_id = 'L09'$$,
			  ROW('blacklist.optout'::text, 'same person as L08, who opted out'::text, 2::bigint,
				  'L08'::text, NULL::numeric(5,2), NULL::numeric, NULL::bigint, NULL::text),
			  'lead_explain of L09: the opt-out of its cluster''s other record removed it');
SELECT row_eq($$SELECT score, rep_source_rate, rep_close_rate FROM refinery.lead_explain
				WHERE run_id = 1 AND lead_id = 'L01'$$,
			  ROW(70.00::numeric(5,2), 0.29::float8, 0.25::float8),
			  'the same lead id in run 1 is explained from run 1''s own rows');
SELECT is((SELECT count(*)::int FROM refinery.lead_explain), 16,
		  'lead_explain has one row per lead per run (4 + 12)');
SELECT is_empty($$SELECT lead_id FROM refinery.lead_explain
				  WHERE score IS DISTINCT FROM points_total::numeric(5,2)$$,
				'every lead''s points add up to its score');
SELECT is((SELECT points_total FROM refinery.lead_explain WHERE run_id = 2 AND lead_id = 'L06'), 22.1,
		  'decimal points add up exactly (2 + 3.1 + 4 + 3 + 4 + 2 + 2 + 2 = 22.1)');

-- rep_load: 2
SELECT results_eq($$SELECT rep_id, rep_name, active, capacity, assigned, round(utilisation::numeric, 4),
						   expected_conversions, target_conversions, close_rate,
						   round(expected_rate::numeric, 4)
					FROM refinery.rep_load WHERE run_id = 2 ORDER BY rep_id$$,
				  $$VALUES (101::bigint, 'Dana Levi', true, 3, 2::bigint, 0.6667, 0.57::float8, 0.45, 0.25::float8, 0.2850),
						   (102, 'Yossi Cohen', true, 2, 2, 1.0000, 0.58, 0.45, 0.2, 0.2900),
						   (103, 'Maya Katz', true, 4, 1, 0.2500, 0.05, 0.05, 0.1, 0.0500),
						   (104, 'Avi Mizrahi', false, 5, 0, 0.0000, 0, 0, 0.3, NULL)$$,
				  'rep_load of run 2: load, expected conversions and the target from the leads'' cohorts');
SELECT is_empty($$SELECT r.run_id, r.rep_id FROM refinery.run_reps r
				  WHERE r.assigned <> (SELECT count(*) FROM refinery.lead_results l
									   WHERE l.run_id = r.run_id AND l.rep_id = r.rep_id)$$,
				'the fixture is consistent: each rep''s assigned count matches its leads');

-- cohort_summary: 1
SELECT results_eq($$SELECT ord, cohort, leads, pct_of_leads, score_min, score_max, mean_score, sla_hours,
						   channel_plan, target_conversions, expected_conversions,
						   round(expected_rate::numeric, 4), expected_vs_target
					FROM refinery.cohort_summary WHERE run_id = 2 ORDER BY ord$$,
				  $$VALUES (1, 'A', 2::bigint, 40.00, 87.50::numeric(5,2), 91.00::numeric(5,2), 89.25::float8, 24,
							'call+sms', 0.60, 0.80::float8, 0.4000, 0.20),
						   (2, 'B', 2, 40.00, 55.00, 64.25, 59.625, 48, 'call+email', 0.30, 0.35, 0.1750, 0.05),
						   (3, 'C', 1, 20.00, 22.10, 22.10, 22.1, 168, 'email', 0.05, 0.05, 0.0500, 0.00)$$,
				  'cohort_summary of run 2: sizes, targets and expected conversions');

-- stage_times: 2
SELECT results_eq($$SELECT ord, stage, rows_removed, seconds, pct_of_run, round(rows_per_second::numeric, 2)
					FROM refinery.stage_times WHERE run_id = 2 ORDER BY ord$$,
				  $$VALUES (1, 'normalize', 0::bigint, 0.5::float8, 12.5, 24.00),
						   (2, 'blacklist', 3, 0.25, 6.3, 48.00),
						   (3, 'dedupe', 1, 1.0, 25.0, 9.00),
						   (4, 'partial', 2, 0.25, 6.3, 32.00),
						   (5, 'score', 1, 0.5, 12.5, 12.00),
						   (6, 'cohorts', 0, 0.125, 3.1, 40.00),
						   (7, 'match', 0, 0.375, 9.4, 13.33)$$,
				  'stage_times of run 2: removals, share of the run and throughput');
SELECT is((SELECT counters FROM refinery.stage_times WHERE run_id = 2 AND stage = 'blacklist'),
		  '{"blacklist.status": 1, "blacklist.optout": 2}'::jsonb, 'stage_times carries the stage''s counters');

-- source_summary: 2
SELECT results_eq($$SELECT source, pulled, kept, blacklisted, duplicate, partial, outlier, nurture,
						   invalid_phones, pct_kept, mean_score_kept, expected_conversions
					FROM refinery.source_summary WHERE run_id = 2 ORDER BY source$$,
				  $$VALUES ('facebook', 4::bigint, 2::bigint, 0::bigint, 1::bigint, 0::bigint, 1::bigint, 0::bigint, 0::bigint, 50.00, 71.25, 0.57),
						   ('google', 3, 1, 1, 0, 1, 0, 0, 1, 33.33, 64.25, 0.20),
						   ('list', 3, 1, 2, 0, 0, 0, 0, 0, 33.33, 22.10, 0.05),
						   ('referral', 2, 1, 0, 0, 0, 0, 1, 0, 50.00, 91.00, 0.38)$$,
				  'source_summary of run 2: each source''s leads by verdict');
SELECT is((SELECT sum(pulled)::int FROM refinery.source_summary WHERE run_id = 2), 12,
		  'the sources add up to the 12 pulled leads');

-- WHERE run_id = N reads only that run's partition: 5
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	res text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		res := res || line || E'\n';
	END LOOP;
	RETURN res;
END $$;
SELECT ok(pg_temp.plan_of('SELECT * FROM refinery.' || v || ' WHERE run_id = 2') ~ 'lead_results_2'
		  AND pg_temp.plan_of('SELECT * FROM refinery.' || v || ' WHERE run_id = 2') !~ 'lead_results_1',
		  v || ' WHERE run_id = 2 scans run 2''s partition only')
FROM unnest(ARRAY['run_funnel', 'lead_explain', 'rep_load', 'source_summary']) AS v;
SELECT ok(pg_temp.plan_of($$SELECT * FROM refinery.lead_explain WHERE run_id = 2 AND lead_id = 'L01'$$)
		  !~ 'lead_results_1',
		  'lead_explain for one lead reads one partition');

-- the verdict review (008_review.sql): 4
INSERT INTO refinery.lead_results (run_id, lead_id, source, verdict, rule_id, reason, name_norm,
								   phone_norm, phone_type, email_norm)
VALUES (2, 'R1', 'list', 'review', 'dedupe.optout_review',
		'may be the person who opted out on lead R0: same name; same city; match probability 0.332',
		'moshe levi', '+972501112223', 'mobile', NULL),
	   (2, 'R0', 'list', 'blacklisted', 'blacklist.optout_notes', 'opt-out in the notes',
		'moshe levi', NULL, NULL, 'moshe@example.com');
SELECT row_eq($$SELECT lead_id, name_norm, phone_norm, optout_lead_id, optout_name_norm,
					   optout_email_norm, optout_rule_id, optout_reason, match_probability, job
				FROM refinery.review_leads WHERE run_id = 2$$,
			  ROW('R1'::text, 'moshe levi'::text, '+972501112223'::text, 'R0'::text,
				  'moshe levi'::text, 'moshe@example.com'::text, 'blacklist.optout_notes'::text,
				  'opt-out in the notes'::text, 0.332::float8, 'default'::text),
			  'review_leads puts the held lead beside the opt-out its reason names');
SELECT row_eq($$SELECT step, leads::int FROM refinery.run_funnel WHERE run_id = 2 AND verdict = 'review'$$,
			  ROW(8, 1), 'run_funnel counts review as step 8');
SELECT throws_ok($$INSERT INTO refinery.lead_results (run_id, lead_id, verdict) VALUES (2, 'R2', 'review')$$,
				 '23514', NULL, 'a lead in review names its rule (lead_results_removed_rule_check)');
SELECT throws_ok($$INSERT INTO refinery.lead_results (run_id, lead_id, verdict, rule_id)
				   VALUES (2, 'R3', 'reviewed', 'x')$$,
				 '23514', NULL, 'an unknown verdict is still refused');

SELECT * FROM finish();
ROLLBACK;
