/*
 * tests/sql/test_feedback.sql
 *    The feedback functions of sql/010_feedback.sql on a hand-made job "fb":
 *    reading a run's rules text, the outcome meanings, the Wilson interval,
 *    conversion per group, answer rates, money and refund claims.
 *
 * Job fb's run (started 2024-05-06 02:00 UTC) maps Closed_Won and "no
 * answer", prices web at 10 and fair at 2.5, and gives supplier acme 10
 * claim days at 4.50.  Its state holds eight leads:
 *   L1 web  smb  cohort a rep 7 p 0.3  kept         won (Tue 10:00, 100)
 *   L2 web  smb  cohort a rep 7 p 0.1  kept         no answer (Tue 09:00), lost (Tue 10:15)
 *   L3 fair ent  cohort b rep 8 p 0.05 kept         busy (Wed 18:00, Haifa), xyzzy (unknown)
 *   L4 fair      cohort b              kept         nothing
 *   L5 web                             blacklisted  blacklist.fake_phone
 *   L6 web       cluster 100           duplicate    (of L7, bought earlier)
 *   L7 web       cohort b rep 8 p 0.05 kept         cluster 100, nothing
 *   L8 web       cohort a rep 7 p 0.2  kept         wrong_number (Sun 2024-05-05 11:00)
 *   L9 web       cohort a              kept         vanished from the source, nothing
 * Cohort targets: a 0.2, b 0.05.  Every expected value below is worked out
 * by hand from these rows.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SELECT plan(30);

INSERT INTO refinery.jobs (name) VALUES ('fb');
INSERT INTO refinery.runs (started_at, finished_at, status, rules_sha256, rules_text, source_desc,
						   engine_version, threads, rows_pulled, rows_kept, job)
VALUES ('2024-05-06 02:00:00+00', '2024-05-06 02:00:05+00', 'committed', repeat('b', 64),
		E'[source]\ntable = crm.leads\n\n[outcomes]\nmap = Closed_Won:won, no answer:no_answer\n'
		'\n[cost]\nlead_price = web:10, fair:2.5\n\n[supplier.*]\nclaim_days = 30\nprice =\n'
		'claim_rules = blacklist.fake_phone,\n\tblacklist.dead_number\n\n[supplier.acme]\n'
		'claim_days = 10\nprice = 4.50\n',
		'table crm.leads', '0.1.0', 1, 8, 6, 'fb')
RETURNING run_id AS fb_run \gset
INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, target_rate)
VALUES (:fb_run, 'a', 1, 3, 0.2), (:fb_run, 'b', 2, 3, 0.05);
SELECT refinery.new_state_table('fb') AS state_table \gset
INSERT INTO :state_table (job, lead_id, first_run, changed_run, source, verdict, rule_id,
								 cluster_id, survivor_id, phone_norm, persona, cohort, rep_id,
								 p_close)
VALUES ('fb', 'L1', :fb_run, :fb_run, 'web', 'kept', NULL, NULL, NULL, '+97231234567', 'smb', 'a', 7, 0.3),
	   ('fb', 'L2', :fb_run, :fb_run, 'web', 'kept', NULL, NULL, NULL, '+972521111111', 'smb', 'a', 7, 0.1),
	   ('fb', 'L3', :fb_run, :fb_run, 'fair', 'kept', NULL, NULL, NULL, '+972521111112', 'ent', 'b', 8, 0.05),
	   ('fb', 'L4', :fb_run, :fb_run, 'fair', 'kept', NULL, NULL, NULL, '+972521111113', NULL, 'b', NULL, NULL),
	   ('fb', 'L5', :fb_run, :fb_run, 'web', 'blacklisted', 'blacklist.fake_phone', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	   ('fb', 'L6', :fb_run, :fb_run, 'web', 'duplicate', 'dedupe', 100, 'L7', '+972521111114', NULL, NULL, NULL, NULL),
	   ('fb', 'L7', :fb_run, :fb_run, 'web', 'kept', NULL, 100, 'L7', '+972521111114', NULL, 'b', 8, 0.05),
	   ('fb', 'L8', :fb_run, :fb_run, 'web', 'kept', NULL, NULL, NULL, '+972541234599', NULL, 'a', 7, 0.2);
INSERT INTO :state_table (job, lead_id, state, first_run, changed_run, source, verdict, cohort, rep_id)
VALUES ('fb', 'L9', 'vanished', :fb_run, :fb_run, 'web', 'kept', 'a', NULL);
SELECT refinery.attach_state_table('fb');
INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at, amount, region)
VALUES ('fb', 'L1', 7, 'Closed_Won', '2024-05-07 10:00:00+00', 100, NULL),
	   ('fb', 'L2', 7, 'no answer', '2024-05-07 09:00:00+00', NULL, NULL),
	   ('fb', 'L2', 7, 'lost', '2024-05-07 10:15:00+00', NULL, NULL),
	   ('fb', 'L3', 8, ' BUSY ', '2024-05-08 18:00:00+00', NULL, 'Haifa'),
	   ('fb', 'L3', 8, 'xyzzy', '2024-05-08 19:00:00+00', NULL, NULL),
	   ('fb', 'L8', 7, 'wrong_number', '2024-05-05 11:00:00+00', NULL, NULL);
CREATE TEMP TABLE origin (lead_id text, campaign text, supplier text, bought_at timestamptz);
INSERT INTO origin
VALUES ('L1', 'spring', 'acme', '2024-04-01 00:00+00'), ('L2', 'spring', 'Acme ', '2024-04-01 00:00+00'),
	   ('L3', 'autumn', 'globex', '2024-04-01 00:00+00'), ('L4', 'autumn', 'globex', '2024-04-01 00:00+00'),
	   ('L5', NULL, 'acme', '2024-05-01 00:00+00'), ('L6', NULL, 'acme', '2024-05-03 00:00+00'),
	   ('L7', NULL, 'globex', '2024-04-20 00:00+00'), ('L8', NULL, 'acme', '2024-05-01 00:00+00');

-- rules_value, rules_pairs
SELECT is(refinery.rules_value(rules_text, 'cost', 'lead_price'), 'web:10, fair:2.5',
		  'rules_value: a key of a section')
FROM refinery.runs WHERE run_id = :fb_run;
SELECT is(refinery.rules_value(rules_text, 'supplier.*', 'claim_rules'),
		  E'blacklist.fake_phone,\nblacklist.dead_number',
		  'rules_value: a template section, a value continued on a tab-indented line')
FROM refinery.runs WHERE run_id = :fb_run;
SELECT is(refinery.rules_value(rules_text, 'supplier.acme', 'claim_rules'), NULL,
		  'rules_value: a key the section does not have (not the next section''s)')
FROM refinery.runs WHERE run_id = :fb_run;
SELECT is(refinery.rules_value(rules_text, 'supplier.*', 'price'), '',
		  'rules_value: an empty value')
FROM refinery.runs WHERE run_id = :fb_run;
SELECT results_eq($$SELECT k, v FROM refinery.rules_pairs(E'a:b, c d : e,nocolon\nx:y:z')$$,
				  $$VALUES ('a', 'b'), ('c d', 'e'), ('x:y', 'z')$$,
				  'rules_pairs: split at the last colon, blanks dropped, items without one left out');

-- wilson
SELECT is((SELECT round(high::numeric, 4) FROM refinery.wilson(0, 12)), 0.2425,
		  'wilson(0, 12): high = z^2 / (n + z^2) = 3.8415 / 15.8415');
SELECT is((SELECT array[round(low::numeric, 4), round(high::numeric, 4)] FROM refinery.wilson(3, 12)),
		  ARRAY[0.0889, 0.5323], 'wilson(3, 12) = (0.0889, 0.5323)');
SELECT is((SELECT array[round(low::numeric, 4), round(high::numeric, 4)] FROM refinery.wilson(12, 12)),
		  ARRAY[0.7575, 1], 'wilson(12, 12): low = n / (n + z^2), high 1');
SELECT is((SELECT low FROM refinery.wilson(0, 0)), NULL, 'wilson(0, 0) is NULL');

-- outcome_meanings
SELECT results_eq($$SELECT lead_id, outcome, meaning, answered FROM refinery.outcome_meanings
					 WHERE job = 'fb' ORDER BY at$$,
				  $$VALUES ('L8', 'wrong_number', 'wrong_number', false),
						   ('L2', 'no answer', 'no_answer', false),
						   ('L1', 'Closed_Won', 'won', true), ('L2', 'lost', 'lost', true),
						   ('L3', ' BUSY ', 'busy', false), ('L3', 'xyzzy', NULL::text, NULL::boolean)$$,
				  'outcome_meanings: own names in any case, the run''s map, NULL for the unknown');

-- feedback
SELECT results_eq($$SELECT key, leads, worked, outcomes, won, round(actual_rate::numeric, 4),
						   round(expected_rate::numeric, 4), round(target_rate::numeric, 4), note
					FROM refinery.feedback('fb') WHERE dimension = 'cohort'$$,
				  $$VALUES ('a', 3::bigint, 3::bigint, 4::bigint, 1::bigint, 0.3333, 0.2000, 0.2000, 'few outcomes (3)'),
						   ('b', 3, 1, 1, 0, 0.0000, 0.0500, 0.0500, 'few outcomes (1)')$$,
				  'feedback per cohort: a 1 won of 3 worked (L8''s wrong number counts; vanished L9 not), b 0 of 1 (xyzzy left out)');
SELECT is((SELECT array[round(ci_low::numeric, 4), round(ci_high::numeric, 4)]
		   FROM refinery.feedback('fb') WHERE dimension = 'cohort' AND key = 'a'),
		  ARRAY[0.0615, 0.7923], 'and its interval is wilson(1, 3)');
SELECT results_eq($$SELECT key, leads, worked, won, note FROM refinery.feedback('fb')
					WHERE dimension = 'rep'$$,
				  $$VALUES ('7', 3::bigint, 3::bigint, 1::bigint, 'few outcomes (3)'),
						   ('8', 2, 1, 0, 'few outcomes (1)'), ('(none)', 1, 0, 0, 'no outcomes')$$,
				  'feedback per rep: 7 worked L1, L2, L8; 8 worked L3 and holds L7; L4 has no rep');
SELECT results_eq($$SELECT key, leads, worked, won FROM refinery.feedback('fb')
					WHERE dimension = 'source'$$,
				  $$VALUES ('web', 4::bigint, 3::bigint, 1::bigint), ('fair', 2, 1, 0)$$,
				  'feedback per source: L5 and L6 (removed, never worked) are not counted');
SELECT results_eq($$SELECT key, leads FROM refinery.feedback('fb') WHERE dimension = 'persona'$$,
				  $$VALUES ('ent', 1::bigint), ('smb', 2), ('(none)', 3)$$,
				  'feedback per persona');
SELECT is((SELECT count(*)::int FROM refinery.feedback('fb') WHERE dimension = 'campaign'), 0,
		  'no campaign rows without an origin');
SELECT results_eq($$SELECT key, leads, worked, won FROM refinery.feedback('fb', NULL, 'origin')
					WHERE dimension = 'campaign'$$,
				  $$VALUES ('autumn', 2::bigint, 1::bigint, 0::bigint), ('spring', 2, 2, 1),
						   ('(none)', 2, 1, 0)$$,
				  'feedback per campaign from the origin relation');
SELECT results_eq($$SELECT worked, outcomes, won FROM refinery.feedback('fb', '2024-05-07')
					WHERE dimension = 'cohort' AND key = 'a'$$,
				  $$VALUES (2::bigint, 3::bigint, 1::bigint)$$,
				  'feedback since 2024-05-07: L8''s wrong number of the 5th is left out');

-- feedback_answers
SELECT results_eq($$SELECT key, calls, answered FROM refinery.feedback_answers('fb')
					WHERE dimension = 'hour'$$,
				  $$VALUES ('09', 1::bigint, 0::bigint), ('10', 2, 2), ('11', 1, 0), ('18', 1, 0)$$,
				  'answer rate per hour: won and lost answered; no answer, busy, wrong number not');
SELECT results_eq($$SELECT key, calls, answered FROM refinery.feedback_answers('fb')
					WHERE dimension = 'weekday'$$,
				  $$VALUES ('0 Sun', 1::bigint, 0::bigint), ('2 Tue', 3, 2), ('3 Wed', 1, 0)$$,
				  'answer rate per weekday');
SELECT results_eq($$SELECT key, calls, answered FROM refinery.feedback_answers('fb')
					WHERE dimension = 'region'$$,
				  $$VALUES ('03', 1::bigint, 1::bigint), ('052', 2, 1), ('054', 1, 0), ('Haifa', 1, 0)$$,
				  'answer rate per region: the reported one, else the area code of the number');
SELECT is((SELECT round(answer_rate::numeric, 4) || ' ' || note FROM refinery.feedback_answers('fb')
		   WHERE dimension = 'weekday' AND key = '2 Tue'),
		  '0.6667 few outcomes (3)', 'the rate and the few-outcomes note');

-- feedback_money
SELECT results_eq($$SELECT key, leads, priced, cost, won, revenue, profit, cost_per_win, revenue_per_lead
					FROM refinery.feedback_money('fb') WHERE dimension = 'source'$$,
				  $$VALUES ('web', 7::bigint, 7::bigint, 70::numeric, 1::bigint, 100::numeric, 30::numeric,
							70.00::numeric, 14.29::numeric),
						   ('fair', 2, 2, 5.0, 0, 0, -5.0, NULL, 0.00)$$,
				  'money per source: every lead at its price (vanished L9 too); revenue of the won amounts');
SELECT results_eq($$SELECT key, leads, cost FROM refinery.feedback_money('fb', NULL, 'origin')
					WHERE dimension = 'campaign'$$,
				  $$VALUES ('autumn', 2::bigint, 5.0::numeric), ('spring', 2, 20), ('(none)', 5, 50)$$,
				  'money per campaign from the origin relation');

-- refund_claims
SELECT results_eq($$SELECT lead_id, supplier, reason, evidence, proven_at, duplicate_of, price, claim_until
					FROM refinery.refund_claims('fb', 'origin', 'ACME')$$,
				  $$VALUES ('L5', 'acme', 'invalid', 'blacklist.fake_phone', '2024-05-06 02:00:00+00'::timestamptz,
							NULL::text, 4.50::numeric, '2024-05-11 00:00+00'::timestamptz),
						   ('L6', 'acme', 'duplicate', 'same person as lead L7 (bought 2024-04-20T00:00:00Z)',
							'2024-05-06 02:00:00+00', 'L7', 4.50, '2024-05-13 00:00+00'),
						   ('L8', 'acme', 'wrong_number', 'outcome "wrong_number" of rep 7',
							'2024-05-05 11:00:00+00', NULL, 4.50, '2024-05-11 00:00+00')$$,
				  'refund claims on acme: a fake phone, a duplicate of a lead bought before, a wrong number');
UPDATE refinery.runs SET started_at = '2024-05-12 02:00:00+00' WHERE run_id = :fb_run;
SELECT results_eq($$SELECT lead_id FROM refinery.refund_claims('fb', 'origin', 'acme')$$,
				  $$VALUES ('L6'), ('L8')$$,
				  'a proof by a run after the 10 days is out of the window; the duplicate (bought 05-03) is not');
SELECT is((SELECT count(*)::int FROM refinery.refund_claims('fb', 'origin', 'globex')), 0,
		  'globex: nothing proven invalid');
SELECT throws_ok($$SELECT * FROM refinery.refund_claims('nosuchjob', 'origin', 'acme')$$, 'P0002',
				 'job "nosuchjob" has no committed run', 'refund_claims of a job without runs fails');
SELECT has_function('refinery', 'refund_claims', ARRAY['text', 'regclass', 'text'],
					'refund_claims(text, regclass, text) exists');

-- L10 was kept in cohort a and won; a later run made it a customer, out of the cohorts
INSERT INTO refinery.runs (started_at, finished_at, status, rules_sha256, rules_text, source_desc,
						   engine_version, threads, rows_pulled, rows_kept, job)
VALUES ('2024-05-13 02:00:00+00', '2024-05-13 02:00:05+00', 'committed', repeat('b', 64),
		(SELECT rules_text FROM refinery.runs WHERE run_id = :fb_run), 'table crm.leads', '0.1.0',
		1, 9, 6, 'fb')
RETURNING run_id AS fb_run2 \gset
INSERT INTO refinery.run_cohorts (run_id, cohort, ord, leads, target_rate)
VALUES (:fb_run2, 'a', 1, 3, 0.2), (:fb_run2, 'b', 2, 3, 0.05);
INSERT INTO refinery.lead_state (job, lead_id, first_run, changed_run, source, verdict, cohort)
VALUES ('fb', 'L10', :fb_run, :fb_run2, 'web', 'customer', NULL);
INSERT INTO refinery.lead_changes (run_id, job, lead_id, change, old_verdict, new_verdict,
								   old_cohort, new_cohort)
VALUES (:fb_run2, 'fb', 'L10', 'changed', 'kept', 'customer', 'a', NULL);
INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at)
VALUES ('fb', 'L10', 7, 'Closed_Won', '2024-05-12 11:00:00+00');
SELECT results_eq($$SELECT key, leads, worked, won FROM refinery.feedback('fb')
					WHERE dimension = 'cohort' ORDER BY key$$,
				  $$VALUES ('a', 4::bigint, 4::bigint, 2::bigint), ('b', 3::bigint, 1::bigint, 0::bigint)$$,
				  'a won lead made a customer still counts in the cohort it had (a: 2 won of 4 worked)');

SELECT * FROM finish();
ROLLBACK;
