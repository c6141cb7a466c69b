/*
 * 004_jobs.sql
 *    Jobs: named, persistent units of runs ("nightly", "reactivation-2027q1").
 *
 * Runs, the run lock, retention and every view are per job.  refinery.jobs
 * holds one row per job; a run locks its job's row (SELECT ... FOR UPDATE
 * NOWAIT) in the run's transaction from start to commit, so one job never
 * runs twice at once while two jobs may.  The row lock is the guarantee; the
 * holder columns say who holds it.  Runs made before this migration belong
 * to job "default".  latest_run becomes one row per job, and every view
 * gains a job column (appended, so that existing queries keep working).
 */

/* ------------------------------------------------------------------------
 * jobs
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.jobs
(
	name		text PRIMARY KEY
		CONSTRAINT jobs_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
	created_at	timestamptz NOT NULL DEFAULT now(),
	holder_pid	integer,
	holder_host text,
	holder_started_at timestamptz
);

COMMENT ON TABLE refinery.jobs IS
'One row per job ([job] name in the rules). The row is also the job''s run lease: a run locks it with SELECT ... FOR UPDATE NOWAIT in its transaction from start to commit, so a second run of the same job is refused at once while runs of other jobs go ahead. The lock has no expiry: it ends with the run''s transaction, or when the server notices the client is gone (the engine sets TCP keepalives).';
COMMENT ON COLUMN refinery.jobs.name IS 'The job''s name: letters, digits, ".", "_" and "-", at most 63 characters, starting with a letter or digit.';
COMMENT ON COLUMN refinery.jobs.created_at IS 'When the job''s first run started (for job default made by the upgrade: its oldest run).';
COMMENT ON COLUMN refinery.jobs.holder_pid IS 'Process id of the refinery program of the run that took the lease last. Meaningful while the row is locked; a run that committed clears it, one that died leaves it until the next run.';
COMMENT ON COLUMN refinery.jobs.holder_host IS 'Host name of the machine of that run.';
COMMENT ON COLUMN refinery.jobs.holder_started_at IS 'When that run took the lease.';

/* every job that already made runs: "default" */
INSERT INTO refinery.jobs (name, created_at)
SELECT 'default', min(r.started_at)
FROM refinery.runs r
HAVING count(*) > 0;

/* ------------------------------------------------------------------------
 * runs.job
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.runs ADD COLUMN job text;
UPDATE refinery.runs SET job = 'default';
ALTER TABLE refinery.runs
	ALTER COLUMN job SET NOT NULL,
	ADD CONSTRAINT runs_job_fkey FOREIGN KEY (job) REFERENCES refinery.jobs (name);
CREATE INDEX runs_job_run_id_idx ON refinery.runs (job, run_id);

COMMENT ON COLUMN refinery.runs.job IS 'The job the run belongs to (refinery.jobs); runs made before jobs existed belong to job default.';
COMMENT ON INDEX refinery.runs_job_run_id_idx IS 'A job''s runs in order: latest_run, retention and the guards read it.';

/* ------------------------------------------------------------------------
 * The views: a job column at the end of each
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE VIEW refinery.latest_run AS
SELECT DISTINCT ON (r.job)
	   r.run_id,
	   r.started_at,
	   r.finished_at,
	   r.status,
	   r.rules_sha256,
	   r.rules_text,
	   r.rules_files,
	   r.source_desc,
	   r.engine_version,
	   r.host,
	   r.threads,
	   r.rows_pulled,
	   r.rows_kept,
	   r.seconds_total,
	   r.counts,
	   r.job
FROM refinery.runs r
WHERE r.status = 'committed'
ORDER BY r.job, r.run_id DESC;

COMMENT ON VIEW refinery.latest_run IS
'The newest committed run (highest run_id) of each job, one row per job; empty before the first run. Use it as WHERE run_id = (SELECT run_id FROM refinery.latest_run WHERE job = ''nightly'').';
COMMENT ON COLUMN refinery.latest_run.job IS 'The job.';

CREATE OR REPLACE VIEW refinery.run_funnel AS
SELECT f.run_id, f.step, f.verdict, f.rule_id, f.leads, f.pct_of_pulled, f.example_reason, r.job
FROM (SELECT l.run_id,
			 0 AS step,
			 'pulled'::text AS verdict,
			 NULL::text AS rule_id,
			 count(*) AS leads,
			 100.00 AS pct_of_pulled,
			 NULL::text AS example_reason
	  FROM refinery.lead_results l
	  GROUP BY l.run_id
	  UNION ALL
	  SELECT l.run_id,
			 array_position(ARRAY['blacklisted', 'duplicate', 'partial', 'outlier', 'nurture',
								  'kept'], l.verdict) AS step,
			 l.verdict,
			 l.rule_id,
			 count(*) AS leads,
			 round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY l.run_id), 2)
			 AS pct_of_pulled,
			 min(l.reason) AS example_reason
	  FROM refinery.lead_results l
	  GROUP BY l.run_id, l.verdict, l.rule_id) f
JOIN refinery.runs r ON r.run_id = f.run_id;

COMMENT ON COLUMN refinery.run_funnel.job IS 'The run''s job.';

CREATE OR REPLACE VIEW refinery.lead_explain AS
SELECT l.run_id,
	   l.lead_id,
	   l.source,
	   l.verdict,
	   l.rule_id,
	   l.reason,
	   l.cluster_id,
	   l.survivor_id,
	   l.phone_norm,
	   l.phone_type,
	   l.phone_repair,
	   l.email_norm,
	   l.name_norm,
	   l.status_norm,
	   l.score,
	   l.temperature,
	   (l.points ->> 'source')::numeric AS points_source,
	   (l.points ->> 'created_at')::numeric AS points_created_at,
	   (l.points ->> 'status')::numeric AS points_status,
	   (l.points ->> 'last_touch_at')::numeric AS points_last_touch_at,
	   (l.points ->> 'touch_count')::numeric AS points_touch_count,
	   (l.points ->> 'last_touch_type')::numeric AS points_last_touch_type,
	   (l.points ->> 'notes')::numeric AS points_notes,
	   (l.points ->> 'automation')::numeric AS points_automation,
	   (SELECT sum(p.value::numeric) FROM jsonb_each_text(l.points) p) AS points_total,
	   l.points,
	   l.persona,
	   l.cohort,
	   l.channel_plan,
	   l.sla_due_at,
	   l.rep_id,
	   r.rep_name,
	   l.call_order,
	   l.p_close,
	   r.close_rate AS rep_close_rate,
	   s.rate_smoothed AS rep_source_rate,
	   s.attempts AS rep_source_attempts,
	   s.wins AS rep_source_wins,
	   l.golden,
	   rn.job
FROM refinery.lead_results l
JOIN refinery.runs rn ON rn.run_id = l.run_id
LEFT JOIN refinery.run_reps r ON r.run_id = l.run_id AND r.rep_id = l.rep_id
LEFT JOIN refinery.run_rep_sources s
	ON s.run_id = l.run_id AND s.rep_id = l.rep_id AND s.source = l.source;

COMMENT ON COLUMN refinery.lead_explain.job IS 'The run''s job.';

CREATE OR REPLACE VIEW refinery.rep_load AS
SELECT r.run_id,
	   r.rep_id,
	   r.rep_name,
	   r.active,
	   r.capacity,
	   r.assigned,
	   CASE WHEN r.capacity > 0 THEN r.assigned::double precision / r.capacity END AS utilisation,
	   r.expected_conversions,
	   coalesce(t.target_conversions, 0) AS target_conversions,
	   r.close_rate,
	   CASE WHEN r.assigned > 0 THEN r.expected_conversions / r.assigned END AS expected_rate,
	   rn.job
FROM refinery.run_reps r
JOIN refinery.runs rn ON rn.run_id = r.run_id
LEFT JOIN (SELECT l.run_id,
				  l.rep_id,
				  sum(c.target_rate::numeric) AS target_conversions
		   FROM refinery.lead_results l
		   JOIN refinery.run_cohorts c ON c.run_id = l.run_id AND c.cohort = l.cohort
		   WHERE l.rep_id IS NOT NULL
		   GROUP BY l.run_id, l.rep_id) t
	ON t.run_id = r.run_id AND t.rep_id = r.rep_id;

COMMENT ON COLUMN refinery.rep_load.job IS 'The run''s job.';

CREATE OR REPLACE VIEW refinery.cohort_summary AS
SELECT c.run_id,
	   c.ord,
	   c.cohort,
	   c.leads,
	   round(100.0 * c.leads / nullif(sum(c.leads) OVER (PARTITION BY c.run_id), 0), 2)
	   AS pct_of_leads,
	   c.score_min,
	   c.score_max,
	   c.mean_score,
	   c.sla_hours,
	   c.channel_plan,
	   c.target_rate,
	   c.leads * c.target_rate::numeric AS target_conversions,
	   c.expected_conversions,
	   CASE WHEN c.leads > 0 THEN c.expected_conversions / c.leads END AS expected_rate,
	   c.expected_conversions::numeric - c.leads * c.target_rate::numeric AS expected_vs_target,
	   rn.job
FROM refinery.run_cohorts c
JOIN refinery.runs rn ON rn.run_id = c.run_id;

COMMENT ON COLUMN refinery.cohort_summary.job IS 'The run''s job.';

CREATE OR REPLACE VIEW refinery.stage_times AS
SELECT s.run_id,
	   s.ord,
	   s.stage,
	   s.rows_in,
	   s.rows_out,
	   s.rows_in - s.rows_out AS rows_removed,
	   s.seconds,
	   round((100 * s.seconds / nullif(r.seconds_total, 0))::numeric, 1) AS pct_of_run,
	   CASE WHEN s.seconds > 0 THEN greatest(s.rows_in, s.rows_out) / s.seconds END
	   AS rows_per_second,
	   s.counters,
	   r.job
FROM refinery.run_stages s
JOIN refinery.runs r ON r.run_id = s.run_id;

COMMENT ON COLUMN refinery.stage_times.job IS 'The run''s job.';

CREATE OR REPLACE VIEW refinery.source_summary AS
SELECT s.run_id, s.source, s.pulled, s.kept, s.blacklisted, s.duplicate, s.partial, s.outlier,
	   s.nurture, s.invalid_phones, s.pct_kept, s.mean_score_kept, s.expected_conversions, r.job
FROM (SELECT l.run_id,
			 l.source,
			 count(*) AS pulled,
			 count(*) FILTER (WHERE l.verdict = 'kept') AS kept,
			 count(*) FILTER (WHERE l.verdict = 'blacklisted') AS blacklisted,
			 count(*) FILTER (WHERE l.verdict = 'duplicate') AS duplicate,
			 count(*) FILTER (WHERE l.verdict = 'partial') AS partial,
			 count(*) FILTER (WHERE l.verdict = 'outlier') AS outlier,
			 count(*) FILTER (WHERE l.verdict = 'nurture') AS nurture,
			 count(*) FILTER (WHERE l.phone_type = 'invalid') AS invalid_phones,
			 round(100.0 * count(*) FILTER (WHERE l.verdict = 'kept') / count(*), 2) AS pct_kept,
			 round(avg(l.score) FILTER (WHERE l.verdict = 'kept'), 2) AS mean_score_kept,
			 sum(l.p_close::numeric) AS expected_conversions
	  FROM refinery.lead_results l
	  GROUP BY l.run_id, l.source) s
JOIN refinery.runs r ON r.run_id = s.run_id;

COMMENT ON COLUMN refinery.source_summary.job IS 'The run''s job.';

/* ------------------------------------------------------------------------
 * job_summary: what "refinery jobs" prints
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.job_summary AS
SELECT j.name AS job,
	   j.created_at,
	   l.run_id AS last_run_id,
	   l.finished_at AS last_finished_at,
	   l.rows_pulled AS last_rows_pulled,
	   coalesce(s.runs, 0) AS runs,
	   coalesce(s.result_rows, 0) AS result_rows,
	   coalesce(s.result_bytes, 0) AS result_bytes
FROM refinery.jobs j
LEFT JOIN refinery.latest_run l ON l.job = j.name
LEFT JOIN (SELECT r.job,
				  count(*) AS runs,
				  sum(r.rows_pulled)::bigint AS result_rows,
				  sum(coalesce(pg_total_relation_size(
						  to_regclass(format('refinery.%I', 'lead_results_' || r.run_id))), 0))::bigint
				  AS result_bytes
		   FROM refinery.runs r
		   WHERE r.status = 'committed'
		   GROUP BY r.job) s ON s.job = j.name;

COMMENT ON VIEW refinery.job_summary IS
'One row per job: its last committed run and the size of the results it keeps (what "refinery jobs" prints). Typical use: SELECT * FROM refinery.job_summary ORDER BY job.';
COMMENT ON COLUMN refinery.job_summary.job IS 'The job.';
COMMENT ON COLUMN refinery.job_summary.created_at IS 'When the job''s first run started.';
COMMENT ON COLUMN refinery.job_summary.last_run_id IS 'The job''s newest committed run; NULL when it has none.';
COMMENT ON COLUMN refinery.job_summary.last_finished_at IS 'When that run finished.';
COMMENT ON COLUMN refinery.job_summary.last_rows_pulled IS 'Leads that run pulled (the guards compare the next run with it).';
COMMENT ON COLUMN refinery.job_summary.runs IS 'Committed runs of the job still kept.';
COMMENT ON COLUMN refinery.job_summary.result_rows IS 'lead_results rows of those runs.';
COMMENT ON COLUMN refinery.job_summary.result_bytes IS 'Bytes of their lead_results partitions, indexes included.';

/* ------------------------------------------------------------------------
 * apply_retention(job, keep) -> the runs dropped
 * ------------------------------------------------------------------------ */
DROP FUNCTION refinery.apply_retention(integer);

CREATE FUNCTION refinery.apply_retention(job text, keep integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	oldest_kept bigint;
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
	FOR victim IN
		SELECT r.run_id
		FROM refinery.runs r
		WHERE r.job = apply_retention.job AND r.run_id < oldest_kept AND r.status <> 'running'
		ORDER BY r.run_id
	LOOP
		IF refinery.drop_run(victim) THEN
			RETURN NEXT victim;
		END IF;
	END LOOP;
END
$$;

COMMENT ON FUNCTION refinery.apply_retention(text, integer) IS
'Keep the newest `keep` committed runs of one job (by run_id) and every run of it newer than the oldest of them; drop the job''s older runs with refinery.drop_run, except running ones. Other jobs are untouched. Returns the run ids dropped, in order. Dropping locks refinery.lead_results ACCESS EXCLUSIVE until the transaction ends: the engine calls it in a short transaction of its own after the run commits. keep must be at least 1.';

/* ------------------------------------------------------------------------
 * missing_privileges(): the jobs table too
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION refinery.missing_privileges()
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
					 ('refinery.lead_results', 'SELECT', 9), ('refinery.jobs', 'SELECT', 10),
					 ('refinery.jobs', 'INSERT', 11), ('refinery.jobs', 'UPDATE', 12))
			AS v (tbl, priv, ord)
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
