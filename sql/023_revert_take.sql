/*
 * 023_revert_take.sql
 *    revert puts back a lead's take too.
 *
 * A run that finds a lead gone from the source marks it vanished and ends
 * its take (taken_at NULL): it leaves every hold and queue.  Its change log
 * keeps the row from before, take included, but revert_run() put back
 * every column except taken_at and taken_by (written before 007 added
 * them).  After reverting such a run the lead was current again with its
 * taker but no take, so the queue could hand it to another rep.
 *
 * The job's lease (its row of refinery.jobs) is now taken FOR NO KEY
 * UPDATE, by runs and by revert_run() alike: it still excludes another run
 * of the job, but no longer the KEY SHARE lock of the foreign key check
 * that record_outcome()'s insert makes, so dialers record outcomes while
 * the job runs.
 */
COMMENT ON TABLE refinery.jobs IS
'One row per job ([job] name in the rules). The row is also the job''s run lease: a run locks it with SELECT ... FOR NO KEY UPDATE NOWAIT in its transaction from start to commit, so a second run of the same job is refused at once while runs of other jobs go ahead, and dialers still record the job''s outcomes (a foreign key check takes only KEY SHARE). The lock has no expiry: it ends with the run''s transaction, or when the server notices the client is gone (the engine sets TCP keepalives).';

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
	PERFORM 1 FROM refinery.jobs j WHERE j.name = r.job FOR NO KEY UPDATE NOWAIT;
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
		 rep_id, call_order, p_close, channel_plan, sla_due_at, golden, taken_at, taken_by)
	  = (p.state, p.fingerprint, p.first_run, p.changed_run, s.version + 1, p.assigned_at,
		 p.source, p.verdict, p.rule_id, p.reason, p.cluster_id, p.survivor_id, p.phone_norm,
		 p.phone_type, p.phone_repair, p.email_norm, p.name_norm, p.status_norm, p.score,
		 p.points, p.temperature, p.persona, p.cohort, p.rep_id, p.call_order, p.p_close,
		 p.channel_plan, p.sla_due_at, p.golden, p.taken_at, p.taken_by)
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
'Undo a committed run of a job by applying its change log backwards: the leads it brought in leave the state, every lead it changed gets its row from before the run back (its take included), the job''s dedupe model from before the run is back when the run replaced it, and the run''s status becomes reverted (latest_run then names the run before it). Only the job''s latest committed run can be reverted (revert several newest first); a run of the job in progress makes it fail at once (the job''s lease). Returns the number of state rows removed or put back. "refinery revert --job J --run N" calls it.';
