/*
 * 019_state_json.sql
 *    lead_state.points and lead_state.golden stored as json, read as jsonb,
 *    as 014_results_json.sql did for lead_results: a cheaper write of the
 *    job's state for the same answers.
 *
 * A job's first run and a full write COPY every lead into the job's state,
 * and the server's parsing of each row bounds the write.  A server-side
 * COPY of the state rows of one million generated leads took 5.0 s with
 * jsonb and 4.0 s with json on a 2-core machine (the engine writes the
 * keys in jsonb's order, so what readers see is the same).
 *
 * refinery.results (and so every view and command that reads it) still
 * returns both columns as jsonb.  A query on lead_state itself sees json:
 * ->, ->> and #>> work as before; jsonb functions need points::jsonb.
 * refinery.revert_run puts a row back from lead_changes.previous (jsonb)
 * through jsonb_populate_record, which fills json columns as it filled
 * jsonb ones.  The upgrade rewrites every partition of lead_state once.
 */
DO $$
DECLARE
	def text := pg_get_viewdef('refinery.results'::regclass);
	hold text;
BEGIN
	IF def !~ '\ms\.points\M' OR def !~ '\ms\.golden\M' THEN
		RAISE EXCEPTION 'refinery.results does not read s.points and s.golden as expected';
	END IF;
	hold := regexp_replace(regexp_replace(def, '\ms\.points\M', 'NULL::jsonb AS points', 'g'),
						   '\ms\.golden\M', 'NULL::jsonb AS golden', 'g');
	EXECUTE 'CREATE OR REPLACE VIEW refinery.results AS ' || hold;

	ALTER TABLE refinery.lead_state
		ALTER COLUMN points TYPE json USING points::json,
		ALTER COLUMN golden TYPE json USING golden::json;

	EXECUTE 'CREATE OR REPLACE VIEW refinery.results AS ' ||
		regexp_replace(regexp_replace(def, '\ms\.points\M', 's.points::jsonb AS points', 'g'),
					   '\ms\.golden\M', 's.golden::jsonb AS golden', 'g');
END
$$;

COMMENT ON COLUMN refinery.lead_state.points IS 'As refinery.lead_results.points, as of changed_run: stored as json, the text the engine wrote (cheaper to write than jsonb); refinery.results gives it as jsonb, and jsonb functions here need points::jsonb.';
COMMENT ON COLUMN refinery.lead_state.golden IS 'As refinery.lead_results.golden: stored as json, the text the engine wrote; refinery.results gives it as jsonb.';
