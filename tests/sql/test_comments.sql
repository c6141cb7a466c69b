/*
 * tests/sql/test_comments.sql
 *    The catalogue documents itself: the schema and every table, partition,
 *    view, column and function in it carry a comment (pg_description).
 */
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(10);

SELECT ok(length(obj_description('refinery'::regnamespace, 'pg_namespace')) > 20,
		  'schema refinery has a comment');

-- the checks below must not pass by finding nothing
SELECT is((SELECT count(*)::int FROM pg_class
		   WHERE relnamespace = 'refinery'::regnamespace AND relkind IN ('r', 'p', 'v')),
		  28, '28 relations to check: 14 tables, 2 fixture partitions, 12 views');
SELECT cmp_ok((SELECT count(*)::int FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			   WHERE c.relnamespace = 'refinery'::regnamespace AND c.relkind IN ('r', 'p', 'v')
				 AND a.attnum > 0 AND NOT a.attisdropped),
			  '>', 200, 'more than 200 columns to check');

SELECT is_empty($$
	SELECT c.relname FROM pg_class c
	WHERE c.relnamespace = 'refinery'::regnamespace AND c.relkind IN ('r', 'p', 'v')
	  AND coalesce(length(obj_description(c.oid, 'pg_class')), 0) < 10
$$, 'every table, partition and view has a comment');

SELECT is_empty($$
	SELECT c.relname || '.' || a.attname FROM pg_class c
	JOIN pg_attribute a ON a.attrelid = c.oid
	WHERE c.relnamespace = 'refinery'::regnamespace AND c.relkind IN ('r', 'p', 'v')
	  AND a.attnum > 0 AND NOT a.attisdropped
	  AND coalesce(length(col_description(c.oid, a.attnum)), 0) < 5
$$, 'every column of every table, partition and view has a comment');

SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	WHERE p.pronamespace = 'refinery'::regnamespace
	  AND coalesce(length(obj_description(p.oid, 'pg_proc')), 0) < 20
$$, 'every function has a comment');

SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'refinery'::regnamespace),
		  27, 'twenty-seven functions to check');

SELECT is(obj_description('refinery.lead_results_2'::regclass, 'pg_class'),
		  'Results of run 2: a partition of refinery.lead_results. Query the parent table.',
		  'a run''s partition says which run it holds');

SELECT is(col_description('refinery.lead_results_2'::regclass, 3),
		  col_description('refinery.lead_results'::regclass, 3),
		  'a partition''s columns carry the parent''s comments');

SELECT is_empty($$
	SELECT conname FROM pg_constraint
	WHERE conrelid = 'refinery.lead_results'::regclass
	  AND conname IN ('lead_results_removed_rule_check', 'lead_results_duplicate_survivor_check',
					  'lead_results_phone_norm_check')
	  AND obj_description(oid, 'pg_constraint') IS NULL
$$, 'the semantic constraints of lead_results are explained');

SELECT * FROM finish();
ROLLBACK;
