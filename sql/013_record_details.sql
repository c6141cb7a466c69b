/*
 * 013_record_details.sql
 *    refinery.record_outcome() takes what the CRM import takes besides the
 *    outcome (009): the call's duration, an amount, a region and, for a
 *    callback, when the person asked to be called.  The four are optional
 *    parameters after tenant, so every call written for 007 still works;
 *    the function is replaced (a new signature), its rights given again.
 */
DROP FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text);

CREATE FUNCTION refinery.record_outcome(job text, lead_id text, rep_id bigint, outcome text,
										at timestamptz, tenant text DEFAULT NULL,
										duration_s integer DEFAULT NULL,
										amount numeric DEFAULT NULL, region text DEFAULT NULL,
										callback_at timestamptz DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	added		boolean;
BEGIN
	IF record_outcome.job IS NULL OR record_outcome.lead_id IS NULL OR record_outcome.rep_id IS NULL
		OR record_outcome.outcome IS NULL OR record_outcome.at IS NULL THEN
		RAISE EXCEPTION 'job, lead_id, rep_id, outcome and at must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF record_outcome.tenant IS NOT NULL THEN
		RAISE EXCEPTION 'tenants are not supported yet' USING ERRCODE = 'feature_not_supported';
	END IF;
	IF record_outcome.duration_s < 0 THEN
		RAISE EXCEPTION 'duration_s must not be negative (got %)', record_outcome.duration_s
			USING ERRCODE = 'check_violation';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM refinery.lead_state s
				   WHERE s.job = record_outcome.job AND s.lead_id = record_outcome.lead_id) THEN
		RAISE EXCEPTION 'job "%" has no lead "%"', record_outcome.job, record_outcome.lead_id
			USING ERRCODE = 'no_data_found';
	END IF;
	INSERT INTO refinery.outcomes AS o (job, lead_id, rep_id, outcome, at, duration_s, amount,
										region, callback_at)
	VALUES (record_outcome.job, record_outcome.lead_id, record_outcome.rep_id,
			btrim(record_outcome.outcome), date_trunc('second', record_outcome.at),
			record_outcome.duration_s, record_outcome.amount, nullif(btrim(record_outcome.region), ''),
			record_outcome.callback_at)
	ON CONFLICT DO NOTHING;
	added := FOUND;
	/* the take ends; the next run decides what the outcome means */
	UPDATE refinery.lead_state s
	SET taken_at = NULL, version = s.version + 1
	WHERE s.job = record_outcome.job AND s.lead_id = record_outcome.lead_id
	  AND s.taken_at IS NOT NULL;
	RETURN added;
END
$$;

COMMENT ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text, integer,
											numeric, text, timestamptz) IS
'Record what happened to a lead of job (outcome as reported, e.g. won, no_answer, refused; at = when, kept to the second) and end its take; optionally the call''s duration in seconds, an amount (a sale''s value, for refinery.feedback_money), a region, and for a callback when the person asked to be called (the next run makes the lead due then, else [outcomes] callback_hours after at). Returns true when the outcome is new, false when the same outcome of the same rep at the same second was recorded before (it is kept once, with the details of the first). The next run of the job reads it. Examples: SELECT refinery.record_outcome(''nightly'', ''1000123'', 17, ''no_answer'', now()); SELECT refinery.record_outcome(''nightly'', ''1000123'', 17, ''callback'', now(), callback_at => now() + interval ''2 days'', duration_s => 95). For members of refinery_dialer.';

REVOKE ALL ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text, integer,
											   numeric, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text,
												  integer, numeric, text, timestamptz)
	TO refinery_dialer;
