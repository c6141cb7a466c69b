/*
 * 029_rebuild_like_partition.sql
 *    A full write's new table is shaped after the job's partition, not the
 *    shared parent.
 *
 * rebuild_state_table() made the table LIKE refinery.lead_state, which
 * locks the parent (ACCESS SHARE) until the run commits, and so did the
 * runs' statements on the parent: another job's full write, whose swap
 * detaches its partition from the parent (ACCESS EXCLUSIVE), waited for
 * that run and then copied its state into its partition instead.  The runs'
 * statements now name the job's partition, and the new table takes the
 * partition's columns, defaults and constraints, its CHECK on the job among
 * them.
 */
CREATE OR REPLACE FUNCTION refinery.rebuild_state_table(job text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qual		text := format('refinery.%I', 'lead_state_next_' || md5(rebuild_state_table.job));
	owner		oid;
BEGIN
	EXECUTE format('CREATE TABLE %s (LIKE refinery.%I '
				   'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)',
				   qual, refinery.state_table_name(rebuild_state_table.job));
	EXECUTE format('COMMENT ON TABLE %s IS %L', qual,
				   format('State of job %s: a partition of refinery.lead_state. Query the parent table.',
						  rebuild_state_table.job));
	SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = 'refinery.lead_state'::regclass;
	IF owner <> to_regrole(current_user)::oid THEN
		EXECUTE format('ALTER TABLE %s OWNER TO %s', qual, owner::regrole);
	END IF;
	RETURN qual;
END
$$;

COMMENT ON FUNCTION refinery.rebuild_state_table(text) IS
'For a full write of a job that has its partition: create the table (refinery.lead_state_next_<md5 of job>) the run fills with the job''s new state, shaped after the job''s partition (columns, defaults, constraints; naming the partition, not the shared parent, locks nothing another job''s swap waits for), owned as the parent is, and return its qualified name. Then index_state_rebuild(job) and, last before COMMIT, swap_state_table(job).';
