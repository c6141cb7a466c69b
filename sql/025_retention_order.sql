/*
 * 025_retention_order.sql
 *    Retention deletes a run's rows before it drops the run's partition.
 *
 * drop_run() dropped the run's lead_results partition first, which locks
 * refinery.lead_results ACCESS EXCLUSIVE until the transaction ends, and
 * then deleted the run's row, cascading through its change log and
 * summaries (a full write of a million leads logs up to a million rows):
 * every reader of every job's results waited through the deletes, and
 * through those of each further run apply_retention() dropped after it.
 * Now drop_run() deletes first, and apply_retention() deletes the rows of
 * all the runs it drops before it drops any partition: the lock is held
 * for the drops only.
 */
CREATE OR REPLACE FUNCTION refinery.drop_run(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	part		regclass;
	bound		text := format('FOR VALUES IN (%L)', drop_run.run_id);
	dropped		boolean := false;
	deleted		boolean;
BEGIN
	IF drop_run.run_id IS NULL THEN
		RAISE EXCEPTION 'run id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	/*
	 * First the run's row, and with it (ON DELETE CASCADE) its change log
	 * and summaries, which can be many rows: no shared table is locked yet.
	 */
	DELETE FROM refinery.runs r WHERE r.run_id = drop_run.run_id;
	deleted := FOUND;

	/* then the run's partition, found by its bound whatever it is called */
	FOR part IN
		SELECT c.oid::regclass
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'refinery.lead_results'::regclass
		  AND pg_get_expr(c.relpartbound, c.oid) = bound
	LOOP
		EXECUTE format('DROP TABLE %s', part);
		dropped := true;
	END LOOP;

	/* a results table made in this transaction but not attached yet */
	part := to_regclass(format('refinery.%I', 'lead_results_' || drop_run.run_id));
	IF part IS NOT NULL
		AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = part)
	THEN
		EXECUTE format('DROP TABLE %s', part);
		dropped := true;
	END IF;

	RETURN deleted OR dropped;
END
$$;

CREATE OR REPLACE FUNCTION refinery.apply_retention(job text, keep integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	oldest_kept bigint;
	victims		bigint[];
	gone		bigint[];
	victim		bigint;
BEGIN
	IF keep IS NULL OR keep < 1 THEN
		RAISE EXCEPTION 'retention must keep at least 1 run, not "%"', keep
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF apply_retention.job IS NULL THEN
		RAISE EXCEPTION 'job must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	SELECT r.run_id INTO oldest_kept
	FROM refinery.runs r
	WHERE r.job = apply_retention.job AND r.status = 'committed'
	ORDER BY r.run_id DESC
	OFFSET keep - 1
	LIMIT 1;
	IF oldest_kept IS NULL THEN
		RETURN;					/* fewer committed runs than keep */
	END IF;

	/* the job's older runs, failed and dry runs included; never a running one */
	SELECT array_agg(r.run_id ORDER BY r.run_id) INTO victims
	FROM refinery.runs r
	WHERE r.job = apply_retention.job AND r.run_id < oldest_kept AND r.status <> 'running';
	IF victims IS NULL THEN
		RETURN;
	END IF;
	/* every victim's rows first (cascading), while no shared table is locked */
	WITH d AS (DELETE FROM refinery.runs r WHERE r.run_id = ANY (victims) RETURNING r.run_id)
	SELECT array_agg(d.run_id) INTO gone FROM d;
	/* then their partitions: from the first drop lead_results stays locked to the commit */
	FOREACH victim IN ARRAY victims
	LOOP
		IF refinery.drop_run(victim) OR victim = ANY (gone) THEN
			RETURN NEXT victim;
		END IF;
	END LOOP;
END
$$;

COMMENT ON FUNCTION refinery.drop_run(bigint) IS
'Remove one run: its runs row with its change log and its stage, cohort and rep summaries (deleted first, while no shared table is locked), then its lead_results partition; other runs are untouched. Returns false when there was no such run. Dropping the partition locks refinery.lead_results ACCESS EXCLUSIVE until the transaction ends: it waits for running readers (set lock_timeout) and blocks new ones, so commit soon after.';
COMMENT ON FUNCTION refinery.apply_retention(text, integer) IS
'Keep the newest `keep` committed runs of one job (by run_id) and every run of it newer than the oldest of them; drop the job''s older runs, except running ones: first every one''s rows (runs, change log, summaries), then their lead_results partitions with refinery.drop_run. Other jobs are untouched. Returns the run ids dropped, in order. The drops lock refinery.lead_results ACCESS EXCLUSIVE until the transaction ends: the engine calls it in a short transaction of its own after the run commits. keep must be at least 1.';
