/*
 * 014_results_json.sql
 *    lead_results.points and lead_results.golden stored as json, read as
 *    jsonb: a cheaper write-back for the same answers.
 *
 * A run's snapshot is written by one COPY of every lead, and the server's
 * parsing of each row bounds it.  Its two jsonb values were the dearest
 * part: jsonb input builds a binary tree and parses every number as
 * numeric, while json input only checks the syntax and keeps the text as
 * the engine wrote it.  A server-side COPY of 300,000 result rows took
 * 1.82 s with jsonb and 1.28 s with json on a 2-core machine.
 *
 * What readers get is unchanged: refinery.results (and so every view and
 * command that reads it) returns both columns as jsonb, converted from the
 * stored text, so keys come back in jsonb's order and the operators and
 * functions of jsonb keep working.  A query on lead_results itself sees
 * json: ->, ->> and #>> work as before; jsonb functions (jsonb_each_text)
 * need points::jsonb.
 *
 * The constraints all stay, for what a DBA writes by hand; the two on
 * these columns check the same thing with json_typeof (which reads only
 * the first token).  The upgrade rewrites every partition of lead_results
 * once.
 *
 * refinery.results is rewritten from its own definition, as it stands
 * when this runs: its lead_results branch reads l.points and l.golden,
 * which must first let go of the columns (a view keeps a column from
 * changing type) and then read them through ::jsonb.
 */
DO $$
DECLARE
	def text := pg_get_viewdef('refinery.results'::regclass);
	hold text;
BEGIN
	IF def !~ '\ml\.points\M' OR def !~ '\ml\.golden\M' THEN
		RAISE EXCEPTION 'refinery.results does not read l.points and l.golden as expected';
	END IF;
	hold := regexp_replace(regexp_replace(def, '\ml\.points\M', 'NULL::jsonb AS points', 'g'),
						   '\ml\.golden\M', 'NULL::jsonb AS golden', 'g');
	EXECUTE 'CREATE OR REPLACE VIEW refinery.results AS ' || hold;

	ALTER TABLE refinery.lead_results
		DROP CONSTRAINT lead_results_points_check,
		DROP CONSTRAINT lead_results_golden_check;
	ALTER TABLE refinery.lead_results
		ALTER COLUMN points TYPE json USING points::json,
		ALTER COLUMN golden TYPE json USING golden::json;
	ALTER TABLE refinery.lead_results
		ADD CONSTRAINT lead_results_points_check CHECK (json_typeof(points) = 'object'),
		ADD CONSTRAINT lead_results_golden_check CHECK (json_typeof(golden) = 'object');

	EXECUTE 'CREATE OR REPLACE VIEW refinery.results AS ' ||
		regexp_replace(regexp_replace(def, '\ml\.points\M', 'l.points::jsonb AS points', 'g'),
					   '\ml\.golden\M', 'l.golden::jsonb AS golden', 'g');
END
$$;

COMMENT ON COLUMN refinery.lead_results.points IS 'Points of each scoring parameter as a JSON object (parameter -> points), adding up to score. The default parameters are source, created_at, status, last_touch_at, touch_count, last_touch_type, notes and automation. Stored as json, the text the engine wrote (cheaper to write than jsonb); refinery.results and the views give it as jsonb, and jsonb functions here need points::jsonb.';
COMMENT ON COLUMN refinery.lead_results.golden IS 'The merged golden record of the cluster (JSON object: touches summed, first entry date, latest touch, best status); on survivors only. Stored as json, the text the engine wrote (cheaper to write than jsonb); refinery.results and the views give it as jsonb.';
COMMENT ON CONSTRAINT lead_results_points_check ON refinery.lead_results IS
'points, when given, is a JSON object (parameter -> points).';
COMMENT ON CONSTRAINT lead_results_golden_check ON refinery.lead_results IS
'golden, when given, is a JSON object (the merged record).';
