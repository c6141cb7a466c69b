/*
 * tests/sql/test_results_json.sql
 *    014: lead_results stores points and golden as json (the text as
 *    written), and the views still give them as jsonb with the same values;
 *    the two constraints still refuse what is not an object.
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(12);

\ir refusal.sql

SELECT is(format_type(atttypid, atttypmod), 'json', 'lead_results.' || attname || ' is stored as json')
FROM pg_attribute WHERE attrelid = 'refinery.lead_results'::regclass AND attname IN ('points', 'golden')
ORDER BY attname;
SELECT is(format_type(atttypid, atttypmod), 'jsonb', 'refinery.results.' || attname || ' is still jsonb')
FROM pg_attribute WHERE attrelid = 'refinery.results'::regclass AND attname IN ('points', 'golden')
ORDER BY attname;

-- a committed run whose rows carry the text as the engine writes it, keys not in jsonb's order
INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
VALUES (repeat('e', 64), '[source]', 'table t', '0.1.0')
RETURNING run_id AS run_id \gset
SELECT refinery.new_results_table(:run_id) IS NOT NULL AS made \gset
INSERT INTO refinery.lead_results_:run_id (run_id, lead_id, source, verdict, score, points, golden)
VALUES (:run_id, 'J1', 'tv', 'kept', 15.50, '{"created_at": 3.50, "source": 12.00}',
		'{"touch_count": {"value": 4}, "city": {"value": "Haifa"}}'),
	   (:run_id, 'J2', 'tv', 'kept', 0.00, '{"created_at": 0.00, "source": 0.00}', NULL);
SELECT refinery.attach_results_table(:run_id) IS NULL AS attached \gset
UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp(), rows_pulled = 2,
	rows_kept = 2 WHERE run_id = :run_id;

SELECT is((SELECT points::text FROM refinery.lead_results WHERE run_id = :run_id AND lead_id = 'J1'),
		  '{"created_at": 3.50, "source": 12.00}', 'lead_results keeps the points as written');
-- jsonb orders keys by length, then bytes, and keeps the numbers' scale
SELECT is((SELECT points::text FROM refinery.results WHERE run_id = :run_id AND lead_id = 'J1'),
		  '{"source": 12.00, "created_at": 3.50}', 'results gives the points as jsonb');
SELECT is((SELECT golden FROM refinery.results WHERE run_id = :run_id AND lead_id = 'J1'),
		  '{"city": {"value": "Haifa"}, "touch_count": {"value": 4}}'::jsonb,
		  'results gives the golden record as jsonb, same value');
SELECT is((SELECT golden FROM refinery.results WHERE run_id = :run_id AND lead_id = 'J2'), NULL,
		  'no golden record stays NULL');
SELECT results_eq(format('SELECT points_source, points_created_at, points_total FROM refinery.lead_explain '
						 'WHERE run_id = %s ORDER BY lead_id', :run_id),
				  $$VALUES (12.00::numeric, 3.50::numeric, 15.50::numeric), (0.00, 0.00, 0.00)$$,
				  'lead_explain reads each parameter''s points and their sum through results');

SELECT is(pg_temp.refusal(format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict, points) '
								 'VALUES (%s, ''X1'', ''kept'', ''[20, 30]'')', :run_id, :run_id)),
		  'lead_results_points_check', 'points that are not an object are refused');
SELECT is(pg_temp.refusal(format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict, golden) '
								 'VALUES (%s, ''X2'', ''kept'', ''"x"'')', :run_id, :run_id)),
		  'lead_results_golden_check', 'a golden record that is not an object is refused');
SELECT is(pg_temp.refusal(format('INSERT INTO refinery.lead_results_%s (run_id, lead_id, verdict, points) '
								 'VALUES (%s, ''X3'', ''kept'', ''{"source": }'')', :run_id, :run_id)),
		  '22P02', 'text that is not JSON is refused');

SELECT * FROM finish();
ROLLBACK;
