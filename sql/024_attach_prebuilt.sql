/*
 * 024_attach_prebuilt.sql
 *    Partitions attach with their indexes already built.
 *
 * A run's results table and a job's first state table were attached with
 * ALTER TABLE ... ATTACH PARTITION, which built their indexes then.  The
 * shared parent (refinery.lead_results, refinery.lead_state) stayed locked
 * SHARE UPDATE EXCLUSIVE from that build to the run's commit, so another
 * job's run coming to attach its own waited behind the build (seconds at a
 * few million leads, against a lock_timeout of five).  The engine now calls
 * index_results_table() and index_state_table() while the table is still
 * the run's own, and the attach adopts the indexes it finds.  A full write's
 * new state table was built that way already (index_state_rebuild); the
 * three share index_state_like().
 */
CREATE FUNCTION refinery.index_state_like(qual text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	def			text;
	made		integer := 0;
	r			record;
BEGIN
	FOR r IN SELECT x.indexrelid, x.indisprimary, con.conname
			   FROM pg_index x
			   LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid
				AND con.conrelid = x.indrelid
			  WHERE x.indrelid = 'refinery.lead_state'::regclass
			  ORDER BY x.indexrelid
	LOOP
		def := pg_get_indexdef(r.indexrelid);
		IF r.conname IS NOT NULL THEN
			/* a constraint's index is matched only by the same kind of constraint */
			EXECUTE format('ALTER TABLE %s ADD %s', qual,
						   pg_get_constraintdef((SELECT c.oid FROM pg_constraint c
												  WHERE c.conindid = r.indexrelid
													AND c.conrelid = 'refinery.lead_state'::regclass)));
		ELSE
			IF def !~ ' ON ONLY refinery\.lead_state USING ' THEN
				RAISE EXCEPTION 'unexpected index definition: %', def;
			END IF;
			EXECUTE regexp_replace(def, '^(CREATE (UNIQUE )?INDEX) \S+ ON ONLY refinery\.lead_state USING ',
								   '\1 ON ' || qual || ' USING ');
		END IF;
		made := made + 1;
	END LOOP;
	RETURN made;
END
$$;
COMMENT ON FUNCTION refinery.index_state_like(text) IS
'Build on the table named qual (schema-qualified and quoted, as format(''refinery.%I'', name) gives it) every index refinery.lead_state has, its primary key as a primary key, so that attaching the table as a partition adopts them instead of building them under the parent''s lock; return how many. Used by index_state_table and index_state_rebuild.';

CREATE OR REPLACE FUNCTION refinery.index_state_rebuild(job text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT refinery.index_state_like(format('refinery.%I', 'lead_state_next_' || md5(index_state_rebuild.job)))
$$;

CREATE FUNCTION refinery.index_state_table(job text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT refinery.index_state_like(format('refinery.%I', refinery.state_table_name(index_state_table.job)))
$$;
COMMENT ON FUNCTION refinery.index_state_table(text) IS
'For a job''s first run: build on the table new_state_table(job) made, once it is filled, every index refinery.lead_state has, so that attach_state_table(job) only adopts them; return how many.';

CREATE FUNCTION refinery.index_results_table(run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	part		regclass := to_regclass(format('refinery.%I',
											   'lead_results_' || index_results_table.run_id));
BEGIN
	IF part IS NULL THEN
		RAISE EXCEPTION 'results table of run "%" does not exist', index_results_table.run_id
			USING ERRCODE = 'undefined_table',
				  HINT = 'Call refinery.new_results_table(run_id) first.';
	END IF;
	/* a lead id twice in the run fails here with unique_violation, the detail naming the id */
	EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (run_id, lead_id)', part);
END
$$;
COMMENT ON FUNCTION refinery.index_results_table(bigint) IS
'Build the primary key of the results table new_results_table(run_id) made, once it is filled, so that attach_results_table(run_id) only adopts it instead of building it under the lock of refinery.lead_results.';

COMMENT ON FUNCTION refinery.attach_results_table(bigint) IS
'Attach the table made by new_results_table(run_id) as the run''s partition of refinery.lead_results: its CHECK spares the validation scan, and the primary key index_results_table(run_id) built is adopted (without it, the attach builds it). Locks refinery.lead_results SHARE UPDATE EXCLUSIVE until the transaction ends; readers are not blocked.';

COMMENT ON FUNCTION refinery.attach_state_table(text) IS
'Attach the table made by new_state_table(job) as the job''s partition of refinery.lead_state: its CHECK spares the validation scan, and the indexes index_state_table(job) built are adopted (without them, the attach builds them). Locks the parent SHARE UPDATE EXCLUSIVE until the transaction ends; readers are not blocked.';
