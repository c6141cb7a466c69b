/*
 * 003_functions.sql
 *    The write-back's partition flow, retention, and the privilege check a
 *    run makes before it starts.
 *
 * A run's results go into a plain table refinery.lead_results_<run_id>
 * created LIKE the parent with a CHECK (run_id = N), filled by COPY, then
 * attached as the run's partition.  CREATE ... PARTITION OF would lock the
 * parent ACCESS EXCLUSIVE for the whole run; ATTACH takes only SHARE UPDATE
 * EXCLUSIVE, so readers are never blocked, and the CHECK lets it skip the
 * validation scan.  Dropping a partition does lock the parent ACCESS
 * EXCLUSIVE, so retention briefly waits for (and blocks) readers.
 * Functions pin search_path and name every object with its schema.
 */

/* ------------------------------------------------------------------------
 * new_results_table(run_id) -> 'refinery.lead_results_<run_id>'
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.new_results_table(run_id bigint)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	run_status text;
	tbl			text := 'lead_results_' || new_results_table.run_id;
	qual		text := format('refinery.%I', 'lead_results_' || new_results_table.run_id);
	owner		oid;
BEGIN
	SELECT r.status INTO run_status
	FROM refinery.runs r
	WHERE r.run_id = new_results_table.run_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'run "%" does not exist', new_results_table.run_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'Insert the run into refinery.runs first, in the same transaction.';
	END IF;
	IF run_status NOT IN ('running', 'dry_run') THEN
		RAISE EXCEPTION 'run "%" is "%", not running', new_results_table.run_id, run_status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	/*
	 * LIKE copies the columns, NOT NULLs, CHECKs and column comments (ATTACH
	 * requires the same columns and every CHECK of the parent); the primary
	 * key is left to ATTACH, which builds it after the rows are in, faster
	 * than maintaining it row by row during COPY.
	 */
	EXECUTE format('CREATE TABLE %s (LIKE refinery.lead_results '
				   'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', qual);
	EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (run_id = %s)',
				   qual, tbl || '_run_id_check', new_results_table.run_id);
	EXECUTE format('COMMENT ON TABLE %s IS %L', qual,
				   format('Results of run %s: a partition of refinery.lead_results. '
						  'Query the parent table.', new_results_table.run_id));

	/*
	 * Give the table to the parent's owner, so that any member of that role
	 * can attach it now and drop it later whichever member made the run.
	 */
	SELECT c.relowner INTO owner
	FROM pg_class c
	WHERE c.oid = 'refinery.lead_results'::regclass;
	IF owner <> to_regrole(current_user)::oid THEN
		EXECUTE format('ALTER TABLE %s OWNER TO %s', qual, owner::regrole);
	END IF;
	RETURN qual;
END
$$;

COMMENT ON FUNCTION refinery.new_results_table(bigint) IS
'Create the results table of a running run, refinery.lead_results_<run_id> (not yet a partition, invisible to other sessions), with a CHECK (run_id = N); returns its qualified name, to COPY into. Call refinery.attach_results_table(run_id) after the COPY.';

/* ------------------------------------------------------------------------
 * attach_results_table(run_id)
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.attach_results_table(run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	part		regclass := to_regclass(format('refinery.%I',
											   'lead_results_' || attach_results_table.run_id));
BEGIN
	IF part IS NULL THEN
		RAISE EXCEPTION 'results table of run "%" does not exist', attach_results_table.run_id
			USING ERRCODE = 'undefined_table',
				  HINT = 'Call refinery.new_results_table(run_id) first.';
	END IF;

	/*
	 * Builds the partition's primary key index; a lead id twice in the run
	 * fails here with unique_violation, the detail naming the id.
	 */
	EXECUTE format('ALTER TABLE refinery.lead_results ATTACH PARTITION %s FOR VALUES IN (%s)',
				   part, attach_results_table.run_id);
END
$$;

COMMENT ON FUNCTION refinery.attach_results_table(bigint) IS
'Attach refinery.lead_results_<run_id> as the run''s partition of refinery.lead_results: builds its primary key (a duplicate lead id fails with unique_violation naming it), skips the validation scan thanks to the CHECK, and locks the parent only SHARE UPDATE EXCLUSIVE. The rows appear to other sessions when the transaction commits.';

/* ------------------------------------------------------------------------
 * drop_run(run_id) -> whether the run existed
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.drop_run(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	part		regclass;
	bound		text := format('FOR VALUES IN (%L)', drop_run.run_id);
	dropped		boolean := false;
BEGIN
	IF drop_run.run_id IS NULL THEN
		RAISE EXCEPTION 'run id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	/* the run's partition, found by its bound whatever it is called */
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

	/* the summaries go with the run (ON DELETE CASCADE) */
	DELETE FROM refinery.runs r WHERE r.run_id = drop_run.run_id;
	RETURN FOUND OR dropped;
END
$$;

COMMENT ON FUNCTION refinery.drop_run(bigint) IS
'Remove one run: its lead_results partition, its stage, cohort and rep summaries and its runs row; other runs are untouched. Returns false when there was no such run. Dropping the partition locks refinery.lead_results ACCESS EXCLUSIVE until the transaction ends: it waits for running readers (set lock_timeout) and blocks new ones, so commit soon after.';

/* ------------------------------------------------------------------------
 * apply_retention(keep) -> runs dropped
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.apply_retention(keep integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	oldest_kept bigint;
	victim		bigint;
	n			integer := 0;
BEGIN
	IF keep IS NULL OR keep < 1 THEN
		RAISE EXCEPTION 'retention must keep at least 1 run, not "%"', keep
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT r.run_id INTO oldest_kept
	FROM refinery.runs r
	WHERE r.status = 'committed'
	ORDER BY r.run_id DESC
	OFFSET keep - 1
	LIMIT 1;
	IF oldest_kept IS NULL THEN
		RETURN 0;				/* fewer committed runs than keep */
	END IF;

	/*
	 * Everything older than the oldest kept run goes, failed and dry runs
	 * included; a running run is another session's business (or ours).
	 */
	FOR victim IN
		SELECT r.run_id
		FROM refinery.runs r
		WHERE r.run_id < oldest_kept AND r.status <> 'running'
		ORDER BY r.run_id
	LOOP
		IF refinery.drop_run(victim) THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END
$$;

COMMENT ON FUNCTION refinery.apply_retention(integer) IS
'Keep the newest `keep` committed runs (by run_id) and every run newer than the oldest of them; drop all older runs with refinery.drop_run, except running ones. Returns the number of runs dropped. Inside a run''s transaction call it after setting the run committed, so that the new run counts; keep must be at least 1.';

/* ------------------------------------------------------------------------
 * missing_privileges() -> what the current role lacks to make a run
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.missing_privileges()
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owner		oid;
	need		record;
BEGIN
	IF current_setting('transaction_read_only')::boolean THEN
		RETURN NEXT 'a read-write transaction (this one is read-only)';
	END IF;
	IF NOT has_schema_privilege('refinery', 'CREATE') THEN
		RETURN NEXT 'CREATE on schema refinery';
	END IF;
	SELECT c.relowner INTO owner
	FROM pg_class c
	WHERE c.oid = 'refinery.lead_results'::regclass;
	IF NOT pg_has_role(owner, 'USAGE') THEN
		RETURN NEXT format('membership in role %s, the owner of refinery.lead_results '
						   '(attaching and dropping partitions needs it)', owner::regrole);
	END IF;
	FOR need IN
		SELECT v.tbl, v.priv
		FROM (VALUES ('refinery.runs', 'SELECT', 1), ('refinery.runs', 'INSERT', 2),
					 ('refinery.runs', 'UPDATE', 3), ('refinery.runs', 'DELETE', 4),
					 ('refinery.run_stages', 'INSERT', 5), ('refinery.run_cohorts', 'INSERT', 6),
					 ('refinery.run_reps', 'INSERT', 7), ('refinery.run_rep_sources', 'INSERT', 8),
					 ('refinery.lead_results', 'SELECT', 9)) AS v (tbl, priv, ord)
		ORDER BY v.ord
	LOOP
		IF NOT has_table_privilege(need.tbl, need.priv) THEN
			RETURN NEXT format('%s on %s', need.priv, need.tbl);
		END IF;
	END LOOP;
END
$$;

COMMENT ON FUNCTION refinery.missing_privileges() IS
'The privileges the current role lacks to make a run (one line each, e.g. ''CREATE on schema refinery''); no rows when it can. The engine calls it before any work and names what is missing. Calling it needs USAGE on schema refinery.';
