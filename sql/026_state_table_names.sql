/*
 * 026_state_table_names.sql
 *    A job's state partition never takes a name its indexes' names may have.
 *
 * A job's partition of refinery.lead_state was named lead_state_<job>, and
 * its indexes take names such as lead_state_<job>_pkey: a job named
 * nightly_pkey beside a job named nightly could not have its partition
 * created (the name was an index's), nor could jobs named after the
 * parent's indexes (pkey, unheld_idx).  A job whose name ends as an index's
 * name may end (_pkey, _key, _idx, _excl, then digits), or is a rebuild
 * table's (next_<md5>), now has its partition named lead_state_<md5 of the
 * job>, as a name too long always had; every other job keeps
 * lead_state_<job>.  Partitions made before are renamed to match.
 */
CREATE OR REPLACE FUNCTION refinery.state_table_name(job text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN octet_length('lead_state_' || job) <= 63
					 AND job !~ '(^|_)(pkey|key|idx|excl)[0-9]*$'
					 AND job !~ '^next_[0-9a-f]{32}$'
				THEN 'lead_state_' || job
				ELSE 'lead_state_' || md5(job) END
$$;

COMMENT ON FUNCTION refinery.state_table_name(text) IS
'The name (in schema refinery, to be quoted as an identifier) of the job''s partition of refinery.lead_state: lead_state_<job>, or lead_state_<md5 of job> for a name too long, one that ends as an index''s name may (_pkey, _key, _idx, _excl, then digits) or one like a rebuild table''s (next_<md5>).';

DO $$
DECLARE
	r			record;
BEGIN
	FOR r IN SELECT c.relname, substring(pg_get_expr(c.relpartbound, c.oid)
										 FROM '^FOR VALUES IN \(''(.*)''\)$') AS job
			   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			  WHERE i.inhparent = 'refinery.lead_state'::regclass
	LOOP
		IF r.job IS NOT NULL AND r.relname <> refinery.state_table_name(r.job) THEN
			EXECUTE format('ALTER TABLE refinery.%I RENAME TO %I', r.relname,
						   refinery.state_table_name(r.job));
		END IF;
	END LOOP;
END
$$;
