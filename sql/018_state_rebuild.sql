/*
 * 018_state_rebuild.sql
 *    A full write of a job that already has state builds the job's
 *    partition of refinery.lead_state afresh and swaps it in, instead of
 *    rewriting every row in place.
 *
 * A full write (run --full, a change of rules) gives every lead a new row.
 * In place that is an UPDATE of each row: a new tuple and an entry in each
 * of the partition's indexes per lead, plus a row lock per lead to keep the
 * pull queue's changes; on a million leads that took four times as long as
 * filling a new table and building its indexes once.  So the run fills a
 * new table (rebuild_state_table), builds on it the indexes the parent has
 * (index_state_rebuild), brings in what the pull queue changed meanwhile
 * while it holds the old partition against writers, and last, just before
 * its COMMIT, swaps the tables (swap_state_table).
 *
 * The swap detaches the old partition, which locks the shared parent
 * ACCESS EXCLUSIVE until the COMMIT a few statements later: every job's
 * readers of the state wait for those milliseconds.  The run asks for that
 * lock with a short lock_timeout; when another session holds the parent
 * (another job's run reads its own state for minutes), the run copies the
 * new table into the old partition instead, which is slower and locks
 * nothing shared.  Everything happens in the run's transaction, so a run
 * that fails leaves neither table behind.
 */

/* the table's DDL, shared by a job's first table and its rebuilds */
CREATE FUNCTION refinery.create_state_table(job text, tbl text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qual		text := format('refinery.%I', create_state_table.tbl);
	owner		oid;
BEGIN
	EXECUTE format('CREATE TABLE %s (LIKE refinery.lead_state '
				   'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', qual);
	EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (job = %L)',
				   qual, left(create_state_table.tbl, 57) || '_check', create_state_table.job);
	EXECUTE format('COMMENT ON TABLE %s IS %L', qual,
				   format('State of job %s: a partition of refinery.lead_state. Query the parent table.',
						  create_state_table.job));
	SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = 'refinery.lead_state'::regclass;
	IF owner <> to_regrole(current_user)::oid THEN
		EXECUTE format('ALTER TABLE %s OWNER TO %s', qual, owner::regrole);
	END IF;
	RETURN qual;
END
$$;

COMMENT ON FUNCTION refinery.create_state_table(text, text) IS
'Create table refinery.<tbl> shaped as refinery.lead_state (defaults, constraints, comments) with a CHECK that job is the given job, owned as the parent is; return its qualified name. Used by new_state_table and rebuild_state_table.';

CREATE OR REPLACE FUNCTION refinery.new_state_table(job text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			   WHERE i.inhparent = 'refinery.lead_state'::regclass
				 AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', new_state_table.job))
	THEN
		RETURN NULL;			/* the job has its partition: write into the parent */
	END IF;
	RETURN refinery.create_state_table(new_state_table.job,
									   refinery.state_table_name(new_state_table.job));
END
$$;

CREATE FUNCTION refinery.rebuild_state_table(job text)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT refinery.create_state_table(rebuild_state_table.job,
									   'lead_state_next_' || md5(rebuild_state_table.job))
$$;

COMMENT ON FUNCTION refinery.rebuild_state_table(text) IS
'For a full write of a job that has its partition: create the table (refinery.lead_state_next_<md5 of job>) the run fills with the job''s new state, and return its qualified name. Then index_state_rebuild(job) and, last before COMMIT, swap_state_table(job).';

CREATE FUNCTION refinery.index_state_rebuild(job text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl			text := 'lead_state_next_' || md5(index_state_rebuild.job);
	qual		text := format('refinery.%I', 'lead_state_next_' || md5(index_state_rebuild.job));
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

COMMENT ON FUNCTION refinery.index_state_rebuild(text) IS
'Build on the table rebuild_state_table(job) made every index refinery.lead_state has (its primary key as a primary key), so that swap_state_table attaches them as they are; return how many.';

CREATE FUNCTION refinery.lock_state_table(job text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
BEGIN
	EXECUTE format('LOCK TABLE refinery.%I IN EXCLUSIVE MODE',
				   refinery.state_table_name(lock_state_table.job));
END
$$;

COMMENT ON FUNCTION refinery.lock_state_table(text) IS
'Lock the job''s partition of refinery.lead_state EXCLUSIVE until the transaction ends: readers go on, writers (the pull queue''s takes and outcomes for this job) wait. A full write takes it before it brings the queue''s latest changes into the rebuilt table; it waits at most 2 s (lock_timeout, SQLSTATE 55P03), and the run then writes row by row, skipping the rows a session holds.';

CREATE FUNCTION refinery.swap_state_table(job text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '250ms'
AS $$
DECLARE
	name		text := refinery.state_table_name(swap_state_table.job);
	next		text := 'lead_state_next_' || md5(swap_state_table.job);
	newname		text;
	r			record;
BEGIN
	EXECUTE format('ALTER TABLE refinery.lead_state DETACH PARTITION refinery.%I', name);
	EXECUTE format('DROP TABLE refinery.%I', name);
	EXECUTE format('ALTER TABLE refinery.%I RENAME TO %I', next, name);
	/* the indexes' names follow the table's, where no other index has the name */
	FOR r IN SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
			  WHERE x.indrelid = format('refinery.%I', name)::regclass
	LOOP
		newname := left(regexp_replace(r.relname, '^lead_state_next_[0-9a-f]+', name), 63);
		IF newname <> r.relname AND to_regclass(format('refinery.%I', newname)) IS NULL THEN
			EXECUTE format('ALTER INDEX refinery.%I RENAME TO %I', r.relname, newname);
		END IF;
	END LOOP;
	/* the indexes match the parent's and the CHECK spares the validation scan */
	EXECUTE format('ALTER TABLE refinery.lead_state ATTACH PARTITION refinery.%I FOR VALUES IN (%L)',
				   name, swap_state_table.job);
END
$$;

COMMENT ON FUNCTION refinery.swap_state_table(text) IS
'Replace the job''s partition of refinery.lead_state by the table rebuild_state_table(job) made and index_state_rebuild(job) indexed: detach and drop the old, rename and attach the new. Locks refinery.lead_state ACCESS EXCLUSIVE until the transaction ends, so a run calls it last before COMMIT; it waits at most 250 ms for that lock (lock_timeout) and fails with SQLSTATE 55P03 when another session holds the parent longer.';
