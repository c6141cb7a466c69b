/*
 * tests/sql/fixture_run.sql
 *    Two committed runs written the way the engine writes one, for the
 *    pgTAP tests of tests/sql.
 *
 * Each run is one transaction: the runs row (status running), its results
 * table from refinery.new_results_table(), the rows (INSERT here, COPY in
 * the engine), the summaries, refinery.attach_results_table(), then status
 * committed.  Run 1 has 4 leads; run 2 has 12 covering every verdict, two
 * clusters, points that add up to the score, three cohorts and four reps
 * (one inactive).  The expected view values in test_views.sql were worked
 * out by hand from these rows; change both together.
 */

/*
 * Every hand-written run of these tests belongs to job "default" (the
 * engine always names its job; the default here only spares each test
 * file from repeating it).  test_jobs.sql makes runs of other jobs.
 */
INSERT INTO refinery.jobs (name, created_at) VALUES ('default', '2024-03-01 02:00:00+00');
ALTER TABLE refinery.runs ALTER COLUMN job SET DEFAULT 'default';

/* ---------------------------------------------------------------- run 1 */
BEGIN;
INSERT INTO refinery.runs (started_at, rules_sha256, rules_text, rules_files, source_desc,
						   engine_version, host, threads)
VALUES ('2024-03-01 02:00:00+00', repeat('a', 64), E'[source]\ntable = crm.leads\n',
		'rules/default.ini', 'table crm.leads', '0.1.0', 'db1', 2)
RETURNING run_id AS run_id \gset
SELECT refinery.new_results_table(:run_id) AS results \gset

INSERT INTO :results (run_id, lead_id, source, verdict, rule_id, reason, cluster_id, survivor_id,
					  phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm,
					  score, points, temperature, persona, cohort, rep_id, call_order, p_close,
					  channel_plan, sla_due_at, golden)
VALUES
(:run_id, 'L01', 'facebook', 'kept', NULL, NULL, 1, 'L01',
 '+972521234567', 'mobile', NULL, 'dana@example.com', 'dana levi', 'callback',
 70.00, '{"source": 20, "created_at": 10, "status": 10, "last_touch_at": 10, "touch_count": 5, "last_touch_type": 5, "notes": 5, "automation": 5}',
 'warm', 'smb', 'A', 101, 1, 0.3, 'call+sms', '2024-03-02 02:00:00+00',
 '{"touch_count": 4, "first_created_at": "2023-01-10"}'),
(:run_id, 'L02', 'facebook', 'duplicate', 'dedupe.phone', 'same phone as L01', 1, 'L01',
 '+972521234567', 'mobile', NULL, NULL, 'dana levy', 'no answer',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L03', 'google', 'kept', NULL, NULL, NULL, NULL,
 '+97236123456', 'landline', 'area code 3 -> 03', NULL, 'אבי כהן', 'not now',
 40.00, '{"source": 10, "created_at": 5, "status": 5, "last_touch_at": 5, "touch_count": 5, "last_touch_type": 5, "notes": 5, "automation": 0}',
 'cold', 'smb', 'B', 102, 1, 0.1, 'call+email', '2024-03-03 02:00:00+00', NULL),
(:run_id, 'L07', 'google', 'blacklisted', 'blacklist.status', 'status "wrong number"', NULL, NULL,
 '+972501234567', 'mobile', NULL, NULL, 'moshe', 'wrong number',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

INSERT INTO refinery.run_stages (run_id, ord, stage, rows_in, rows_out, seconds, counters)
VALUES (:run_id, 1, 'normalize', 4, 4, 0.1, '{}'),
	   (:run_id, 2, 'blacklist', 4, 3, 0.1, '{"blacklist.status": 1}'),
	   (:run_id, 3, 'dedupe', 3, 2, 0.2, '{"dedupe.phone": 1}');
INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, score_min, score_max, mean_score,
								  expected_conversions, target_rate, sla_hours, channel_plan)
VALUES (:run_id, 'A', 1, 1, 70.00, 70.00, 70, 0.3, 0.3, 24, 'call+sms'),
	   (:run_id, 'B', 2, 1, 40.00, 40.00, 40, 0.1, 0.15, 48, 'call+email');
INSERT INTO refinery.run_reps (run_id, rep_id, rep_name, active, capacity, assigned,
							   expected_conversions, close_rate)
VALUES (:run_id, 101, 'Dana Levi', true, 3, 1, 0.3, 0.25),
	   (:run_id, 102, 'Yossi Cohen', true, 2, 1, 0.1, 0.2);
INSERT INTO refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, rate_smoothed)
VALUES (:run_id, 101, 'facebook', 40, 12, 0.29),
	   (:run_id, 102, 'google', 50, 9, 0.19);

SELECT refinery.attach_results_table(:run_id);
UPDATE refinery.runs
SET status = 'committed', finished_at = '2024-03-01 02:00:01+00', rows_pulled = 4,
	rows_kept = 2, seconds_total = 1.0,
	counts = '{"kept": 2, "blacklisted": 1, "duplicate": 1, "partial": 0, "outlier": 0, "nurture": 0}'
WHERE run_id = :run_id;
COMMIT;

/* ---------------------------------------------------------------- run 2 */
BEGIN;
INSERT INTO refinery.runs (started_at, rules_sha256, rules_text, rules_files, source_desc,
						   engine_version, host, threads)
VALUES ('2024-03-02 02:00:00+00', repeat('b', 64), E'[source]\ntable = crm.leads\n[cohort.A]\n',
		E'rules/default.ini\nrules/reactivation.ini', 'table crm.leads', '0.1.0', 'db1', 2)
RETURNING run_id AS run_id \gset
SELECT refinery.new_results_table(:run_id) AS results \gset

INSERT INTO :results (run_id, lead_id, source, verdict, rule_id, reason, cluster_id, survivor_id,
					  phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm,
					  score, points, temperature, persona, cohort, rep_id, call_order, p_close,
					  channel_plan, sla_due_at, golden)
VALUES
(:run_id, 'L01', 'facebook', 'kept', NULL, NULL, 1, 'L01',
 '+972521234567', 'mobile', NULL, 'dana@example.com', 'dana levi', 'callback',
 87.50, '{"source": 20, "created_at": 10.5, "status": 15, "last_touch_at": 12, "touch_count": 10, "last_touch_type": 8, "notes": 7, "automation": 5}',
 'hot', 'smb', 'A', 101, 1, 0.42, 'call+sms', '2024-03-03 02:00:00+00',
 '{"touch_count": 5, "first_created_at": "2023-01-10", "status": "callback"}'),
(:run_id, 'L02', 'facebook', 'duplicate', 'dedupe.phone', 'same phone as L01', 1, 'L01',
 '+972521234567', 'mobile', NULL, NULL, 'dana levy', 'no answer',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L03', 'google', 'kept', NULL, NULL, NULL, NULL,
 '+97236123456', 'landline', 'area code 3 -> 03', NULL, 'אבי כהן', 'not now',
 64.25, '{"source": 12, "created_at": 8.25, "status": 10, "last_touch_at": 10, "touch_count": 9, "last_touch_type": 6, "notes": 5, "automation": 4}',
 'warm', 'smb', 'B', 102, 2, 0.20, 'call+email', '2024-03-04 02:00:00+00', NULL),
(:run_id, 'L04', 'facebook', 'kept', NULL, NULL, NULL, NULL,
 '+972541112233', 'mobile', NULL, 'ruth@example.org', 'ruth peretz', 'interested',
 55.00, '{"source": 20, "created_at": 5, "status": 8, "last_touch_at": 6, "touch_count": 6, "last_touch_type": 4, "notes": 4, "automation": 2}',
 'warm', 'enterprise', 'B', 101, 2, 0.15, 'call+sms', '2024-03-04 02:00:00+00', NULL),
(:run_id, 'L05', 'referral', 'kept', NULL, NULL, NULL, NULL,
 '+972771234567', 'voip', NULL, 'noa@example.com', 'noa ben david', 'callback',
 91.00, '{"source": 25, "created_at": 12, "status": 14, "last_touch_at": 12, "touch_count": 10, "last_touch_type": 8, "notes": 6, "automation": 4}',
 'hot', 'smb', 'A', 102, 1, 0.38, 'call+sms', '2024-03-03 02:00:00+00', NULL),
(:run_id, 'L06', 'list', 'kept', NULL, NULL, NULL, NULL,
 '+97248123456', 'landline', NULL, NULL, 'yael shapiro', 'no answer',
 22.10, '{"source": 2, "created_at": 3.1, "status": 4, "last_touch_at": 3, "touch_count": 4, "last_touch_type": 2, "notes": 2, "automation": 2}',
 'cold', 'enterprise', 'C', 103, 1, 0.05, 'email', '2024-03-09 02:00:00+00', NULL),
(:run_id, 'L07', 'google', 'blacklisted', 'blacklist.status', 'status "wrong number"', NULL, NULL,
 '+972501234567', 'mobile', NULL, NULL, 'moshe', 'wrong number',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L08', 'list', 'blacklisted', 'blacklist.optout', 'notes say "do not call"', 2, 'L08',
 '+972531234567', 'mobile', NULL, 'eli@example.com', 'eli mor', 'refused',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L09', 'list', 'blacklisted', 'blacklist.optout', 'same person as L08, who opted out', 2, 'L08',
 NULL, NULL, NULL, 'eli@example.com', 'אלי מור', 'no answer',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L10', 'google', 'partial', 'partial.no_contact', 'no usable phone or e-mail', NULL, NULL,
 NULL, 'invalid', NULL, NULL, 'test', NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L11', 'facebook', 'outlier', 'outlier.future_date', 'created_at "2031-01-01" is in the future', NULL, NULL,
 '+972581234567', 'mobile', NULL, NULL, 'gil', 'new',
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(:run_id, 'L12', 'referral', 'nurture', 'nurture.low_score', 'score 8.00 is below 10', NULL, NULL,
 '+97289123456', 'landline', NULL, NULL, 'dan', 'not interested',
 8.00, '{"source": 5, "created_at": 0, "status": 1, "last_touch_at": 0, "touch_count": 1, "last_touch_type": 1, "notes": 0, "automation": 0}',
 'cold', 'smb', NULL, NULL, NULL, NULL, 'email', NULL, NULL);

INSERT INTO refinery.run_stages (run_id, ord, stage, rows_in, rows_out, seconds, counters)
VALUES (:run_id, 1, 'normalize', 12, 12, 0.5, '{"phone_repaired": 1}'),
	   (:run_id, 2, 'blacklist', 12, 9, 0.25, '{"blacklist.status": 1, "blacklist.optout": 2}'),
	   (:run_id, 3, 'dedupe', 9, 8, 1.0, '{"dedupe.phone": 1}'),
	   (:run_id, 4, 'partial', 8, 6, 0.25, '{"partial.no_contact": 1, "outlier.future_date": 1}'),
	   (:run_id, 5, 'score', 6, 5, 0.5, '{"nurture.low_score": 1}'),
	   (:run_id, 6, 'cohorts', 5, 5, 0.125, '{}'),
	   (:run_id, 7, 'match', 5, 5, 0.375, '{}');
INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, score_min, score_max, mean_score,
								  expected_conversions, target_rate, sla_hours, channel_plan)
VALUES (:run_id, 'A', 1, 2, 87.50, 91.00, 89.25, 0.80, 0.30, 24, 'call+sms'),
	   (:run_id, 'B', 2, 2, 55.00, 64.25, 59.625, 0.35, 0.15, 48, 'call+email'),
	   (:run_id, 'C', 3, 1, 22.10, 22.10, 22.1, 0.05, 0.05, 168, 'email');
INSERT INTO refinery.run_reps (run_id, rep_id, rep_name, active, capacity, assigned,
							   expected_conversions, close_rate)
VALUES (:run_id, 101, 'Dana Levi', true, 3, 2, 0.57, 0.25),
	   (:run_id, 102, 'Yossi Cohen', true, 2, 2, 0.58, 0.2),
	   (:run_id, 103, 'Maya Katz', true, 4, 1, 0.05, 0.1),
	   (:run_id, 104, 'Avi Mizrahi', false, 5, 0, 0, 0.3);
INSERT INTO refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, rate_smoothed)
VALUES (:run_id, 101, 'facebook', 40, 12, 0.29),
	   (:run_id, 101, 'google', 10, 1, 0.15),
	   (:run_id, 102, 'google', 50, 9, 0.19),
	   (:run_id, 102, 'referral', 10, 5, 0.42),
	   (:run_id, 103, 'google', 20, 2, 0.11),
	   (:run_id, 104, 'facebook', 30, 10, 0.31);

SELECT refinery.attach_results_table(:run_id);
UPDATE refinery.runs
SET status = 'committed', finished_at = '2024-03-02 02:00:04+00', rows_pulled = 12,
	rows_kept = 5, seconds_total = 4.0,
	counts = '{"kept": 5, "blacklisted": 3, "duplicate": 1, "partial": 1, "outlier": 1, "nurture": 1}'
WHERE run_id = :run_id;
COMMIT;
