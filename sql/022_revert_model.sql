/*
 * 022_revert_model.sql
 *    revert puts back the job's dedupe model too.
 *
 * A run that learns a dedupe model (a job's first run, --full, rules that
 * decide otherwise, or participants moved by more than 5%) replaces the
 * job's model in refinery.jobs.dedupe_model.  revert_run() put the state
 * back but left that model, so the next nightly run compared with a model
 * learnt by the run that was undone (or, when that run had other rules,
 * learnt one again).  Each run now keeps the model it replaced, and
 * revert_run() restores it.  Runs made before this version kept nothing:
 * reverting one leaves the model as it is, as before.
 */
ALTER TABLE refinery.runs
	ADD COLUMN dedupe_model_changed boolean NOT NULL DEFAULT false,
	ADD COLUMN dedupe_model_before text;

COMMENT ON COLUMN refinery.runs.dedupe_model_changed IS 'Whether the run replaced its job''s dedupe model (refinery.jobs.dedupe_model): revert_run() then puts back dedupe_model_before. False for runs made before version 22.';
COMMENT ON COLUMN refinery.runs.dedupe_model_before IS 'The job''s dedupe model before the run replaced it (NULL when the job had none, or when dedupe_model_changed is false).';

CREATE OR REPLACE FUNCTION refinery.revert_run(run_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r			record;
	newest		bigint;
	removed		bigint;
	restored	bigint;
BEGIN
	SELECT x.job, x.status INTO r FROM refinery.runs x WHERE x.run_id = revert_run.run_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'run % does not exist', revert_run.run_id USING ERRCODE = 'no_data_found';
	END IF;
	IF r.status <> 'committed' THEN
		RAISE EXCEPTION 'run % is %, not committed', revert_run.run_id, r.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	/* the job's lease: no run of the job may be writing its state meanwhile */
	PERFORM 1 FROM refinery.jobs j WHERE j.name = r.job FOR UPDATE NOWAIT;
	SELECT max(x.run_id) INTO newest
	FROM refinery.runs x
	WHERE x.job = r.job AND x.status = 'committed';
	IF newest <> revert_run.run_id THEN
		RAISE EXCEPTION 'run % is not the latest committed run of job "%" (run % is)',
			revert_run.run_id, r.job, newest
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Revert the job''s runs newest first.';
	END IF;
	IF (SELECT x.full_write FROM refinery.runs x WHERE x.run_id = revert_run.run_id) IS NULL THEN
		RAISE EXCEPTION 'run % of job "%" was made before the job had a state: it has no change log',
			revert_run.run_id, r.job USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	/* leads the run brought in go; the rest get their row from before the run */
	DELETE FROM refinery.lead_state s
	WHERE s.job = r.job AND s.first_run = revert_run.run_id;
	GET DIAGNOSTICS removed = ROW_COUNT;
	UPDATE refinery.lead_state s
	SET (state, fingerprint, first_run, changed_run, version, assigned_at, source, verdict,
		 rule_id, reason, cluster_id, survivor_id, phone_norm, phone_type, phone_repair,
		 email_norm, name_norm, status_norm, score, points, temperature, persona, cohort,
		 rep_id, call_order, p_close, channel_plan, sla_due_at, golden)
	  = (p.state, p.fingerprint, p.first_run, p.changed_run, s.version + 1, p.assigned_at,
		 p.source, p.verdict, p.rule_id, p.reason, p.cluster_id, p.survivor_id, p.phone_norm,
		 p.phone_type, p.phone_repair, p.email_norm, p.name_norm, p.status_norm, p.score,
		 p.points, p.temperature, p.persona, p.cohort, p.rep_id, p.call_order, p.p_close,
		 p.channel_plan, p.sla_due_at, p.golden)
	FROM refinery.lead_changes c
	CROSS JOIN LATERAL jsonb_populate_record(NULL::refinery.lead_state, c.previous) p
	WHERE c.run_id = revert_run.run_id AND c.previous IS NOT NULL
	  AND s.job = c.job AND s.lead_id = c.lead_id;
	GET DIAGNOSTICS restored = ROW_COUNT;
	/* the dedupe model the run learnt goes: the job's model from before it is back */
	UPDATE refinery.jobs j SET dedupe_model = x.dedupe_model_before
	FROM refinery.runs x
	WHERE x.run_id = revert_run.run_id AND x.dedupe_model_changed AND j.name = r.job;
	UPDATE refinery.runs x SET status = 'reverted', reverted_at = clock_timestamp()
	WHERE x.run_id = revert_run.run_id;
	RETURN removed + restored;
END
$$;

COMMENT ON FUNCTION refinery.revert_run(bigint) IS
'Undo a committed run of a job by applying its change log backwards: the leads it brought in leave the state, every lead it changed gets its row from before the run back, the job''s dedupe model from before the run is back when the run replaced it, and the run''s status becomes reverted (latest_run then names the run before it). Only the job''s latest committed run can be reverted (revert several newest first); a run of the job in progress makes it fail at once (the job''s lease). Returns the number of state rows removed or put back. "refinery revert --job J --run N" calls it.';
