/*
 * 007_queue.sql
 *    The pull queue: a rep (or a dialer acting for one) takes the next lead
 *    with one SQL call, and writes what happened with another.
 *
 * refinery.next_lead(job, rep_id) hands out the rep's next lead from the
 * job's state: the leads the rep holds first (best expected close first,
 * then the earlier due time, then the run's call order), then the best kept
 * lead nobody holds, which the rep then holds.  It locks the row with FOR
 * UPDATE SKIP LOCKED, so two sessions never get the same lead and never
 * wait for each other, and marks it taken; a taken lead without an outcome
 * comes back after the job's take_hours ([match] take_hours, recorded by
 * each run).  refinery.record_outcome() keeps an outcome (idempotently: one
 * row per job, lead, rep, outcome and second) for the next run to read, and
 * ends the take.  Both run with their owner's rights, for members of role
 * refinery_dialer only.  Each change to a state row raises its version: a
 * run that read a row before a take or an outcome leaves the row as the
 * take left it (sql/006_state.sql, engine/state.c).
 */

/* ------------------------------------------------------------------------
 * The dialers' role
 * ------------------------------------------------------------------------ */
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refinery_dialer') THEN
		CREATE ROLE refinery_dialer NOLOGIN;
	END IF;
END
$$;

COMMENT ON ROLE refinery_dialer IS
'Members may call refinery.next_lead and refinery.record_outcome (and nothing else of schema refinery through this role): GRANT refinery_dialer TO a dialer''s or a CRM''s login role.';

GRANT USAGE ON SCHEMA refinery TO refinery_dialer;

/* ------------------------------------------------------------------------
 * jobs.take_hours; lead_state's take
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.jobs
	ADD COLUMN take_hours integer NOT NULL DEFAULT 12
		CONSTRAINT jobs_take_hours_check CHECK (take_hours BETWEEN 1 AND 8760);
COMMENT ON COLUMN refinery.jobs.take_hours IS 'Hours a lead taken with next_lead stays taken without an outcome before it returns to its queue ([match] take_hours of the job''s latest run).';

ALTER TABLE refinery.lead_state
	ADD COLUMN taken_at timestamptz,
	ADD COLUMN taken_by bigint;
COMMENT ON COLUMN refinery.lead_state.taken_at IS 'When next_lead last handed the lead out; NULL once an outcome was recorded or never taken. A take older than the job''s take_hours no longer counts.';
COMMENT ON COLUMN refinery.lead_state.taken_by IS 'The rep next_lead handed the lead to.';

/* ------------------------------------------------------------------------
 * outcomes
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.outcomes
(
	job			text NOT NULL REFERENCES refinery.jobs (name),
	lead_id		text NOT NULL,
	rep_id		bigint NOT NULL,
	outcome		text NOT NULL CONSTRAINT outcomes_outcome_check CHECK (outcome <> ''),
	at			timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	read_by_run bigint,
	PRIMARY KEY (job, lead_id, rep_id, outcome, at)
);

COMMENT ON TABLE refinery.outcomes IS
'What happened to the leads the job handed out, as the dialer or the CRM reported it (record_outcome): one row per job, lead, rep, outcome and time to the second, so reporting one twice keeps one row. The outcome is kept as reported; the rules map it onto the engine''s vocabulary when a run reads it.';
COMMENT ON COLUMN refinery.outcomes.job IS 'The job that handed the lead out.';
COMMENT ON COLUMN refinery.outcomes.lead_id IS 'The lead, as in the job''s state.';
COMMENT ON COLUMN refinery.outcomes.rep_id IS 'The rep who worked it.';
COMMENT ON COLUMN refinery.outcomes.outcome IS 'The outcome as reported (e.g. won, no_answer, refused).';
COMMENT ON COLUMN refinery.outcomes.at IS 'When it happened, to the second.';
COMMENT ON COLUMN refinery.outcomes.recorded_at IS 'When it was recorded.';
COMMENT ON COLUMN refinery.outcomes.read_by_run IS 'The run that first read it; NULL until a run has.';

/* ------------------------------------------------------------------------
 * next_lead(job, rep_id, tenant)
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.next_lead(job text, rep_id bigint, tenant text DEFAULT NULL)
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

	/* the rep's own queue first, then the best lead nobody holds; a take expires */
	SELECT s.lead_id INTO picked
	FROM refinery.lead_state s
	WHERE s.job = next_lead.job AND s.state = 'current' AND s.verdict = 'kept'
	  AND (s.rep_id = next_lead.rep_id OR s.rep_id IS NULL)
	  AND (s.taken_at IS NULL OR s.taken_at < now() - make_interval(hours => hours))
	ORDER BY s.rep_id IS NULL, s.p_close DESC NULLS LAST, s.sla_due_at NULLS LAST,
			 s.call_order NULLS LAST, s.lead_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED;
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

COMMENT ON FUNCTION refinery.next_lead(text, bigint, text) IS
'Hand rep rep_id the next lead of job: its own held leads first (highest p_close, then earliest due time, then call order), then the best kept lead nobody holds, which the rep then holds. Returns one row (lead_id, phone_norm in E.164, call_order, due_at) or none. The row is locked FOR UPDATE SKIP LOCKED and marked taken, so concurrent callers never get the same lead; a taken lead without an outcome comes back after the job''s take_hours. Example: SELECT * FROM refinery.next_lead(''nightly'', 17). For members of refinery_dialer.';

/* ------------------------------------------------------------------------
 * record_outcome(job, lead_id, rep_id, outcome, at, tenant)
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.record_outcome(job text, lead_id text, rep_id bigint, outcome text,
										at timestamptz, tenant text DEFAULT NULL)
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
	IF NOT EXISTS (SELECT 1 FROM refinery.lead_state s
				   WHERE s.job = record_outcome.job AND s.lead_id = record_outcome.lead_id) THEN
		RAISE EXCEPTION 'job "%" has no lead "%"', record_outcome.job, record_outcome.lead_id
			USING ERRCODE = 'no_data_found';
	END IF;
	INSERT INTO refinery.outcomes AS o (job, lead_id, rep_id, outcome, at)
	VALUES (record_outcome.job, record_outcome.lead_id, record_outcome.rep_id,
			btrim(record_outcome.outcome), date_trunc('second', record_outcome.at))
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

COMMENT ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text) IS
'Record what happened to a lead of job (outcome as reported, e.g. won, no_answer, refused; at = when, kept to the second) and end its take. Returns true when the outcome is new, false when the same outcome of the same rep at the same second was recorded before (it is kept once). The next run of the job reads it. Example: SELECT refinery.record_outcome(''nightly'', ''1000123'', 17, ''no_answer'', now()). For members of refinery_dialer.';

REVOKE ALL ON FUNCTION refinery.next_lead(text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refinery.next_lead(text, bigint, text) TO refinery_dialer;
GRANT EXECUTE ON FUNCTION refinery.record_outcome(text, text, bigint, text, timestamptz, text)
	TO refinery_dialer;

/* ------------------------------------------------------------------------
 * run_reps: a rep may hold more than capacity
 * ------------------------------------------------------------------------ */
/*
 * A rep who pulls more leads than the run handed out (next_lead gives the
 * best unheld lead once the rep's own queue is worked) holds them until an
 * outcome or the take's end, and the next run counts them: assigned may
 * then exceed capacity.
 */
ALTER TABLE refinery.run_reps DROP CONSTRAINT run_reps_within_capacity_check;
COMMENT ON COLUMN refinery.run_reps.assigned IS 'Leads the rep holds after the run: those the run handed out, and those the rep took through the pull queue (refinery.next_lead), which may exceed capacity.';

/* ------------------------------------------------------------------------
 * The verdict customer: a lead of a person the job won
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.lead_results DROP CONSTRAINT lead_results_verdict_check;
ALTER TABLE refinery.lead_results ADD CONSTRAINT lead_results_verdict_check
	CHECK (verdict IN ('kept', 'blacklisted', 'duplicate', 'partial', 'outlier', 'nurture',
					   'customer'));
COMMENT ON COLUMN refinery.lead_results.verdict IS 'kept (goes to a rep), blacklisted (dead or opted out), duplicate (merged into its survivor), partial (no usable contact or required field missing), outlier (impossible values), nurture (kept out of the call lists, e.g. too low a score), customer (the job won the person: an outcome won on this or another record of the person).';

/* run_funnel: customer is step 7, after kept, so the steps dashboards know keep their numbers */
CREATE OR REPLACE VIEW refinery.run_funnel AS
SELECT f.run_id, f.step, f.verdict, f.rule_id, f.leads, f.pct_of_pulled, f.example_reason, r.job
FROM (SELECT l.run_id,
			 0 AS step,
			 'pulled'::text AS verdict,
			 NULL::text AS rule_id,
			 count(*) AS leads,
			 100.00 AS pct_of_pulled,
			 NULL::text AS example_reason
	  FROM refinery.results l
	  GROUP BY l.run_id
	  UNION ALL
	  SELECT l.run_id,
			 array_position(ARRAY['blacklisted', 'duplicate', 'partial', 'outlier', 'nurture',
								  'kept', 'customer'], l.verdict) AS step,
			 l.verdict,
			 l.rule_id,
			 count(*) AS leads,
			 round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY l.run_id), 2)
			 AS pct_of_pulled,
			 min(l.reason) AS example_reason
	  FROM refinery.results l
	  GROUP BY l.run_id, l.verdict, l.rule_id) f
JOIN refinery.runs r ON r.run_id = f.run_id;
