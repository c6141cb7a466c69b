/*
 * 009_outcomes_in.sql
 *    Outcomes read from a CRM's query or CSV file ([outcomes] query / csv)
 *    carry more than the pull queue's: how long the call took, what the
 *    sale was worth, where the person is, and when to call back.
 *
 * Each run of a job reads its [outcomes] source at the start and adds what
 * is new to refinery.outcomes (one row per job, lead, rep, outcome and
 * second, so reading the same file again adds nothing); the columns below
 * are NULL when the source does not give them, and for outcomes recorded
 * with refinery.record_outcome().
 *
 * And the pull queue gets an index for the leads nobody holds, so that
 * next_lead() no longer reads the job's whole state on every call.
 */
ALTER TABLE refinery.outcomes
	ADD COLUMN duration_s integer CONSTRAINT outcomes_duration_check CHECK (duration_s >= 0),
	ADD COLUMN amount numeric,
	ADD COLUMN region text,
	ADD COLUMN callback_at timestamptz;

COMMENT ON COLUMN refinery.outcomes.duration_s IS 'Length of the call in seconds, when the source gives it ([outcomes] query or csv, column duration).';
COMMENT ON COLUMN refinery.outcomes.amount IS 'What a won sale was worth, in the source''s currency, when the source gives it (column amount).';
COMMENT ON COLUMN refinery.outcomes.region IS 'Where the person was reached (area code or city), when the source gives it (column region).';
COMMENT ON COLUMN refinery.outcomes.callback_at IS 'For a callback: when the person asked to be called (column callback_at); NULL = the rule [outcomes] callback_hours after the outcome.';

/* ------------------------------------------------------------------------
 * next_lead without a scan of the job's state
 * ------------------------------------------------------------------------ */
/*
 * 007's next_lead() picked the rep's held lead or the best unheld one with
 * one query (rep_id = $rep OR rep_id IS NULL), which no index serves: every
 * call read and sorted the job's kept leads (30 ms a call over 9,000 kept
 * leads; 27 calls a second from 32 sessions over 33,000, beside 4,600 for a
 * plain indexed queue, tests/bench/queue.sh).  Now it looks in the rep's
 * own queue first (index lead_state_job_rep_idx), then walks the unheld
 * kept leads in queue order (index lead_state_unheld_idx) and stops at the
 * first one no other session has locked.  What it hands out is unchanged.
 */
CREATE INDEX lead_state_unheld_idx ON refinery.lead_state
	(job, p_close DESC NULLS LAST, sla_due_at NULLS LAST, call_order NULLS LAST, lead_id)
	WHERE rep_id IS NULL AND state = 'current' AND verdict = 'kept';

CREATE OR REPLACE FUNCTION refinery.next_lead(job text, rep_id bigint, tenant text DEFAULT NULL)
RETURNS TABLE (lead_id text, phone_norm text, call_order integer, due_at timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	hours		integer;
	picked		text;
BEGIN
	IF next_lead.job IS NULL OR next_lead.rep_id IS NULL THEN
		RAISE EXCEPTION 'job and rep_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF next_lead.tenant IS NOT NULL THEN
		RAISE EXCEPTION 'tenants are not supported yet' USING ERRCODE = 'feature_not_supported';
	END IF;
	SELECT j.take_hours INTO hours FROM refinery.jobs j WHERE j.name = next_lead.job;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'there is no job "%"', next_lead.job USING ERRCODE = 'no_data_found';
	END IF;

	/* the rep's own queue first */
	SELECT s.lead_id INTO picked
	FROM refinery.lead_state s
	WHERE s.job = next_lead.job AND s.rep_id = next_lead.rep_id
	  AND s.state = 'current' AND s.verdict = 'kept'
	  AND (s.taken_at IS NULL OR s.taken_at < now() - make_interval(hours => hours))
	ORDER BY s.p_close DESC NULLS LAST, s.sla_due_at NULLS LAST, s.call_order NULLS LAST, s.lead_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED;
	/* then the best lead nobody holds; a take expires */
	IF picked IS NULL THEN
		SELECT s.lead_id INTO picked
		FROM refinery.lead_state s
		WHERE s.job = next_lead.job AND s.rep_id IS NULL
		  AND s.state = 'current' AND s.verdict = 'kept'
		  AND (s.taken_at IS NULL OR s.taken_at < now() - make_interval(hours => hours))
		ORDER BY s.p_close DESC NULLS LAST, s.sla_due_at NULLS LAST, s.call_order NULLS LAST,
				 s.lead_id
		LIMIT 1
		FOR UPDATE SKIP LOCKED;
	END IF;
	IF picked IS NULL THEN
		RETURN;
	END IF;

	RETURN QUERY
	UPDATE refinery.lead_state s
	SET taken_at = now(), taken_by = next_lead.rep_id,
		rep_id = coalesce(s.rep_id, next_lead.rep_id),
		assigned_at = coalesce(s.assigned_at, now()),
		version = s.version + 1
	WHERE s.job = next_lead.job AND s.lead_id = picked
	RETURNING s.lead_id, s.phone_norm, s.call_order, s.sla_due_at;
END
$$;

COMMENT ON INDEX refinery.lead_state_unheld_idx IS 'The kept leads nobody holds, in the pull queue''s order: next_lead() reads the best one no other session has locked.';
